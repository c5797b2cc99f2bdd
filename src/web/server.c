/*
 * server.c — HTTP server start and graceful stop on Ulfius / libmicrohttpd (see server.h).
 */
#include "web/server.h"

#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/mustache.h"
#include "core/signals.h"
#include "db/db.h"
#include "db/migrate.h"
#include "domain/onboarding_cache.h"
#include "domain/session_cache.h"
#include "integrations/keycloak_admin.h"
#include "web/app.h"
#include "web/pages.h"
#include "web/dispatch.h"
#include "web/static_files.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ulfius.h>
#include <unistd.h>

#define SHUTDOWN_GRACE_SECONDS 10
#define CONNECTION_TIMEOUT_SECONDS 30

/* Connections that have started a request and not completed it; counted through MHD's
 * start and completion hooks so that a request still receiving its body counts too. */
static atomic_int open_requests;

static void *uri_log(void *cls, const char *uri)
{
    atomic_fetch_add(&open_requests, 1);
    return ulfius_uri_logger(cls, uri);
}

static void request_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
    atomic_fetch_sub(&open_requests, 1);
    mhd_request_completed(cls, connection, con_cls, toe);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char text[512];
    vsnprintf(text, sizeof text, fmt, ap);
    size_t len = strlen(text);
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        text[--len] = '\0';
    char quoted[600];
    log_quote(quoted, sizeof quoted, text);
    log_warn("msg=\"http server: %s\"", quoted);
}

/* Forms may lead (by redirect) to Keycloak (login, logout) and Stripe's hosted pages; Chrome
 * applies form-action to those redirects too. */
static char *build_csp(const struct usher_config *cfg)
{
    const char *kc = cfg->keycloak_server_url ? cfg->keycloak_server_url : "";
    bool own_stripe = strcmp(cfg->stripe_api_base, "https://api.stripe.com") != 0;
    return xasprintf("default-src 'self'; script-src 'self' https://js.stripe.com; "
                     "style-src 'self'; img-src 'self' data:; "
                     "connect-src 'self' https://api.stripe.com; "
                     "frame-src https://js.stripe.com https://checkout.stripe.com; "
                     "form-action 'self' https://checkout.stripe.com https://billing.stripe.com"
                     "%s%s%s%s; base-uri 'none'; object-src 'none'; frame-ancestors 'none'",
                     *kc ? " " : "", kc, own_stripe ? " " : "",
                     own_stripe ? cfg->stripe_api_base : "");
}

static int load_app(const struct usher_config *cfg, struct web_app *app)
{
    memset(app, 0, sizeof *app);
    app->cfg = cfg;
    app->csp = build_csp(cfg);
    int rc = db_pool_new(cfg->database_url, cfg->db_pool_size, &app->db);
    if (rc != 0) {
        log_error("msg=\"cannot open the database pool\" error=\"%s\"", usher_strerror(rc));
        return rc;
    }
    char *migrations = xasprintf("%s/migrations", cfg->data_dir);
    int have = 0, latest = 0;
    rc = db_schema_version(app->db, &have);
    if (rc == 0)
        rc = db_migrations_latest(app->db, migrations, &latest);
    free(migrations);
    if (rc == 0 && have > latest) {
        log_error("msg=\"database schema version %d is newer than this program (%d)\"", have,
                  latest);
        return USHER_ESCHEMA;
    }
    if (rc == 0 && have < latest)
        log_warn("msg=\"database schema is at version %d, %d is available: run usher migrate\"",
                 have, latest);
    /* An unreachable database at start is not fatal: /health/ reports it and the pool
     * reconnects when it returns. */
    if (USHER_IS_DB_ERROR(rc))
        log_warn("msg=\"database unreachable at start\"");
    else if (rc != 0)
        return rc;

    char *dir = xasprintf("%s/templates", cfg->data_dir);
    char *error = NULL;
    app->templates = mustache_set_new();
    rc = mustache_set_load_dir(app->templates, dir, &error);
    free(dir);
    if (rc != 0) {
        log_error("msg=\"templates failed to load\" detail=\"%s\"", error ? error : "");
        free(error);
        return rc;
    }
    app->catalog = onboarding_cache_new();
    app->sessions = session_cache_new();
    app->site = web_site_context(cfg);
    dir = xasprintf("%s/static", cfg->data_dir);
    rc = static_files_load(dir, &app->static_files);
    free(dir);
    if (rc == 0 && kc_admin_new(cfg, &app->kc) != 0) {
        app->kc = NULL; /* not configured: the pages that need it say so */
        log_info("msg=\"keycloak admin api not configured\"");
    }
    return rc;
}

