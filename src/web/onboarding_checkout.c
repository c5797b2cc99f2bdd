/*
 * onboarding_checkout.c — step 4 of onboarding (SPEC §2, §3): the checkout page, and the
 * page Stripe sends an abandoned checkout back to.
 *
 *   GET /onboarding/checkout/   order summary + last name, username, email and its code
 *   GET /onboarding/cancel/     "checkout abandoned", with the way back
 *
 * Without a first name the visitor goes to step 1, without a plan and cycle to step 2. The
 * order is recomputed from the database on every view (onboarding_check, then
 * onboarding_order), never taken from the session, so a catalog that changed since the choice
 * shows as a refusal with the way back to the plan step instead of a stale price. The
 * browser side (static/usher.js) drives validate → send code → verify → checkout session →
 * Stripe; Stripe.js is loaded only in embedded mode, as the CSP allows. The summary's
 * renewal note gets charged_today ("$12.00") and renews_on ("15 February 2027").
 */
#include "core/config.h"
#include "core/human_format.h"
#include "core/messages.h"
#include "domain/onboarding.h"
#include "domain/onboarding_cache.h"
#include "web/app.h"
#include "web/handlers.h"
#include "web/onboarding_session.h"
#include "web/pages.h"
#include "web/response.h"

#include <stdlib.h>
#include <string.h>

static const char *str(const json_t *state, const char *key)
{
    const char *s = json_string_value(json_object_get(state, key));
    return s ? s : "";
}

/* Step 3 skips itself for plans without storage add-ons, so "Back" must skip it too. */
static int back_to_addons(struct web_request *r, const char *plan, bool *addons)
{
    json_t *storage = NULL;
    int rc = onboarding_list_cached(r->app->catalog, r->app->db, "storage", plan, &storage);
    *addons = json_array_size(storage) > 0;
    json_decref(storage);
    return rc;
}

/* What the renewal note (templates/partials/renewal_note.mustache) says: the amount charged
 * today and the day the subscription renews (today + one month or one year). */
static void set_renewal(json_t *ctx, const json_t *order, const char *cycle, int64_t now)
{
    char money[FORMAT_PRICE_MAX];
    char day[FORMAT_DATE_MAX];
    format_money(json_integer_value(json_object_get(order, "total")),
                 json_string_value(json_object_get(order, "currency")), money, sizeof money);
    format_long_date(onboarding_renews_at(now, cycle), day, sizeof day);
    json_object_set_new(ctx, "charged_today", json_string(money));
    json_object_set_new(ctx, "renews_on", json_string(day));
}

static int show(struct web_request *r, const json_t *state)
{
    const char *plan = str(state, "plan");
    const char *cycle = str(state, "billing_cycle");
    struct onboarding_choice choice = {.plan = plan,
                                       .cycle = cycle,
                                       .addons = json_object_get(state, "general_addons"),
                                       .storage = json_object_get(state, "storage_addons")};
    char *error = NULL;
    json_t *order = NULL;
    int rc = onboarding_check(r->app->db, &choice, &error);
    if (rc == 0)
        rc = onboarding_order(r->app->db, &choice, &order, &error);
    bool back_addons = false;
    if (rc == 0 || error)
        rc = back_to_addons(r, plan, &back_addons);
    if (rc != 0) {
        json_decref(order);
        free(error);
        return rc;
    }

    const struct usher_config *cfg = r->app->cfg;
    bool embedded = cfg->stripe_checkout_ui == CHECKOUT_UI_EMBEDDED;
    json_t *ctx = web_page_context(r, msg("title.your_account_and_payment"));
    json_object_set_new(ctx, "first_name", json_string(str(state, "first_name")));
    json_object_set_new(ctx, "last_name", json_string(str(state, "last_name")));
    json_object_set_new(ctx, "username", json_string(str(state, "username")));
    const char *verified = str(state, "email_verified");
    json_object_set_new(ctx, "email", json_string(*verified ? verified : str(state, "email")));
    json_object_set_new(ctx, "email_verified", json_string(verified));
    json_object_set_new(ctx, "email_locked", json_boolean(*verified));
    json_object_set_new(ctx, "back_to_addons", json_boolean(back_addons));
    json_object_set_new(ctx, "cycle_annual", json_boolean(!strcmp(cycle, "annual")));
    json_object_set_new(ctx, "ui_mode", json_string(embedded ? "embedded" : "hosted"));
    json_object_set_new(ctx, "embedded", json_boolean(embedded));
    json_object_set_new(ctx, "publishable_key", json_string(cfg->stripe_publishable_key));
    int status = 200;
    if (error) {
        json_object_set_new(ctx, "order_error", json_string(error));
        status = 409;
    } else {
        json_object_set(ctx, "lines", json_object_get(order, "lines"));
        json_object_set(ctx, "total_label", json_object_get(order, "total_label"));
        set_renewal(ctx, order, cycle, r->now);
    }
    web_reply_page(r, status, "onboarding_checkout", ctx);
    json_decref(ctx);
    json_decref(order);
    free(error);
    return 0;
}

int web_onboarding_checkout(struct web_request *r)
{
    json_t *state = web_onboarding_state(r, false);
    const char *first_name = json_string_value(json_object_get(state, "first_name"));
    if (!first_name || !*first_name) {
        web_redirect(r, "/onboarding/");
        return 0;
    }
    const char *plan = json_string_value(json_object_get(state, "plan"));
    if (!plan || !*plan ||
        !onboarding_cycle_valid(json_string_value(json_object_get(state, "billing_cycle")))) {
        web_redirect(r, "/onboarding/plan/");
        return 0;
    }
    return show(r, state);
}

int web_onboarding_cancel(struct web_request *r)
{
    json_t *state = web_onboarding_state(r, false);
    const char *plan = json_string_value(json_object_get(state, "plan"));
    json_t *ctx = web_page_context(r, msg("title.checkout_canceled"));
    json_object_set_new(ctx, "has_order", json_boolean(plan && *plan));
    web_reply_page(r, 200, "onboarding_cancel", ctx);
    json_decref(ctx);
    return 0;
}
