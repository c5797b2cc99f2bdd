/*
 * onboarding_cache.h — the onboarding listings kept in memory between catalog changes.
 *
 * Steps 2–4 show the same few products and prices on every page view, and building a listing
 * (a product query, a price query, the JSON) was most of a page's cost. The cache keeps each
 * listing with the catalog version it was built at: the catalog_version row, which triggers
 * bump on every change to products or product_prices (migration 0003), whoever makes it. A
 * lookup reads that one row and rebuilds the listing only when it moved, so a change is seen
 * on the next page view, by every `usher serve` process, with no expiry to tune.
 *
 * One cache per process and database (`usher serve` owns one in its web_app). Thread-safe.
 */
#ifndef USHER_DOMAIN_ONBOARDING_CACHE_H
#define USHER_DOMAIN_ONBOARDING_CACHE_H

#include <jansson.h>

struct db_pool;
struct onboarding_cache;

struct onboarding_cache *onboarding_cache_new(void);
void onboarding_cache_free(struct onboarding_cache *cache);

/*
 * onboarding_list (onboarding.h) through the cache. *out is the caller's: a new array of new
 * product objects, so callers may set keys on each product; the members of a product
 * (prices, features, strings) are shared with the cache and must not be changed.
 */
int onboarding_list_cached(struct onboarding_cache *cache, struct db_pool *pool, const char *page,
                           const char *parent_slug, json_t **out);

#endif
