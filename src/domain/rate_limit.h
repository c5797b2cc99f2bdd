/*
 * rate_limit.h — fixed-window counters in the database, shared by every web process.
 *
 * A bucket is a short string naming what is limited and for whom, e.g. "code:ip:192.0.2.7".
 * Its window starts at the first hit and lasts window_seconds; the first hit after it ends
 * starts a new window with a count of 1. Counting is one statement
 * (INSERT … ON CONFLICT (bucket) DO UPDATE … RETURNING), with the window reset folded in, so
 * concurrent hits from any number of processes are counted exactly once each (SQLite ≥ 3.35
 * and PostgreSQL). Inside a transaction the bucket row stays locked until the end, which
 * callers may use to serialize work per bucket (see codes.c).
 *
 * Every hit counts, allowed or not; a caller that wants refused attempts not to count runs
 * the hit in a transaction and rolls it back.
 */
#ifndef USHER_DOMAIN_RATE_LIMIT_H
#define USHER_DOMAIN_RATE_LIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct db_conn;
struct db_pool;

/* Bucket names longer than this are refused (USHER_EINVAL): hash long identifiers. */
#define RATE_LIMIT_BUCKET_MAX 200

struct rate_limit_result {
    int64_t count; /* hits in the current window, this one included */
    int64_t window_start; /* when the current window began */
    bool allowed; /* count <= limit */
    int64_t retry_after; /* seconds until the window ends (>= 1); meaningful when !allowed */
};

/* Counts one hit on bucket at now on conn (inside the caller's transaction, if any).
 * limit >= 0, window_seconds >= 1. Returns 0 with *out filled, USHER_EINVAL for bad
 * arguments, or the database's error. */
int rate_limit_hit(struct db_conn *conn, const char *bucket, int64_t limit, int64_t window_seconds,
                   int64_t now, struct rate_limit_result *out);

/* The same on a connection borrowed from pool for this one statement. */
int rate_limit_hit_pool(struct db_pool *pool, const char *bucket, int64_t limit,
                        int64_t window_seconds, int64_t now, struct rate_limit_result *out);

/* Deletes buckets whose window began before cutoff (pass now minus the longest window in
 * use). *deleted (may be NULL) gets the number of rows removed. */
int rate_limit_purge(struct db_conn *conn, int64_t cutoff, int64_t *deleted);

#endif
