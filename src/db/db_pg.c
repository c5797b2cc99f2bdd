/*
 * db_pg.c — the PostgreSQL driver behind db.h (libpq).
 *
 * Each pool slot is one PGconn. On connect: a 2 s connect_timeout (unless the URL sets its
 * own) so an unreachable server fails fast, TCP keepalives, application_name=usher for
 * pg_stat_activity, no GSSAPI encryption attempt (see pg_open), and SET TIME ZONE 'UTC'.
 * Statements are prepared once per connection under generated names "s<N>" and cached by SQL
 * text; closing the connection forgets them, as the server does. Parameters go as text with
 * server-inferred types (integers in decimal, booleans as "true"/"false"); a parameter whose
 * type SQL cannot infer needs a cast ($1::text). Results keep the PGresult.
 *
 * SQLSTATE mapping: 23505 (unique) and 23P01 (exclusion) are USHER_ECONFLICT; other class 23
 * integrity violations (NOT NULL 23502, foreign key 23503, CHECK 23514) are USHER_EINVAL.
 * Serialization failure 40001 and deadlock 40P01 are USHER_ECONFLICT too: like a unique
 * violation they mean "someone else got there first" and the transaction may be retried.
 * An outage is USHER_EDBDOWN: a failed connect, a lost connection (PQstatus not OK), class 08
 * (connection exception) and 57P01-57P03 (the server is shutting down, crashed or starting
 * up). Everything else is USHER_EDB.
 *
 * The connection URL carries the password, so it is never logged, and neither are libpq's
 * URL parse errors (they can quote parts of it).
 */
#include "db/db_internal.h"

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG_CONNECT_TIMEOUT_S "2"
#define PG_INT_TEXT 24 /* "-9223372036854775808" and a NUL */

struct pg_pool {
    char *url;
};

/* Copies a libpq message onto one line (log lines must not break), bounded. */
static void one_line(char *dst, size_t size, const char *src)
{
    size_t n = 0;
    for (; src && *src && n + 1 < size; src++) {
        char ch = *src;
        if (ch == '\n' || ch == '\r' || ch == '\t')
            ch = ' ';
        dst[n++] = ch == '"' ? '\'' : ch;
    }
    while (n > 0 && dst[n - 1] == ' ')
        n--;
    dst[n] = '\0';
}

static int pg_pool_init(struct db_pool *pool, const char *url)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &err);
    if (!opts) {
        /* err may quote the URL (and so the password): say only that it is malformed. */
        PQfreemem(err);
        log_error("msg=\"malformed postgres DATABASE_URL\"");
        return USHER_ECONFIG;
    }
    PQconninfoFree(opts);
    struct pg_pool *pp = xcalloc(1, sizeof *pp);
    pp->url = xstrdup(url);
    pool->priv = pp;
    return 0;
}

static void pg_pool_cleanup(struct db_pool *pool)
{
    struct pg_pool *pp = pool->priv;
    free(pp->url);
    free(pp);
    pool->priv = NULL;
}

static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    char line[512];
    one_line(line, sizeof line, message);
    log_debug("msg=\"postgres notice\" detail=\"%s\"", line);
}

static void pg_close(struct db_conn *conn)
{
    if (!conn->handle)
        return;
    stmt_cache_cleanup(&conn->stmts, free);
    PQfinish(conn->handle);
    conn->handle = NULL;
}

static int connect_failed(struct db_conn *conn, PGconn *pg)
{
    char line[512];
    one_line(line, sizeof line, pg ? PQerrorMessage(pg) : "out of memory");
    db_pool_note_connect(conn->pool, false, line);
    PQfinish(pg);
    return USHER_EDBDOWN;
}

