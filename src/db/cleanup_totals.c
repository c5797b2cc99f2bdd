/*
 * cleanup_totals.c — the cleanup's deletion counts (see cleanup_totals.h).
 */
#include "db/cleanup_totals.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/metrics.h"
#include "db/db.h"

int cleanup_totals_add(struct db_conn *conn, const char *kind, int64_t n)
{
    if (n < 0)
        return USHER_EINVAL;
    if (n == 0)
        return 0;
    const struct db_param p[] = {DB_TEXT(kind), DB_INT(n)};
    return db_exec(conn,
                   "INSERT INTO cleanup_totals (kind, total) VALUES ($1, $2) "
                   "ON CONFLICT (kind) DO UPDATE SET total = cleanup_totals.total + $2",
                   p, 2, NULL);
}

int cleanup_totals_metrics(struct db_conn *conn)
{
    struct db_result *res = NULL;
    int rc = db_query(conn, "SELECT kind, total FROM cleanup_totals", NULL, 0, &res);
    struct buf labels;
    buf_init(&labels);
    for (int i = 0; rc == 0 && i < db_result_rows(res); i++) {
        const char *kind = db_result_text(res, i, 0);
        buf_reset(&labels);
        metrics_labels(&labels, 1, "kind", kind ? kind : "");
        metrics_counter_set("usher_cleanup_deleted_total",
                            "Rows deleted by the periodic cleanup, by kind.", labels.data,
                            (double)db_result_int(res, i, 1));
    }
    buf_cleanup(&labels);
    db_result_free(res);
    return rc;
}
