/*
 * config.c — loading and validating SPEC §10's variables (see config.h).
 */
#include "core/config.h"

#include "core/buf.h"
#include "core/dotenv.h"
#include "core/err.h"
#include "core/mem.h"
#include "core/netaddr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SECRET_KEY_MIN_LEN 32

struct source {
    struct dotenv file;
};

/*
 * Every variable Usher reads, with its default and meaning: what `usher check
 * --list-variables` prints and docs/configuration.md must repeat (a test compares them and
 * checks that each name this file reads is listed). Keep one row per name, aliases included.
 */
static const struct config_variable variables[] = {
    {"SECRET_KEY", "", "required: keys code hashes and signed values; at least 32 characters"},
    {"DJANGO_SECRET_KEY", "", "alias of SECRET_KEY (the old system's name)"},
    {"USHER_DEMO", "false", "demo mode: a throwaway SECRET_KEY is allowed (never in production)"},
    {"DEBUG", "false", "debug logging; the session cookie also works over plain http"},
    {"PUBLIC_BASE_URL", "http://localhost:8000",
     "public address, used in redirects and mail links; https in production"},
    {"BIND", "127.0.0.1:8000", "listen address HOST:PORT (IPv4)"},
    {"TAILSCALE_IP", "", "old name: listen on this address, port 8000, when BIND is unset"},
    {"DATABASE_URL", "sqlite:///var/usher.sqlite3",
     "sqlite:///relative, sqlite:////absolute or postgresql://user:pass@host:port/db"},
    {"POSTGRES_DB", "", "old names: with DATABASE_URL unset, POSTGRES_DB selects PostgreSQL"},
    {"POSTGRES_USER", "", "PostgreSQL user (with POSTGRES_DB)"},
    {"POSTGRES_PASSWORD", "", "PostgreSQL password (with POSTGRES_DB)"},
    {"POSTGRES_HOST", "localhost", "PostgreSQL host (with POSTGRES_DB)"},
    {"POSTGRES_PORT", "5432", "PostgreSQL port (with POSTGRES_DB)"},
    {"DB_POOL_SIZE", "WEB_THREADS + 2", "database connections per process"},
    {"WEB_THREADS", "4", "HTTP worker threads"},
    {"MAX_BODY_BYTES", "1048576", "larger request bodies get 413"},
    {"SESSION_NEW_PER_IP_PER_MINUTE", "60",
     "sessions one client address may start per minute; beyond it 429"},
    {"TRUSTED_PROXIES", "",
     "comma-separated IPs and CIDR blocks (IPv4, IPv6) of reverse proxies whose "
     "X-Forwarded-For is believed; unset: trust nobody, the socket peer is the client"},
    {"USHER_DATA_DIR", "(built in)",
     "where migrations/, templates/ and static/ are; built in: PREFIX/share/usher "
     "(the source tree for a binary in its build directory)"},
    {"USHER_ENV_FILE", ".env", "the .env file read besides the environment (environment wins)"},
    {"KEYCLOAK_SERVER_URL", "", "Keycloak base URL, e.g. https://id.example.com"},
    {"KEYCLOAK_REALM", "", "the realm of Usher's users"},
    {"OIDC_RP_CLIENT_ID", "", "the login client (confidential, standard flow)"},
    {"OIDC_RP_CLIENT_SECRET", "", "the login client's secret"},
    {"KEYCLOAK_ADMIN_CLIENT_ID", "", "the service-account client for the Admin API"},
    {"KEYCLOAK_ADMIN_CLIENT_SECRET", "", "its secret"},
    {"ADMIN_GROUP", "usher-admins", "members of this Keycloak group get the admin console"},
    {"STRIPE_SECRET_KEY", "", "sk_live_... or sk_test_..."},
    {"STRIPE_PUBLISHABLE_KEY", "", "pk_live_... or pk_test_... (embedded Checkout)"},
    {"STRIPE_WEBHOOK_SECRET", "", "whsec_... of the webhook endpoint"},
    {"STRIPE_API_BASE", "https://api.stripe.com", "points the Stripe client at a test double"},
    {"STRIPE_CHECKOUT_UI", "embedded", "embedded or hosted Checkout"},
    {"STRIPE_API_VERSION", "2026-06-24.dahlia",
     "the Stripe-Version sent; the webhook endpoint must use the same version"},
    {"MAILGUN_API_KEY", "", "Mailgun API key (HTTP Basic user api)"},
    {"MAILGUN_DOMAIN", "", "the sending domain, e.g. mg.example.com"},
    {"MAILGUN_WAITLIST_ADDRESS", "", "mailing list address the waitlist joins (unset: none)"},
    {"MAILGUN_API_BASE", "https://api.mailgun.net", "https://api.eu.mailgun.net for an EU domain"},
    {"TASK_BROKER_URL", "database", "database or redis://host:port/db"},
    {"CELERY_BROKER_URL", "", "alias of TASK_BROKER_URL (the old system's name)"},
    {"TASK_MAX_RETRIES", "3", "retries after a task's first attempt (some tasks: at least 10)"},
    {"TASK_RETRY_DELAY", "30", "seconds before the first retry; doubles each retry, capped at 4 h"},
    {"TASK_LEASE_SECONDS", "60", "a killed worker's task is taken over after this"},
    {"WORKER_CONCURRENCY", "2", "tasks one usher worker runs at once (threads)"},
    {"WORKER_IN_SERVE", "false",
     "usher serve also runs the background tasks (one process for a small install; "
     "then no usher worker is needed)"},
    {"PROMETHEUS_METRICS_API_KEY", "", "bearer key of /metrics; unset disables /metrics"},
    {"HTTP_CONNECT_TIMEOUT_MS", "3000", "connect timeout of calls to Keycloak, Stripe, Mailgun"},
    {"HTTP_TIMEOUT_MS", "10000", "total timeout of one such call (each retry gets its own)"},
    {"SITE_NAME", "Usher", "the name shown on pages and in mail"},
    {"SUPPORT_EMAIL", "", "support address shown on pages and in mail"},
    {"LOGOUT_REDIRECT_URL", "PUBLIC_BASE_URL/logout/",
     "where Keycloak sends the browser after logout; a valid post-logout redirect URI"},
    {"SITE_LOGO_URL", "/static/logo.svg", "logo image URL"},
    {"BRAND_COLOR", "#2f5d8a", "brand colour, #rgb or #rrggbb"},
    {"TERMS_URL", "",
     "terms of service (http or https URL): linked in the footer and on the "
     "payment step; unset, no link"},
    {"PRIVACY_URL", "",
     "privacy policy (http or https URL): linked in the footer and on the "
     "payment step; unset, no link"},
    {"RECOVERY_WINDOW_DAYS", "30", "final expiry: days after a cancellation or failed payment"},
    {"RECOVERY_NOTIFY_UNKNOWN", "false",
     "mail a notice to an address that asked for recovery but has no account"},
    {"RECOVERY_REQUESTS_PER_IP_PER_HOUR", "20", "recovery code requests per client address"},
    {"USHER_TEST_CLOCK_FILE", "", "tests only: seconds added to the clock; usher check warns"},
    {"MALLOC_ARENA_MAX", "cores + 1",
     "glibc's: malloc arenas per process; unset (and no arena_max in GLIBC_TUNABLES), "
     "Usher uses one per online core plus the main one"},
    {"GLIBC_TUNABLES", "", "glibc's tunables; an arena_max there wins over Usher's arena count"},
};

