/*
 * pool.c — the connection pool: a fixed array of slots, a mutex and a condition variable.
 *
 * Slots open lazily on first borrow. The lock guards only the bookkeeping (which slot is
 * borrowed, the counters); connecting, resetting and every statement happen outside it, on
 * a slot the calling thread has borrowed, so a slow server never blocks other borrowers.
 * A slot whose transport failed is closed and reopened when it is next borrowed; that is
 * how the pool comes back after the database restarts.
 */
#include "db/db_internal.h"

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Health checks must answer fast; a pool that cannot lend a connection in this time is
 * as good as down. */
#define DB_PING_TIMEOUT_MS 2000
/* A pool larger than this is a configuration mistake (each slot is a server backend). */
#define DB_POOL_MAX_SIZE 1024

static const struct db_driver *driver_for(const char *url)
{
    if (strncmp(url, "sqlite:", 7) == 0)
        return &db_sqlite_driver;
    if (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0)
        return &db_pg_driver;
    return NULL;
}

static void init_sync(struct db_pool *pool)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    /* Timeouts measure elapsed time, not the wall clock, which may jump. */
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&pool->freed, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&pool->lock, NULL);
}

int db_pool_new(const char *url, int size, struct db_pool **out)
{
    *out = NULL;
    if (!url || size < 1 || size > DB_POOL_MAX_SIZE)
        return USHER_EINVAL;
    const struct db_driver *drv = driver_for(url);
    if (!drv) {
        log_error("msg=\"unsupported DATABASE_URL scheme\" expected=\"sqlite: or postgres://\"");
        return USHER_ECONFIG;
    }
    struct db_pool *pool = xcalloc(1, sizeof *pool);
    pool->drv = drv;
    pool->size = size;
    pool->conns = xcalloc((size_t)size, sizeof *pool->conns);
    for (int i = 0; i < size; i++) {
        pool->conns[i].pool = pool;
        stmt_cache_init(&pool->conns[i].stmts);
    }
    atomic_init(&pool->errors, 0);
    atomic_init(&pool->down, false);
    int rc = drv->pool_init(pool, url);
    if (rc < 0) {
        free(pool->conns);
        free(pool);
        return rc;
    }
    init_sync(pool);
    *out = pool;
    return 0;
}

void db_pool_free(struct db_pool *pool)
{
    if (!pool)
        return;
    for (int i = 0; i < pool->size; i++)
        pool->drv->close(&pool->conns[i]);
    pool->drv->pool_cleanup(pool);
    pthread_cond_destroy(&pool->freed);
    pthread_mutex_destroy(&pool->lock);
    free(pool->conns);
    free(pool);
}

enum db_dialect db_pool_dialect(const struct db_pool *pool)
{
    return pool->drv->dialect;
}

void db_pool_stats(struct db_pool *pool, struct db_pool_stats *out)
{
    pthread_mutex_lock(&pool->lock);
    out->size = pool->size;
    out->open = pool->open;
    out->in_use = pool->in_use;
    out->acquires = pool->acquires;
    out->waits = pool->waits;
    out->timeouts = pool->timeouts;
    pthread_mutex_unlock(&pool->lock);
    out->errors = atomic_load(&pool->errors);
}

void db_pool_note_connect(struct db_pool *pool, bool ok, const char *detail)
{
    bool was_down = atomic_exchange(&pool->down, !ok);
    if (!ok && !was_down)
        log_error("msg=\"database unreachable\" detail=\"%s\"", detail ? detail : "");
    else if (ok && was_down)
        log_info("msg=\"database reachable again\"");
}

/* An idle slot, preferring one already open so the pool does not grow needlessly. Called
 * with the lock held. */
static struct db_conn *pick_idle(struct db_pool *pool)
{
    struct db_conn *closed = NULL;
    for (int i = 0; i < pool->size; i++) {
        struct db_conn *c = &pool->conns[i];
        if (c->in_use)
            continue;
        if (c->handle)
            return c;
        if (!closed)
            closed = c;
    }
    return closed;
}

