/*
 * config.h — Usher's configuration: SPEC §10, from the environment and a `.env` file.
 *
 * Real environment variables win over `.env`. The seed's names (DJANGO_SECRET_KEY,
 * CELERY_BROKER_URL, TAILSCALE_IP, POSTGRES_*) are accepted as aliases so an existing `.env`
 * works unchanged. Demo defaults (a throwaway SECRET_KEY, DEBUG cookies) apply only when
 * USHER_DEMO=1 is set explicitly, which `make run` does.
 *
 * config_load collects every problem instead of stopping at the first, so one run names all
 * of them; the caller prints them and exits with status 2.
 */
#ifndef USHER_CORE_CONFIG_H
#define USHER_CORE_CONFIG_H

#include "core/netaddr.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum checkout_ui { CHECKOUT_UI_EMBEDDED = 0, CHECKOUT_UI_HOSTED = 1 };

struct usher_config {
    bool demo;
    char *secret_key;
    bool debug;
    char *public_base_url; /* no trailing slash */
    bool public_https;
    char *public_origin; /* scheme://host[:port] of public_base_url */
    char *bind_host;
    int bind_port;
    char *database_url;
    int web_threads;
    int db_pool_size;
    size_t max_body_bytes;
    int session_new_per_ip_per_minute; /* sessions rows one client IP may start per minute */
    /* TRUSTED_PROXIES: peers whose X-Forwarded-For names the client (core/netaddr.h) */
    struct net_cidr_list trusted_proxies;
    char *data_dir;

    char *keycloak_server_url;
    char *keycloak_realm;
    char *oidc_rp_client_id;
    char *oidc_rp_client_secret;
    char *keycloak_admin_client_id;
    char *keycloak_admin_client_secret;
    char *admin_group;

    char *stripe_secret_key;
    char *stripe_publishable_key;
    char *stripe_webhook_secret;
    char *stripe_api_base;
    enum checkout_ui stripe_checkout_ui;
    char *stripe_api_version; /* "" = the client's pinned STRIPE_API_VERSION */

    char *mailgun_api_key;
    char *mailgun_domain;
    char *mailgun_waitlist_address;
    char *mailgun_api_base;

    char *task_broker_url; /* "database" or redis://… */
    int task_max_retries; /* retries after the first attempt (default policy) */
    int task_retry_delay; /* seconds before the first retry; doubles each time */
    int task_lease_seconds; /* a claimed task is another worker's after this without renewal */
    int worker_concurrency; /* `usher worker` threads */
    bool worker_in_serve; /* `usher serve` runs a worker too */
    int http_connect_timeout_ms; /* outgoing HTTP (integrations) */
    int http_timeout_ms;
    char *prometheus_metrics_api_key;

    char *site_name;
    char *support_email;
    char *terms_url; /* TERMS_URL, PRIVACY_URL: optional http(s) URLs; "" when unset */
    char *privacy_url;
    char *logout_redirect_url;
    char *brand_color;
    char *logo_url;
    int recovery_window_days;
    /* Mail a notice to an address that asked for recovery but has no recoverable account
     * (RECOVERY_NOTIFY_UNKNOWN, off by default: it mails whoever someone types in). */
    bool recovery_notify_unknown;
    /* Recovery code requests one client address may make per hour
     * (RECOVERY_REQUESTS_PER_IP_PER_HOUR; raise it behind a shared NAT). */
    int recovery_requests_per_ip_per_hour;
};

/* A list of human-readable problems, each naming its variable. */
struct config_problems {
    size_t count;
    char **items;
};

/*
 * Loads from the environment and the .env file named by USHER_ENV_FILE (default ".env" in the
 * working directory). Returns 0, or USHER_ECONFIG with *problems filled.
 * Free with config_cleanup / config_problems_cleanup.
 */
int config_load(struct usher_config *cfg, struct config_problems *problems);
void config_cleanup(struct usher_config *cfg);
void config_problems_cleanup(struct config_problems *problems);

/* Non-fatal remarks for `usher check` (e.g. an integration not configured). */
void config_warnings(const struct usher_config *cfg, struct config_problems *warnings);

/* One configuration variable: its name, default ("" for none) and meaning. */
struct config_variable {
    const char *name;
    const char *fallback;
    const char *meaning;
};

/* Every variable Usher reads (aliases too), in documentation order. */
const struct config_variable *config_variables(size_t *count);

/* The table above as Markdown (`usher check --list-variables`; docs/configuration.md). */
void config_print_variables(FILE *out);

/* USHER_DATA_DIR's default: the source tree for a binary in its build directory, else the
 * installed data directory (<prefix>/<datadir>/usher). */
const char *config_default_data_dir(void);

#endif