const struct config_variable *config_variables(size_t *count)
{
    *count = sizeof variables / sizeof variables[0];
    return variables;
}

void config_print_variables(FILE *out)
{
    fputs("| variable | default | meaning |\n| --- | --- | --- |\n", out);
    for (size_t i = 0; i < sizeof variables / sizeof variables[0]; i++)
        fprintf(out, "| `%s` | %s%s%s | %s |\n", variables[i].name,
                *variables[i].fallback ? "`" : "", variables[i].fallback,
                *variables[i].fallback ? "`" : "", variables[i].meaning);
}

/*
 * Where migrations/, templates/ and static/ are when USHER_DATA_DIR is unset: the source
 * tree for a binary run from its build directory, the installed data directory otherwise.
 */
const char *config_default_data_dir(void)
{
    static char exe[PATH_MAX], build[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0 && realpath(USHER_BUILD_DIR, build)) {
        exe[n] = '\0';
        size_t len = strlen(build);
        if (!strncmp(exe, build, len) && exe[len] == '/')
            return USHER_SOURCE_DIR;
    }
    return USHER_DEFAULT_DATA_DIR;
}

static const char *lookup(const struct source *src, const char *name)
{
    const char *v = getenv(name);
    if (v)
        return v;
    return dotenv_get(&src->file, name);
}

