/*
 * recovery_pages.c — account recovery's page and its way back to paying (SPEC §2, §7):
 *
 *   GET  /recovery/                      the recovery page (a reload shows the verified
 *                                        account's outcome again)
 *   POST /recovery/checkout-session/     {} -> {"clientSecret"} | {"url"}: a subscription
 *                                        Checkout with the previous plan, for the same Stripe
 *                                        customer, for the account verified in this browser
 *   GET  /recovery/success/?session_id=  after payment: progress until access is back
 *
 * Nothing here restores access: the account is re-enabled, its seats and groups restored
 * only when Stripe reports the new subscription paid (checkout.session.completed, the same
 * idempotent path as a signup). A checkout that is never paid changes nothing.
 */
#include "core/config.h"
#include "core/err.h"
#include "core/human_format.h"
#include "core/mem.h"
#include "core/messages.h"
#include "domain/recovery.h"
#include "integrations/stripe_client.h"
#include "web/app.h"
#include "web/handlers.h"
#include "web/pages.h"
#include "web/recovery_session.h"
#include "web/response.h"
#include "web/session.h"
#include "web/stripe_checkout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECOVERY_PATH "/recovery/"

/* The outcome a verified account shows on a reload, into ctx. */
static int verified_context(struct web_request *r, json_t *ctx)
{
    int64_t user_id = web_recovery_verified_user(r);
    if (!user_id)
        return 0;
    struct recovery_account a;
    int rc = recovery_find_id(r->app->db, user_id, r->now, &a);
    if (rc == 0 && a.state == RECOVERY_RECOVERABLE) {
        json_t *plan = NULL;
        if (recovery_previous_plan(r->app->db, a.id, &plan) == 0)
            json_object_set_new(ctx, "plan", plan);
        char until[FORMAT_DATE_MAX];
        format_long_date(a.access_expires_at, until, sizeof until);
        json_object_set_new(ctx, "recovered",
                            json_pack("{s:s, s:s}", "username", a.username, "until", until));
    } else if (rc == 0 && a.state == RECOVERY_ACTIVE) {
        json_object_set_new(ctx, "active", json_true());
    } else if (rc == 0 && a.id) {
        char date[FORMAT_DATE_MAX] = "";
        if (a.access_expires_at)
            format_long_date(a.access_expires_at, date, sizeof date);
        json_object_set_new(ctx, "closed", json_pack("{s:s}", "closed_on", date));
    }
    recovery_account_cleanup(&a);
    return rc;
}

int web_recovery_page(struct web_request *r)
{
    const struct usher_config *cfg = r->app->cfg;
    json_t *ctx = web_page_context(r, msg("title.restore_your_account"));
    const char *identifier = web_recovery_identifier(r);
    json_object_set_new(ctx, "identifier", json_string(identifier ? identifier : ""));
    bool embedded = cfg->stripe_checkout_ui == CHECKOUT_UI_EMBEDDED;
    json_object_set_new(ctx, "ui_mode", json_string(embedded ? "embedded" : "hosted"));
    json_object_set_new(ctx, "embedded", json_boolean(embedded));
    json_object_set_new(ctx, "publishable_key", json_string(cfg->stripe_publishable_key));
    int rc = verified_context(r, ctx);
    if (rc == 0)
        web_reply_page(r, 200, "recovery", ctx);
    json_decref(ctx);
    return rc;
}

static void reply_error(struct web_request *r, int status, const char *message, const char *next)
{
    json_t *body = json_pack("{s:s}", "error", message);
    if (next)
        json_object_set_new(body, "redirect", json_string(next));
    web_reply_json(r, status, body);
    json_decref(body);
}

static int open_checkout(struct web_request *r, const struct recovery_account *a,
                         const json_t *plan)
{
    const struct usher_config *cfg = r->app->cfg;
    const json_t *lines = json_object_get(plan, "lines");
    size_t n = json_array_size(lines);
    struct stripe_line_item *items = xcalloc(n, sizeof *items);
    for (size_t i = 0; i < n; i++) {
        const json_t *line = json_array_get(lines, i);
        items[i].price = json_string_value(json_object_get(line, "price_id"));
        items[i].quantity = json_integer_value(json_object_get(line, "quantity"));
    }
    /* The same metadata as a signup: the webhook finds the account by its email and
     * username, links the new subscription and lifts the cancellation. */
    const struct stripe_metadata metadata[] = {
        {"first_name", a->first_name},
        {"last_name", a->last_name},
        {"username", a->username},
        {"recovery", "true"},
    };
    char *return_url =
        xasprintf("%s/recovery/success/?session_id={CHECKOUT_SESSION_ID}", cfg->public_base_url);
    char *cancel_url = xasprintf("%s" RECOVERY_PATH, cfg->public_base_url);
    bool customer = a->stripe_customer_id && stripe_id_valid(a->stripe_customer_id);
    struct stripe_checkout_params p = {.items = items,
                                       .item_count = n,
                                       .customer = customer ? a->stripe_customer_id : NULL,
                                       .customer_email = customer ? NULL : a->email,
                                       .metadata = metadata,
                                       .metadata_count = sizeof metadata / sizeof metadata[0],
                                       .return_url = return_url,
                                       .cancel_url = cancel_url};
    web_checkout_start(r, &p);
    free(return_url);
    free(cancel_url);
    free(items);
    return 0;
}

int web_recovery_checkout_session(struct web_request *r)
{
    int64_t user_id = web_recovery_verified_user(r);
    if (!user_id) {
        reply_error(r, 403, msg("recovery.not_verified"), NULL);
        return 0;
    }
    struct recovery_account a;
    int rc = recovery_find_id(r->app->db, user_id, r->now, &a);
    json_t *plan = NULL;
    if (rc == 0 && a.state != RECOVERY_RECOVERABLE) {
        reply_error(r, 409, msg("recovery.not_recoverable"), RECOVERY_PATH);
    } else if (rc == 0) {
        rc = recovery_previous_plan(r->app->db, a.id, &plan);
        if (rc == USHER_ENOTFOUND) {
            reply_error(r, 409, msg("recovery.plan_gone"), "/onboarding/");
            rc = 0;
        } else if (rc == 0) {
            rc = open_checkout(r, &a, plan);
        }
    }
    json_decref(plan);
    recovery_account_cleanup(&a);
    return rc;
}

int web_recovery_success(struct web_request *r)
{
    json_t *cs = NULL;
    int confirmed = web_checkout_confirm(r, RECOVERY_PATH, &cs);
    if (confirmed != 0)
        return confirmed > 0 ? 0 : confirmed;
    json_t *signup = web_checkout_follow(r, web_query(r, "session_id"), cs,
                                         stripe_str(json_object_get(cs, "metadata"), "first_name"));
    json_decref(cs);
    web_recovery_forget(r);
    json_t *ctx = web_page_context(r, msg("title.welcome_back"));
    json_object_set_new(ctx, "first_name", json_incref(json_object_get(signup, "first_name")));
    json_object_set_new(ctx, "email", json_incref(json_object_get(signup, "email")));
    web_reply_page(r, 200, "recovery_success", ctx);
    json_decref(ctx);
    json_decref(signup);
    return 0;
}
