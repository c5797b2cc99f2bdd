/*
 * onboarding_addons.c — step 3 of onboarding (SPEC §3): storage add-ons for the chosen plan.
 *
 * Without a plan and billing cycle from step 2 the visitor goes back there. When the plan has
 * no active storage add-ons the step is skipped: straight to the checkout. A POST is checked
 * as a whole (plan, cycle, the general add-ons from step 2 and the storage add-ons sent now)
 * by onboarding_check, so a storage add-on of another plan, a general add-on sent as storage,
 * or a catalog that changed meanwhile is refused with 400 and nothing stored. On success the
 * session's "onboarding" object gets storage_addons and the combined addons list (general
 * first, then storage) the checkout sells.
 */
#include "core/err.h"
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

#define CHECKOUT_PATH "/onboarding/checkout/"

/* Stores storage (borrowed) and general + storage as the combined list. */
static void store(struct web_request *r, json_t *state, const json_t *storage)
{
    json_t *general = json_object_get(state, "general_addons");
    json_t *all = json_is_array(general) ? json_deep_copy(general) : json_array();
    json_array_extend(all, (json_t *)storage);
    json_object_set_new(state, "storage_addons", json_deep_copy(storage));
    json_object_set_new(state, "addons", all);
    web_session_changed(r);
}

/* One card per storage product: the shared product (read-only: it is the cached listing's)
 * and what this visitor's page adds to it — selectable (priced for the cycle, not coming
 * soon), checked, the price text for the chosen cycle. The template opens {{#product}} inside
 * each card, so names the product lacks are found on the card. */
static json_t *cards(const json_t *products, const char *cycle, const json_t *chosen)
{
    json_t *out = json_array();
    size_t i;
    json_t *p;
    json_array_foreach (products, i, p) {
        const char *slug = json_string_value(json_object_get(p, "slug"));
        json_t *price = json_object_get(json_object_get(p, "prices"), cycle);
        bool selectable = price && !json_is_true(json_object_get(p, "is_coming_soon"));
        const char *label = price ? json_string_value(json_object_get(price, "label")) : NULL;
        json_array_append_new(
            out, json_pack("{s:O, s:b, s:b, s:s, s:b}", "product", p, "selectable", selectable,
                           "checked", selectable && slug && web_onboarding_list_has(chosen, slug),
                           "price_label", label ? label : "", "has_features",
                           json_array_size(json_object_get(p, "features")) > 0));
    }
    return out;
}

static int show(struct web_request *r, int status, const char *plan, const char *cycle,
                json_t *products, const json_t *chosen, const char *error)
{
    json_t *plan_product = NULL;
    int rc = onboarding_product(r->app->db, plan, &plan_product);
    if (rc != 0 && rc != USHER_ENOTFOUND)
        return rc;
    json_t *ctx = web_page_context(r, msg("title.add_storage"));
    const char *plan_name = json_string_value(json_object_get(plan_product, "name"));
    json_object_set_new(ctx, "plan_name", json_string(plan_name ? plan_name : plan));
    json_object_set_new(ctx, "cycle_annual", json_boolean(!strcmp(cycle, "annual")));
    json_object_set_new(ctx, "storage", cards(products, cycle, chosen));
    if (error)
        json_object_set_new(ctx, "error", json_string(error));
    web_reply_page(r, status, "onboarding_addons", ctx);
    json_decref(ctx);
    json_decref(plan_product);
    return 0;
}

static int submit(struct web_request *r, json_t *state, const char *plan, const char *cycle,
                  json_t *products)
{
    json_t *storage = web_form_list(r, "addons", ONBOARDING_MAX_ADDONS);
    struct onboarding_choice choice = {.plan = plan,
                                       .cycle = cycle,
                                       .addons = json_object_get(state, "general_addons"),
                                       .storage = storage};
    char *error = NULL;
    int rc = onboarding_check(r->app->db, &choice, &error);
    if (rc == 0) {
        store(r, state, storage);
        web_redirect(r, CHECKOUT_PATH);
    } else if (error) {
        rc = show(r, 400, plan, cycle, products, storage, error);
    }
    free(error);
    json_decref(storage);
    return rc;
}

int web_onboarding_addons(struct web_request *r)
{
    json_t *state = web_onboarding_state(r, false);
    const char *plan = json_string_value(json_object_get(state, "plan"));
    const char *cycle = json_string_value(json_object_get(state, "billing_cycle"));
    if (!plan || !onboarding_cycle_valid(cycle)) {
        web_redirect(r, "/onboarding/plan/");
        return 0;
    }
    json_t *products = NULL;
    int rc = onboarding_list_cached(r->app->catalog, r->app->db, "storage", plan, &products);
    if (rc != 0)
        return rc;
    if (json_array_size(products) == 0) {
        json_t *none = json_array();
        store(r, state, none);
        json_decref(none);
        web_redirect(r, CHECKOUT_PATH);
    } else if (!strcmp(r->method, "POST")) {
        rc = submit(r, state, plan, cycle, products);
    } else {
        rc = show(r, 200, plan, cycle, products, json_object_get(state, "storage_addons"), NULL);
    }
    json_decref(products);
    return rc;
}
