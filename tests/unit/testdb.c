/*
 * testdb.c — per-test databases (see testdb.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testdb.h"

#include "core/mem.h"
#include "db/migrate.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *testdb_pg_url(void)
{
    const char *url = getenv("USHER_TEST_PG_URL");
    return url && *url ? url : NULL;
}

const char *testdb_data_dir(void)
{
    const char *d = getenv("USHER_DATA_DIR");
    return d && *d ? d : USHER_SOURCE_DIR;
}

static void pg_admin(const char *sql)
{
    struct db_pool *admin = NULL;
    struct db_conn *c = NULL;
    assert_int_equal(db_pool_new(testdb_pg_url(), 1, &admin), 0);
    assert_int_equal(db_acquire(admin, 5000, &c), 0);
    assert_int_equal(db_exec_script(c, sql), 0);
    db_release(c);
    db_pool_free(admin);
}

void testdb_open(struct testdb *t, const char *name, bool pg, const char *schema, int pool_size)
{
    memset(t, 0, sizeof *t);
    snprintf(t->dir, sizeof t->dir, "/tmp/usher-test-%s-XXXXXX", name);
    assert_non_null(mkdtemp(t->dir));
    if (pg) {
        const char *base = testdb_pg_url();
        assert_non_null(base);
        t->schema = schema;
        char *sql = xasprintf("DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", schema, schema);
        pg_admin(sql);
        free(sql);
        t->url = xasprintf("%s%soptions=-csearch_path%%3D%s", base, strchr(base, '?') ? "&" : "?",
                           schema);
    } else {
        t->url = xasprintf("sqlite:///%s/test.db", t->dir);
    }
    assert_int_equal(db_pool_new(t->url, pool_size, &t->pool), 0);
    char *dir = xasprintf("%s/migrations", testdb_data_dir());
    int rc = db_migrate(t->pool, dir, &t->migrations_applied);
    free(dir);
    assert_int_equal(rc, 0);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

void testdb_close(struct testdb *t)
{
    db_pool_free(t->pool);
    t->pool = NULL;
    free(t->url);
    t->url = NULL;
    if (t->schema) {
        char *sql = xasprintf("DROP SCHEMA IF EXISTS %s CASCADE", t->schema);
        pg_admin(sql);
        free(sql);
    }
    if (t->dir[0])
        nftw(t->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    t->dir[0] = '\0';
}

void testdb_exec(struct db_pool *pool, const char *sql, const struct db_param *p, int n)
{
    struct db_conn *conn = NULL;
    assert_int_equal(db_acquire(pool, 1000, &conn), 0);
    int rc = db_exec(conn, sql, p, n, NULL);
    db_release(conn);
    if (rc != 0)
        fail_msg("statement failed (%d): %s", rc, sql);
}

int64_t testdb_scalar(struct db_pool *pool, const char *sql)
{
    struct db_result *res = NULL;
    assert_int_equal(db_pool_query(pool, sql, NULL, 0, &res), 0);
    int64_t v =
        db_result_rows(res) && !db_result_is_null(res, 0, 0) ? db_result_int(res, 0, 0) : -1;
    db_result_free(res);
    return v;
}
