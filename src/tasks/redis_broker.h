/*
 * redis_broker.h — the Redis backend of the task queue (SPEC §8, DESIGN "Layers").
 *
 * The tasks table stays the record; Redis only carries "task N is due" to the workers:
 * - Relay (each worker's housekeeping thread): in one database write transaction, picks due
 *   queued rows not yet relayed (PostgreSQL: FOR UPDATE SKIP LOCKED, so relays in several
 *   processes split them), XADDs one stream entry per row {id: N} to `usher:tasks`, marks the
 *   rows relayed_at and commits. A failure rolls back; the rows are relayed later. Delayed
 *   retries need nothing in Redis: a retry re-queues the row with a later run_at and clears
 *   relayed_at, and the relay sends it when it is due.
 * - Consumers (each handler thread, its own connection): XREADGROUP in the consumer group
 *   `usher-workers`, then claim the row in the database by id (conditional: queued and due,
 *   or running under an expired lease), run it, write the outcome to the row, XACK + XDEL.
 *   A delivery whose row is done, failed, not due or gone is acknowledged and dropped; one
 *   whose row runs under a live lease elsewhere is left pending. One whose claim fails in the
 *   database (unreachable, locked) is handed back at once: replaced by a new entry for the
 *   same row in one MULTI/EXEC, the consumer pausing briefly, instead of waiting a lease.
 * - Dead consumers: every lease/2 each consumer runs XAUTOCLAIM with min-idle = the lease,
 *   taking over entries delivered to a consumer that stopped; the database claim decides
 *   (the row's lease tells a dead worker from a slow one).
 * - Lost Redis data (a restart without persistence, a flush): the relay keeps a marker key
 *   `usher:tasks:epoch`; when it is missing, every queued row is marked unrelayed and sent
 *   again. Entries can also vanish one by one (a crash before an fsync): queued rows relayed
 *   more than max(10 × lease, 60 s) ago are sent again. Duplicates are harmless (claims are
 *   conditional), so no task is lost and none runs twice at once.
 * URL: redis://[[user]:password@]host[:port][/db].
 */
#ifndef USHER_TASKS_REDIS_BROKER_H
#define USHER_TASKS_REDIS_BROKER_H

#include <stddef.h>
#include <stdint.h>

struct worker;
struct task_redis;

#define TASK_REDIS_STREAM "usher:tasks"
#define TASK_REDIS_GROUP "usher-workers"
#define TASK_REDIS_EPOCH "usher:tasks:epoch"

/* Parses url (nothing is connected yet). USHER_ECONFIG for a malformed URL. */
int task_redis_new(const char *url, struct task_redis **out);
void task_redis_free(struct task_redis *r);

/* A handler thread's body with the Redis backend (arg: struct worker_slot *). */
void *task_redis_consume(void *slot);
/* One relay pass (housekeeping thread only). */
void task_redis_relay_tick(struct worker *w, int64_t now);

/* `usher check`: connects and PINGs. 0 or USHER_EUPSTREAM with a reason in detail. */
int task_redis_check(const char *url, char *detail, size_t size);

#endif
