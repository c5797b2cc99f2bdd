/*
 * onboarding.h — the catalog as the onboarding steps see it, and the rules for what a visitor
 * may choose (SPEC §3).
 *
 * Steps 2 and 3 list products from here and store a choice only after onboarding_check
 * accepted it: the plan must be an active, purchasable page=plan product with an active price
 * for the billing cycle; general add-ons active, purchasable page=addon products with such a
 * price; storage add-ons the same among the page=storage products whose parent is the plan;
 * no slug twice; the cycle "monthly" or "annual". Everything else the form may send is refused
 * with a sentence for the visitor.
 *
 * Prices: when a product has several active prices for one cycle, the oldest (lowest id) is
 * the one shown and sold, so every step and the checkout agree.
 */
#ifndef USHER_DOMAIN_ONBOARDING_H
#define USHER_DOMAIN_ONBOARDING_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct db_pool;

#define ONBOARDING_SLUG_MAX 128
#define ONBOARDING_MAX_ADDONS 32

/* true for "monthly" and "annual". */
bool onboarding_cycle_valid(const char *cycle);

/*
 * The active products of page ("plan", "addon" or "storage") in the default order (page,
 * display_order, name). parent_slug, when not NULL, keeps only products whose parent is that
 * product. *out (caller owns) is an array of objects:
 *   {slug, name, description, tagline, icon, footer_text, features: [line, …],
 *    is_featured, is_coming_soon,
 *    prices: {monthly: {amount, currency, stripe_price_id, label}, annual: {…}}}
 * where a cycle without an active price is absent and label reads e.g. "$12.00 / month".
 */
int onboarding_list(struct db_pool *pool, const char *page, const char *parent_slug, json_t **out);

/* One active product by slug, in the shape above; USHER_ENOTFOUND when there is none. */
int onboarding_product(struct db_pool *pool, const char *slug, json_t **out);

/* A choice to check. Borrowed; the lists are JSON arrays of slugs (NULL is empty), so a
 * choice read back from the session checks the same way as one from a form. */
struct onboarding_choice {
    const char *plan;
    const char *cycle;
    const json_t *addons; /* general add-ons (page=addon) */
    const json_t *storage; /* storage add-ons (page=storage, parent = plan) */
};

/* 0 when c may be stored. USHER_EINVAL with *error (heap, caller frees) saying what is wrong,
 * or another error from the database (then *error is NULL). */
int onboarding_check(struct db_pool *pool, const struct onboarding_choice *c, char **error);

/* ---- step 4: the checkout -------------------------------------------------------------- */

/*
 * Sums the order lines (array of {amount, currency, …}) into *total with the common currency
 * (borrowed from the first line, as stored) in *currency. USHER_EINVAL when the array is
 * empty, a line lacks an amount or currency, the currencies differ (Stripe sells one currency
 * per checkout) or the sum overflows. Pure.
 */
int onboarding_order_total(const json_t *lines, int64_t *total, const char **currency);

/*
 * When an order placed at now (Unix seconds) renews: the same UTC time one calendar month
 * ("monthly") or one year ("annual") later, the day clamped to the month's last day as Stripe
 * anchors it (31 January → 28/29 February; 29 February → 28 February). Pure.
 */
int64_t onboarding_renews_at(int64_t now, const char *cycle);

/*
 * The order for a choice onboarding_check accepted: *out (caller owns) is
 *   {cycle, lines: [{slug, name, amount, currency, stripe_price_id, label}, …],
 *    total, currency, total_label}
 * with the plan first, then the general add-ons, then the storage add-ons, each at the price
 * the listings show for the cycle. A product or price that went away meanwhile, or mixed
 * currencies, is USHER_EINVAL with *error (heap) for the visitor.
 */
int onboarding_order(struct db_pool *pool, const struct onboarding_choice *c, json_t **out,
                     char **error);

#endif