static int pg_open(struct db_conn *conn)
{
    struct pg_pool *pp = conn->pool->priv;
    /* Entries before "dbname" are defaults the URL may override. Keepalives and the TCP
     * user timeout turn a silently vanished server (no RST) into an error in seconds
     * instead of a statement hanging for the kernel's default of many minutes.
     * gssencmode=disable: libpq's default ("prefer") asks Kerberos for a credential cache
     * before every connect, which loads and runs the Kerberos libraries (0.7 MB resident
     * in each process, and a slower connect) for an encryption almost no one configures;
     * a URL with gssencmode=prefer or require still gets it, and Kerberos authentication
     * is not affected. */
    const char *const keys[] = {"connect_timeout",     "application_name", "keepalives_idle",
                                "keepalives_interval", "keepalives_count", "tcp_user_timeout",
                                "gssencmode",          "dbname",           NULL};
    const char *const vals[] = {
        PG_CONNECT_TIMEOUT_S, "usher", "30", "10", "3", "20000", "disable", pp->url, NULL};
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    if (!pg || PQstatus(pg) != CONNECTION_OK)
        return connect_failed(conn, pg);
    PQsetNoticeProcessor(pg, quiet_notice, NULL);
    PGresult *r = PQexec(pg, "SET TIME ZONE 'UTC'");
    bool ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok)
        return connect_failed(conn, pg);
    db_pool_note_connect(conn->pool, true, NULL);
    conn->handle = pg;
    conn->next_stmt_id = 0;
    return 0;
}

/* An idle connection has nothing to say. If its socket is readable, the server sent an
 * error or closed it (a terminated backend, a restart): reconnect rather than fail the
 * borrower's first statement. */
static bool pg_alive(struct db_conn *conn)
{
    PGconn *pg = conn->handle;
    if (PQstatus(pg) != CONNECTION_OK || PQtransactionStatus(pg) != PQTRANS_IDLE)
        return false;
    struct pollfd pfd = {.fd = PQsocket(pg), .events = POLLIN};
    if (pfd.fd < 0)
        return false;
    return poll(&pfd, 1, 0) == 0;
}

static int map_sqlstate(const char *state)
{
    if (!state)
        return USHER_EDB;
    if (strcmp(state, "23505") == 0 || strcmp(state, "23P01") == 0)
        return USHER_ECONFLICT;
    if (strncmp(state, "23", 2) == 0)
        return USHER_EINVAL;
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
        return USHER_ECONFLICT;
    if (strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
        strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0)
        return USHER_EDBDOWN;
    return USHER_EDB;
}

/* 26000: a cached statement name is unknown (someone ran DEALLOCATE or DISCARD ALL).
 * 0A000: "cached plan must not change result type" after a migration altered a table. */
static bool cache_stale(const char *state)
{
    return state && (strcmp(state, "26000") == 0 || strcmp(state, "0A000") == 0);
}

static void log_failure(struct db_conn *conn, PGresult *r, const char *state, int rc)
{
    char line[512];
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    one_line(line, sizeof line, msg ? msg : PQerrorMessage(conn->handle));
    /* Data exceptions quote the offending input ("invalid input syntax for type uuid:
     * \"...\""), which may be a secret: keep only the text before the quote. */
    if (state && strncmp(state, "22", 2) == 0)
        line[strcspn(line, "'")] = '\0';
    /* Constraint violations and conflicts are ordinary outcomes for callers. */
    log_msg(USHER_IS_DB_ERROR(rc) ? LOG_WARN : LOG_DEBUG,
            "msg=\"postgres error\" sqlstate=%s error=\"%s\"", state ? state : "-", line);
}

/* 0 for a successful result (kept), else the mapped error (r is cleared). */
static int check_result(struct db_conn *conn, PGresult *r)
{
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return 0;
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    bool lost = PQstatus(conn->handle) != CONNECTION_OK;
    /* A lost connection often comes without a SQLSTATE (the socket just closed). */
    int rc = st == PGRES_EMPTY_QUERY ? USHER_EINVAL : lost ? USHER_EDBDOWN : map_sqlstate(state);
    log_failure(conn, r, state, rc);
    /* A lost server, a result type we do not drive (COPY), or a statement cache the server
     * no longer agrees with: this connection is done, the next borrower gets a fresh one. */
    if (lost || rc == USHER_EDBDOWN || cache_stale(state) ||
        (st != PGRES_FATAL_ERROR && st != PGRES_EMPTY_QUERY && st != PGRES_NONFATAL_ERROR))
        conn->broken = true;
    PQclear(r);
    return rc;
}

