/*
 * db_sqlite.c — the SQLite driver behind db.h.
 *
 * Each pool slot is its own sqlite3 handle opened with SQLITE_OPEN_NOMUTEX: the pool lends a
 * slot to one thread at a time, so SQLite's own per-handle mutex would be pure overhead.
 * Files run in WAL mode (readers never block the writer) with synchronous=NORMAL (durable
 * across process crashes; a power cut may lose the last transactions, never corrupt), a
 * 5 s busy timeout (polled in short steps, see busy_wait) and foreign keys on; their
 * checkpoints run on a thread of the pool (sqlite_checkpoint.h), not in the committing request.
 * "sqlite::memory:" is one shared-cache in-memory database per pool, kept alive by an extra
 * "anchor" handle for the pool's lifetime so it does not vanish when the last slot closes. Shared
 * cache uses table locks that the busy handler does not cover (see wait_locked), and a reader waits
 * for an open write transaction on the same table instead of reading the last commit as WAL readers
 * do: fine for tests, which is what in-memory pools are for.
 *
 * Statements are prepared once per handle (SQLITE_PREPARE_PERSISTENT) and kept in the
 * connection's cache; "$N" parameters are named parameters to SQLite and are bound by name.
 * Rows are copied out into a db_result before the statement is reset.
 *
 * SQLITE_BUSY / SQLITE_LOCKED after the waiting is done are USHER_EDBDOWN (try again later),
 * not USHER_EDB: the web layer answers them 503 with Retry-After.
 */
#include "db/db_internal.h"
#include "db/sqlite_checkpoint.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <ctype.h>
#include <errno.h>
#include <semaphore.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SQLITE_BUSY_TIMEOUT_MS 5000

struct sqlite_pool {
    char *filename; /* a path, or a "file:" URI for the in-memory database */
    int flags;
    sqlite3 *anchor; /* in-memory only: holds the database open */
    struct sqlite_checkpointer *checkpointer; /* files only (WAL): sqlite_checkpoint.h */
    /* Files only: the pool's write transactions queue here rather than poll SQLite's lock
     * (see gate_enter). A semaphore, not a mutex: it is free of owner rules. */
    sem_t write_gate;
    bool has_gate;
    _Atomic(struct db_conn *) gate_holder;
};

static atomic_uint memory_seq;

static int open_handle(const char *filename, int flags, sqlite3 **out)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(filename, &db, flags, NULL);
    if (rc != SQLITE_OK) {
        log_error("msg=\"cannot open sqlite database\" error=\"%s\"",
                  db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close_v2(db);
        return USHER_EDB;
    }
    sqlite3_extended_result_codes(db, 1);
    *out = db;
    return 0;
}

/* Creates every missing directory above the file at path (like mkdir -p of its dirname). */
static int make_parent_dirs(const char *path)
{
    char *dir = xstrdup(path);
    int rc = 0;
    for (char *p = dir + 1; *p && rc == 0; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
            log_error("msg=\"cannot create database directory\" dir=\"%s\" errno=%d", dir, errno);
            rc = USHER_EIO;
        }
        *p = '/';
    }
    free(dir);
    return rc;
}

static int parse_url(struct sqlite_pool *sp, const char *url)
{
    sp->flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (strcmp(url, "sqlite::memory:") == 0) {
        sp->flags |= SQLITE_OPEN_URI;
        sp->filename = xasprintf("file:usher_mem_%ld_%u?mode=memory&cache=shared", (long)getpid(),
                                 atomic_fetch_add(&memory_seq, 1));
        return open_handle(sp->filename, sp->flags, &sp->anchor);
    }
    /* "sqlite:///rel/path" and "sqlite:////abs/path": the path follows "sqlite:///". */
    if (strncmp(url, "sqlite:///", 10) != 0 || url[10] == '\0') {
        log_error("msg=\"malformed sqlite DATABASE_URL\" expected=\"sqlite:///path\"");
        return USHER_ECONFIG;
    }
    sp->filename = xstrdup(url + 10);
    int rc = make_parent_dirs(sp->filename);
    if (rc == 0)
        sp->checkpointer = sqlite_checkpointer_new(sp->filename, sp->flags);
    if (rc == 0 && sem_init(&sp->write_gate, 0, 1) == 0)
        sp->has_gate = true;
    return rc;
}