static struct timespec deadline_after(int timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* Waits for and marks a free slot; NULL after timeout_ms. */
static struct db_conn *borrow_slot(struct db_pool *pool, int timeout_ms)
{
    struct timespec deadline = deadline_after(timeout_ms < 0 ? 0 : timeout_ms);
    pthread_mutex_lock(&pool->lock);
    struct db_conn *c = pick_idle(pool);
    if (!c)
        pool->waits++;
    int rc = 0;
    while (!c && rc != ETIMEDOUT) {
        rc = pthread_cond_timedwait(&pool->freed, &pool->lock, &deadline);
        c = pick_idle(pool);
    }
    if (c) {
        c->in_use = true;
        pool->in_use++;
    } else {
        pool->timeouts++;
    }
    pthread_mutex_unlock(&pool->lock);
    return c;
}

static void return_slot(struct db_conn *c)
{
    struct db_pool *pool = c->pool;
    pthread_mutex_lock(&pool->lock);
    c->in_use = false;
    pool->in_use--;
    pthread_mutex_unlock(&pool->lock);
    pthread_cond_signal(&pool->freed);
}

static void close_slot(struct db_conn *c)
{
    if (!c->handle)
        return;
    c->pool->drv->close(c);
    c->broken = false;
    pthread_mutex_lock(&c->pool->lock);
    c->pool->open--;
    pthread_mutex_unlock(&c->pool->lock);
}

/* Makes a borrowed slot usable: closes it if its transport failed, opens it if closed. */
static int ready_slot(struct db_conn *c)
{
    const struct db_driver *drv = c->pool->drv;
    if (c->handle && (c->broken || !drv->alive(c)))
        close_slot(c);
    if (c->handle)
        return 0;
    int rc = drv->open(c);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&c->pool->lock);
    c->pool->open++;
    pthread_mutex_unlock(&c->pool->lock);
    return 0;
}

int db_acquire(struct db_pool *pool, int timeout_ms, struct db_conn **out)
{
    *out = NULL;
    struct db_conn *c = borrow_slot(pool, timeout_ms);
    if (!c) {
        log_warn("msg=\"no free database connection\" timeout_ms=%d pool_size=%d", timeout_ms,
                 pool->size);
        /* Every connection busy (a slow or restarting server, a burst): try again later. */
        return USHER_EDBDOWN;
    }
    int rc = ready_slot(c);
    if (rc < 0) {
        return_slot(c);
        return rc;
    }
    pthread_mutex_lock(&pool->lock);
    pool->acquires++;
    pthread_mutex_unlock(&pool->lock);
    *out = c;
    return 0;
}

void db_release(struct db_conn *conn)
{
    if (!conn)
        return;
    const struct db_driver *drv = conn->pool->drv;
    /* A borrower that returns mid-transaction (an error path) must not leak its locks or
     * half-done writes to the next borrower. */
    if (conn->handle && !conn->broken && drv->in_tx(conn) && drv->tx(conn, DB_TX_OP_ROLLBACK) < 0)
        conn->broken = true;
    if (conn->broken)
        close_slot(conn);
    return_slot(conn);
}

enum db_dialect db_conn_dialect(const struct db_conn *conn)
{
    return conn->pool->drv->dialect;
}

int db_ping(struct db_pool *pool)
{
    struct db_conn *conn = NULL;
    struct db_result *res = NULL;
    int rc = db_acquire(pool, DB_PING_TIMEOUT_MS, &conn);
    if (rc < 0)
        goto out;
    rc = db_query(conn, "SELECT 1", NULL, 0, &res);
    if (rc == 0 && db_result_int(res, 0, 0) != 1)
        rc = USHER_EDB;
out:
    db_result_free(res);
    db_release(conn);
    return rc;
}
