/*
 * admin_stripe_events.c — /admin/stripe-events/: stored Stripe webhook events by status and
 * type, one event with its payload, and retrying one that failed or was ignored
 * (domain/admin_events.h).
 */
#include "core/err.h"
#include "core/mem.h"
#include "domain/admin_events.h"
#include "web/admin_ops.h"
#include "web/app.h"
#include "web/handlers.h"
#include "web/response.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVENTS_PATH "/admin/stripe-events/"

static const char *const statuses[] = {"pending", "processed", "ignored", "failed"};

/* The select's options with the current one marked. */
static json_t *status_options(const char *current)
{
    json_t *a = json_array();
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        json_array_append_new(a, json_pack("{s:s,s:b}", "value", statuses[i], "selected",
                                           !strcmp(current, statuses[i])));
    return a;
}

int web_admin_stripe_events(struct web_request *r)
{
    const char *status = NULL, *type = NULL, *q = NULL;
    int limit = 0;
    int64_t before = 0;
    if (web_admin_term(r, "status", &status) != 0 || web_admin_term(r, "type", &type) != 0 ||
        web_admin_term(r, "q", &q) != 0 || web_ops_paging(r, "stripe_events", &limit, &before))
        return 0;
    struct admin_event_filter f = {.status = status, .type = type, .q = q};
    struct admin_page page = {0};
    int rc = admin_events_list(r->app->db, &f, before, limit, &page);
    if (rc == USHER_EINVAL) {
        web_admin_error(r, 400,
                        "Those filters are not valid: the status must be one of the list, the "
                        "type an event type such as invoice.paid, and a search an event id "
                        "(evt_…).");
        return 0;
    }
    if (rc != 0)
        return rc;
    json_t *ctx = web_admin_context(r, "Stripe events", "stripe_events");
    json_object_set_new(ctx, "statuses", status_options(status));
    json_object_set_new(ctx, "f",
                        json_pack("{s:s,s:s,s:s}", "status", status, "type", type, "q", q));
    static const char *const keep[] = {"status", "type", "q", NULL};
    web_ops_list_ctx(r, ctx, "stripe_events", &page, keep);
    web_reply_page(r, 200, "admin/stripe_events", ctx);
    json_decref(ctx);
    return 0;
}

int web_admin_stripe_event(struct web_request *r)
{
    static const struct web_ops_record d = {
        .prefix = EVENTS_PATH,
        .section = "stripe_events",
        .title = "Stripe event",
        .page = "admin/stripe_event",
        .key = "event",
        .missing = "That Stripe event does not exist (it may have been purged).",
        .get = admin_event_get,
        .action = "retry/",
        .act = admin_event_retry,
    };
    return web_ops_record_route(r, &d);
}