static int sq_pool_init(struct db_pool *pool, const char *url)
{
    struct sqlite_pool *sp = xcalloc(1, sizeof *sp);
    int rc = parse_url(sp, url);
    if (rc < 0) {
        sqlite_checkpointer_free(sp->checkpointer);
        if (sp->has_gate)
            sem_destroy(&sp->write_gate);
        free(sp->filename);
        free(sp);
        return rc;
    }
    pool->priv = sp;
    return 0;
}

struct sqlite_checkpointer *db_sqlite_checkpointer(struct db_pool *pool)
{
    return ((struct sqlite_pool *)pool->priv)->checkpointer;
}

static void sq_pool_cleanup(struct db_pool *pool)
{
    struct sqlite_pool *sp = pool->priv;
    sqlite3_close_v2(sp->anchor);
    sqlite_checkpointer_free(sp->checkpointer); /* after the slots: pool.c closes them first */
    if (sp->has_gate)
        sem_destroy(&sp->write_gate);
    free(sp->filename);
    free(sp);
    pool->priv = NULL;
}

static void finalize_stmt(void *stmt)
{
    sqlite3_finalize(stmt);
}

/*
 * Write transactions of one pool take turns at a semaphore before BEGIN IMMEDIATE. Without
 * it the threads of a process meet at SQLite's write lock, whose waiters poll (busy_wait):
 * a writer that just missed the lock sleeps up to a millisecond while the other thread
 * commits again, and under the webhook bench half the acknowledgements waited 3 times the
 * median. At the semaphore a waiter is woken by the commit itself. Other processes and the
 * checkpointer still meet this one at SQLite's lock, and a thread that already holds the
 * gate and writes through a second connection waits out the busy timeout, as it would at
 * SQLite's lock. The gate is opened again by whichever comes first of the transaction's end
 * (sq_tx), a release finding it ended (sq_in_tx) and the handle's close (sq_close).
 */

/* Opens the gate when conn holds it and its write transaction is over (or its handle gone). */
static void gate_leave_if_done(struct db_conn *conn)
{
    struct sqlite_pool *sp = conn->pool->priv;
    if (!sp->has_gate || atomic_load(&sp->gate_holder) != conn)
        return;
    if (conn->handle && sqlite3_get_autocommit(conn->handle) == 0)
        return;
    atomic_store(&sp->gate_holder, NULL);
    sem_post(&sp->write_gate);
}

static int gate_enter(struct db_conn *conn)
{
    struct sqlite_pool *sp = conn->pool->priv;
    if (!sp->has_gate)
        return 0;
    gate_leave_if_done(conn); /* a transaction SQLite rolled back by itself on an error */
    if (atomic_load(&sp->gate_holder) == conn)
        return 0; /* BEGIN inside its own transaction: let SQLite refuse it, as before */
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += SQLITE_BUSY_TIMEOUT_MS / 1000;
    while (sem_clockwait(&sp->write_gate, CLOCK_MONOTONIC, &until) != 0) {
        if (errno != EINTR) {
            log_warn("msg=\"sqlite busy beyond timeout\" waiting=write_gate");
            return USHER_EDBDOWN;
        }
    }
    atomic_store(&sp->gate_holder, conn);
    return 0;
}

static void sq_close(struct db_conn *conn)
{
    if (!conn->handle)
        return;
    stmt_cache_cleanup(&conn->stmts, finalize_stmt);
    sqlite3_close_v2(conn->handle);
    conn->handle = NULL;
    gate_leave_if_done(conn);
}

/* Maps a failed call's result code to an usher_err and logs it. Constraint violations are
 * ordinary outcomes for callers (a taken email, say), so they log at debug only. */