/* First non-empty value among name and its aliases (NULL-terminated list). */
static const char *lookup_any(const struct source *src, const char *const *names)
{
    for (; *names; names++) {
        const char *v = lookup(src, *names);
        if (v && *v)
            return v;
    }
    return NULL;
}

static void problem(struct config_problems *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void problem(struct config_problems *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = xvasprintf(fmt, ap);
    va_end(ap);
    p->items = xrealloc(p->items, (p->count + 1) * sizeof *p->items);
    p->items[p->count++] = text;
}

static char *string_or(const struct source *src, const char *name, const char *fallback)
{
    const char *v = lookup(src, name);
    return xstrdup(v && *v ? v : fallback);
}

static bool parse_bool(const struct source *src, const char *name, bool fallback,
                       struct config_problems *p)
{
    const char *v = lookup(src, name);
    if (!v || !*v)
        return fallback;
    if (!strcasecmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") ||
        !strcasecmp(v, "on"))
        return true;
    if (!strcasecmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") ||
        !strcasecmp(v, "off"))
        return false;
    problem(p, "%s: must be true or false", name);
    return fallback;
}

static int parse_int(const struct source *src, const char *name, int fallback, int min, int max,
                     struct config_problems *p)
{
    const char *v = lookup(src, name);
    if (!v || !*v)
        return fallback;
    char *end = NULL;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < min || n > max) {
        problem(p, "%s: must be a whole number from %d to %d", name, min, max);
        return fallback;
    }
    return (int)n;
}

/* Accepts http(s)://host[:port][/path]; returns the origin (scheme://host[:port]) or NULL. */
static char *url_origin(const char *url)
{
    const char *rest;
    if (!strncmp(url, "https://", 8))
        rest = url + 8;
    else if (!strncmp(url, "http://", 7))
        rest = url + 7;
    else
        return NULL;
    size_t host_len = strcspn(rest, "/?#");
    if (host_len == 0)
        return NULL;
    for (size_t i = 0; i < host_len; i++)
        if (isspace((unsigned char)rest[i]) || rest[i] == '@')
            return NULL;
    return xstrndup(url, (size_t)(rest - url) + host_len);
}

static char *optional_url(const struct source *src, const char *name, const char *fallback,
                          struct config_problems *p)
{
    const char *v = lookup(src, name);
    if (!v || !*v)
        return fallback ? xstrdup(fallback) : NULL;
    char *origin = url_origin(v);
    if (!origin) {
        problem(p, "%s: must be an http:// or https:// URL", name);
        return fallback ? xstrdup(fallback) : NULL;
    }
    free(origin);
    char *copy = xstrdup(v);
    size_t len = strlen(copy);
    while (len > 0 && copy[len - 1] == '/')
        copy[--len] = '\0';
    return copy;
}

static void load_public_url(struct usher_config *cfg, const struct source *src,
                            struct config_problems *p)
{
    cfg->public_base_url = optional_url(src, "PUBLIC_BASE_URL", "http://localhost:8000", p);
    cfg->public_origin = url_origin(cfg->public_base_url);
    cfg->public_https = strncmp(cfg->public_base_url, "https://", 8) == 0;
}

