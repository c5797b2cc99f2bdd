/*
 * dashboard.h — the service cards of a user's dashboard (SPEC §6).
 *
 * Cards, in product order: each instance the user holds a seat on (administrators: every
 * active instance; add-ons with instances included), then each subscribed standalone product
 * or paid add-on that has a standalone_url (the URL's host as the instance name). The
 * instance name is for administrators; customers read the product's dashboard name and
 * description. A product paid for whose seat or
 * groups are not granted yet gets a card with ready false (and no url until it has a seat),
 * so the dashboard says "being set up" instead of linking to a service that would refuse the
 * login. A card is a JSON object: {product, instance, url, description, icon, ready}.
 */
#ifndef USHER_DOMAIN_DASHBOARD_H
#define USHER_DOMAIN_DASHBOARD_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct db_pool;

int dashboard_cards(struct db_pool *pool, int64_t user_id, bool is_admin, json_t **cards);
/* The cached subscription items for the account page: [{product, quantity, amount,
 * currency, billing_period, renews_at}] (renews_at 0 when unknown). */
int dashboard_subscription_items(struct db_pool *pool, int64_t user_id, json_t **items);
/* "north-wind" → "North-Wind": the instance name as a title. out has size bytes. */
void dashboard_title_case(const char *in, char *out, size_t size);
/* The host of an http(s) URL ("https://vault.example.test/x" → "vault.example.test"). */
void dashboard_url_host(const char *url, char *out, size_t size);

#endif
