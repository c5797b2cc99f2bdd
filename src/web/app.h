/*
 * app.h — what every request handler can reach: configuration, the database pool, the
 * compiled templates and the static files. Built once by `usher serve`, read-only after.
 */
#ifndef USHER_WEB_APP_H
#define USHER_WEB_APP_H

#include <jansson.h>

struct usher_config;
struct db_pool;
struct mustache_set;
struct static_files;
struct kc_admin;
struct onboarding_cache;
struct session_cache;

struct web_app {
    const struct usher_config *cfg;
    struct db_pool *db;
    struct mustache_set *templates;
    struct static_files *static_files;
    char *csp; /* the Content-Security-Policy header, built once from the configuration */
    struct kc_admin *kc; /* Keycloak Admin API client, NULL when not configured */
    struct onboarding_cache *catalog; /* the onboarding listings (domain/onboarding_cache.h) */
    struct session_cache *sessions; /* copies of anonymous sessions (domain/session_cache.h) */
    json_t *site; /* web_site_context, built once; shared read-only by every page */
};

#endif