static void load_bind(struct usher_config *cfg, const struct source *src, struct config_problems *p)
{
    const char *bind = lookup(src, "BIND");
    const char *tailscale = lookup(src, "TAILSCALE_IP");
    char *owned = NULL;
    if ((!bind || !*bind) && tailscale && *tailscale)
        bind = owned = xasprintf("%s:8000", tailscale);
    if (!bind || !*bind)
        bind = "127.0.0.1:8000";
    const char *colon = strrchr(bind, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon == bind || !end || *end || end == colon + 1 || port < 0 || port > 65535) {
        problem(p, "BIND: must be HOST:PORT with an IPv4 address, e.g. 127.0.0.1:8000");
        cfg->bind_host = xstrdup("127.0.0.1");
        cfg->bind_port = 8000;
    } else {
        cfg->bind_host = xstrndup(bind, (size_t)(colon - bind));
        cfg->bind_port = (int)port;
        if (!strcmp(cfg->bind_host, "localhost")) {
            free(cfg->bind_host);
            cfg->bind_host = xstrdup("127.0.0.1");
        }
        struct in_addr addr;
        if (inet_pton(AF_INET, cfg->bind_host, &addr) != 1)
            problem(p, "BIND: host must be an IPv4 address, e.g. 127.0.0.1:8000");
    }
    free(owned);
}

static void load_trusted_proxies(struct usher_config *cfg, const struct source *src,
                                 struct config_problems *p)
{
    char *bad = NULL;
    if (net_cidr_list_parse(lookup(src, "TRUSTED_PROXIES"), &cfg->trusted_proxies, &bad) == 0)
        return;
    if (*bad)
        problem(p,
                "TRUSTED_PROXIES: \"%.80s\" is not an IP address or CIDR block with its host "
                "bits zero (e.g. 10.0.0.0/8, 192.0.2.7, fd00::/8, ::1)",
                bad);
    else
        problem(p, "TRUSTED_PROXIES: an empty item (a comma too many?)");
    free(bad);
}

static void append_encoded(struct buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
            buf_putc(b, (char)c);
        else
            buf_printf(b, "%%%02X", c);
    }
}

/* The seed's POSTGRES_* variables, used when DATABASE_URL is unset. */
static char *postgres_url_from_parts(const struct source *src)
{
    const char *db = lookup(src, "POSTGRES_DB");
    if (!db || !*db)
        return NULL;
    const char *user = lookup(src, "POSTGRES_USER");
    const char *password = lookup(src, "POSTGRES_PASSWORD");
    const char *host = lookup(src, "POSTGRES_HOST");
    const char *port = lookup(src, "POSTGRES_PORT");
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "postgresql://");
    if (user && *user) {
        append_encoded(&b, user);
        if (password && *password) {
            buf_putc(&b, ':');
            append_encoded(&b, password);
        }
        buf_putc(&b, '@');
    }
    buf_puts(&b, host && *host ? host : "localhost");
    if (port && *port)
        buf_printf(&b, ":%s", port);
    buf_putc(&b, '/');
    append_encoded(&b, db);
    char *url = buf_detach(&b);
    buf_cleanup(&b);
    return url;
}

static void load_database(struct usher_config *cfg, const struct source *src,
                          struct config_problems *p)
{
    const char *url = lookup(src, "DATABASE_URL");
    if (url && *url)
        cfg->database_url = xstrdup(url);
    else
        cfg->database_url = postgres_url_from_parts(src);
    if (!cfg->database_url)
        cfg->database_url = xstrdup("sqlite:///var/usher.sqlite3");
    const char *u = cfg->database_url;
    if (strncmp(u, "sqlite://", 9) && strcmp(u, "sqlite::memory:") &&
        strncmp(u, "postgres://", 11) && strncmp(u, "postgresql://", 13))
        problem(p, "DATABASE_URL: must start with sqlite://, postgres:// or postgresql://");
    cfg->db_pool_size = parse_int(src, "DB_POOL_SIZE", 0, 1, 256, p);
}

