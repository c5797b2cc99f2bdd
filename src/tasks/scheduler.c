/*
 * scheduler.c — enqueues periodic jobs, one task row per time slot (see task.h,
 * task_schedule_periodic).
 *
 * The slot of a job with interval I at time t is t / I; its row's dedup_key is
 * "periodic:<name>:<slot>", so every worker computes the same key and the unique index lets
 * one insert win. Called from the housekeeping thread only, so the per-job memory below needs
 * no lock: it spares the database a write per job per second once the slot has its row.
 */
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "db/db.h"
#include "db/task_store.h"
#include "tasks/task.h"
#include "tasks/worker_internal.h"

#include <stdio.h>

#define BUSY_RETRY_NS (10LL * 1000000000LL) /* an earlier run still going: look again then */

static int64_t settled_slot[TASK_REGISTRY_MAX]; /* slot + 1 whose row exists; 0: none yet */
static int64_t not_before[TASK_REGISTRY_MAX]; /* monotonic ns */

void task_scheduler_tick(struct worker *w, int64_t now)
{
    int n = task_periodic_count();
    struct db_conn *conn = NULL;
    for (int i = 0; i < n && i < TASK_REGISTRY_MAX; i++) {
        const struct task_periodic *job = task_periodic_at(i);
        int64_t slot = now / job->interval_seconds;
        if (settled_slot[i] == slot + 1 || clock_mono_ns() < not_before[i])
            continue;
        if (!conn && db_acquire(w->pool, WORKER_DB_WAIT_MS, &conn) != 0)
            return; /* the requeue step of the same tick logs database trouble */
        char key[TASK_NAME_MAX + 48];
        snprintf(key, sizeof key, "periodic:%s:%lld", job->name, (long long)slot);
        enum task_periodic_result result;
        int rc = task_enqueue_periodic(conn, job->name, key, now, &result);
        if (rc != 0)
            break;
        if (result == TASK_PERIODIC_BUSY) {
            not_before[i] = clock_mono_ns() + BUSY_RETRY_NS;
            continue;
        }
        settled_slot[i] = slot + 1;
        if (result == TASK_PERIODIC_ENQUEUED)
            log_info("msg=\"periodic job enqueued\" name=%s slot=%lld", job->name, (long long)slot);
    }
    db_release(conn);
}
