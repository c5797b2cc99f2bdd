/*
 * count.c — estimated and capped row counts (see count.h).
 */
#include "db/count.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"

#include <stdlib.h>
#include <string.h>

#define COUNT_PARAMS_MAX 32

static bool identifier(const char *s)
{
    if (!s || !*s || strlen(s) > 63)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || *s == '_'))
            return false;
    return true;
}

int db_count_capped(struct db_conn *conn, const char *select_sql, const struct db_param *params,
                    int nparams, int64_t cap, struct db_count *out)
{
    memset(out, 0, sizeof *out);
    if (cap < 1 || nparams < 0 || nparams >= COUNT_PARAMS_MAX)
        return USHER_EINVAL;
    struct db_param all[COUNT_PARAMS_MAX];
    for (int i = 0; i < nparams; i++)
        all[i] = params[i];
    all[nparams] = DB_INT(cap + 1);
    struct buf sql;
    buf_init(&sql);
    buf_printf(&sql, "SELECT count(*) FROM (%s LIMIT $%d) capped", select_sql, nparams + 1);
    struct db_result *res = NULL;
    int rc = db_query(conn, sql.data, all, nparams + 1, &res);
    buf_cleanup(&sql);
    if (rc != 0)
        return rc;
    int64_t n = db_result_rows(res) > 0 ? db_result_int(res, 0, 0) : 0;
    db_result_free(res);
    out->more = n > cap;
    out->n = out->more ? cap : n;
    return 0;
}

int db_count_table(struct db_conn *conn, const char *table, int64_t threshold, int64_t cap,
                   struct db_count *out)
{
    memset(out, 0, sizeof *out);
    if (!identifier(table))
        return USHER_EINVAL;
    if (db_conn_dialect(conn) == DB_POSTGRES) {
        struct db_param p[] = {DB_TEXT(table)};
        struct db_result *res = NULL;
        int rc = db_query(conn,
                          "SELECT reltuples::bigint FROM pg_class "
                          "WHERE oid = to_regclass($1)",
                          p, DB_NPARAMS(p), &res);
        if (rc != 0)
            return rc;
        /* -1: never analyzed; then the capped count below is the honest answer. */
        int64_t estimate = db_result_rows(res) > 0 ? db_result_int(res, 0, 0) : -1;
        db_result_free(res);
        if (estimate >= threshold) {
            out->n = estimate;
            out->estimated = true;
            return 0;
        }
    }
    char *sql = xasprintf("SELECT 1 FROM %s", table);
    int rc = db_count_capped(conn, sql, NULL, 0, cap, out);
    free(sql);
    return rc;
}