static void load_secret(struct usher_config *cfg, const struct source *src,
                        struct config_problems *p)
{
    static const char *const names[] = {"SECRET_KEY", "DJANGO_SECRET_KEY", NULL};
    const char *key = lookup_any(src, names);
    if (!key && cfg->demo) {
        /* Demo only: a fixed, public key is fine because demo data is throwaway. */
        key = "usher-demo-secret-key-not-for-production-use-0000";
    }
    if (!key) {
        problem(p,
                "SECRET_KEY: required (at least %d characters); set USHER_DEMO=1 for a "
                "local demo with a throwaway key",
                SECRET_KEY_MIN_LEN);
        cfg->secret_key = xstrdup("");
        return;
    }
    if (strlen(key) < SECRET_KEY_MIN_LEN)
        problem(p, "SECRET_KEY: too short (at least %d characters)", SECRET_KEY_MIN_LEN);
    cfg->secret_key = xstrdup(key);
}

/* A Stripe API version: YYYY-MM-DD, optionally followed by .name (e.g. 2026-06-24.dahlia). */
static bool stripe_version_ok(const char *v)
{
    static const char shape[] = "dddd-dd-dd";
    size_t i = 0;
    for (; shape[i]; i++)
        if (shape[i] == 'd' ? !isdigit((unsigned char)v[i]) : v[i] != shape[i])
            return false;
    if (!v[i])
        return true;
    if (v[i] != '.' || !v[i + 1] || strlen(v) > 64)
        return false;
    for (i++; v[i]; i++)
        if (!islower((unsigned char)v[i]))
            return false;
    return true;
}

static void load_integrations(struct usher_config *cfg, const struct source *src,
                              struct config_problems *p)
{
    cfg->keycloak_server_url = optional_url(src, "KEYCLOAK_SERVER_URL", NULL, p);
    cfg->keycloak_realm = string_or(src, "KEYCLOAK_REALM", "");
    cfg->oidc_rp_client_id = string_or(src, "OIDC_RP_CLIENT_ID", "");
    cfg->oidc_rp_client_secret = string_or(src, "OIDC_RP_CLIENT_SECRET", "");
    cfg->keycloak_admin_client_id = string_or(src, "KEYCLOAK_ADMIN_CLIENT_ID", "");
    cfg->keycloak_admin_client_secret = string_or(src, "KEYCLOAK_ADMIN_CLIENT_SECRET", "");
    cfg->admin_group = string_or(src, "ADMIN_GROUP", "usher-admins");

    cfg->stripe_secret_key = string_or(src, "STRIPE_SECRET_KEY", "");
    cfg->stripe_publishable_key = string_or(src, "STRIPE_PUBLISHABLE_KEY", "");
    cfg->stripe_webhook_secret = string_or(src, "STRIPE_WEBHOOK_SECRET", "");
    cfg->stripe_api_base = optional_url(src, "STRIPE_API_BASE", "https://api.stripe.com", p);
    const char *ui = lookup(src, "STRIPE_CHECKOUT_UI");
    if (!ui || !*ui || !strcmp(ui, "embedded"))
        cfg->stripe_checkout_ui = CHECKOUT_UI_EMBEDDED;
    else if (!strcmp(ui, "hosted"))
        cfg->stripe_checkout_ui = CHECKOUT_UI_HOSTED;
    else
        problem(p, "STRIPE_CHECKOUT_UI: must be embedded or hosted");
    cfg->stripe_api_version = string_or(src, "STRIPE_API_VERSION", "");
    if (*cfg->stripe_api_version && !stripe_version_ok(cfg->stripe_api_version))
        problem(p, "STRIPE_API_VERSION: must look like 2026-06-24.dahlia");

    cfg->mailgun_api_key = string_or(src, "MAILGUN_API_KEY", "");
    cfg->mailgun_domain = string_or(src, "MAILGUN_DOMAIN", "");
    cfg->mailgun_waitlist_address = string_or(src, "MAILGUN_WAITLIST_ADDRESS", "");
    cfg->mailgun_api_base = optional_url(src, "MAILGUN_API_BASE", "https://api.mailgun.net", p);

