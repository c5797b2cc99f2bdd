/*
 * task_store.h — the tasks table: an outbox for enqueueing, and the queue the worker claims
 * from (SPEC §8, DESIGN "Layers").
 *
 * Enqueueing is a row inserted with the caller's connection, inside the caller's transaction,
 * so a rolled-back change leaves no task behind. Everything else here is the worker's side
 * (tasks/ calls it): claiming with a lease, renewing the lease (heartbeat), recording the
 * outcome, requeueing tasks whose worker died, the Redis relay's bookkeeping, and the
 * operator's view (list, retry, metrics).
 *
 * Row life: queued -> running (claimed: attempts + 1, worker, lease_until) -> done, or
 * queued again with a later run_at (a retry), or failed (out of attempts; kept forever until
 * task_retry). A running row whose lease_until has passed belongs to a dead worker:
 * task_requeue_expired makes it queued again (or failed, when that was its last attempt).
 *
 * Every write that finishes a claim is conditional on (id, worker, attempts, state running),
 * so a worker that lost its lease (it stalled, another worker took the task over) can
 * never overwrite the newer claim's outcome: its write affects no row and *held says so.
 * Delivery is therefore at least once, and handlers are idempotent (tasks/task.h).
 *
 * Timestamps are parameters (clock_now()), never SQL's now(), so tests can move time.
 */
#ifndef USHER_DB_TASK_STORE_H
#define USHER_DB_TASK_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct db_conn;

/* The configured default policy: TASK_MAX_RETRIES + 1 attempts (the old system's 4 unless
 * configured; see task_store_set_default_max_attempts). Pass it to task_enqueue. */
#define TASK_DEFAULT_MAX_ATTEMPTS 0
/* The old system's policy: the first attempt plus 3 retries. */
#define TASK_BUILTIN_MAX_ATTEMPTS 4
/* Tasks whose loss would leave a paying customer without access (process_stripe_event,
 * sync_user_post_checkout): 10 retries, about 8 hours, to outlast an upstream outage.
 * task_enqueue gives those two names at least this many whatever the caller passes. */
#define TASK_LONG_MAX_ATTEMPTS 11
#define TASK_MAX_ATTEMPTS_LIMIT 1000

#define TASK_NAME_MAX 64
#define TASK_ERROR_MAX 500 /* last_error is cut to this many bytes */

/*
 * What TASK_DEFAULT_MAX_ATTEMPTS means in this process (main sets it from TASK_MAX_RETRIES
 * before any thread starts). Values outside 1..TASK_MAX_ATTEMPTS_LIMIT are ignored.
 */
void task_store_set_default_max_attempts(int max_attempts);
int task_store_default_max_attempts(void);
/* The attempts a task of this name gets when enqueued with max_attempts (0 = the default):
 * at least TASK_LONG_MAX_ATTEMPTS for the long-schedule names. */
int task_store_resolve_max_attempts(const char *name, int max_attempts);

/*
 * Inserts a queued task. args is serialized as given (borrowed). max_attempts is usually
 * TASK_DEFAULT_MAX_ATTEMPTS. A non-NULL dedup_key makes the insert a no-op when a task with
 * the same key exists (then *id, if given, is 0).
 */
int task_enqueue(struct db_conn *conn, const char *name, const json_t *args, int max_attempts,
                 int64_t run_at, const char *dedup_key, int64_t *id);

enum task_periodic_result {
    TASK_PERIODIC_ENQUEUED = 0, /* the slot's row was inserted */
    TASK_PERIODIC_PRESENT = 1, /* the slot already has its row */
    TASK_PERIODIC_BUSY = 2, /* an earlier run is still queued or running: try later */
};
/*
 * Periodic jobs (tasks/task.h): inserts a queued task name with args {} and dedup_key (which
 * names the time slot), unless the key exists or a task of that name is queued or running —
 * so however many workers try, one row per slot, and one run at a time.
 */
int task_enqueue_periodic(struct db_conn *conn, const char *name, const char *dedup_key,
                          int64_t now, enum task_periodic_result *result);

/* ---- the worker's side ------------------------------------------------------------------ */

/* A claimed task. Strings are owned; task_claim_cleanup frees them. */
struct task_claim {
    int64_t id;
    char *name;
    char *args; /* JSON text as stored */
    int attempt; /* this attempt's number, 1-based (attempts after the claim) */
    int max_attempts;
    bool takeover; /* claimed from a running row whose lease had expired */
};
void task_claim_cleanup(struct task_claim *c);

/*
 * Database backend: claims the next due queued task (oldest run_at first) for worker, with a
 * lease until now + lease_seconds, in its own write transaction. PostgreSQL picks the row
 * with FOR UPDATE SKIP LOCKED, so concurrent workers never wait for or double-claim a row;
 * SQLite serializes claims in a BEGIN IMMEDIATE transaction. *found is false when nothing is
 * due.
 */
int task_claim_next(struct db_conn *conn, const char *worker, int64_t now, int lease_seconds,
                    struct task_claim *out, bool *found);

enum task_claim_result {
    TASK_CLAIMED = 0, /* *out is filled; run it */
    TASK_BUSY = 1, /* running under a live lease elsewhere: leave the delivery pending */
    TASK_GONE = 2, /* done, failed, missing, not due yet, or a stale duplicate: drop it */
};
/*
 * Redis backend: claims task id delivered by the stream, if it is queued and due, or running
 * under an expired lease with attempts left (its worker died: take it over). A queued task
 * not yet due by `now` is TASK_GONE and marked unrelayed, to be relayed again when due.
 */
