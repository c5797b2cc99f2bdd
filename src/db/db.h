/*
 * db.h — one query API over SQLite and PostgreSQL.
 *
 * A process opens one pool (db_pool_new) from DATABASE_URL. Callers borrow a connection
 * (db_acquire), run prepared statements on it, and give it back (db_release). SQL text is
 * written once for both dialects: parameters are $1, $2, … (SQLite treats "$1" as a named
 * parameter, which binds by the same number). Timestamps are BIGINT Unix seconds passed as
 * parameters from clock_now(), never now() in SQL, so tests can move time. Booleans are
 * BOOLEAN on PostgreSQL and INTEGER 0/1 on SQLite; read them with db_result_bool and write
 * them with DB_BOOL. Where the dialects truly differ, branch on db_conn_dialect().
 *
 * Every statement is prepared once per connection and cached (libpq PQprepare /
 * sqlite3_prepare_v3 with SQLITE_PREPARE_PERSISTENT), keyed by the SQL text.
 *
 * Errors: a unique violation is USHER_ECONFLICT, a CHECK / NOT NULL / foreign-key violation
 * USHER_EINVAL; the database out of reach for now (cannot connect, connection lost, server
 * shutting down or starting, SQLite busy past its timeout, no free pooled connection in time)
 * USHER_EDBDOWN; anything else USHER_EDB. A connection that failed at the transport level is
 * reset when it is next acquired, so the pool recovers when the server comes back.
 */
#ifndef USHER_DB_DB_H
#define USHER_DB_DB_H

#include <stdbool.h>
#include <stdint.h>

enum db_dialect { DB_SQLITE = 1, DB_POSTGRES = 2 };

enum db_param_type { DB_P_NULL = 0, DB_P_TEXT, DB_P_INT, DB_P_BOOL };

struct db_param {
    enum db_param_type type;
    const char *text; /* borrowed, DB_P_TEXT */
    int64_t i; /* DB_P_INT, DB_P_BOOL (0/1) */
};

#define DB_NULL ((struct db_param){.type = DB_P_NULL})
#define DB_TEXT(s) ((struct db_param){.type = DB_P_TEXT, .text = (s)})
/* A NULL string becomes SQL NULL. */
#define DB_TEXT_OR_NULL(s) ((s) ? DB_TEXT(s) : DB_NULL)
#define DB_INT(v) ((struct db_param){.type = DB_P_INT, .i = (int64_t)(v)})
#define DB_BOOL(b) ((struct db_param){.type = DB_P_BOOL, .i = (b) ? 1 : 0})
#define DB_NPARAMS(arr) ((int)(sizeof(arr) / sizeof((arr)[0])))

struct db_pool;
struct db_conn;
struct db_result;

struct db_pool_stats {
    int size; /* connections the pool may hold */
    int open; /* connections currently open */
    int in_use; /* connections currently borrowed */
    uint64_t acquires; /* successful db_acquire calls */
    uint64_t waits; /* acquires that had to wait for a free connection */
    uint64_t timeouts; /* acquires that gave up */
    uint64_t errors; /* statements that failed with USHER_EDB or USHER_EDBDOWN */
};

/*
 * Opens a pool for url: "sqlite:///relative/path", "sqlite:////absolute/path",
 * "sqlite::memory:" (tests; one shared in-memory database), or "postgres://…" /
 * "postgresql://…" (any libpq URI). Connections open lazily. size >= 1.
 * SQLite connections use WAL mode, a busy timeout, foreign keys on.
 */
int db_pool_new(const char *url, int size, struct db_pool **out);
void db_pool_free(struct db_pool *pool);
enum db_dialect db_pool_dialect(const struct db_pool *pool);
void db_pool_stats(struct db_pool *pool, struct db_pool_stats *out);

/* Borrows a connection, waiting up to timeout_ms for a free one. Opens or resets it as
 * needed; returns USHER_EDBDOWN if none comes free in time or the server cannot be reached. */
int db_acquire(struct db_pool *pool, int timeout_ms, struct db_conn **out);
/* Returns the connection; an open transaction is rolled back first. NULL is a no-op. */
void db_release(struct db_conn *conn);
enum db_dialect db_conn_dialect(const struct db_conn *conn);

/* Transactions. DB_TX_WRITE takes the write lock at once on SQLite (BEGIN IMMEDIATE), so a
 * read-then-write transaction cannot fail half-way with SQLITE_BUSY. */
enum db_tx_mode { DB_TX_READ = 0, DB_TX_WRITE = 1 };
int db_begin(struct db_conn *conn, enum db_tx_mode mode);
int db_commit(struct db_conn *conn);
int db_rollback(struct db_conn *conn);

/* How long domain code waits for a pooled connection before giving up (USHER_EDBDOWN). */
#define DB_WAIT_MS 5000
/*
 * Runs fn(conn, ctx) in a DB_TX_WRITE transaction on a connection borrowed for DB_WAIT_MS:
 * committed when fn returns 0, rolled back (and fn's error returned) otherwise.
 */
typedef int (*db_tx_fn)(struct db_conn *conn, void *ctx);
int db_write_tx(struct db_pool *pool, db_tx_fn fn, void *ctx);
/* The first column of the first row as an integer, 0 when there is no row (ids start at 1). */
int db_query_id(struct db_conn *conn, const char *sql, const struct db_param *params, int nparams,
                int64_t *id);
/* One read statement on a connection borrowed for DB_WAIT_MS (results outlive it). */
int db_pool_query(struct db_pool *pool, const char *sql, const struct db_param *params, int nparams,
                  struct db_result **out);

/* Runs a statement that returns no rows; *affected (may be NULL) gets the row count. */
int db_exec(struct db_conn *conn, const char *sql, const struct db_param *params, int nparams,
            int64_t *affected);
/* Runs a statement that returns rows (SELECT, or … RETURNING). *out belongs to the caller. */
int db_query(struct db_conn *conn, const char *sql, const struct db_param *params, int nparams,
             struct db_result **out);

int db_result_rows(const struct db_result *res);
int db_result_cols(const struct db_result *res);
/* The name of column col (borrowed, valid until db_result_free), or NULL. */
const char *db_result_colname(const struct db_result *res, int col);
/* Column index by name, or -1. */
int db_result_col(const struct db_result *res, const char *name);
bool db_result_is_null(const struct db_result *res, int row, int col);
/* Borrowed text of a cell (valid until db_result_free), NULL for SQL NULL. */
const char *db_result_text(const struct db_result *res, int row, int col);
/* Integer value of a cell; 0 for NULL or non-numeric text. */
int64_t db_result_int(const struct db_result *res, int row, int col);
/* Boolean value of a cell: true for 1, "t", "true"; false otherwise. */
bool db_result_bool(const struct db_result *res, int row, int col);
void db_result_free(struct db_result *res);

/* Runs a script of several statements without parameters (migrations only). */
int db_exec_script(struct db_conn *conn, const char *sql);

/* Is the server answering? (SELECT 1 on a borrowed connection.) */
int db_ping(struct db_pool *pool);

#endif
