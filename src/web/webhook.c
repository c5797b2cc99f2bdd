/*
 * webhook.c — POST /onboarding/webhook/ (SPEC §4): Stripe's deliveries.
 *
 * Verify the signature over the raw body, store the event with its processing task, answer
 * 200 at once. A duplicate is answered 200 and changes nothing. A forged, stale or malformed
 * delivery gets 400 and changes nothing. With no STRIPE_WEBHOOK_SECRET configured every
 * delivery gets 500 and a log line, so Stripe keeps retrying until the operator fixes it.
 */
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "domain/stripe_events.h"
#include "integrations/stripe_webhook.h"
#include "web/app.h"
#include "web/handlers.h"
#include "web/response.h"

int web_stripe_webhook(struct web_request *r)
{
    const char *secret = r->app->cfg->stripe_webhook_secret;
    if (!*secret) {
        log_error("request_id=%s msg=\"webhook refused: STRIPE_WEBHOOK_SECRET is not set\"",
                  r->request_id);
        web_reply_json_error(r, 500, "Webhook secret not configured");
        return 0;
    }
    size_t len = 0;
    const char *body = web_body(r, &len);
    enum stripe_sig_result sig =
        stripe_webhook_verify(web_header(r, "Stripe-Signature"), body ? body : "", len, secret,
                              r->now, STRIPE_WEBHOOK_TOLERANCE_SECONDS);
    if (sig != STRIPE_SIG_OK) {
        log_warn("request_id=%s msg=\"webhook signature refused\" reason=\"%s\"", r->request_id,
                 stripe_sig_result_name(sig));
        web_reply_json_error(r, 400, "Invalid signature");
        return 0;
    }
    bool duplicate = false;
    int rc = stripe_event_ingest(r->app->db, body ? body : "", len, r->now, &duplicate);
    if (rc == USHER_EINVAL) {
        web_reply_json_error(r, 400, "Invalid event");
        return 0;
    }
    if (rc != 0)
        return rc;
    json_t *reply = json_pack("{s:b, s:b}", "received", 1, "duplicate", duplicate);
    web_reply_json(r, 200, reply);
    json_decref(reply);
    return 0;
}
