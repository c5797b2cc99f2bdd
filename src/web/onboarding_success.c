/*
 * onboarding_success.c — after payment (SPEC §2, §3):
 *
 *   GET  /onboarding/success/?session_id=cs_…     the thank-you page with provisioning progress
 *   GET  /onboarding/success/status/              {"state", "message", "ready"} for polling
 *   POST /onboarding/success/resend-password/     {email} -> always {"sent":true, "message"}
 *
 * The page believes only Stripe: it retrieves the Checkout Session and shows anything only
 * for a complete subscription checkout; an open, expired, unknown or malformed id goes back
 * to the checkout. It then clears the onboarding state and keeps in the web session, under
 * "signup", what progress needs (checkout session, customer and subscription ids, email,
 * first name), so the status endpoint takes no arguments and reveals nothing about other
 * signups. Progress itself comes from the database (domain/onboarding_progress.h).
 *
 * The password-setup email is Keycloak's own and is sent by the worker: the endpoint only
 * enqueues send_keycloak_password_reset_email, and only when a local user with that email has
 * a Keycloak id. Its answer is the same either way (no account enumeration); it is limited
 * to one request a minute per web session (429 beyond), and to one email a minute per address
 * (silently, to keep the answer neutral).
 */
#include "core/config.h"
#include "core/crypto.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/messages.h"
#include "domain/onboarding_progress.h"
#include "domain/rate_limit.h"
#include "domain/session_store.h"
#include "integrations/stripe_client.h"
#include "web/app.h"
#include "web/handlers.h"
#include "web/pages.h"
#include "web/response.h"
#include "web/stripe_checkout.h"
#include "web/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECKOUT_PATH "/onboarding/checkout/"
#define RESEND_WINDOW_SECONDS 60

static int show(struct web_request *r, const char *email, const char *first_name,
                const json_t *signup)
{
    enum onboarding_progress progress = ONBOARDING_PENDING;
    int rc = onboarding_progress_get(
        r->app->db, json_string_value(json_object_get(signup, "subscription_id")),
        json_string_value(json_object_get(signup, "customer_id")), &progress);
    if (rc != 0)
        return rc;
    json_t *ctx = web_page_context(r, msg("title.welcome_aboard"));
    json_object_set_new(ctx, "email", json_string(email));
    json_object_set_new(ctx, "first_name", json_string(first_name));
    json_object_set_new(ctx, "progress_state", json_string(onboarding_progress_name(progress)));
    json_object_set_new(ctx, "progress_message",
                        json_string(onboarding_progress_message(progress)));
    json_object_set_new(ctx, "ready", json_boolean(progress == ONBOARDING_READY));
    web_reply_page(r, 200, "onboarding_success", ctx);
    json_decref(ctx);
    return 0;
}

int web_onboarding_success(struct web_request *r)
{
    json_t *cs = NULL;
    int confirmed = web_checkout_confirm(r, CHECKOUT_PATH, &cs);
    if (confirmed != 0)
        return confirmed > 0 ? 0 : confirmed;
    const char *first_name = stripe_str(json_object_get(cs, "metadata"), "first_name");
    char *fallback = NULL;
    if (!first_name) {
        json_t *state = json_object_get(web_session_data(r), "onboarding");
        const char *stored = json_string_value(json_object_get(state, "first_name"));
        fallback = xstrdup(stored ? stored : "");
    }
    /* first_name may point into the onboarding state, which web_checkout_follow drops */
    json_t *signup =
        web_checkout_follow(r, web_query(r, "session_id"), cs, first_name ? first_name : fallback);
    json_decref(cs);
    free(fallback);
    int rc = show(r, json_string_value(json_object_get(signup, "email")),
                  json_string_value(json_object_get(signup, "first_name")), signup);
    json_decref(signup);
    return rc;
}

int web_onboarding_success_status(struct web_request *r)
{
    json_t *signup = json_object_get(web_session_data(r), "signup");
    if (!json_is_object(signup)) {
        web_reply_json_error(r, 404, msg("signup.none_in_browser"));
        return 0;
    }
    enum onboarding_progress progress = ONBOARDING_PENDING;
    int rc = onboarding_progress_get(
        r->app->db, json_string_value(json_object_get(signup, "subscription_id")),
        json_string_value(json_object_get(signup, "customer_id")), &progress);
    if (rc != 0)
        return rc;
    json_t *body =
        json_pack("{s:s, s:s, s:b}", "state", onboarding_progress_name(progress), "message",
                  onboarding_progress_message(progress), "ready", progress == ONBOARDING_READY);
    web_reply_json(r, 200, body);
    json_decref(body);
    return 0;
}

/* One hit on bucket (1 per RESEND_WINDOW_SECONDS); *allowed and *retry_after from it. */
static int hit(struct web_request *r, const char *kind, const char *who, bool *allowed,
               int64_t *retry_after)
{
    char bucket[RATE_LIMIT_BUCKET_MAX];
    snprintf(bucket, sizeof bucket, "password-setup:%s:%s", kind, who);
    struct rate_limit_result limit;
    int rc = rate_limit_hit_pool(r->app->db, bucket, 1, RESEND_WINDOW_SECONDS, r->now, &limit);
    if (rc == 0) {
        *allowed = limit.allowed;
        *retry_after = limit.retry_after;
    }
    return rc;
}

static void reply_limited(struct web_request *r, int64_t retry_after)
{
    char seconds[24];
    snprintf(seconds, sizeof seconds, "%lld", (long long)retry_after);
    char *message = msg_format("signup.password_link_wait",
                               json_pack("{s:I}", "seconds", (json_int_t)retry_after));
    web_set_header(r, "Retry-After", seconds);
    json_t *body =
        json_pack("{s:s, s:I}", "error", message, "retry_after", (json_int_t)retry_after);
    free(message);
    web_reply_json(r, 429, body);
    json_decref(body);
}

int web_onboarding_resend_password(struct web_request *r)
{
    static const char *const required[] = {"email", NULL};
    json_t *body = NULL;
    if (web_json_body(r, required, &body) != 0)
        return 0;
    if (!r->session) { /* the CSRF check requires one; never reached */
        json_decref(body);
        return USHER_EFORBIDDEN;
    }
    char *email = NULL;
    int rc = web_json_email(r, body, &email);
    json_decref(body);
    if (rc != 0)
        return 0;
    bool allowed = false;
    int64_t retry_after = 0;
    rc = hit(r, "session", r->session->id_hash, &allowed, &retry_after);
    if (rc == 0 && !allowed) {
        reply_limited(r, retry_after);
        free(email);
        return 0;
    }
    char email_hash[CRYPTO_SHA256_HEX_LEN + 1];
    crypto_sha256_hex(email, email_hash);
    if (rc == 0)
        rc = hit(r, "email", email_hash, &allowed, &retry_after);
    bool enqueued = false;
    if (rc == 0 && allowed)
        rc = onboarding_request_password_email(r->app->db, email, r->now, &enqueued);
    free(email);
    if (rc != 0)
        return rc;
    if (enqueued)
        log_info("request_id=%s msg=\"password setup email requested\"", r->request_id);
    json_t *reply =
        json_pack("{s:b, s:s}", "sent", 1, "message", msg("signup.password_link_neutral"));
    web_reply_json(r, 200, reply);
    json_decref(reply);
    return 0;
}