static int map_error(struct db_conn *conn, int rc)
{
    sqlite3 *db = conn->handle;
    switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_ROWID:
        log_debug("msg=\"sqlite constraint\" error=\"%s\"", sqlite3_errmsg(db));
        return USHER_ECONFLICT;
    default: break;
    }
    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        log_debug("msg=\"sqlite constraint\" error=\"%s\"", sqlite3_errmsg(db));
        return USHER_EINVAL;
    }
    int primary = rc & 0xff;
    /* Still locked after the busy timeout (or the shared-cache wait): the database is
     * there, just not free in time. Retrying later may succeed, as after an outage. */
    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
        log_warn("msg=\"sqlite busy beyond timeout\" code=%d error=\"%s\"", rc, sqlite3_errmsg(db));
        return USHER_EDBDOWN;
    }
    /* The file itself failed: reopening is the only way the handle can recover. */
    if (primary == SQLITE_IOERR || primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB ||
        primary == SQLITE_CANTOPEN)
        conn->broken = true;
    log_warn("msg=\"sqlite error\" code=%d error=\"%s\"", rc, sqlite3_errmsg(db));
    return USHER_EDB;
}

/* Switching a new file to WAL needs an exclusive lock and, when several handles race to do
 * it, fails with SQLITE_BUSY without consulting the busy handler: retry it here. */
static int exec_retrying_busy(sqlite3 *db, const char *sql)
{
    for (int waited = 0;; waited += 5) {
        int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
        if ((rc & 0xff) != SQLITE_BUSY || waited >= SQLITE_BUSY_TIMEOUT_MS)
            return rc;
        usleep(5000);
    }
}

/*
 * SQLite's own busy handler (sqlite3_busy_timeout) sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25,
 * 50, 50, 100, 100… ms between tries. The write transactions it waits for here (a webhook
 * event and its task, a rate-limit hit) hold the lock for well under a millisecond, so a
 * waiter overslept by up to 100 ms, and those sleeps set SQLite's webhook p99 (bench/README.md).
 * Waiters poll in short steps instead: 50 us doubling to 1 ms, then every millisecond, until
 * the same 5 s have been slept. Returns the pause before the next try after `tries` busy
 * tries, or -1 to give up (SQLITE_BUSY).
 */
long db_sqlite_busy_pause_us(int tries)
{
    enum { FIRST_US = 50, CAP_US = 1000, DOUBLINGS = 5 }; /* 50, 100, 200, 400, 800, then cap */
    long slept = 0, pause = FIRST_US;
    if (tries < DOUBLINGS) {
        pause = (long)FIRST_US << tries;
        slept = pause - FIRST_US; /* 50 + 100 + … + pause/2 */
    } else {
        slept = ((long)FIRST_US << DOUBLINGS) - FIRST_US + (long)(tries - DOUBLINGS) * CAP_US;
        pause = CAP_US;
    }
    return slept >= (long)SQLITE_BUSY_TIMEOUT_MS * 1000 ? -1 : pause;
}

static int busy_wait(void *unused, int tries)
{
    (void)unused;
    long pause = db_sqlite_busy_pause_us(tries);
    if (pause < 0)
        return 0;
    struct timespec ts = {.tv_sec = 0, .tv_nsec = pause * 1000};
    nanosleep(&ts, NULL);
    return 1;
}

static int sq_open(struct db_conn *conn)
{
    struct sqlite_pool *sp = conn->pool->priv;
    sqlite3 *db = NULL;
    int rc = open_handle(sp->filename, sp->flags, &db);
    if (rc < 0)
        return rc;
    conn->handle = db;
    sqlite3_busy_handler(db, busy_wait, NULL);
    /* journal_mode is stored in the file; for the in-memory database it stays "memory".
     * journal_size_limit: the commit that rewinds the WAL trims its file to 128 MiB, so one
     * big transaction (a bulk import) does not keep its disk space (sqlite_checkpoint.h).
     * cache_size: 256 KiB of pages per connection instead of SQLite's 2 MB. Each pooled
     * connection fills its own cache and keeps it (serve and worker hold ten: up to 20 MB);
     * at a million users, 20 s of dashboards for 5,000 visitors left one process 6 MB more
     * RSS. The OS page cache holds the file anyway, and in WAL mode a commit by any other
     * connection empties the cache at the next read. CREATE INDEX and large sorts took no
     * longer (bench/README.md). The in-memory database's cache is its storage: left alone. */
    const char *setup = sp->anchor ? "PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL;"
                                   : "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; "
                                     "PRAGMA synchronous=NORMAL; "
                                     "PRAGMA journal_size_limit=134217728; "
                                     "PRAGMA cache_size=-256;";
    rc = exec_retrying_busy(db, setup);
    if (rc != SQLITE_OK) {
        rc = map_error(conn, rc);
        sq_close(conn);
        return rc;
    }
    if (sp->checkpointer)
        sqlite_checkpointer_attach(sp->checkpointer, db);
    return 0;
}