static void free_app(struct web_app *app)
{
    kc_admin_free(app->kc);
    onboarding_cache_free(app->catalog);
    session_cache_free(app->sessions);
    json_decref(app->site);
    static_files_free(app->static_files);
    mustache_set_free(app->templates);
    db_pool_free(app->db);
    free(app->csp);
}

/* Waits for SIGTERM or SIGINT, giving malloc's free pages back meanwhile (mem.h). */
static int wait_for_signal(const sigset_t *set)
{
    const struct timespec tick = {MEM_TRIM_INTERVAL_MS / 1000,
                                  (long)(MEM_TRIM_INTERVAL_MS % 1000) * 1000000L};
    int sig;
    while ((sig = sigtimedwait(set, NULL, &tick)) < 0) {
        if (errno == EAGAIN)
            mem_trim();
        else if (errno != EINTR)
            return USHER_EIO;
    }
    log_info("msg=\"stopping\" signal=%s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    return 0;
}

static void drain(struct _u_instance *instance)
{
    MHD_socket listener = MHD_quiesce_daemon(instance->mhd_daemon);
    if (listener != MHD_INVALID_SOCKET)
        close(listener);
    int64_t deadline = clock_mono_ns() + (int64_t)SHUTDOWN_GRACE_SECONDS * 1000000000;
    while (atomic_load(&open_requests) > 0 && clock_mono_ns() < deadline) {
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    if (atomic_load(&open_requests) > 0)
        log_warn("msg=\"grace period over\" open_requests=%d", atomic_load(&open_requests));
}

static int start(struct _u_instance *instance, const struct usher_config *cfg,
                 struct sockaddr_in *addr)
{
    struct MHD_OptionItem options[] = {
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL}, /* must come first */
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)request_completed, NULL},
        {MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)uri_log, NULL},
        {MHD_OPTION_SOCK_ADDR, 0, addr},
        {MHD_OPTION_THREAD_POOL_SIZE, cfg->web_threads, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_TIMEOUT_SECONDS, NULL},
        {MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    /* TURBO: opportunistic reads and writes; MHD's own benchmarks show it is the fastest
     * mode for a thread pool, and nothing in Usher relies on the checks it skips.
     * poll(), not epoll: with epoll, MHD 0.9.75's MHD_quiesce_daemon races a pool thread
     * that removes the listening socket from its epoll set at the same moment, and aborts
     * the process ("Failed to remove listen FD from epoll set") during a graceful stop.
     * With poll() quiescing goes through the inter-thread channel instead; each pool
     * thread polls only its own few connections, so nothing measurable is lost. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG | MHD_USE_TURBO;
    if (ulfius_start_framework_with_mhd_options(instance, flags, options) != U_OK)
        return USHER_EIO;
    return 0;
}

static int serve_with(struct web_app *app, const struct usher_config *cfg, const sigset_t *stop)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->bind_port)};
    if (inet_pton(AF_INET, cfg->bind_host, &addr.sin_addr) != 1)
        return USHER_ECONFIG;
    struct _u_instance instance;
    if (ulfius_init_instance(&instance, (unsigned)cfg->bind_port, &addr, NULL) != U_OK)
        return USHER_EIO;
    /* One byte over the limit is read so the dispatcher can tell "too large" (413). */
    instance.max_post_body_size = cfg->max_body_bytes + 1;
    int rc = ulfius_set_default_endpoint(&instance, web_dispatch, app) == U_OK ? 0 : USHER_EIO;
    if (rc == 0)
        rc = start(&instance, cfg, &addr);
    if (rc != 0) {
        log_error("msg=\"cannot listen\" bind=%s:%d", cfg->bind_host, cfg->bind_port);
        ulfius_clean_instance(&instance);
        return rc;
    }
    log_info("msg=\"listening\" url=http://%s:%d threads=%d", cfg->bind_host, cfg->bind_port,
             cfg->web_threads);
    rc = wait_for_signal(stop);
    drain(&instance);
    ulfius_stop_framework(&instance);
    ulfius_clean_instance(&instance);
    log_info("msg=\"stopped\"");
    return rc;
}

int web_serve(const struct usher_config *cfg)
{
    sigset_t set; /* blocked before MHD starts its threads, which inherit the mask */
    signals_block_stop(&set);

    struct web_app app;
    int rc = load_app(cfg, &app);
    if (rc == 0)
        rc = serve_with(&app, cfg, &set);
    free_app(&app);
    return rc;
}
