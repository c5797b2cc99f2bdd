/*
 * task.h — task handlers and how they are registered (SPEC §8).
 *
 * A task is a row in the tasks table (db/task_store.h) naming a handler and carrying JSON
 * arguments. `usher worker` claims tasks and calls the handler registered under the row's
 * name. A name with no handler is not dropped: the attempt fails with "no handler registered
 * for this task name" and follows the retry policy to the failed state, where an operator
 * sees it (a newer worker that knows the name may take a retry in between).
 *
 * The handler contract:
 * - Idempotent. Delivery is at least once: a worker killed mid-task loses its lease and
 *   another worker runs the task again from the start. Running a task twice must change
 *   nothing the second time (check state before acting, use upserts and conditional
 *   updates, send an email only after recording that it is to be sent, …).
 * - Return 0 on success, or a negative usher_err on failure; describe the failure with
 *   task_run_error (short, no secrets, no tokens, no personal data beyond ids — it is stored
 *   in the row and logged). A failure is retried per the retry policy (tasks/retry.h) unless
 *   the handler sets run->permanent (the arguments can never work, e.g. malformed).
 * - Take database connections from run->pool and commit your own transactions; enqueue
 *   follow-up tasks with task_enqueue inside the transaction of the change that causes them.
 * - Do not keep pointers into *run after returning. Long handlers may poll
 *   task_stop_requested() to stop early at a safe point (then fail with an error so the task
 *   is retried); otherwise a stopping worker lets the running handler finish.
 * - Handlers run on worker threads, several at once: no unguarded shared state.
 *
 * Registration happens before the worker starts (tasks/handlers.c, task_register_all), and is
 * not thread-safe afterwards.
 */
#ifndef USHER_TASKS_TASK_H
#define USHER_TASKS_TASK_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct db_pool;
struct usher_config;

#define TASK_RUN_ERROR_MAX 256
#define TASK_REGISTRY_MAX 64
#define TASK_PERIODIC_MIN_INTERVAL 10

struct task_run {
    struct db_pool *pool; /* the worker's pool */
    const struct usher_config *cfg; /* the worker's configuration */
    int64_t id;
    const char *name;
    const json_t *args; /* borrowed; always a JSON object */
    int attempt; /* 1-based */
    int max_attempts;
    char error[TASK_RUN_ERROR_MAX]; /* set through task_run_error */
    bool permanent; /* set by the handler: do not retry this failure */
};

typedef int (*task_handler_fn)(struct task_run *run);

/* Formats a failure description into run->error. */
void task_run_error(struct task_run *run, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Registers fn under name. USHER_ECONFLICT if the name is taken, USHER_EINVAL for a bad
 * name (1..TASK_NAME_MAX of [a-z0-9_]), USHER_ELIMIT past TASK_REGISTRY_MAX. */
int task_register(const char *name, task_handler_fn fn);

/*
 * Registers fn under name and runs it as a task every interval_seconds
 * (>= TASK_PERIODIC_MIN_INTERVAL). However many workers run, each interval's run is one task
 * row (its dedup_key names the time slot, now / interval), enqueued only while no earlier run
 * of the job is queued or running, so one worker at a time runs it; a run that fails is
 * retried like any task. After downtime only the current slot runs (no catch-up).
 */
int task_schedule_periodic(const char *name, int interval_seconds, task_handler_fn fn);

/* The handler registered under name, or NULL. */
task_handler_fn task_handler_find(const char *name);

struct task_periodic {
    const char *name;
    int interval_seconds;
};
/* The periodic jobs, in registration order. */
int task_periodic_count(void);
const struct task_periodic *task_periodic_at(int i);

/* Forgets every registration (tests). */
void task_registry_reset(void);

/* True once the worker was asked to stop (SIGTERM/SIGINT). */
bool task_stop_requested(void);

/* Registers every handler and periodic job Usher has (tasks/handlers.c). Idempotent. */
void task_register_all(void);

#endif