static bool sq_alive(struct db_conn *conn)
{
    (void)conn; /* nothing to probe: failures mark the connection broken as they happen */
    return true;
}

/* Shared-cache table locks (the in-memory database) fail at once with SQLITE_LOCKED instead
 * of going through the busy handler; wait for them the same way, by polling, so in-memory
 * pools behave like files under concurrent writers. */
static bool wait_locked(int rc, int *waited_ms)
{
    if ((rc & 0xff) != SQLITE_LOCKED || *waited_ms >= SQLITE_BUSY_TIMEOUT_MS)
        return false;
    usleep(2000);
    *waited_ms += 2;
    return true;
}

static bool only_space(const char *s)
{
    while (*s && isspace((unsigned char)*s))
        s++;
    return *s == '\0' || (*s == ';' && only_space(s + 1));
}

/* The cached statement for sql, or a fresh one; *cached says which (a fresh one that did
 * not fit in the cache must be finalized by the caller). */
static int get_stmt(struct db_conn *conn, const char *sql, sqlite3_stmt **out, bool *cached)
{
    *out = stmt_cache_get(&conn->stmts, sql);
    *cached = *out != NULL;
    if (*out)
        return 0;
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    int rc, waited = 0;
    do {
        rc = sqlite3_prepare_v3(conn->handle, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, &tail);
    } while (rc != SQLITE_OK && wait_locked(rc, &waited));
    if (rc != SQLITE_OK)
        return map_error(conn, rc);
    if (!st || !only_space(tail)) {
        log_error("msg=\"db statement must be exactly one SQL statement\"");
        sqlite3_finalize(st);
        return USHER_EINVAL;
    }
    *cached = stmt_cache_put(&conn->stmts, sql, st);
    *out = st;
    return 0;
}

static int bind_one(sqlite3_stmt *st, int idx, const struct db_param *p)
{
    switch (p->type) {
    case DB_P_TEXT:
        if (!p->text)
            return sqlite3_bind_null(st, idx);
        /* SQLITE_STATIC: the text outlives the statement's use; bindings are cleared
         * before the call returns. */
        return sqlite3_bind_text(st, idx, p->text, -1, SQLITE_STATIC);
    case DB_P_INT:
    case DB_P_BOOL: return sqlite3_bind_int64(st, idx, (sqlite3_int64)p->i);
    case DB_P_NULL: return sqlite3_bind_null(st, idx);
    }
    return SQLITE_MISUSE;
}

static int bind_all(struct db_conn *conn, sqlite3_stmt *st, const struct db_param *params,
                    int nparams)
{
    if (sqlite3_bind_parameter_count(st) != nparams) {
        log_error("msg=\"db parameter count mismatch\" expected=%d given=%d",
                  sqlite3_bind_parameter_count(st), nparams);
        return USHER_EINVAL;
    }
    for (int i = 0; i < nparams; i++) {
        char name[16];
        snprintf(name, sizeof name, "$%d", i + 1);
        int idx = sqlite3_bind_parameter_index(st, name);
        if (idx == 0) {
            log_error("msg=\"db statement does not use parameter\" param=%s", name);
            return USHER_EINVAL;
        }
        int rc = bind_one(st, idx, &params[i]);
        if (rc != SQLITE_OK)
            return map_error(conn, rc);
    }
    return 0;
}

/* Builds a db_result row by row: cell texts go into one buffer, cells hold offsets. */
struct collector {
    struct db_result *res;
    size_t cap; /* cells allocated in res->offs */
    struct buf text;
};

static void collector_init(struct collector *c, sqlite3_stmt *st)
{
    struct db_result *res = xcalloc(1, sizeof *res);
    res->cols = sqlite3_column_count(st);
    res->names = xcalloc((size_t)res->cols + 1, sizeof *res->names);
    for (int i = 0; i < res->cols; i++) {
        const char *name = sqlite3_column_name(st, i);
        res->names[i] = xstrdup(name ? name : "");
    }
    c->res = res;
    c->cap = 0;
    buf_init(&c->text);
}

