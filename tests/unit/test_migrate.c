/*
 * test_migrate.c — db_migrate over migration files written to a temporary directory, on
 * SQLite (a fresh file per test) and, when USHER_TEST_PG_URL is set, on PostgreSQL (a fresh
 * schema, usher_test_migrate, per test). The real migrations/ are not used here.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/err.h"
#include "core/mem.h"
#include "db/db.h"
#include "db/migrate.h"

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PG_SCHEMA "usher_test_migrate"

static bool use_pg; /* which backend the running group tests */
static char tmpdir[64]; /* migrations in tmpdir/m/<dialect>/, SQLite files in tmpdir */
static char *mdir; /* tmpdir/m */
static char *url; /* the current test's database */
static struct db_pool *pool;
static int db_seq;

/* ---- helpers ---- */

static const char *dialect_dir(void)
{
    return use_pg ? "postgres" : "sqlite";
}

static void write_migration(const char *fname, const char *sql)
{
    char *path = xasprintf("%s/%s/%s", mdir, dialect_dir(), fname);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(sql, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    free(path);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void pg_admin(const char *sql)
{
    struct db_pool *admin = NULL;
    struct db_conn *c = NULL;
    assert_int_equal(db_pool_new(getenv("USHER_TEST_PG_URL"), 1, &admin), 0);
    assert_int_equal(db_acquire(admin, 5000, &c), 0);
    assert_int_equal(db_exec_script(c, sql), 0);
    db_release(c);
    db_pool_free(admin);
}

static int64_t scalar(const char *sql)
{
    struct db_conn *c = NULL;
    struct db_result *res = NULL;
    assert_int_equal(db_acquire(pool, 5000, &c), 0);
    assert_int_equal(db_query(c, sql, NULL, 0, &res), 0);
    int64_t v = db_result_int(res, 0, 0);
    db_result_free(res);
    db_release(c);
    return v;
}

static bool table_exists(const char *name)
{
    struct db_conn *c = NULL;
    struct db_result *res = NULL;
    struct db_param p[] = {DB_TEXT(name)};
    const char *sql = use_pg ? "SELECT 1 FROM pg_tables WHERE schemaname = '" PG_SCHEMA
                               "' AND tablename = $1"
                             : "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = $1";
    assert_int_equal(db_acquire(pool, 5000, &c), 0);
    assert_int_equal(db_query(c, sql, p, 1, &res), 0);
    bool found = db_result_rows(res) > 0;
    db_result_free(res);
    db_release(c);
    return found;
}

static int version(void)
{
    int v = -1;
    assert_int_equal(db_schema_version(pool, &v), 0);
    return v;
}

/* ---- per-test setup: fresh migrations directory and database ---- */

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/usher-test-migrate-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    mdir = xasprintf("%s/m", tmpdir);
    char *sub = xasprintf("%s/%s", mdir, dialect_dir());
    assert_int_equal(mkdir(mdir, 0700), 0);
    assert_int_equal(mkdir(sub, 0700), 0);
    free(sub);
    if (use_pg) {
        const char *base = getenv("USHER_TEST_PG_URL");
        pg_admin("DROP SCHEMA IF EXISTS " PG_SCHEMA " CASCADE; CREATE SCHEMA " PG_SCHEMA);
        url = xasprintf("%s%soptions=-csearch_path%%3D" PG_SCHEMA, base,
                        strchr(base, '?') ? "&" : "?");
    } else {
        url = xasprintf("sqlite:///%s/db%d.sqlite3", tmpdir, db_seq++);
    }
    assert_int_equal(db_pool_new(url, 2, &pool), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    db_pool_free(pool);
    pool = NULL;
    free(url);
    free(mdir);
    url = mdir = NULL;
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (use_pg)
        pg_admin("DROP SCHEMA IF EXISTS " PG_SCHEMA " CASCADE");
    return 0;
}

/* ---- tests ---- */

static void write_two(void)
{
    write_migration("0001_first.sql", "CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT);\n"
                                      "INSERT INTO a (id, v) VALUES (1, 'one');\n");
    write_migration("0002_second.sql", "CREATE TABLE b (id INTEGER PRIMARY KEY);\n"
                                       "INSERT INTO a (id, v) VALUES (2, 'two');\n");
}

static void test_apply_then_idempotent(void **state)
{
    (void)state;
    write_two();
    /* Not migrations: wrong digit count, not digits, wrong suffix, no name. */
    write_migration("README", "not sql");
    write_migration("12_short.sql", "syntax error");
    write_migration("abcd_letters.sql", "syntax error");
    write_migration("0003_text.txt", "syntax error");
    write_migration("0004_.sql", "syntax error");

    int latest = -1, applied = -1;
    assert_int_equal(version(), 0);
    assert_false(table_exists("schema_migrations")); /* reading changes nothing */
    assert_int_equal(db_migrations_latest(pool, mdir, &latest), 0);
    assert_int_equal(latest, 2);
    assert_int_equal(db_migrate(pool, mdir, &applied), 0);
    assert_int_equal(applied, 2);
    assert_int_equal(version(), 2);
    assert_int_equal(scalar("SELECT COUNT(*) FROM a"), 2);
    assert_int_equal(scalar("SELECT COUNT(*) FROM schema_migrations WHERE name = 'second'"), 1);
    assert_true(scalar("SELECT MIN(applied_at) FROM schema_migrations") > 1600000000);

    assert_int_equal(db_migrate(pool, mdir, &applied), 0);
    assert_int_equal(applied, 0);
    assert_int_equal(scalar("SELECT COUNT(*) FROM a"), 2);

    write_migration("0010_tenth.sql", "ALTER TABLE b ADD COLUMN w INTEGER;");
    assert_int_equal(db_migrate(pool, mdir, NULL), 0);
    assert_int_equal(version(), 10);
}

static void test_numeric_order(void **state)
{
    (void)state;
    /* 0010 needs the table 0009 creates: order is by number, not by directory order. */
    write_migration("0010_use.sql", "INSERT INTO t (x) VALUES (10);");
    write_migration("0009_make.sql", "CREATE TABLE t (x INTEGER);");
    write_migration("0100_more.sql", "INSERT INTO t (x) VALUES (100);");
    int applied = 0;
    assert_int_equal(db_migrate(pool, mdir, &applied), 0);
    assert_int_equal(applied, 3);
    assert_int_equal(scalar("SELECT SUM(x) FROM t"), 110);
    assert_int_equal(version(), 100);
}

static void test_newer_schema_refused(void **state)
{
    (void)state;
    write_two();
    assert_int_equal(db_migrate(pool, mdir, NULL), 0);
    struct db_conn *c = NULL;
    assert_int_equal(db_acquire(pool, 5000, &c), 0);
    assert_int_equal(db_exec(c,
                             "INSERT INTO schema_migrations (version, name, applied_at) "
                             "VALUES (9999, 'future', 0)",
                             NULL, 0, NULL),
                     0);
    db_release(c);
    int applied = -1;
    assert_int_equal(db_migrate(pool, mdir, &applied), USHER_ESCHEMA);
    assert_int_equal(applied, 0);
    assert_int_equal(version(), 9999);
}

static void test_failing_migration_rolls_back(void **state)
{
    (void)state;
    write_migration("0001_ok.sql", "CREATE TABLE a (x INTEGER);");
    write_migration("0002_bad.sql", "CREATE TABLE half (x INTEGER);\n"
                                    "INSERT INTO a (x) VALUES (1);\n"
                                    "INSERT INTO no_such_table (x) VALUES (1);\n");
    write_migration("0003_after.sql", "CREATE TABLE after (x INTEGER);");
    int applied = -1;
    assert_true(db_migrate(pool, mdir, &applied) < 0);
    assert_int_equal(applied, 1);
    assert_int_equal(version(), 1);
    assert_false(table_exists("half"));
    assert_false(table_exists("after"));
    assert_int_equal(scalar("SELECT COUNT(*) FROM a"), 0);

    /* Fixed, it applies from where it stopped. */
    write_migration("0002_bad.sql", "CREATE TABLE half (x INTEGER);");
    assert_int_equal(db_migrate(pool, mdir, &applied), 0);
    assert_int_equal(applied, 2);
    assert_int_equal(version(), 3);
}

static void test_bad_directories(void **state)
{
    (void)state;
    write_migration("0001_a.sql", "CREATE TABLE a (x INTEGER);");
    write_migration("0001_b.sql", "CREATE TABLE b (x INTEGER);");
    int applied = -1, latest = -1;
    assert_int_equal(db_migrate(pool, mdir, &applied), USHER_ECONFIG);
    assert_int_equal(applied, 0);
    assert_false(table_exists("a"));
    assert_int_equal(db_migrations_latest(pool, mdir, &latest), USHER_ECONFIG);
    char *missing = xasprintf("%s/none", tmpdir);
    assert_int_equal(db_migrate(pool, missing, &applied), USHER_ECONFIG);
    free(missing);
}

struct runner {
    int rc;
    int applied;
};

static void *migrate_in_thread(void *arg)
{
    struct runner *r = arg;
    struct db_pool *own = NULL; /* like a second `usher migrate` process */
    r->rc = db_pool_new(url, 1, &own);
    if (r->rc == 0)
        r->rc = db_migrate(own, mdir, &r->applied);
    db_pool_free(own);
    return NULL;
}

static void test_concurrent_migrate(void **state)
{
    (void)state;
    char name[32], sql[96];
    for (int i = 1; i <= 20; i++) {
        snprintf(name, sizeof name, "%04d_m%d.sql", i, i);
        snprintf(sql, sizeof sql, "CREATE TABLE t%d (x INTEGER);", i);
        write_migration(name, sql);
    }
    struct runner r[3] = {0};
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&th[i], NULL, migrate_in_thread, &r[i]), 0);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 3; i++)
        assert_int_equal(r[i].rc, 0);
    assert_int_equal(r[0].applied + r[1].applied + r[2].applied, 20);
    assert_int_equal(version(), 20);
    assert_int_equal(scalar("SELECT COUNT(*) FROM schema_migrations"), 20);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_apply_then_idempotent, setup, teardown),
    cmocka_unit_test_setup_teardown(test_numeric_order, setup, teardown),
    cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
    cmocka_unit_test_setup_teardown(test_failing_migration_rolls_back, setup, teardown),
    cmocka_unit_test_setup_teardown(test_bad_directories, setup, teardown),
    cmocka_unit_test_setup_teardown(test_concurrent_migrate, setup, teardown),
};

int main(void)
{
    use_pg = false;
    int failed = cmocka_run_group_tests_name("migrate/sqlite", tests, NULL, NULL);
    const char *pg = getenv("USHER_TEST_PG_URL");
    if (!pg || !*pg) {
        printf("skipped: USHER_TEST_PG_URL unset (PostgreSQL half of test_migrate)\n");
        return failed;
    }
    use_pg = true;
    failed += cmocka_run_group_tests_name("migrate/postgres", tests, NULL, NULL);
    return failed;
}