    static const char *const broker[] = {"TASK_BROKER_URL", "CELERY_BROKER_URL", NULL};
    const char *b = lookup_any(src, broker);
    cfg->task_broker_url = xstrdup(b ? b : "database");
    if (strcmp(cfg->task_broker_url, "database") && strncmp(cfg->task_broker_url, "redis://", 8))
        problem(p, "TASK_BROKER_URL: must be database or a redis:// URL");
    cfg->task_max_retries = parse_int(src, "TASK_MAX_RETRIES", 3, 0, 100, p);
    cfg->task_retry_delay = parse_int(src, "TASK_RETRY_DELAY", 30, 1, 86400, p);
    cfg->task_lease_seconds = parse_int(src, "TASK_LEASE_SECONDS", 60, 2, 3600, p);
    cfg->worker_concurrency = parse_int(src, "WORKER_CONCURRENCY", 2, 1, 64, p);
    cfg->worker_in_serve = parse_bool(src, "WORKER_IN_SERVE", false, p);
    cfg->prometheus_metrics_api_key = string_or(src, "PROMETHEUS_METRICS_API_KEY", "");
    cfg->http_connect_timeout_ms = parse_int(src, "HTTP_CONNECT_TIMEOUT_MS", 3000, 100, 600000, p);
    cfg->http_timeout_ms = parse_int(src, "HTTP_TIMEOUT_MS", 10000, 100, 600000, p);
}

static void load_brand(struct usher_config *cfg, const struct source *src,
                       struct config_problems *p)
{
    cfg->site_name = string_or(src, "SITE_NAME", "Usher");
    cfg->support_email = string_or(src, "SUPPORT_EMAIL", "");
    cfg->terms_url = optional_url(src, "TERMS_URL", "", p);
    cfg->privacy_url = optional_url(src, "PRIVACY_URL", "", p);
    /* Usher's own "you are logged out" page: under the base URL, so an identity provider
     * client whose redirect URIs are `<base>/` plus a wildcard accepts it after a logout. */
    size_t base_len = strlen(cfg->public_base_url);
    while (base_len && cfg->public_base_url[base_len - 1] == '/')
        base_len--;
    char *own_page = xasprintf("%.*s/logout/", (int)base_len, cfg->public_base_url);
    cfg->logout_redirect_url = string_or(src, "LOGOUT_REDIRECT_URL", own_page);
    free(own_page);
    cfg->logo_url = string_or(src, "SITE_LOGO_URL", "/static/logo.svg");
    cfg->brand_color = string_or(src, "BRAND_COLOR", "#2f5d8a");
    const char *c = cfg->brand_color;
    bool ok = c[0] == '#' && (strlen(c) == 7 || strlen(c) == 4);
    for (size_t i = 1; ok && c[i]; i++)
        ok = isxdigit((unsigned char)c[i]) != 0;
    if (!ok)
        problem(p, "BRAND_COLOR: must be a hex colour such as #2f5d8a");
    cfg->recovery_window_days = parse_int(src, "RECOVERY_WINDOW_DAYS", 30, 1, 3650, p);
    cfg->recovery_notify_unknown = parse_bool(src, "RECOVERY_NOTIFY_UNKNOWN", false, p);
    cfg->recovery_requests_per_ip_per_hour =
        parse_int(src, "RECOVERY_REQUESTS_PER_IP_PER_HOUR", 20, 1, 1000000, p);
}

int config_load(struct usher_config *cfg, struct config_problems *problems)
{
    memset(cfg, 0, sizeof *cfg);
    memset(problems, 0, sizeof *problems);
    struct source src = {0};
    const char *env_file = getenv("USHER_ENV_FILE");
    int bad_line = 0;
    int rc = dotenv_load(&src.file, env_file && *env_file ? env_file : ".env", &bad_line);
    if (rc == USHER_EINVAL)
        problem(problems, ".env: line %d is not KEY=VALUE", bad_line);
    else if (rc != 0)
        problem(problems, ".env: cannot be read (%s)", usher_strerror(rc));

    cfg->demo = parse_bool(&src, "USHER_DEMO", false, problems);
    cfg->debug = parse_bool(&src, "DEBUG", false, problems);
    load_secret(cfg, &src, problems);
    load_public_url(cfg, &src, problems);
    load_bind(cfg, &src, problems);
    load_trusted_proxies(cfg, &src, problems);
    load_database(cfg, &src, problems);
    cfg->web_threads = parse_int(&src, "WEB_THREADS", 4, 1, 256, problems);
    if (cfg->db_pool_size == 0)
        cfg->db_pool_size = cfg->web_threads + 2;
    cfg->max_body_bytes =
        (size_t)parse_int(&src, "MAX_BODY_BYTES", 1024 * 1024, 1024, 64 * 1024 * 1024, problems);
    cfg->data_dir = string_or(&src, "USHER_DATA_DIR", config_default_data_dir());
    cfg->session_new_per_ip_per_minute =
        parse_int(&src, "SESSION_NEW_PER_IP_PER_MINUTE", 60, 1, 1000000, problems);
    load_integrations(cfg, &src, problems);
    load_brand(cfg, &src, problems);
    dotenv_cleanup(&src.file);
    return problems->count ? USHER_ECONFIG : 0;
}

