/*
 * stripe_invoice_events.c — invoice.payment_failed and invoice.paid (SPEC §4).
 *
 * The subscription comes from the invoice in either API shape (stripe_client.h). A failed
 * payment is authoritative on its own: past_due, the account disabled and its sessions ended,
 * the final date for a recovery set (the first failure + RECOVERY_WINDOW_DAYS; a second
 * failure does not extend it), the payment-failed email queued. A paid invoice only matters
 * to a user blocked for a failed payment: the subscription is re-read, and when Stripe says
 * it is active (or trialing) again the block and its final date are lifted and the status
 * and items taken from Stripe.
 */
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "db/db.h"
#include "domain/session_store.h"
#include "domain/stripe_processing_internal.h"
#include "integrations/stripe_client.h"

#include <string.h>

static const char *invoice_subscription(struct sp_ctx *c)
{
    const char *id = stripe_invoice_subscription_id(c->ev.object);
    if (!id || strncmp(id, "sub_", 4) || !stripe_id_valid(id)) {
        sp_ignore(c, "invoice without a subscription");
        return NULL;
    }
    return id;
}

static int apply_failed(struct sp_ctx *c, struct db_conn *conn, const struct sp_user *u,
                        const json_t *sub)
{
    (void)sub;
    if (!strcmp(u->status, "canceled")) {
        sp_ignore(c, "payment failed for a subscription already canceled");
        return 0;
    }
    const struct db_param p[] = {DB_INT(c->now + (int64_t)c->cfg->recovery_window_days * 86400),
                                 DB_INT(u->id)};
    int rc = db_exec(conn,
                     "UPDATE users SET subscription_status = 'past_due', payment_disabled = true, "
                     "access_expires_at = COALESCE(access_expires_at, $1) WHERE id = $2",
                     p, 2, NULL);
    if (rc == 0)
        rc = session_delete_for_user(conn, u->id, NULL);
    if (rc == 0)
        rc = sp_enqueue(conn, "notify_payment_failed",
                        json_pack("{s:I}", "user_id", (json_int_t)u->id), "notify:", c->ev.id,
                        c->now);
    return rc;
}

int sp_invoice_payment_failed(struct sp_ctx *c)
{
    const char *id = invoice_subscription(c);
    if (!id)
        return 0;
    int64_t user_id = 0;
    int rc = sp_for_subscription(c, id, SP_FETCH_NEVER, apply_failed, &user_id);
    if (rc == 0 && user_id) {
        rc = sp_converge_access(c, user_id);
        if (rc == 0)
            log_info("msg=\"payment failed: access suspended\" event_id=%s user_id=%lld", c->ev.id,
                     (long long)user_id);
    }
    return rc;
}

static int apply_paid(struct sp_ctx *c, struct db_conn *conn, const struct sp_user *u,
                      const json_t *sub)
{
    if (!u->payment_disabled || !sub)
        return 0;
    const char *status = sp_subscription_status(sub);
    if (strcmp(status, "active") && strcmp(status, "trialing"))
        return 0; /* still not paid up as far as Stripe is concerned */
    const struct db_param p[] = {DB_INT(u->id)};
    /* The final date belonged to the failed payment (a cancellation keeps its own). */
    int rc = db_exec(conn,
                     "UPDATE users SET payment_disabled = false, access_expires_at = CASE WHEN "
                     "canceled_at IS NULL THEN NULL ELSE access_expires_at END WHERE id = $1",
                     p, 1, NULL);
    if (rc == 0)
        rc = sp_apply_subscription(conn, u->id, sub);
    if (rc == 0)
        rc = sp_request_sync(c, conn, u->id);
    return rc;
}

int sp_invoice_paid(struct sp_ctx *c)
{
    const char *id = invoice_subscription(c);
    if (!id)
        return 0;
    int64_t user_id = 0;
    int rc = sp_for_subscription(c, id, SP_FETCH_IF_PAYMENT_DISABLED, apply_paid, &user_id);
    if (rc == 0 && user_id)
        rc = sp_converge_access(c, user_id);
    return rc;
}
