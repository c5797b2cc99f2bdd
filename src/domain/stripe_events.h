/*
 * stripe_events.h — durable intake of verified Stripe webhook events (SPEC §4).
 *
 * A verified event is stored (unique by Stripe's event id) and its processing task enqueued
 * in one transaction, so an acknowledged event is never lost and a duplicate delivery does
 * nothing. Processing itself happens in the worker.
 */
#ifndef USHER_DOMAIN_STRIPE_EVENTS_H
#define USHER_DOMAIN_STRIPE_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct db_pool;

#define STRIPE_EVENT_ID_MAX 255
#define STRIPE_EVENT_TYPE_MAX 128

/*
 * Stores the raw event payload (already signature-verified). USHER_EINVAL when it is not a
 * JSON object with a string id (evt_…), a string type and an integer created.
 * *duplicate is true when the event id was already stored.
 */
int stripe_event_ingest(struct db_pool *pool, const char *payload, size_t len, int64_t now,
                        bool *duplicate);

struct db_conn;
/* Deletes processed or ignored events received before cutoff (keep at least 30 days: Stripe
 * can resend that long). Pending and failed events are kept. */
int stripe_event_purge(struct db_conn *conn, int64_t cutoff, int64_t *deleted);

#endif
