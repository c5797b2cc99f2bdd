/*
 * dashboard.c — /dashboard/ and /dashboard/account/ (SPEC §6).
 */
#include "core/clock.h"
#include "core/config.h"
#include "domain/dashboard.h"
#include "domain/users.h"
#include "web/app.h"
#include "web/handlers.h"
#include "web/pages.h"
#include "web/response.h"

#include <stdio.h>
#include <string.h>

static json_t *user_context(struct web_request *r, const char *title)
{
    const struct user *u = r->user;
    json_t *ctx = web_page_context(r, title);
    json_object_set_new(
        ctx, "user",
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "username", u->username, "email",
                  u->email ? u->email : "", "first_name", u->first_name ? u->first_name : "",
                  "last_name", u->last_name ? u->last_name : "", "status",
                  u->subscription_status ? u->subscription_status : "", "is_admin", u->is_admin));
    const char *status = u->subscription_status ? u->subscription_status : "";
    if (!strcmp(status, "past_due"))
        json_object_set_new(ctx, "banner_past_due", json_true());
    if (!strcmp(status, "canceled")) {
        char date[32] = "";
        if (u->access_expires_at)
            clock_format_rfc3339(u->access_expires_at, date, sizeof date);
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
    json_t *ctx = user_context(r, "Your services");
    json_object_set_new(ctx, "has_cards", json_boolean(json_array_size(cards) > 0));
    json_object_set_new(ctx, "cards", cards);
    web_reply_page(r, 200, "dashboard", ctx);
    json_decref(ctx);
    return 0;
}

static void format_items(json_t *items)
{
    size_t i;
    json_t *item;
    json_array_foreach (items, i, item) {
        json_int_t renews = json_integer_value(json_object_get(item, "renews_at"));
        if (renews > 0) {
            char date[32];
            clock_format_rfc3339(renews, date, sizeof date);
            date[10] = '\0'; /* the day is enough */
            json_object_set_new(item, "renews_on", json_string(date));
        }
        json_int_t amount = json_integer_value(json_object_get(item, "amount"));
        char money[64];
        snprintf(money, sizeof money, "%lld.%02lld %s", (long long)(amount / 100),
                 (long long)(amount % 100), json_string_value(json_object_get(item, "currency")));
        json_object_set_new(item, "price", json_string(money));
    }
}

int web_account(struct web_request *r)
{
    json_t *items = NULL;
    int rc = dashboard_subscription_items(r->app->db, r->user->id, &items);
    if (rc != 0)
        return rc;
    format_items(items);
    json_t *ctx = user_context(r, "Account");
    json_object_set_new(ctx, "has_items", json_boolean(json_array_size(items) > 0));
    json_object_set_new(ctx, "items", items);
    web_reply_page(r, 200, "account", ctx);
    json_decref(ctx);
    return 0;
}