/* Parameter values as text, in one allocation: the pointer array, then integer texts. */
static const char **format_params(const struct db_param *params, int nparams)
{
    if (nparams == 0)
        return NULL;
    size_t n = (size_t)nparams;
    char *mem = xmalloc(n * sizeof(char *) + n * PG_INT_TEXT);
    const char **values = (const char **)(void *)mem;
    char *ints = mem + n * sizeof(char *);
    for (size_t i = 0; i < n; i++) {
        const struct db_param *p = &params[i];
        values[i] = NULL;
        if (p->type == DB_P_TEXT) {
            values[i] = p->text;
        } else if (p->type == DB_P_BOOL) {
            values[i] = p->i ? "true" : "false";
        } else if (p->type == DB_P_INT) {
            snprintf(ints + i * PG_INT_TEXT, PG_INT_TEXT, "%" PRId64, p->i);
            values[i] = ints + i * PG_INT_TEXT;
        }
    }
    return values;
}

/* The prepared statement's name for sql, preparing it on first use; NULL in *name (and 0)
 * when the cache is full and the statement must run unprepared. */
static int get_stmt(struct db_conn *conn, const char *sql, int nparams, const char **name)
{
    *name = stmt_cache_get(&conn->stmts, sql);
    if (*name || conn->stmts.count >= DB_STMT_CACHE_MAX)
        return 0;
    char *fresh = xasprintf("s%u", conn->next_stmt_id++);
    PGresult *r = PQprepare(conn->handle, fresh, sql, nparams, NULL);
    int rc = check_result(conn, r);
    if (rc == 0)
        PQclear(r);
    if (rc < 0 || !stmt_cache_put(&conn->stmts, sql, fresh)) {
        free(fresh);
        return rc;
    }
    *name = fresh;
    return 0;
}

static struct db_result *wrap_result(PGresult *r)
{
    struct db_result *res = xcalloc(1, sizeof *res);
    res->pg = r;
    res->rows = PQntuples(r);
    res->cols = PQnfields(r);
    return res;
}

static int pg_run(struct db_conn *conn, const char *sql, const struct db_param *params, int nparams,
                  int64_t *affected, struct db_result **out)
{
    const char *name = NULL;
    const char **values = format_params(params, nparams);
    int rc = get_stmt(conn, sql, nparams, &name);
    if (rc < 0)
        goto out;
    PGresult *r = name ? PQexecPrepared(conn->handle, name, nparams, values, NULL, NULL, 0)
                       : PQexecParams(conn->handle, sql, nparams, NULL, values, NULL, NULL, 0);
    rc = check_result(conn, r);
    if (rc < 0)
        goto out;
    if (affected)
        *affected = strtoll(PQcmdTuples(r), NULL, 10);
    if (out)
        *out = wrap_result(r);
    else
        PQclear(r);
out:
    free(values);
    return rc;
}

static int pg_script(struct db_conn *conn, const char *sql)
{
    PGresult *r = PQexec(conn->handle, sql);
    int rc = check_result(conn, r);
    if (rc == 0)
        PQclear(r);
    return rc;
}

static int pg_tx(struct db_conn *conn, enum db_tx_op op)
{
    static const char *const sql[] = {
        [DB_TX_OP_BEGIN_READ] = "BEGIN",
        [DB_TX_OP_BEGIN_WRITE] = "BEGIN",
        [DB_TX_OP_COMMIT] = "COMMIT",
        [DB_TX_OP_ROLLBACK] = "ROLLBACK",
    };
    PGresult *r = PQexec(conn->handle, sql[op]);
    int rc = check_result(conn, r);
    if (rc < 0)
        return rc;
    /* COMMIT of a transaction that already failed succeeds with the tag ROLLBACK: nothing
     * was committed, and the caller must hear so. */
    if (op == DB_TX_OP_COMMIT && strcmp(PQcmdStatus(r), "ROLLBACK") == 0) {
        log_warn("msg=\"commit of a failed transaction was rolled back\"");
        rc = USHER_EDB;
    }
    PQclear(r);
    return rc;
}

static bool pg_in_tx(struct db_conn *conn)
{
    return PQtransactionStatus(conn->handle) != PQTRANS_IDLE;
}

const struct db_driver db_pg_driver = {
    .dialect = DB_POSTGRES,
    .pool_init = pg_pool_init,
    .pool_cleanup = pg_pool_cleanup,
    .open = pg_open,
    .close = pg_close,
    .alive = pg_alive,
    .run = pg_run,
    .script = pg_script,
    .tx = pg_tx,
    .in_tx = pg_in_tx,
};
