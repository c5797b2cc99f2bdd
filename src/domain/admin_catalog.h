/*
 * admin_catalog.h — the admin console's products and prices (SPEC §9): lists with filters and
 * search, the inline order/flags edit, and the sectioned product edit with its prices.
 *
 * Every edit is one write transaction: re-read the row (locked on PostgreSQL), compare the
 * form's fingerprint (domain/admin_list.h; a mismatch is USHER_ECONFLICT and nothing is
 * written), validate, write, and record one audit entry (domain/audit.h) with the fields
 * before → after. The catalog_version triggers (migration 0003) move the onboarding cache
 * along in the same transaction.
 *
 * Values are validated by the catalog file's own parser (catalog_internal.h), so the console
 * and `usher catalog apply` accept exactly the same products and prices. The natural keys
 * apply matches on stay read-only here (a product's slug, a price's Stripe id): renaming them
 * would make the next apply create a second row instead of updating this one. Which wins when
 * both write the same fields: docs/admin.md ("The catalog file and the console").
 */
#ifndef USHER_DOMAIN_ADMIN_CATALOG_H
#define USHER_DOMAIN_ADMIN_CATALOG_H

#include "db/db.h"
#include "domain/admin_list.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* -1: any; 0: no; 1: yes. */
struct admin_product_filter {
    const char *q; /* name or slug contains (case-insensitive) */
    const char *page; /* "", "plan", "addon", "storage" */
    int coming_soon, featured, active, addon;
    int limit;
    bool has_after; /* keyset: (display_order, id) after these */
    int64_t after_order, after_id;
};

/* Rows ordered by display_order, id: {id, name, slug, page, display_order, is_coming_soon,
 * is_featured, is_active, is_addon, fp (fingerprint of the inline fields)}. *more when
 * another page follows. */
int admin_products_list(struct db_pool *pool, const struct admin_product_filter *f, json_t **rows,
                        bool *more);

/* {…every editable column…, parent (slug or null), prices: [{id, stripe_price_id,
 * billing_period, amount, currency, is_active, entitlements}], fp}. USHER_ENOTFOUND. */
int admin_product_get(struct db_pool *pool, int64_t id, json_t **out);

/* Products as {id, slug, name} ordered by name (for parent and filter choices). */
int admin_product_choices(struct db_pool *pool, json_t **out);

struct admin_product_flags {
    int64_t display_order; /* -1000000..1000000 */
    bool is_coming_soon, is_featured, is_active;
};
/* The products list's inline edit. fp: the row's fp from the list. USHER_ENOTFOUND,
 * USHER_ECONFLICT (changed since), USHER_EINVAL (order out of range). */
int admin_product_set_flags(struct db_pool *pool, const struct admin_actor *who, int64_t id,
                            const char *fp, const struct admin_product_flags *flags, int64_t now);

/*
 * The whole product from the edit form. product is a catalog-file product object (docs/
 * catalog.md: name, description, …, prices) whose slug and price ids must be the stored ones
 * (prices may add new Stripe ids). fp: from admin_product_get. USHER_EINVAL with err filled,
 * USHER_ECONFLICT, USHER_ENOTFOUND.
 */
int admin_product_save(struct db_pool *pool, const struct admin_actor *who, int64_t id,
                       const char *fp, const json_t *product, int64_t now, struct admin_error *err);

struct admin_price_filter {
    const char *q; /* Stripe price id or product name contains */
    int64_t product_id; /* 0: any */
    const char *period; /* "", "monthly", "annual" */
    int active; /* -1 any */
    int limit;
    int64_t after_id; /* keyset by id; 0 from the start */
};
/* {id, stripe_price_id, product_id, product, billing_period, amount, currency, is_active}. */
int admin_prices_list(struct db_pool *pool, const struct admin_price_filter *f, json_t **rows,
                      bool *more);

#endif
