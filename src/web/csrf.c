/*
 * csrf.c — the checks described in csrf.h.
 */
#include "web/csrf.h"

#include "core/config.h"
#include "core/crypto.h"
#include "core/err.h"
#include "core/log.h"
#include "domain/session_store.h"
#include "web/app.h"

#include <stdio.h>
#include <string.h>

/* The request's own origin, from PUBLIC_BASE_URL's scheme and the Host header: a browser
 * sends the attacker's origin in Origin, never ours, so matching either is safe. */
static bool origin_matches_host(const struct web_request *r, const char *origin)
{
    const char *host = web_header(r, "Host");
    if (!host)
        return false;
    char own[512];
    int n =
        snprintf(own, sizeof own, "%s://%s", r->app->cfg->public_https ? "https" : "http", host);
    return n > 0 && (size_t)n < sizeof own && !strcmp(own, origin);
}

static const char *refusal(const struct web_request *r)
{
    const char *site = web_header(r, "Sec-Fetch-Site");
    if (site && !strcmp(site, "cross-site"))
        return "cross-site request";
    const char *origin = web_header(r, "Origin");
    if (origin && strcmp(origin, r->app->cfg->public_origin) && !origin_matches_host(r, origin))
        return "foreign origin";
    if (!r->session)
        return "no session";
    const char *token = web_header(r, "X-CSRF-Token");
    if (!token)
        token = web_form(r, "csrf_token");
    if (!token)
        return "missing token";
    if (!crypto_equal_str(token, r->session->csrf_token))
        return "wrong token";
    return NULL;
}

int web_csrf_check(struct web_request *r)
{
    const char *why = refusal(r);
    if (!why)
        return 0;
    log_warn("request_id=%s msg=\"csrf check failed\" reason=\"%s\"", r->request_id, why);
    return USHER_EFORBIDDEN;
}
