/*
 * db_internal.h — what db.c, pool.c and the two drivers share; not for callers of db.h.
 *
 * The pool owns an array of connection slots and a driver (a table of function pointers).
 * A slot is either closed (handle NULL), open and idle, or borrowed by exactly one thread;
 * only the borrowing thread touches an open handle, so the drivers need no locking of their
 * own. Results hold either a kept PGresult or a materialized SQLite copy; db.c reads both.
 * Unit tests include this header to look inside (statement counts, forcing a reset).
 */
#ifndef USHER_DB_DB_INTERNAL_H
#define USHER_DB_DB_INTERNAL_H

#include "db/db.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

/* A connection keeps at most this many prepared statements; past it, statements run
 * unprepared. SQL text comes from the program, so this is only a guard against a bug that
 * builds SQL dynamically. */
#define DB_STMT_CACHE_MAX 512
/* More parameters than this in one statement is a programming error (USHER_EINVAL). */
#define DB_MAX_PARAMS 1000

/* Prepared statements of one connection, keyed by SQL text (open addressing, linear
 * probing, never shrinks). stmt is the driver's handle: sqlite3_stmt * or a heap name. */
struct stmt_entry {
    char *sql;
    uint64_t hash;
    void *stmt;
};

struct stmt_cache {
    struct stmt_entry *slots;
    size_t cap;
    size_t count;
};

typedef void (*stmt_free_fn)(void *stmt);

void stmt_cache_init(struct stmt_cache *c);
/* Frees every entry (stmt through free_stmt) and the table; c can be reused after init. */
void stmt_cache_cleanup(struct stmt_cache *c, stmt_free_fn free_stmt);
void *stmt_cache_get(const struct stmt_cache *c, const char *sql);
/* Takes ownership of stmt on success; returns false (and keeps nothing) when full. */
bool stmt_cache_put(struct stmt_cache *c, const char *sql, void *stmt);

struct db_conn {
    struct db_pool *pool;
    void *handle; /* sqlite3 * or PGconn *; NULL while closed */
    struct stmt_cache stmts; /* cleared whenever the handle is closed */
    unsigned next_stmt_id; /* PostgreSQL statement names "s<N>" */
    bool in_use; /* borrowed; guarded by pool->lock */
    bool broken; /* transport failed: close and reopen on next acquire */
};

enum db_tx_op { DB_TX_OP_BEGIN_READ, DB_TX_OP_BEGIN_WRITE, DB_TX_OP_COMMIT, DB_TX_OP_ROLLBACK };

struct db_driver {
    enum db_dialect dialect;
    /* Parses url into pool->priv; may open process-wide resources. */
    int (*pool_init)(struct db_pool *pool, const char *url);
    void (*pool_cleanup)(struct db_pool *pool);
    int (*open)(struct db_conn *conn);
    /* Closes the handle and clears the statement cache; a closed conn is a no-op. */
    void (*close)(struct db_conn *conn);
    /* Cheap check at acquire that an idle open handle is still usable. */
    bool (*alive)(struct db_conn *conn);
    /* One statement with parameters; out (may be NULL) gets the rows. */
    int (*run)(struct db_conn *conn, const char *sql, const struct db_param *params, int nparams,
               int64_t *affected, struct db_result **out);
    int (*script)(struct db_conn *conn, const char *sql);
    int (*tx)(struct db_conn *conn, enum db_tx_op op);
    bool (*in_tx)(struct db_conn *conn);
};

extern const struct db_driver db_sqlite_driver;

/* The SQLite busy handler's pause in microseconds before the next try after `tries` busy
 * tries, or -1 once the 5 s busy timeout has been slept (db_sqlite.c says why not SQLite's). */
long db_sqlite_busy_pause_us(int tries);
/* A SQLite file pool's checkpointer (db/sqlite_checkpoint.h); NULL for an in-memory one. */
struct sqlite_checkpointer *db_sqlite_checkpointer(struct db_pool *pool);
extern const struct db_driver db_pg_driver;

struct db_pool {
    const struct db_driver *drv;
    void *priv; /* the driver's parsed URL and such */
    int size;
    struct db_conn *conns;
    pthread_mutex_t lock;
    pthread_cond_t freed; /* signalled when a slot is released */
    int open;
    int in_use;
    uint64_t acquires, waits, timeouts;
    atomic_uint_least64_t errors;
    atomic_bool down; /* last connect failed: log once per outage, not per attempt */
};

/* A materialized SQLite result: offs[row * cols + col] indexes text, DB_RES_NULL is NULL. */
#define DB_RES_NULL ((size_t)-1)

struct db_result {
    int rows;
    int cols;
    void *pg; /* PGresult *, kept as is (PostgreSQL) */
    char **names; /* column names (SQLite) */
    size_t *offs;
    char *text;
};

/* Called by the drivers around connects so an outage is logged once. */
void db_pool_note_connect(struct db_pool *pool, bool ok, const char *detail);

/* For tests: how many statements conn has prepared and cached. */
size_t db_conn_stmt_count(const struct db_conn *conn);

#endif
