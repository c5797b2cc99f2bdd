/*
 * stripe_processing_internal.h — what the event handlers of stripe_processing.h share: the
 * event being processed, the per-subscription transaction, applying a Stripe subscription to
 * a user (subscription_state.c), and bringing Keycloak's enabled flag in line with the
 * committed state. Not for use outside the stripe_*.c / subscription_state.c files.
 */
#ifndef USHER_DOMAIN_STRIPE_PROCESSING_INTERNAL_H
#define USHER_DOMAIN_STRIPE_PROCESSING_INTERNAL_H

#include "domain/stripe_processing.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct db_conn;
struct db_pool;
struct kc_admin;
struct usher_config;

struct sp_event {
    const char *id; /* evt_… */
    const char *type;
    int64_t created; /* Stripe's clock */
    const json_t *object; /* data.object */
};

struct sp_ctx {
    struct db_pool *pool;
    const struct usher_config *cfg;
    int64_t now;
    struct sp_event ev;
    struct stripe_process_result *res; /* handlers set outcome and note */
    bool recorded; /* the event's status was written in the handler's transaction (parked) */
};

/* Handlers: 0 with c->res->outcome set, or an error with c->res->note describing it. */
int sp_checkout_completed(struct sp_ctx *c);
int sp_subscription_changed(struct sp_ctx *c); /* customer.subscription.created / .updated */
int sp_subscription_deleted(struct sp_ctx *c);
int sp_invoice_payment_failed(struct sp_ctx *c);
int sp_invoice_paid(struct sp_ctx *c);

/* Sets the outcome to ignored with a formatted note. */
void sp_ignore(struct sp_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Formats a failure description into the note; returns rc. */
int sp_fail(struct sp_ctx *c, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- the per-subscription transaction (subscription_state.c) ----------------------------- */

/* Begins a write transaction on a borrowed connection and serializes it with every other
 * event transaction of the same subscription. On failure nothing is held. */
int sp_begin(struct sp_ctx *c, const char *subscription_id, struct db_conn **conn);
/* Commits (rc == 0) or rolls back, and releases the connection; returns rc or the commit's
 * failure. */
int sp_finish(struct db_conn *conn, int rc);

struct sp_user {
    int64_t id; /* 0: none */
    int64_t state_at; /* stripe_state_at */
    char status[40];
    bool payment_disabled;
};
/* The user whose stripe_subscription_id is subscription_id (u->id 0 when none). */
int sp_user_by_subscription(struct db_conn *conn, const char *subscription_id, struct sp_user *u);
/* Whether this event is older than the newest one applied to u; when it is, the outcome is
 * set to ignored with the reason. */
bool sp_stale(struct sp_ctx *c, const struct sp_user *u);
/* Parks the event: no user has the subscription yet (see stripe_processing.h). Sets the
 * outcome and writes the status in the caller's transaction. */
int sp_park(struct sp_ctx *c, struct db_conn *conn, const char *subscription_id);
/* Queues the parked events of subscription_id again (after checkout linked it). */
int sp_replay_parked(struct sp_ctx *c, struct db_conn *conn, const char *subscription_id);
/* Moves stripe_state_at forward to this event's created (never backwards). */
int sp_touch_state(struct sp_ctx *c, struct db_conn *conn, int64_t user_id);

/* Validated status of a Stripe subscription object, or NULL. */
const char *sp_subscription_status(const json_t *subscription);
/*
 * Applies a subscription object to the user: status, customer, subscription id, and the
 * subscription_items replaced by its items (price → product through product_prices; a price
 * of another Stripe product than the catalog's is logged as a mismatch).
 */
int sp_apply_subscription(struct db_conn *conn, int64_t user_id, const json_t *subscription);
/* The subscription's items as previous_items JSON text ([{price, quantity}]; heap). */
char *sp_items_json(const json_t *subscription);
/* Enqueues a task with a dedup key made of prefix and key. */
int sp_enqueue(struct db_conn *conn, const char *name, json_t *args, const char *dedup_prefix,
               const char *dedup_key, int64_t now);
/* Enqueues sync_user_post_checkout for the user, once per event. */
int sp_request_sync(struct sp_ctx *c, struct db_conn *conn, int64_t user_id);

/* Re-reads a subscription from Stripe (*out owned by the caller). */
int sp_fetch_subscription(struct sp_ctx *c, const char *id, json_t **out);

enum sp_fetch { SP_FETCH_NEVER, SP_FETCH_ALWAYS, SP_FETCH_IF_PAYMENT_DISABLED };
/* The event's change to a linked, not stale user, inside the subscription's transaction;
 * subscription is the re-read one (NULL when not fetched). */
typedef int (*sp_apply_fn)(struct sp_ctx *c, struct db_conn *conn, const struct sp_user *u,
                           const json_t *subscription);
/*
 * The common shape of an event about a subscription: re-read it from Stripe when `fetch` asks
 * (outside any transaction), then in the subscription's transaction find its user — none:
 * park the event; older than the user's state: ignore it; otherwise apply fn and move
 * stripe_state_at forward. *user_id gets the user when fn ran (else 0).
 */
int sp_for_subscription(struct sp_ctx *c, const char *subscription_id, enum sp_fetch fetch,
                        sp_apply_fn fn, int64_t *user_id);

/* A re-read subscription's status and items applied (customer.subscription.created/updated,
 * or a refresh); active or trialing lifts a payment block; a sync follows. A canceled one is
 * the cancellation (below), once. */
int sp_apply_changed(struct sp_ctx *c, struct db_conn *conn, const struct sp_user *u,
                     const json_t *sub);
/* The cancellation of SPEC §4 (customer.subscription.deleted, or one found by a re-read): sub
 * is the canceled subscription (NULL: the event's object). Idempotent. */
int sp_apply_cancellation(struct sp_ctx *c, struct db_conn *conn, const struct sp_user *u,
                          const json_t *sub);

/*
 * After the commit: makes the user's Keycloak account enabled or disabled as the stored state
 * says (canceled, expired or payment_disabled → disabled, and their Keycloak and Usher
 * sessions ended; active or trialing → enabled; otherwise left alone), repeating while the
 * state changes under it.
 */
int sp_converge_access(struct sp_ctx *c, int64_t user_id);

#endif
