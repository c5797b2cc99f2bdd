/*
 * rate_limit.c — fixed-window counters (see rate_limit.h).
 */
#include "domain/rate_limit.h"

#include "core/err.h"
#include "db/db.h"

#include <string.h>

/* $2 now, $3 the start a window must have to still be current (now - window + 1). In SET,
 * both dialects read the old row on the right-hand side, so count and window_start are
 * decided from the same old values. */
static const char hit_sql[] =
    "INSERT INTO rate_limits (bucket, window_start, count) VALUES ($1, $2, 1) "
    "ON CONFLICT (bucket) DO UPDATE SET "
    "count = CASE WHEN rate_limits.window_start < $3 THEN 1 ELSE rate_limits.count + 1 END, "
    "window_start = CASE WHEN rate_limits.window_start < $3 THEN $2 "
    "ELSE rate_limits.window_start END "
    "RETURNING count, window_start";

int rate_limit_hit(struct db_conn *conn, const char *bucket, int64_t limit, int64_t window_seconds,
                   int64_t now, struct rate_limit_result *out)
{
    memset(out, 0, sizeof *out);
    if (!bucket || !*bucket || strlen(bucket) > RATE_LIMIT_BUCKET_MAX || limit < 0 ||
        window_seconds < 1)
        return USHER_EINVAL;
    const struct db_param p[] = {DB_TEXT(bucket), DB_INT(now), DB_INT(now - window_seconds + 1)};
    struct db_result *res = NULL;
    int rc = db_query(conn, hit_sql, p, DB_NPARAMS(p), &res);
    if (rc != 0)
        return rc;
    if (db_result_rows(res) != 1) {
        db_result_free(res);
        return USHER_EDB;
    }
    out->count = db_result_int(res, 0, 0);
    out->window_start = db_result_int(res, 0, 1);
    db_result_free(res);
    out->allowed = out->count <= limit;
    out->retry_after = out->window_start + window_seconds - now;
    if (out->retry_after < 1)
        out->retry_after = 1;
    return 0;
}

int rate_limit_hit_pool(struct db_pool *pool, const char *bucket, int64_t limit,
                        int64_t window_seconds, int64_t now, struct rate_limit_result *out)
{
    struct db_conn *conn = NULL;
    int rc = db_acquire(pool, DB_WAIT_MS, &conn);
    if (rc != 0) {
        memset(out, 0, sizeof *out);
        return rc;
    }
    rc = rate_limit_hit(conn, bucket, limit, window_seconds, now, out);
    db_release(conn);
    return rc;
}

int rate_limit_purge(struct db_conn *conn, int64_t cutoff, int64_t *deleted)
{
    const struct db_param p[] = {DB_INT(cutoff)};
    return db_exec(conn, "DELETE FROM rate_limits WHERE window_start < $1", p, 1, deleted);
}
