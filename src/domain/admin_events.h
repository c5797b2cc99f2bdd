/*
 * admin_events.h — stored Stripe webhook events as the admin console shows them (SPEC §4,
 * §9): a list by status and type, searchable by event id; one event with its payload; and
 * the operator's retry of an event that failed or was ignored.
 *
 * A retry goes through the same path as a delivery: the event is made pending again and a
 * process_stripe_event task is queued (the event's own failed task is queued again when it
 * has one), so the worker applies it with the same idempotent processing. A processed event
 * is never retried, and a pending one is already on its way.
 */
#ifndef USHER_DOMAIN_ADMIN_EVENTS_H
#define USHER_DOMAIN_ADMIN_EVENTS_H

#include "domain/admin_ops.h"

#include <stddef.h>

struct db_pool;

struct admin_event_filter {
    const char *status; /* NULL or "": any; else pending, processed, ignored or failed */
    const char *type; /* NULL or "": any; else the exact event type */
    const char *q; /* NULL or "": none; else an event id (evt_…), matched exactly */
};

/* USHER_EINVAL for a bad filter or page. Rows: {id, event_id, type, status, created,
 * received_at, processed_at, attempts, last_error, retryable}. */
int admin_events_list(struct db_pool *pool, const struct admin_event_filter *f, int64_t before,
                      int limit, struct admin_page *out);

/* The row fields plus payload (indented JSON text) and task ({id, state} of the delivery's
 * process_stripe_event task, or null once it is purged); USHER_ENOTFOUND. */
int admin_event_get(struct db_pool *pool, int64_t id, json_t **out);

/* Retries the event (see above). USHER_ENOTFOUND; USHER_ECONFLICT when it is processed or
 * pending. msg gets a sentence for the operator either way. */
int admin_event_retry(struct db_pool *pool, const struct admin_actor *actor, int64_t id,
                      int64_t now, char *msg, size_t msg_size);

#endif
