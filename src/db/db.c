/*
 * db.c — the dialect-neutral half of db.h: argument checks, dispatch to the driver, error
 * counting, and the result accessors.
 *
 * A result is either a kept PGresult (PostgreSQL) or a materialized copy (SQLite); the
 * accessors read both, so callers never see the difference. Column names match without
 * regard to case, because PostgreSQL folds unquoted names to lower case and SQLite does not.
 */
#include "db/db_internal.h"

#include "core/err.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int check_args(struct db_conn *conn, const char *sql, const struct db_param *params,
                      int nparams)
{
    if (!conn || !conn->handle || !sql)
        return USHER_EINVAL;
    if (nparams < 0 || nparams > DB_MAX_PARAMS || (nparams > 0 && !params))
        return USHER_EINVAL;
    /* The transport already failed while borrowed; db_release will reset it. */
    if (conn->broken)
        return USHER_EDBDOWN;
    return 0;
}

static int count_error(struct db_conn *conn, int rc)
{
    if (USHER_IS_DB_ERROR(rc))
        atomic_fetch_add(&conn->pool->errors, 1);
    return rc;
}

int db_exec(struct db_conn *conn, const char *sql, const struct db_param *params, int nparams,
            int64_t *affected)
{
    if (affected)
        *affected = 0;
    int rc = check_args(conn, sql, params, nparams);
    if (rc < 0)
        return rc;
    rc = conn->pool->drv->run(conn, sql, params, nparams, affected, NULL);
    return count_error(conn, rc);
}

int db_query(struct db_conn *conn, const char *sql, const struct db_param *params, int nparams,
             struct db_result **out)
{
    *out = NULL;
    int rc = check_args(conn, sql, params, nparams);
    if (rc < 0)
        return rc;
    rc = conn->pool->drv->run(conn, sql, params, nparams, NULL, out);
    return count_error(conn, rc);
}

int db_exec_script(struct db_conn *conn, const char *sql)
{
    int rc = check_args(conn, sql, NULL, 0);
    if (rc < 0)
        return rc;
    return count_error(conn, conn->pool->drv->script(conn, sql));
}

static int tx(struct db_conn *conn, enum db_tx_op op)
{
    int rc = check_args(conn, "", NULL, 0);
    if (rc < 0)
        return rc;
    /* Rolling back nothing is a no-op on both dialects (SQLite alone would call it an
     * error), so cleanup paths can roll back unconditionally. */
    if (op == DB_TX_OP_ROLLBACK && !conn->pool->drv->in_tx(conn))
        return 0;
    return count_error(conn, conn->pool->drv->tx(conn, op));
}

int db_begin(struct db_conn *conn, enum db_tx_mode mode)
{
    return tx(conn, mode == DB_TX_WRITE ? DB_TX_OP_BEGIN_WRITE : DB_TX_OP_BEGIN_READ);
}

int db_commit(struct db_conn *conn)
{
    return tx(conn, DB_TX_OP_COMMIT);
}

int db_rollback(struct db_conn *conn)
{
    return tx(conn, DB_TX_OP_ROLLBACK);
}

int db_write_tx(struct db_pool *pool, db_tx_fn fn, void *ctx)
{
    struct db_conn *conn = NULL;
    int rc = db_acquire(pool, DB_WAIT_MS, &conn);
    if (rc != 0)
        return rc;
    rc = db_begin(conn, DB_TX_WRITE);
    if (rc == 0)
        rc = fn(conn, ctx);
    if (rc == 0)
        rc = db_commit(conn);
    db_release(conn); /* rolls back when the commit was not reached */
    return rc;
}

int db_query_id(struct db_conn *conn, const char *sql, const struct db_param *params, int nparams,
                int64_t *id)
{
    struct db_result *res = NULL;
    int rc = db_query(conn, sql, params, nparams, &res);
    *id = rc == 0 && db_result_rows(res) > 0 ? db_result_int(res, 0, 0) : 0;
    db_result_free(res);
    return rc;
}

int db_pool_query(struct db_pool *pool, const char *sql, const struct db_param *params, int nparams,
                  struct db_result **out)
{
    *out = NULL;
    struct db_conn *conn = NULL;
    int rc = db_acquire(pool, DB_WAIT_MS, &conn);
    if (rc != 0)
        return rc;
    rc = db_query(conn, sql, params, nparams, out);
    db_release(conn);
    return rc;
}

int db_result_rows(const struct db_result *res)
{
    return res ? res->rows : 0;
}

int db_result_cols(const struct db_result *res)
{
    return res ? res->cols : 0;
}

static const char *col_name(const struct db_result *res, int col)
{
    return res->pg ? PQfname(res->pg, col) : res->names[col];
}

const char *db_result_colname(const struct db_result *res, int col)
{
    if (!res || col < 0 || col >= res->cols)
        return NULL;
    return col_name(res, col);
}

int db_result_col(const struct db_result *res, const char *name)
{
    if (!res || !name)
        return -1;
    for (int i = 0; i < res->cols; i++) {
        const char *n = col_name(res, i);
        if (n && strcasecmp(n, name) == 0)
            return i;
    }
    return -1;
}

static bool in_range(const struct db_result *res, int row, int col)
{
    return res && row >= 0 && row < res->rows && col >= 0 && col < res->cols;
}

const char *db_result_text(const struct db_result *res, int row, int col)
{
    if (!in_range(res, row, col))
        return NULL;
    if (res->pg) {
        if (PQgetisnull(res->pg, row, col))
            return NULL;
        return PQgetvalue(res->pg, row, col);
    }
    size_t off = res->offs[(size_t)row * (size_t)res->cols + (size_t)col];
    return off == DB_RES_NULL ? NULL : res->text + off;
}

bool db_result_is_null(const struct db_result *res, int row, int col)
{
    return db_result_text(res, row, col) == NULL;
}

int64_t db_result_int(const struct db_result *res, int row, int col)
{
    const char *s = db_result_text(res, row, col);
    if (!s || !*s)
        return 0;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return 0;
    return (int64_t)v;
}

bool db_result_bool(const struct db_result *res, int row, int col)
{
    const char *s = db_result_text(res, row, col);
    if (!s)
        return false;
    return strcmp(s, "1") == 0 || strcasecmp(s, "t") == 0 || strcasecmp(s, "true") == 0;
}

void db_result_free(struct db_result *res)
{
    if (!res)
        return;
    if (res->pg)
        PQclear(res->pg);
    if (res->names) {
        for (int i = 0; i < res->cols; i++)
            free(res->names[i]);
        free(res->names);
    }
    free(res->offs);
    free(res->text);
    free(res);
}
