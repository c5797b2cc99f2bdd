/*
 * onboarding_plan.c — step 2 of onboarding (SPEC §3): one plan, the billing cycle and the
 * general add-ons.
 *
 * Without a first name from step 1 the visitor is sent back there. A POST is stored only
 * after onboarding_check accepted all of it; otherwise the page comes back with 400, the
 * reason, and nothing in the session changed. On success the session's "onboarding" object
 * holds:
 *   plan            the plan's slug
 *   billing_cycle   "monthly" | "annual"
 *   general_addons  [slug, …] of page=addon products
 *   addons          the combined list the checkout sells; equal to general_addons until
 *                   step 3 adds storage add-ons (storage_addons is dropped here: it belonged
 *                   to the previous plan choice)
 */
#include "core/messages.h"
#include "domain/onboarding.h"
#include "domain/onboarding_cache.h"
#include "web/app.h"
#include "web/handlers.h"
#include "web/onboarding_session.h"
#include "web/pages.h"
#include "web/response.h"
#include "web/session.h"

#include <stdlib.h>
#include <string.h>

/* One card per product: the shared product (read-only: it is the cached listing's) and what
 * this visitor's page adds to it — selectable, checked (a plan: the chosen one, else the
 * featured one), has_features. The template opens
 * {{#product}} inside each card, so names the product lacks are found on the card. */
static json_t *cards(const json_t *products, const char *kind, const char *plan,
                     const json_t *chosen)
{
    json_t *out = json_array();
    size_t i;
    json_t *p;
    json_array_foreach (products, i, p) {
        const char *slug = json_string_value(json_object_get(p, "slug"));
        json_t *prices = json_object_get(p, "prices");
        bool coming = json_is_true(json_object_get(p, "is_coming_soon"));
        bool selectable = !coming && json_object_size(prices) > 0;
        /* No plan chosen yet: the featured one is preselected. */
        bool featured = json_is_true(json_object_get(p, "is_featured"));
        bool checked = selectable && slug &&
                       (!strcmp(kind, "plan") ? (plan && *plan ? !strcmp(plan, slug) : featured)
                                              : web_onboarding_list_has(chosen, slug));
        /* Built key by key: json_pack's format parsing was most of this function's cost. */
        json_t *card = json_object();
        json_object_set(card, "product", p);
        json_object_set_new(card, "selectable", json_boolean(selectable));
        json_object_set_new(card, "checked", json_boolean(checked));
        json_object_set_new(card, "has_features",
                            json_boolean(json_array_size(json_object_get(p, "features")) > 0));
        json_array_append_new(out, card);
    }
    return out;
}

static int show(struct web_request *r, int status, const json_t *state, const char *plan,
                const char *cycle, const json_t *addons, const char *error)
{
    json_t *plans = NULL, *general = NULL;
    int rc = onboarding_list_cached(r->app->catalog, r->app->db, "plan", NULL, &plans);
    if (rc == 0)
        rc = onboarding_list_cached(r->app->catalog, r->app->db, "addon", NULL, &general);
    if (rc != 0) {
        json_decref(plans);
        return rc;
    }
    bool annual = cycle && !strcmp(cycle, "annual");

    json_t *ctx = web_page_context(r, msg("title.choose_your_plan"));
    json_object_set_new(ctx, "first_name",
                        json_string(json_string_value(json_object_get(state, "first_name"))));
    json_object_set_new(ctx, "cycle_monthly", json_boolean(!annual));
    json_object_set_new(ctx, "cycle_annual", json_boolean(annual));
    json_object_set_new(ctx, "has_plans", json_boolean(json_array_size(plans) > 0));
    json_object_set_new(ctx, "has_addons", json_boolean(json_array_size(general) > 0));
    json_object_set_new(ctx, "plans", cards(plans, "plan", plan, NULL));
    json_object_set_new(ctx, "addons", cards(general, "addon", NULL, addons));
    json_decref(plans);
    json_decref(general);
    if (error)
        json_object_set_new(ctx, "error", json_string(error));
    web_reply_page(r, status, "onboarding_plan", ctx);
    json_decref(ctx);
    return 0;
}

static int submit(struct web_request *r, json_t *state)
{
    const char *plan = web_form(r, "plan");
    const char *cycle = web_form(r, "billing_cycle");
    json_t *addons = web_form_list(r, "addons", ONBOARDING_MAX_ADDONS);
    struct onboarding_choice choice = {.plan = plan, .cycle = cycle, .addons = addons};
    char *error = NULL;
    int rc = onboarding_check(r->app->db, &choice, &error);
    if (rc != 0) {
        if (error)
            rc = show(r, 400, state, plan, cycle, addons, error);
        free(error);
        json_decref(addons);
        return rc;
    }
    json_object_set_new(state, "plan", json_string(plan));
    json_object_set_new(state, "billing_cycle", json_string(cycle));
    json_object_set(state, "general_addons", addons);
    json_object_set_new(state, "addons", json_deep_copy(addons));
    json_object_del(state, "storage_addons");
    json_decref(addons);
    web_session_changed(r);
    web_redirect(r, "/onboarding/addons/");
    return 0;
}

int web_onboarding_plan(struct web_request *r)
{
    json_t *state = web_onboarding_state(r, false);
    const char *first_name = json_string_value(json_object_get(state, "first_name"));
    if (!first_name || !*first_name) {
        web_redirect(r, "/onboarding/");
        return 0;
    }
    if (!strcmp(r->method, "POST"))
        return submit(r, state);
    return show(r, 200, state, json_string_value(json_object_get(state, "plan")),
                json_string_value(json_object_get(state, "billing_cycle")),
                json_object_get(state, "general_addons"), NULL);
}
