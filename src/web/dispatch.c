/*
 * dispatch.c — the request pipeline (see dispatch.h).
 */
#include "web/dispatch.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/crypto.h"
#include "core/err.h"
#include "core/log.h"
#include "core/messages.h"
#include "core/metrics.h"
#include "core/netaddr.h"
#include "web/access.h"
#include "web/app.h"
#include "web/csrf.h"
#include "web/http_error.h"
#include "web/response.h"
#include "web/routes.h"
#include "web/session.h"

#include <stdatomic.h>
#include <sys/socket.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ulfius.h>

static atomic_int in_flight;

int web_in_flight(void)
{
    return atomic_load(&in_flight);
}

static bool valid_request_id(const char *id)
{
    size_t len = id ? strlen(id) : 0;
    if (len == 0 || len > WEB_REQUEST_ID_MAX)
        return false;
    for (const char *p = id; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

/* A new id without a CSPRNG call per request: a random per-thread prefix and a counter. It
 * only has to be unique and unguessable enough to correlate logs, not secret. */
static void assign_request_id(struct web_request *r)
{
    const char *given = web_header(r, "X-Request-Id");
    if (valid_request_id(given)) {
        snprintf(r->request_id, sizeof r->request_id, "%s", given);
        return;
    }
    static __thread unsigned char prefix[8];
    static __thread bool seeded;
    static __thread uint32_t counter;
    if (!seeded) {
        crypto_random(prefix, sizeof prefix);
        seeded = true;
    }
    char hex[2 * sizeof prefix + 1];
    crypto_hex(prefix, sizeof prefix, hex);
    snprintf(r->request_id, sizeof r->request_id, "%s%08x", hex, ++counter);
}

/* The client: the socket peer, or what X-Forwarded-For says when the peer is one of
 * TRUSTED_PROXIES (core/netaddr.h has the rule). The peer is read only when it is IPv4:
 * Ulfius 2.7 copies sizeof(struct sockaddr), 16 bytes, of the peer's address, which cuts an
 * IPv6 one (28 bytes) short, so `usher serve` listens on IPv4 (BIND) and IPv6 clients reach
 * it through a proxy, named in X-Forwarded-For. */
static void client_address(struct web_request *r)
{
    const struct sockaddr *sa = r->u_req->client_address;
    struct net_addr peer, client;
    if (!sa || sa->sa_family != AF_INET || net_addr_from_sockaddr(sa, &peer) != 0) {
        r->client_ip[0] = r->client_key[0] = '\0';
        return;
    }
    net_client_addr(&peer, web_header(r, "X-Forwarded-For"), &r->app->cfg->trusted_proxies,
                    &client);
    net_addr_format(&client, r->client_ip);
    net_addr_rate_key(&client, r->client_key);
}

static bool body_too_large(const struct web_request *r)
{
    size_t max = r->app->cfg->max_body_bytes;
    const char *length = web_header(r, "Content-Length");
    if (length) {
        char *end = NULL;
        unsigned long long n = strtoull(length, &end, 10);
        if (end != length && n > max)
            return true;
    }
    /* Ulfius stops reading at max + 1 bytes (server.c), so a longer chunked body shows
     * here as one byte too many. */
    return r->u_req->binary_body_length > max;
}

static bool changes_state(const struct web_request *r)
{
    return strcmp(r->method, "GET") && strcmp(r->method, "HEAD");
}

/* Session, CSRF, handler. Returns with r->replied set. */
static void run_route(struct web_request *r)
{
    const struct web_route *route = r->route;
    int rc = 0;
    if (route->access != WEB_OPS && route->access != WEB_WEBHOOK) {
        rc = web_session_load(r);
        if (rc == 0 && changes_state(r))
            rc = web_csrf_check(r);
        if (rc == 0)
            rc = web_access_check(r);
        if (rc == 0 && (route->flags & WEB_SESSION))
            rc = web_session_ensure(r);
        /* Before the handler, so that a refused request does nothing at all (no code mailed
         * for a session that would not be kept). */
        if (rc == 0 && changes_state(r))
            rc = web_session_admit(r);
    }
    if (rc == 0)
        rc = route->handler(r);
    if (rc != 0 && !r->replied)
        web_fail(r, rc);
    if (!r->replied) {
        log_error("request_id=%s msg=\"handler sent no reply\" route=%s", r->request_id,
                  route->name);
        web_reply_error(r, 500, msg("http.internal_error"));
    }
}

static void security_headers(struct web_request *r)
{
    web_set_header(r, "X-Request-Id", r->request_id);
    web_set_header(r, "X-Content-Type-Options", "nosniff");
    web_set_header(r, "X-Frame-Options", "DENY");
    web_set_header(r, "Referrer-Policy", "same-origin");
    web_set_header(r, "Content-Security-Policy", r->app->csp);
    web_set_header(r, "Cross-Origin-Opener-Policy", "same-origin");
    if (r->app->cfg->public_https)
        web_set_header(r, "Strict-Transport-Security", "max-age=31536000; includeSubDomains");
}

/* A page made for one visitor's session (their name, their form token) or handing out a new
 * session cookie is kept by no cache. Decided before web_session_finish lets the session go. */
static void private_headers(struct web_request *r)
{
    if (r->session || r->new_cookie)
        web_set_header(r, "Cache-Control", "no-store");
}

static void observe(const struct web_request *r, int64_t started_ns)
{
    double seconds = (double)(clock_mono_ns() - started_ns) / 1e9;
    /* Route names and methods come from Usher's own tables (known_method), so the labels
     * need no escaping and fit on the stack. */
    const char *route = r->route ? r->route->name : "unmatched";
    char labels[160];
    snprintf(labels, sizeof labels, "route=\"%s\",method=\"%s\",status=\"%d\"", route, r->method,
             r->status);
    metrics_counter_add("usher_http_requests_total", "HTTP requests answered.", labels, 1);
    snprintf(labels, sizeof labels, "route=\"%s\"", route);
    metrics_observe("usher_http_request_duration_seconds", "Time to answer HTTP requests.", labels,
                    seconds, metrics_latency_buckets, metrics_latency_bucket_count);

    char path[256];
    log_quote(path, sizeof path, r->path);
    log_info("request_id=%s method=%s path=\"%s\" status=%d duration_ms=%.2f ip=%s", r->request_id,
             r->method, path, r->status, seconds * 1000.0, r->client_ip);
}

static const char *known_method(const char *m)
{
    static const char *const methods[] = {"GET",    "HEAD",    "POST",  "PUT",    "PATCH",
                                          "DELETE", "OPTIONS", "TRACE", "CONNECT"};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (!strcmp(m, methods[i]))
            return methods[i];
    return "OTHER";
}

int web_dispatch(const struct _u_request *req, struct _u_response *resp, void *user_data)
{
    int64_t started = clock_mono_ns();
    atomic_fetch_add(&in_flight, 1);
    struct web_request r = {.u_req = req, .u_resp = resp, .app = user_data};
    r.method = known_method(req->http_verb);
    r.path = req->url_path ? req->url_path : "/";
    r.now = clock_now();
    assign_request_id(&r);
    client_address(&r);

    r.route = web_route_find(r.path);
    if (!r.route) {
        web_reply_error(&r, 404, msg("http.not_found"));
    } else if (!web_route_allows(r.route, r.method)) {
        char allow[64];
        web_route_allow_header(r.route, allow, sizeof allow);
        web_set_header(&r, "Allow", allow);
        web_reply_error(&r, 405, msg("http.method_not_allowed"));
    } else if (body_too_large(&r)) {
        web_reply_error(&r, 413, msg("http.body_too_large"));
    } else {
        run_route(&r);
    }
    web_access_finish(&r);
    private_headers(&r);
    web_session_finish(&r);
    security_headers(&r);
    observe(&r, started);
    atomic_fetch_sub(&in_flight, 1);
    return U_CALLBACK_COMPLETE;
}