void config_warnings(const struct usher_config *cfg, struct config_problems *warnings)
{
    memset(warnings, 0, sizeof *warnings);
    if (cfg->demo)
        problem(warnings, "USHER_DEMO: demo mode is on (throwaway secret key allowed)");
    if (!cfg->keycloak_server_url || !*cfg->keycloak_realm)
        problem(warnings, "KEYCLOAK_SERVER_URL/KEYCLOAK_REALM: not set; login is unavailable");
    if (!*cfg->stripe_secret_key)
        problem(warnings, "STRIPE_SECRET_KEY: not set; checkout is unavailable");
    if (!*cfg->stripe_webhook_secret)
        problem(warnings, "STRIPE_WEBHOOK_SECRET: not set; webhooks will be refused");
    if (!*cfg->mailgun_api_key || !*cfg->mailgun_domain)
        problem(warnings, "MAILGUN_API_KEY/MAILGUN_DOMAIN: not set; email is unavailable");
    for (size_t i = 0; i < cfg->trusted_proxies.count; i++)
        if (cfg->trusted_proxies.items[i].prefix_len == 0) {
            problem(warnings, "TRUSTED_PROXIES: a /0 block trusts every address: any client "
                              "can then choose its address with X-Forwarded-For");
            break;
        }
    if (getenv("USHER_TEST_CLOCK_FILE"))
        problem(warnings, "USHER_TEST_CLOCK_FILE: set; the clock is shifted for tests");
    if (!cfg->debug && !cfg->public_https)
        problem(warnings, "PUBLIC_BASE_URL: not https; browsers will not send the "
                          "__Host- session cookie over plain http (use DEBUG=true locally)");
}

void config_cleanup(struct usher_config *cfg)
{
    char **strings[] = {
        &cfg->secret_key,
        &cfg->public_base_url,
        &cfg->public_origin,
        &cfg->bind_host,
        &cfg->database_url,
        &cfg->data_dir,
        &cfg->keycloak_server_url,
        &cfg->keycloak_realm,
        &cfg->oidc_rp_client_id,
        &cfg->oidc_rp_client_secret,
        &cfg->keycloak_admin_client_id,
        &cfg->keycloak_admin_client_secret,
        &cfg->admin_group,
        &cfg->stripe_secret_key,
        &cfg->stripe_publishable_key,
        &cfg->stripe_webhook_secret,
        &cfg->stripe_api_base,
        &cfg->stripe_api_version,
        &cfg->mailgun_api_key,
        &cfg->mailgun_domain,
        &cfg->mailgun_waitlist_address,
        &cfg->mailgun_api_base,
        &cfg->task_broker_url,
        &cfg->prometheus_metrics_api_key,
        &cfg->site_name,
        &cfg->support_email,
        &cfg->terms_url,
        &cfg->privacy_url,
        &cfg->logout_redirect_url,
        &cfg->brand_color,
        &cfg->logo_url,
    };
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        free(*strings[i]);
        *strings[i] = NULL;
    }
    net_cidr_list_cleanup(&cfg->trusted_proxies);
}

void config_problems_cleanup(struct config_problems *problems)
{
    for (size_t i = 0; i < problems->count; i++)
        free(problems->items[i]);
    free(problems->items);
    problems->items = NULL;
    problems->count = 0;
}
