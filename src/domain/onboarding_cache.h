/*
 * onboarding_cache.h — the onboarding listings kept in memory between catalog changes.
 *
 * Steps 2–4 show the same few products and prices on every page view, and building a listing
 * (a product query, a price query, the JSON) was most of a page's cost. The cache keeps each
 * listing with the catalog version it was built at: the catalog_version row, which triggers
 * bump on every change to products or product_prices (migration 0003), whoever makes it. A
 * lookup reads that one row and rebuilds the listing only when it moved. Under load, page
 * views that start within ONBOARDING_CACHE_VERSION_REUSE_NS of a reading share it instead of
 * each paying a query (a quarter of a cached plan page's cost): a change is seen by every
 * page view that starts a millisecond after it committed, in every `usher serve` process.
 * Only what is shown is cached: choices and the order total are checked against the
 * database itself (onboarding_check, onboarding_order).
 *
 * One cache per process and database (`usher serve` owns one in its web_app). Thread-safe.
 */
#ifndef USHER_DOMAIN_ONBOARDING_CACHE_H
#define USHER_DOMAIN_ONBOARDING_CACHE_H

#include <jansson.h>

struct db_pool;
struct onboarding_cache;

#define ONBOARDING_CACHE_VERSION_REUSE_NS (1000 * 1000)

struct onboarding_cache *onboarding_cache_new(void);
void onboarding_cache_free(struct onboarding_cache *cache);

/*
 * onboarding_list (onboarding.h) through the cache. *out (one reference, the caller's to
 * release) is shared with the cache and with other requests: read it, never change it.
 */
int onboarding_list_cached(struct onboarding_cache *cache, struct db_pool *pool, const char *page,
                           const char *parent_slug, json_t **out);

#endif
