/*
 * routes.h — the route table: every URL Usher answers, with its methods, handler and access.
 *
 * One static table (routes.c); the dispatcher looks a path up here, so 404 and 405 (with
 * Allow) are decided in one place. A path ending in '*' matches by prefix.
 */
#ifndef USHER_WEB_ROUTES_H
#define USHER_WEB_ROUTES_H

#include "web/request.h"

#include <stdbool.h>

enum web_method { WEB_GET = 1, WEB_POST = 2 };

enum web_access {
    WEB_PUBLIC, /* anyone; state-changing methods need a CSRF token */
    WEB_LOGIN, /* a logged-in user */
    WEB_ADMIN, /* a member of ADMIN_GROUP */
    WEB_WEBHOOK, /* no session, no CSRF: authenticated by signature */
    WEB_OPS, /* health and metrics: no session, no CSRF */
};

enum web_route_flags {
    WEB_JSON = 1, /* replies are JSON, errors too */
    WEB_SESSION = 2, /* creates a session if the request has none (pages that show forms) */
    /* GET may be answered from an in-memory copy of an anonymous session whose state tag the
     * browser sends (domain/session_cache.h): pages that only show what the session holds. */
    WEB_SESSION_COPY = 4,
};

typedef int (*web_handler_fn)(struct web_request *r);

struct web_route {
    const char *path;
    unsigned methods;
    web_handler_fn handler;
    enum web_access access;
    unsigned flags;
    const char *name; /* the metrics label */
};

/* The route for path, or NULL. */
const struct web_route *web_route_find(const char *path);
bool web_route_allows(const struct web_route *route, const char *method);
/* "GET, HEAD, POST" style list for the Allow header, into out. */
void web_route_allow_header(const struct web_route *route, char *out, size_t size);
bool web_route_is_json(const struct web_route *route);

#endif