static void collect_row(struct collector *c, sqlite3_stmt *st)
{
    struct db_result *res = c->res;
    size_t need = ((size_t)res->rows + 1) * (size_t)res->cols;
    if (need > c->cap) {
        c->cap = need * 2;
        res->offs = xrealloc(res->offs, c->cap * sizeof *res->offs);
    }
    size_t *cell = res->offs + (size_t)res->rows * (size_t)res->cols;
    for (int i = 0; i < res->cols; i++) {
        const unsigned char *v = sqlite3_column_text(st, i);
        if (!v) {
            cell[i] = DB_RES_NULL;
            continue;
        }
        cell[i] = c->text.len;
        buf_append(&c->text, v, (size_t)sqlite3_column_bytes(st, i));
        buf_putc(&c->text, '\0');
    }
    res->rows++;
}

static struct db_result *collector_finish(struct collector *c)
{
    c->res->text = buf_detach(&c->text);
    buf_cleanup(&c->text);
    return c->res;
}

static int step_all(struct db_conn *conn, sqlite3_stmt *st, struct db_result **out, int64_t *rows)
{
    struct collector col = {0};
    if (out)
        collector_init(&col, st);
    int rc, waited = 0;
    *rows = 0;
    for (;;) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            (*rows)++;
            if (out)
                collect_row(&col, st);
        } else if (*rows == 0 && wait_locked(rc, &waited)) {
            sqlite3_reset(st);
        } else {
            break;
        }
    }
    if (rc != SQLITE_DONE) {
        if (out) {
            buf_cleanup(&col.text);
            db_result_free(col.res);
        }
        return map_error(conn, rc);
    }
    if (out)
        *out = collector_finish(&col);
    return 0;
}

static int sq_run(struct db_conn *conn, const char *sql, const struct db_param *params, int nparams,
                  int64_t *affected, struct db_result **out)
{
    sqlite3_stmt *st = NULL;
    bool cached = false;
    int64_t rows = 0;
    int rc = get_stmt(conn, sql, &st, &cached);
    if (rc < 0)
        return rc;
    rc = bind_all(conn, st, params, nparams);
    if (rc == 0)
        rc = step_all(conn, st, out, &rows);
    /* Like PostgreSQL's command tag: rows changed, or rows returned by a query. */
    if (rc == 0 && affected)
        *affected = sqlite3_stmt_readonly(st) ? rows : sqlite3_changes64(conn->handle);
    if (cached) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    } else {
        sqlite3_finalize(st);
    }
    return rc;
}

static int sq_script(struct db_conn *conn, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(conn->handle, sql, NULL, NULL, &msg);
    sqlite3_free(msg); /* sqlite3_errmsg, read by map_error, holds the same text */
    return rc == SQLITE_OK ? 0 : map_error(conn, rc);
}

static int sq_tx(struct db_conn *conn, enum db_tx_op op)
{
    static const char *const sql[] = {
        [DB_TX_OP_BEGIN_READ] = "BEGIN",
        [DB_TX_OP_BEGIN_WRITE] = "BEGIN IMMEDIATE",
        [DB_TX_OP_COMMIT] = "COMMIT",
        [DB_TX_OP_ROLLBACK] = "ROLLBACK",
    };
    if (op == DB_TX_OP_BEGIN_WRITE) {
        int rc = gate_enter(conn);
        if (rc < 0)
            return rc;
    }
    int rc = sq_run(conn, sql[op], NULL, 0, NULL, NULL);
    gate_leave_if_done(conn);
    return rc;
}

/* Asked by every rollback and release (pool.c): the moment to open the gate for a write
 * transaction that SQLite ended by itself (an error rolls it back) and nobody committed or
 * rolled back since. */
static bool sq_in_tx(struct db_conn *conn)
{
    gate_leave_if_done(conn);
    return sqlite3_get_autocommit(conn->handle) == 0;
}

const struct db_driver db_sqlite_driver = {
    .dialect = DB_SQLITE,
    .pool_init = sq_pool_init,
    .pool_cleanup = sq_pool_cleanup,
    .open = sq_open,
    .close = sq_close,
    .alive = sq_alive,
    .run = sq_run,
    .script = sq_script,
    .tx = sq_tx,
    .in_tx = sq_in_tx,
};
