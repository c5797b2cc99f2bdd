/*
 * stripe_subscription_events.c — customer.subscription.created / .updated / .deleted
 * (SPEC §4).
 *
 * created/updated: the subscription is re-read from Stripe (the payload is a snapshot that a
 * later change may already have overtaken), its status and items replace the local ones, a
 * provisioning sync follows, and an active or trialing subscription lifts a payment block.
 *
 * deleted: a cancellation is final in Stripe, so the payload is authoritative. The items are
 * kept as previous_items for a recovery, the cache is cleared, the recovery window starts;
 * seats stay (provisioning keeps them inside the window) while the account is disabled and its
 * sessions end. A re-run keeps the first run's dates and items.
 */
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "db/db.h"
#include "domain/session_store.h"
#include "domain/stripe_processing_internal.h"
#include "integrations/stripe_client.h"

#include <stdlib.h>
#include <string.h>

#define DAY_SECONDS 86400

static const char *subscription_id(struct sp_ctx *c)
{
    const char *id = stripe_str(c->ev.object, "id");
    if (!id || strncmp(id, "sub_", 4) || !stripe_id_valid(id)) {
        sp_ignore(c, "subscription event without a valid subscription id");
        return NULL;
    }
    return id;
}

int sp_apply_changed(struct sp_ctx *c, struct db_conn *conn, const struct sp_user *u,
                     const json_t *sub)
{
    const char *status = sp_subscription_status(sub);
    /* Stripe says it is over (the .deleted event may still be on its way): the whole
     * cancellation, so the seats are kept for the recovery window, not released by a sync. */
    if (!strcmp(status, "canceled"))
        return strcmp(u->status, "canceled") ? sp_apply_cancellation(c, conn, u, sub) : 0;
    int rc = sp_apply_subscription(conn, u->id, sub);
    if (rc == 0 && (!strcmp(status, "active") || !strcmp(status, "trialing"))) {
        const struct db_param p[] = {DB_INT(u->id)};
        rc = db_exec(conn, "UPDATE users SET payment_disabled = false WHERE id = $1", p, 1, NULL);
    }
    if (rc == 0)
        rc = sp_request_sync(c, conn, u->id);
    return rc;
}

int sp_subscription_changed(struct sp_ctx *c)
{
    const char *id = subscription_id(c);
    if (!id)
        return 0;
    int64_t user_id = 0;
    int rc = sp_for_subscription(c, id, SP_FETCH_ALWAYS, sp_apply_changed, &user_id);
    if (rc == 0 && user_id)
        rc = sp_converge_access(c, user_id);
    return rc;
}

int sp_apply_cancellation(struct sp_ctx *c, struct db_conn *conn, const struct sp_user *u,
                          const json_t *sub)
{
    const json_t *canceled = sub ? sub : c->ev.object; /* the re-read one when there is one */
    const char *sub_id = stripe_str(canceled, "id");
    int64_t window = (int64_t)c->cfg->recovery_window_days * DAY_SECONDS;
    char *items = sp_items_json(canceled);
    int rc;
    if (!strcmp(u->status, "canceled")) {
        /* Canceled already (a re-run, or an update saw the status first): keep what was
         * recorded, fill in what was not. */
        const struct db_param p[] = {DB_INT(c->now), DB_INT(window), DB_TEXT(items), DB_INT(u->id)};
        rc = db_exec(conn,
                     "UPDATE users SET access_expires_at = COALESCE(access_expires_at, "
                     "COALESCE(canceled_at, $1) + $2), canceled_at = COALESCE(canceled_at, $1), "
                     "previous_items = COALESCE(previous_items, $3) WHERE id = $4",
                     p, DB_NPARAMS(p), NULL);
    } else {
        const struct db_param p[] = {DB_INT(c->now), DB_INT(c->now + window), DB_TEXT(items),
                                     DB_INT(u->id)};
        rc = db_exec(conn,
                     "UPDATE users SET subscription_status = 'canceled', canceled_at = $1, "
                     "access_expires_at = $2, previous_items = $3 WHERE id = $4",
                     p, DB_NPARAMS(p), NULL);
    }
    free(items);
    const struct db_param uid[] = {DB_INT(u->id)};
    if (rc == 0)
        rc = db_exec(conn, "DELETE FROM subscription_items WHERE user_id = $1", uid, 1, NULL);
    if (rc == 0)
        rc = session_delete_for_user(conn, u->id, NULL);
    if (rc == 0)
        rc = sp_enqueue(
            conn, "notify_subscription_canceled", json_pack("{s:I}", "user_id", (json_int_t)u->id),
            "notify-canceled:", sub_id, c->now); /* a subscription ends once: one email */
    /* Seats stay for the recovery window; the attributes follow the status. */
    if (rc == 0)
        rc = sp_request_sync(c, conn, u->id);
    return rc;
}

int sp_subscription_deleted(struct sp_ctx *c)
{
    const char *id = subscription_id(c);
    if (!id)
        return 0;
    int64_t user_id = 0;
    int rc = sp_for_subscription(c, id, SP_FETCH_NEVER, sp_apply_cancellation, &user_id);
    if (rc == 0 && user_id) {
        rc = sp_converge_access(c, user_id);
        if (rc == 0)
            log_info("msg=\"subscription canceled\" event_id=%s user_id=%lld", c->ev.id,
                     (long long)user_id);
    }
    return rc;
}
