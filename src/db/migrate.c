/*
 * migrate.c — applies DIR/<sqlite|postgres>/NNNN_name.sql files in version order.
 *
 * Each pending file runs in its own write transaction together with the INSERT of its row
 * into schema_migrations, so a failing file leaves no trace and the version unchanged.
 * Two `usher migrate` processes may start at once (several web nodes booting): on
 * PostgreSQL each transaction first takes a transaction-scoped advisory lock, on SQLite
 * BEGIN IMMEDIATE takes the database write lock; either way the second process waits, then
 * re-checks whether the version is still pending and skips it if the first one applied it.
 * Migration files must not contain BEGIN/COMMIT themselves.
 */
#include "db/migrate.h"

#include "core/clock.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/fileio.h"
#include "core/log.h"
#include "core/mem.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Any constant works as long as nothing else in the database uses it: "usher" in ASCII. */
#define MIGRATE_LOCK_SQL "SELECT pg_advisory_xact_lock(504136476018)"
#define MIGRATE_ACQUIRE_MS 10000
#define MIGRATE_MAX_FILES 10000 /* four digits */
#define MIGRATE_MAX_BYTES (8 * 1024 * 1024) /* a migration is a schema change, not data */
#define MIGRATE_MAX_NAME 200

struct migration {
    int version;
    char *name; /* the file name between "NNNN_" and ".sql" */
    char *path;
};

struct migration_set {
    struct migration *items;
    int count;
};

static void set_cleanup(struct migration_set *set)
{
    for (int i = 0; i < set->count; i++) {
        free(set->items[i].name);
        free(set->items[i].path);
    }
    free(set->items);
    set->items = NULL;
    set->count = 0;
}

/* "0007_add_users.sql" → 7 and "add_users"; false for anything else. */
static bool parse_file_name(const char *fname, int *version, char **name)
{
    size_t len = strlen(fname);
    if (len < 10 || len > MIGRATE_MAX_NAME || fname[4] != '_')
        return false;
    if (strcmp(fname + len - 4, ".sql") != 0)
        return false;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        if (!isdigit((unsigned char)fname[i]))
            return false;
        v = v * 10 + (fname[i] - '0');
    }
    *version = v;
    *name = xstrndup(fname + 5, len - 9);
    return true;
}

static int by_version(const void *a, const void *b)
{
    const struct migration *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

static int add_file(struct migration_set *set, const char *dir, const char *fname)
{
    int version = 0;
    char *name = NULL;
    if (!parse_file_name(fname, &version, &name))
        return 0;
    if (set->count >= MIGRATE_MAX_FILES) {
        free(name);
        return USHER_ELIMIT;
    }
    set->items = xrealloc(set->items, ((size_t)set->count + 1) * sizeof *set->items);
    struct migration *m = &set->items[set->count++];
    m->version = version;
    m->name = name;
    m->path = xasprintf("%s/%s", dir, fname);
    return 0;
}

static int check_duplicates(const struct migration_set *set)
{
    for (int i = 1; i < set->count; i++) {
        if (set->items[i].version == set->items[i - 1].version) {
            log_error("msg=\"duplicate migration version\" version=%04d", set->items[i].version);
            return USHER_ECONFIG;
        }
    }
    return 0;
}

/* Lists the dialect's migration files, sorted by version. */
static int load_set(struct db_pool *pool, const char *migrations_dir, struct migration_set *set)
{
    const char *sub = db_pool_dialect(pool) == DB_SQLITE ? "sqlite" : "postgres";
    char *dir = xasprintf("%s/%s", migrations_dir, sub);
    int rc = 0;
    set->items = NULL;
    set->count = 0;
    DIR *d = opendir(dir);
    if (!d) {
        log_error("msg=\"cannot read migrations directory\" dir=\"%s\"", dir);
        rc = USHER_ECONFIG;
        goto out;
    }
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL)
        rc = add_file(set, dir, e->d_name);
    closedir(d);
    if (rc == 0) {
        qsort(set->items, (size_t)set->count, sizeof *set->items, by_version);
        rc = check_duplicates(set);
    }
out:
    if (rc < 0)
        set_cleanup(set);
    free(dir);
    return rc;
}

static int read_file(const char *path, char **out)
{
    struct buf text;
    buf_init(&text);
    int rc = file_read_all(path, MIGRATE_MAX_BYTES, &text);
    if (rc < 0) {
        log_error("msg=\"cannot read migration\" path=\"%s\" error=\"%s\"", path,
                  usher_strerror(rc));
        buf_cleanup(&text);
        *out = NULL;
        return rc == USHER_ENOTFOUND ? USHER_EIO : rc;
    }
    *out = buf_detach(&text);
    buf_cleanup(&text);
    return 0;
}

/* Opens a write transaction holding the migration lock. */
static int begin_locked(struct db_conn *conn)
{
    int rc = db_begin(conn, DB_TX_WRITE);
    if (rc == 0 && db_conn_dialect(conn) == DB_POSTGRES)
        rc = db_exec(conn, MIGRATE_LOCK_SQL, NULL, 0, NULL);
    return rc;
}

