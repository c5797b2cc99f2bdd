/*
 * admin_tasks.h — the admin console's view of the task queue (SPEC §8, §9): list by state
 * and name, one task's detail, and the operator's retry of failed tasks, one or several.
 *
 * A retry is what `usher task retry` does (db/task_store.h task_retry_in_tx): a failed task
 * is queued again now with a fresh set of retries. Here only failed tasks are retried; the
 * change and its audit entry are one transaction.
 */
#ifndef USHER_DOMAIN_ADMIN_TASKS_H
#define USHER_DOMAIN_ADMIN_TASKS_H

#include "domain/admin_ops.h"

#include <stdbool.h>

struct db_pool;

#define ADMIN_TASKS_BULK_MAX 100

struct admin_task_filter {
    const char *state; /* NULL or "": any; else queued, running, done or failed */
    const char *name; /* NULL or "": any; else the exact task name */
};

/* USHER_EINVAL for an unknown state, a name that is not a task name, or a bad page. Rows:
 * {id, name, state, attempts, max_attempts, run_at, updated_at, last_error, failed}. */
int admin_tasks_list(struct db_pool *pool, const struct admin_task_filter *f, int64_t before,
                     int limit, struct admin_page *out);

/* The names of the tasks the queue knows (for the filter), sorted. *out belongs to the caller. */
int admin_task_names(struct db_pool *pool, json_t **out);

/* {id, name, state, args (indented JSON text), attempts, max_attempts, run_at, created_at,
 * updated_at, lease_until, worker, last_error, failed}; USHER_ENOTFOUND. */
int admin_task_get(struct db_pool *pool, int64_t id, json_t **out);

/* Retries one failed task. USHER_ENOTFOUND; USHER_ECONFLICT when it is not failed (msg says
 * its state). */
int admin_task_retry(struct db_pool *pool, const struct admin_actor *actor, int64_t id, int64_t now,
                     char *msg, size_t msg_size);

/*
 * Retries the failed ones among ids (at most ADMIN_TASKS_BULK_MAX) in one transaction, each
 * with its audit entry. *results (caller owns) gets one {id, retried, note} per id, in order:
 * a task that is missing or not failed is left alone and reported, not an error.
 */
int admin_tasks_retry_many(struct db_pool *pool, const struct admin_actor *actor,
                           const int64_t *ids, int n, int64_t now, json_t **results, int *retried);

#endif
