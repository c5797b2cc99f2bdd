/*
 * dashboard.c — /dashboard/ and /dashboard/account/ (SPEC §6).
 *
 * Both pages share the menu (templates/partials/dashboard_menu.mustache): menu.<page> marks
 * the current entry (aria-current), has_customer shows "Manage subscription" only to a user
 * Stripe knows. The subscription status reaches the templates as a flag, status.<word>, so
 * the customer reads "Payment overdue" and never Stripe's "past_due". Money and dates go
 * through core/human_format.h, as everywhere else customers read them.
 */
#include "web/dashboard.h"

#include "core/human_format.h"
#include "core/messages.h"
#include "domain/dashboard.h"
#include "domain/users.h"
#include "web/app.h"
#include "web/handlers.h"
#include "web/pages.h"
#include "web/response.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Stripe's subscription statuses the templates word; anything else shows as "other". */
static const char *const known_statuses[] = {
    "active", "trialing", "past_due",   "canceled",
    "unpaid", "paused",   "incomplete", "incomplete_expired",
};

static json_t *status_flags(const char *status)
{
    if (!*status)
        return json_pack("{s:b}", "none", 1);
    for (size_t i = 0; i < sizeof known_statuses / sizeof known_statuses[0]; i++)
        if (!strcmp(status, known_statuses[i]))
            return json_pack("{s:b}", known_statuses[i], 1);
    return json_pack("{s:b}", "other", 1);
}

json_t *web_dashboard_context(struct web_request *r, const char *title, const char *menu_item)
{
    const struct user *u = r->user;
    json_t *ctx = web_page_context(r, title);
    const char *status = u->subscription_status ? u->subscription_status : "";
    json_object_set_new(ctx, "user",
                        json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "username", u->username,
                                  "email", u->email ? u->email : "", "first_name",
                                  u->first_name ? u->first_name : "", "last_name",
                                  u->last_name ? u->last_name : "", "status", status, "is_admin",
                                  u->is_admin));
    json_object_set_new(ctx, "status", status_flags(status));
    json_object_set_new(ctx, "menu", json_pack("{s:b}", menu_item, 1));
    json_object_set_new(ctx, "has_customer",
                        json_boolean(u->stripe_customer_id && *u->stripe_customer_id));
    /* Never subscribed (or a checkout that expired unpaid): the way in is the plan choice. */
    json_object_set_new(ctx, "no_subscription",
                        json_boolean(!*status || !strcmp(status, "incomplete_expired")));
    if (!strcmp(status, "past_due"))
        json_object_set_new(ctx, "banner_past_due", json_true());
    if (!strcmp(status, "canceled")) {
        char date[FORMAT_DATE_MAX] = "";
        if (u->access_expires_at)
            format_long_date(u->access_expires_at, date, sizeof date);
        json_object_set_new(ctx, "banner_canceled", json_pack("{s:s}", "until", date));
    }
    return ctx;
}

int web_dashboard(struct web_request *r)
{
    json_t *cards = NULL;
    int rc = dashboard_cards(r->app->db, r->user->id, r->user->is_admin, &cards);
    if (rc != 0)
        return rc;
    json_t *ctx = web_dashboard_context(r, msg("title.your_services"), "services");
    json_object_set_new(ctx, "has_cards", json_boolean(json_array_size(cards) > 0));
    json_object_set_new(ctx, "cards", cards);
    web_reply_page(r, 200, "dashboard", ctx);
    json_decref(ctx);
    return 0;
}

/* Each item's price ("$3.00 / month", quantity included), renews_on ("1 January 2027") and
 * several (quantity above one); ctx's total_label when the lines share a currency and cycle. */
static void format_items(json_t *items, json_t *ctx)
{
    size_t i;
    json_t *item;
    int64_t total = 0;
    const char *currency = NULL, *cycle = NULL;
    bool summable = json_array_size(items) > 0;
    json_array_foreach (items, i, item) {
        json_int_t renews = json_integer_value(json_object_get(item, "renews_at"));
        if (renews > 0) {
            char date[FORMAT_DATE_MAX];
            format_long_date(renews, date, sizeof date);
            json_object_set_new(item, "renews_on", json_string(date));
        }
        const char *cur = json_string_value(json_object_get(item, "currency"));
        const char *period = json_string_value(json_object_get(item, "billing_period"));
        json_int_t amount = json_integer_value(json_object_get(item, "amount"));
        json_int_t quantity = json_integer_value(json_object_get(item, "quantity"));
        if (!cur || !*cur || !period || !*period) { /* a price the catalog does not know */
            summable = false;
            continue;
        }
        if (amount < 0 || amount > INT32_MAX || quantity < 0 || quantity > INT32_MAX) {
            summable = false;
            continue;
        }
        char price[FORMAT_PRICE_MAX];
        format_price(amount * quantity, cur, period, price, sizeof price);
        json_object_set_new(item, "price", json_string(price));
        json_object_set_new(item, "several", json_boolean(quantity > 1));
        if (!currency) {
            currency = cur;
            cycle = period;
        }
        summable = summable && !strcmp(cur, currency) && !strcmp(period, cycle);
        if (summable)
            total += amount * quantity;
    }
    if (summable && currency) {
        char label[FORMAT_PRICE_MAX];
        format_price(total, currency, cycle, label, sizeof label);
        json_object_set_new(ctx, "total_label", json_string(label));
    }
}

int web_account(struct web_request *r)
{
    json_t *items = NULL;
    int rc = dashboard_subscription_items(r->app->db, r->user->id, &items);
    if (rc != 0)
        return rc;
    json_t *ctx = web_dashboard_context(r, msg("title.account"), "account");
    format_items(items, ctx);
    json_object_set_new(ctx, "has_items", json_boolean(json_array_size(items) > 0));
    json_object_set_new(ctx, "items", items);
    web_reply_page(r, 200, "account", ctx);
    json_decref(ctx);
    return 0;
}
