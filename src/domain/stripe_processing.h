/*
 * stripe_processing.h — the worker side of the Stripe webhook (SPEC §4): applying one stored
 * event (domain/stripe_events.h) to Usher's users, Keycloak and the task queue.
 *
 * What each event type does is SPEC §4's table; how it stays correct when Stripe delivers
 * late, twice, or out of order:
 * - Ordering. Each user keeps stripe_state_at, the `created` of the newest event applied. An
 *   event older than that is recorded as ignored (its note says why) and changes nothing.
 *   Equal times apply: Stripe stamps a signup's events with the same second.
 * - Authority. Where the payload is a snapshot (subscription status and items), the
 *   subscription is re-read from Stripe, so whichever event is applied last writes the truth.
 * - Early events. A subscription or invoice event may arrive before the
 *   checkout.session.completed that links its subscription to a user. It is parked (status
 *   ignored, note "no user has subscription …"); when the checkout links the subscription, its
 *   parked events are queued again, so every arrival order ends in the same state.
 * - Idempotency. Remote calls are idempotent (find before create in Keycloak; a concurrent
 *   create's 409 finds again). Local changes, follow-up tasks (with dedup keys) and parking
 *   are one transaction per event, serialized per subscription (SQLite: the write lock;
 *   PostgreSQL: a transaction advisory lock on the subscription id). Keycloak's enabled flag
 *   is then made to match the committed local state, and re-checked until the state it was
 *   derived from did not change meanwhile, so two events processed at once cannot leave
 *   Keycloak behind the database.
 * - Bookkeeping. stripe_events.status ends processed or ignored (with the reason in
 *   last_error), attempts counts runs, and a failed run records last_error; the status becomes
 *   failed on the task's last attempt (before that it stays pending, to be retried).
 */
#ifndef USHER_DOMAIN_STRIPE_PROCESSING_H
#define USHER_DOMAIN_STRIPE_PROCESSING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct db_pool;
struct usher_config;

#define STRIPE_NOTE_MAX 256

enum stripe_outcome {
    STRIPE_OUTCOME_PROCESSED = 1, /* applied */
    STRIPE_OUTCOME_IGNORED = 2, /* recorded, nothing to do (note says why) */
    STRIPE_OUTCOME_ALREADY = 3, /* an earlier run finished it */
};

struct stripe_process_result {
    enum stripe_outcome outcome;
    char note[STRIPE_NOTE_MAX]; /* why ignored; on failure, what failed (no secrets) */
};

/*
 * Processes the stored event event_id. final_attempt: a failure now marks the event failed.
 * USHER_ENOTFOUND when no such event is stored; other errors are transient (Stripe, Keycloak
 * or the database) and worth a retry; out->note describes them.
 */
int stripe_process_event(struct db_pool *pool, const struct usher_config *cfg, const char *event_id,
                         int64_t now, bool final_attempt, struct stripe_process_result *out);

/* ---- refreshing from Stripe without an event (SPEC §9, §11; the daily reconcile) ---------- */

enum stripe_refresh_outcome {
    STRIPE_REFRESH_UPDATED = 1, /* status and items taken from Stripe */
    STRIPE_REFRESH_CANCELED = 2, /* Stripe had canceled it: the cancellation was applied */
    STRIPE_REFRESH_NO_SUBSCRIPTION = 3, /* the user has no subscription to read */
};

struct stripe_refresh_result {
    enum stripe_refresh_outcome outcome;
    char status[40]; /* the status now stored */
    int items; /* subscription items now cached */
    char note[STRIPE_NOTE_MAX]; /* on failure, what failed */
};

/*
 * Re-reads the user's subscription from Stripe and applies it as an update event would
 * (status, items, payment block lifted when active, sync queued, Keycloak enabled flag) — or,
 * when Stripe canceled it and Usher missed that, as the cancellation. stripe_state_at is left
 * alone: no event was applied. USHER_ENOTFOUND: no such user.
 */
int stripe_refresh_user(struct db_pool *pool, const struct usher_config *cfg, int64_t user_id,
                        int64_t now, struct stripe_refresh_result *out);

/* Users whose subscription the daily reconcile re-reads (active, trialing, past_due), ids
 * greater than after_id in order, at most max into ids. */
int stripe_reconcile_candidates(struct db_pool *pool, int64_t after_id, int max, int64_t *ids,
                                int *n);

#endif
