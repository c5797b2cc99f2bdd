/*
 * probe.c — the queue_probe task (see builtin.h).
 */
#include "tasks/builtin.h"

#include "core/err.h"
#include "db/db.h"
#include "tasks/task.h"

#include <time.h>

int task_queue_probe(struct task_run *run)
{
    const json_t *v = json_object_get(run->args, "sleep_ms");
    json_int_t ms = v ? json_integer_value(v) : 0;
    if ((v && !json_is_integer(v)) || ms < 0 || ms > TASK_PROBE_SLEEP_MAX_MS) {
        task_run_error(run, "sleep_ms must be an integer from 0 to %d", TASK_PROBE_SLEEP_MAX_MS);
        run->permanent = true;
        return USHER_EINVAL;
    }
    /* The handler reaches the database like any real one would. */
    int rc = db_ping(run->pool);
    if (rc != 0) {
        task_run_error(run, "database unreachable");
        return rc;
    }
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ; /* EINTR: sleep the rest */
    return 0;
}
