/*
 * task_store.h — the tasks table as an outbox (SPEC §8, DESIGN "Layers").
 *
 * Enqueueing is a row inserted with the caller's connection, inside the caller's transaction,
 * so a rolled-back change leaves no task behind. Claiming, leases and retries belong to the
 * worker (tasks/), which reads the same table.
 */
#ifndef USHER_DB_TASK_STORE_H
#define USHER_DB_TASK_STORE_H

#include <jansson.h>
#include <stdint.h>

struct db_conn;

/* The old system's policy: the first attempt plus 3 retries. */
#define TASK_DEFAULT_MAX_ATTEMPTS 4
/* Tasks whose loss would leave a paying customer without access (process_stripe_event,
 * sync_user_post_checkout): 10 retries, about 8 hours, to outlast an upstream outage. */
#define TASK_LONG_MAX_ATTEMPTS 11

/*
 * Inserts a queued task. args is serialized as given (borrowed). A non-NULL dedup_key makes
 * the insert a no-op when a task with the same key exists (then *id, if given, is 0).
 */
int task_enqueue(struct db_conn *conn, const char *name, const json_t *args, int max_attempts,
                 int64_t run_at, const char *dedup_key, int64_t *id);

#endif
