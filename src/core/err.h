/*
 * err.h — Usher's error codes.
 *
 * Every fallible function returns int: 0 on success, a negative usher_err on failure.
 * Results travel through out-parameters. The mapping from these codes to HTTP statuses
 * lives in one place, web/http_error.c.
 */
#ifndef USHER_CORE_ERR_H
#define USHER_CORE_ERR_H

enum usher_err {
    USHER_OK = 0,
    USHER_EINVAL = -1, /* bad input: the caller can fix it */
    USHER_ENOTFOUND = -2, /* the thing asked for does not exist */
    USHER_ECONFLICT = -3, /* a uniqueness or state conflict */
    USHER_EUPSTREAM = -4, /* an external system failed or answered badly */
    USHER_EDB = -5, /* the database failed: a real error, not an outage */
    USHER_EIO = -6, /* a local file or socket failed */
    USHER_ELIMIT = -7, /* a size, count or rate limit was exceeded */
    USHER_EFORBIDDEN = -8, /* not allowed for this caller */
    USHER_ECONFIG = -9, /* configuration missing or malformed */
    USHER_ESCHEMA = -10, /* database schema newer than this program */
    /* The database is out of reach for now: cannot connect, the connection was lost, the
     * server is shutting down or starting up, SQLite stayed locked past its busy timeout, or
     * no pooled connection came free in time. Retrying later may succeed, so the web layer
     * answers 503 with Retry-After rather than 500. */
    USHER_EDBDOWN = -11,
};

/* Any database failure, an outage or a real error (for callers that treat both alike). */
#define USHER_IS_DB_ERROR(rc) ((rc) == USHER_EDB || (rc) == USHER_EDBDOWN)

/* Returns a short, static, human-readable name for an error code. */
const char *usher_strerror(int err);

#endif
