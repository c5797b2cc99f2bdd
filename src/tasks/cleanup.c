/*
 * cleanup.c — the hourly cleanup job (see builtin.h).
 */
#include "tasks/builtin.h"

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "db/cleanup_totals.h"
#include "db/db.h"
#include "domain/codes.h"
#include "domain/rate_limit.h"
#include "domain/session_store.h"
#include "domain/stripe_events.h"
#include "db/task_store.h"
#include "tasks/task.h"
#include "tasks/worker_internal.h"

#include <string.h>

/* Adds this run's deletions to the totals /metrics reports (a failed step counts 0). */
static int record_totals(struct db_conn *conn, const struct cleanup_counts *c)
{
    const struct {
        const char *kind;
        int64_t n;
    } kinds[] = {{"sessions", c->sessions},
                 {"codes", c->codes},
                 {"rate_limits", c->rate_limits},
                 {"stripe_events", c->stripe_events},
                 {"tasks", c->tasks}};
    int first = 0;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        int rc = cleanup_totals_add(conn, kinds[i].kind, kinds[i].n);
        first = first ? first : rc;
    }
    return first;
}

int task_cleanup_run(struct db_conn *conn, int64_t now, struct cleanup_counts *counts)
{
    memset(counts, 0, sizeof *counts);
    int first = session_purge_expired(conn, now, CLEANUP_SESSION_BATCH, CLEANUP_SESSION_MAX_PER_RUN,
                                      &counts->sessions);
    /* A consumed code expired too (consumed_at <= expires_at), so one rule covers both. */
    int rc = code_purge(conn, now, &counts->codes);
    first = first ? first : rc;
    rc = rate_limit_purge(conn, now - CLEANUP_RATE_LIMIT_WINDOW_MAX_SECONDS, &counts->rate_limits);
    first = first ? first : rc;
    rc = stripe_event_purge(conn, now - CLEANUP_STRIPE_EVENT_KEEP_SECONDS, &counts->stripe_events);
    first = first ? first : rc;
    rc = task_store_purge_done(conn, now - CLEANUP_DONE_TASK_KEEP_SECONDS, &counts->tasks);
    first = first ? first : rc;
    rc = record_totals(conn, counts);
    return first ? first : rc;
}

int task_cleanup(struct task_run *run)
{
    struct db_conn *conn = NULL;
    int rc = db_acquire(run->pool, WORKER_DB_WAIT_MS, &conn);
    struct cleanup_counts c = {0};
    if (rc == 0)
        rc = task_cleanup_run(conn, clock_now(), &c);
    db_release(conn);
    if (rc != 0) {
        task_run_error(run, "cleanup: %s", usher_strerror(rc));
        return rc;
    }
    log_info("msg=\"cleanup\" task=%lld sessions=%lld codes=%lld rate_limits=%lld "
             "stripe_events=%lld tasks=%lld",
             (long long)run->id, (long long)c.sessions, (long long)c.codes,
             (long long)c.rate_limits, (long long)c.stripe_events, (long long)c.tasks);
    return 0;
}
