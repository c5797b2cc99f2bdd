/*
 * request.h — one HTTP request as handlers see it, and the reply they build.
 *
 * The dispatcher (dispatch.c) fills a web_request, runs the middleware and the route's
 * handler, then sends exactly one reply. Handlers set the reply through response.h and
 * return 0, or return a negative usher_err and let the dispatcher answer with the mapped
 * error page (http_error.c). Handlers never touch Ulfius types directly.
 */
#ifndef USHER_WEB_REQUEST_H
#define USHER_WEB_REQUEST_H

#include "core/buf.h"
#include "core/netaddr.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct _u_request;
struct _u_response;
struct web_app;
struct web_route;
struct session;
struct user;

#define WEB_REQUEST_ID_MAX 64

struct web_request {
    const struct _u_request *u_req;
    struct _u_response *u_resp;
    struct web_app *app;
    const struct web_route *route;
    const char *method;
    const char *path;
    char request_id[WEB_REQUEST_ID_MAX + 1];
    /* The client's address (TRUSTED_PROXIES, core/netaddr.h), "" when the socket has none;
     * client_key is what per-address limits count under (an IPv6 client's /64). */
    char client_ip[NET_ADDR_TEXT_MAX];
    char client_key[NET_ADDR_TEXT_MAX];
    int64_t now; /* clock_now() at the start of the request */

    struct session *session; /* NULL when the request has none */
    char *new_cookie; /* raw id of a session created or rotated now: only ever sent
                       * to the browser, never stored */
    bool session_admitted; /* counted against the new-session ceiling (web_session_admit) */

    struct user *user; /* the logged-in user on login/admin routes, else NULL */

    /* The reply. */
    int status;
    bool replied;
};

/* Request accessors: borrowed strings, NULL when absent. */
const char *web_header(const struct web_request *r, const char *name);
const char *web_cookie(const struct web_request *r, const char *name);
const char *web_query(const struct web_request *r, const char *name);
const char *web_form(const struct web_request *r, const char *name);
const char *web_body(const struct web_request *r, size_t *len);
/* A repeated form field as a JSON array of at most max + 1 strings (caller owns; empty when
 * absent). Ulfius joins repeated fields with ','; callers validate every item. */
json_t *web_form_list(const struct web_request *r, const char *name, size_t max);
bool web_wants_json(const struct web_request *r);

/*
 * Parses the body as a JSON object and checks that every name in required (NULL-terminated)
 * is present as a string. On failure it replies 400 itself ({"error":"Invalid request"} or
 * one naming the missing fields) and returns USHER_EINVAL; the handler just returns 0.
 * *out belongs to the caller.
 */
int web_json_body(struct web_request *r, const char *const *required, json_t **out);

/*
 * The body's "email" field, validated and normalized (domain/validate.h) into *email (caller
 * frees). An invalid one gets the 400 {"error":msg,"errors":{"email":msg}} here and
 * USHER_EINVAL; the handler just returns 0.
 */
int web_json_email(struct web_request *r, const json_t *body, char **email);

#endif
