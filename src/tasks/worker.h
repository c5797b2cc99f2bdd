/*
 * worker.h — `usher worker`: runs queued tasks until SIGTERM or SIGINT (SPEC §8).
 *
 * WORKER_CONCURRENCY threads each claim one task at a time and run its handler; a heartbeat
 * thread renews the leases of the tasks this process holds every lease/3; a housekeeping
 * thread requeues tasks of dead workers (expired leases), enqueues due periodic jobs, and,
 * with the Redis backend, relays committed queued rows into the stream.
 *
 * Backends: TASK_BROKER_URL=database (the default) claims rows from the tasks table directly;
 * redis://… consumes a Redis Stream through a consumer group (tasks/redis_broker.h). Either
 * way the tasks table stays the record: enqueue, leases and outcomes are written there.
 *
 * Stopping: the first SIGTERM/SIGINT stops claiming and lets running handlers finish (their
 * outcomes are recorded), then the process exits 0. A second signal exits at once with
 * status 1; the tasks it held are retried after their leases expire.
 *
 * Logs: one line per task outcome (id, name, attempt, duration; never arguments).
 *
 * The same worker can run inside another command's process (`usher serve` with
 * WORKER_IN_SERVE=true): task_worker_start and task_worker_stop around that command's own
 * wait for a stop signal.
 */
#ifndef USHER_TASKS_WORKER_H
#define USHER_TASKS_WORKER_H

#include <signal.h>

struct usher_config;
struct task_worker;

/* Runs the worker until stopped. 0 after a clean stop; USHER_ESCHEMA when the database schema
 * does not match this program; another usher_err when it cannot start. */
int task_worker_run(const struct usher_config *cfg);

/* Starts the worker's threads in the calling process, which has blocked the stop signals
 * (signals_block_stop, before any thread): *out is then the running worker. Errors as
 * task_worker_run's; on error nothing is left running. */
int task_worker_start(const struct usher_config *cfg, const sigset_t *stop,
                      struct task_worker **out);

/* Stops claiming, lets the running handlers finish and record their outcomes (a stop signal
 * of `stop` meanwhile exits the process at once, status 1, as in `usher worker`), joins the
 * threads and frees the worker. NULL does nothing. */
void task_worker_stop(struct task_worker *worker, const sigset_t *stop);

#endif