static int ensure_table(struct db_conn *conn)
{
    /* Under the lock: concurrent CREATE TABLE IF NOT EXISTS can still collide on
     * PostgreSQL's catalog. */
    int rc = begin_locked(conn);
    if (rc == 0)
        rc = db_exec_script(conn, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                  "version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                                  "applied_at BIGINT NOT NULL)");
    if (rc == 0)
        rc = db_commit(conn);
    if (rc < 0)
        db_rollback(conn);
    return rc;
}

static int max_version(struct db_conn *conn, int *version)
{
    struct db_result *res = NULL;
    int rc =
        db_query(conn, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", NULL, 0, &res);
    *version = rc == 0 ? (int)db_result_int(res, 0, 0) : 0;
    db_result_free(res);
    return rc;
}

static int is_applied(struct db_conn *conn, int version, bool *applied)
{
    struct db_result *res = NULL;
    struct db_param p[] = {DB_INT(version)};
    int rc = db_query(conn, "SELECT 1 FROM schema_migrations WHERE version = $1", p, DB_NPARAMS(p),
                      &res);
    *applied = rc == 0 && db_result_rows(res) > 0;
    db_result_free(res);
    return rc;
}

static int record(struct db_conn *conn, const struct migration *m)
{
    struct db_param p[] = {DB_INT(m->version), DB_TEXT(m->name), DB_INT(clock_now())};
    return db_exec(conn,
                   "INSERT INTO schema_migrations (version, name, applied_at) "
                   "VALUES ($1, $2, $3)",
                   p, DB_NPARAMS(p), NULL);
}

/* Applies one migration unless another process did meanwhile; *did says which. */
static int apply_one(struct db_conn *conn, const struct migration *m, bool *did)
{
    char *sql = NULL;
    bool applied = false;
    *did = false;
    int rc = read_file(m->path, &sql);
    if (rc == 0)
        rc = begin_locked(conn);
    if (rc == 0)
        rc = is_applied(conn, m->version, &applied);
    if (rc < 0 || applied) {
        if (applied)
            log_debug("msg=\"migration applied meanwhile by another process\" version=%04d",
                      m->version);
        goto out;
    }
    rc = db_exec_script(conn, sql);
    if (rc < 0)
        log_error("msg=\"migration failed\" version=%04d name=\"%s\"", m->version, m->name);
    if (rc == 0)
        rc = record(conn, m);
    if (rc == 0)
        rc = db_commit(conn);
    if (rc == 0) {
        *did = true;
        log_info("msg=\"applied migration\" version=%04d name=\"%s\"", m->version, m->name);
    }
out:
    db_rollback(conn); /* a no-op after the commit */
    free(sql);
    return rc;
}

static int latest_of(const struct migration_set *set)
{
    return set->count > 0 ? set->items[set->count - 1].version : 0;
}

static int apply_pending(struct db_conn *conn, const struct migration_set *set, int *applied)
{
    int current = 0;
    int rc = ensure_table(conn);
    if (rc == 0)
        rc = max_version(conn, &current);
    if (rc < 0)
        return rc;
    if (current > latest_of(set)) {
        log_error("msg=\"database schema version %d is newer than this program (%d)\"", current,
                  latest_of(set));
        return USHER_ESCHEMA;
    }
    for (int i = 0; i < set->count && rc == 0; i++) {
        bool did = false;
        if (set->items[i].version <= current)
            continue;
        rc = apply_one(conn, &set->items[i], &did);
        *applied += did ? 1 : 0;
    }
    return rc;
}

int db_migrate(struct db_pool *pool, const char *migrations_dir, int *applied)
{
    struct migration_set set = {0};
    struct db_conn *conn = NULL;
    int count = 0;
    int rc = load_set(pool, migrations_dir, &set);
    if (rc == 0)
        rc = db_acquire(pool, MIGRATE_ACQUIRE_MS, &conn);
    if (rc == 0)
        rc = apply_pending(conn, &set, &count);
    if (applied)
        *applied = count;
    db_release(conn);
    set_cleanup(&set);
    return rc;
}

static int table_exists(struct db_conn *conn, bool *exists)
{
    const char *sql = db_conn_dialect(conn) == DB_SQLITE
                          ? "SELECT 1 FROM sqlite_master WHERE type = 'table' "
                            "AND name = 'schema_migrations'"
                          : "SELECT 1 WHERE to_regclass('schema_migrations') IS NOT NULL";
    struct db_result *res = NULL;
    int rc = db_query(conn, sql, NULL, 0, &res);
    *exists = rc == 0 && db_result_rows(res) > 0;
    db_result_free(res);
    return rc;
}

int db_schema_version(struct db_pool *pool, int *version)
{
    struct db_conn *conn = NULL;
    bool exists = false;
    *version = 0;
    int rc = db_acquire(pool, MIGRATE_ACQUIRE_MS, &conn);
    if (rc == 0)
        rc = table_exists(conn, &exists);
    if (rc == 0 && exists)
        rc = max_version(conn, version);
    db_release(conn);
    return rc;
}

int db_migrations_latest(struct db_pool *pool, const char *migrations_dir, int *version)
{
    struct migration_set set = {0};
    *version = 0;
    int rc = load_set(pool, migrations_dir, &set);
    if (rc == 0)
        *version = latest_of(&set);
    set_cleanup(&set);
    return rc;
}