int task_claim_id(struct db_conn *conn, int64_t id, const char *worker, int64_t now,
                  int lease_seconds, struct task_claim *out, enum task_claim_result *result);

/* Renews the lease of a task this worker holds; *held is false when it no longer does. */
int task_heartbeat(struct db_conn *conn, int64_t id, const char *worker, int attempt,
                   int64_t lease_until, bool *held);

/* Records success. *held false: the lease was lost and nothing was written. */
int task_complete(struct db_conn *conn, int64_t id, const char *worker, int attempt, int64_t now,
                  bool *held);

/*
 * Records a failed attempt. retry_at > 0 queues the task again for then (outcome "retry");
 * retry_at == 0 marks it failed for good (outcome "failed"). error is stored cut to
 * TASK_ERROR_MAX bytes; it must hold no secret. max_attempts (> 0) is written back, so the
 * row shows the limit the worker applied.
 */
int task_fail(struct db_conn *conn, int64_t id, const char *worker, int attempt, int64_t now,
              int max_attempts, int64_t retry_at, const char *error, bool *held);

/* Called once per task whose lease had expired, after the change is committed. */
typedef void (*task_expired_fn)(void *ctx, int64_t id, const char *name, int attempts, bool failed);
/*
 * Running tasks whose lease ended before now: queued again at once (outcome "expired"), or
 * failed when that claim was their last attempt. *count (may be NULL) gets how many.
 */
int task_requeue_expired(struct db_conn *conn, int64_t now, task_expired_fn fn, void *ctx,
                         int *count);

/* ---- Redis relay ------------------------------------------------------------------------ */

/*
 * Inside the caller's write transaction: up to max due, queued rows not yet relayed, oldest
 * first (PostgreSQL: locked FOR UPDATE SKIP LOCKED, so concurrent relays split the rows).
 * The caller XADDs them, then task_relay_mark, then commits; a failure in between rolls
 * back and the rows are relayed again later (a duplicate stream entry is harmless: the
 * consumer's claim is conditional).
 */
int task_relay_pick(struct db_conn *conn, int64_t now, int max, int64_t *ids, int *n);
int task_relay_mark(struct db_conn *conn, const int64_t *ids, int n, int64_t now);
/* Forgets that queued rows relayed before `before` were relayed, so they are relayed again
 * (Redis lost its data, or an entry went missing). *count may be NULL. */
int task_relay_reset(struct db_conn *conn, int64_t before, int64_t *count);
/* Whether any queued row is due at now (a cheap read that spares SQLite a write lock). */
int task_any_due(struct db_conn *conn, int64_t now, bool relay_only, bool *due);

/* ---- operator's view (`usher task …`, admin console, /metrics) ---------------------------- */

struct task_info {
    int64_t id;
    char name[TASK_NAME_MAX + 1];
    char state[16];
    int attempts;
    int max_attempts;
    int64_t run_at;
    int64_t created_at;
    int64_t updated_at;
    char *last_error; /* owned; NULL when none */
};

/*
 * Newest first, at most limit rows (1..1000); state NULL for every state, else "queued",
 * "running", "done" or "failed". *out (heap array) and each last_error belong to the caller:
 * task_info_free_array.
 */
int task_list(struct db_conn *conn, const char *state, int limit, struct task_info **out, int *n);
void task_info_free_array(struct task_info *items, int n);
/* How many tasks are in state. */
int task_count(struct db_conn *conn, const char *state, int64_t *count);
/* Progress of a batch enqueued with dedup keys starting with dedup_prefix and ids in
 * [first, last] (`usher task probe`): how many are done, failed, and neither. */
int task_batch_progress(struct db_conn *conn, const char *dedup_prefix, int64_t first, int64_t last,
                        int64_t *done, int64_t *failed, int64_t *pending);

/*
 * Operator retry: a failed task is queued again now with its attempts reset (a fresh set of
 * retries); a queued task waiting for a retry is made due now. USHER_ENOTFOUND for no such
 * task; USHER_ECONFLICT when it is running or done.
 */
int task_retry(struct db_conn *conn, int64_t id, int64_t now);

enum task_retry_result {
    TASK_RETRY_REQUEUED = 1, /* it had failed: queued now with a fresh set of retries */
    TASK_RETRY_MADE_DUE = 2, /* it was waiting for a retry: due now */
    TASK_RETRY_ALREADY_DUE = 3, /* it was queued and due already: nothing changed */
};
/* task_retry inside the caller's write transaction (the admin console records its audit
 * entry in the same one); *result says what happened. */
int task_retry_in_tx(struct db_conn *conn, int64_t id, int64_t now, enum task_retry_result *result);

/*
 * Copies the queue's figures into the metrics registry (call just before a scrape):
 * gauges usher_tasks_failed, usher_tasks_queued, usher_tasks_running, and the counter
 * usher_tasks_total{name,outcome} (outcome: done, retry, failed, expired).
 */
int task_store_metrics(struct db_conn *conn);
/* Deletes done tasks last updated before cutoff; failed tasks are always kept. */
int task_store_purge_done(struct db_conn *conn, int64_t cutoff, int64_t *deleted);

#endif
