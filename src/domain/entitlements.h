/*
 * entitlements.h — what a user's subscription grants, as Keycloak user attributes (SPEC §5).
 *
 * Subscribed products are the products of the user's cached subscription items while the
 * status is active, trialing or past_due. For each: `has_<slug>` = "true", and for an
 * assigned instance `<slug>_instance` = its base_url. Price entitlements (a JSON object on
 * product_prices) are added up: numeric grants are multiplied by the item's quantity and
 * summed over the subscription; string grants are taken as they are.
 *
 * Usher owns `has_*`, `*_instance` and every key that appears in any price's entitlements: a
 * sync replaces exactly those, so a product no longer subscribed loses its attributes, and
 * attributes Usher does not own are left alone.
 */
#ifndef USHER_DOMAIN_ENTITLEMENTS_H
#define USHER_DOMAIN_ENTITLEMENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct db_conn;

/* Whether a subscription_status grants access to subscribed products. */
bool entitlements_status_grants(const char *status);

/*
 * The attributes Usher wants on the user, in Keycloak's shape: an object of key → array of
 * strings. *out belongs to the caller.
 */
int entitlements_for_user(struct db_conn *conn, int64_t user_id, json_t **out);

/* The owned-key test: has_*, *_instance, or a key in extra_keys (an array of strings). */
bool entitlements_owns_key(const char *key, const json_t *extra_keys);
/* Every key that appears in any price's entitlements (array of strings, caller owns). */
int entitlements_catalog_keys(struct db_conn *conn, json_t **out);

/* Every attribute name a sync may write, from the catalog: has_<slug> for each product,
 * <slug>_instance for each that requires an instance, and the entitlement keys (array of
 * strings, caller owns). `usher check` asks Keycloak whether it keeps them. */
int entitlements_attribute_names(struct db_conn *conn, json_t **out);

#endif
