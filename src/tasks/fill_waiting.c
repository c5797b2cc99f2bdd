/*
 * fill_waiting.c — the periodic job that seats waiting_capacity assignments as soon as
 * capacity appears (an instance added, a cap raised, a seat freed; SPEC §5), and asks for a
 * provisioning sync of each user who got a seat.
 */
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "domain/allocation.h"
#include "domain/provisioning.h"
#include "tasks/builtin.h"
#include "tasks/task.h"

static int request_sync(int64_t user_id, void *ctx)
{
    struct task_run *run = ctx;
    return provisioning_request_sync(run->pool, user_id, clock_now());
}

int task_fill_waiting_seats(struct task_run *run)
{
    int assigned = 0;
    int rc = alloc_fill_waiting(run->pool, clock_now(), &assigned, request_sync, run);
    if (rc != 0) {
        task_run_error(run, "fill waiting seats: %s", usher_strerror(rc));
        return rc;
    }
    if (assigned)
        log_info("msg=\"waiting seats filled\" count=%d", assigned);
    return 0;
}
