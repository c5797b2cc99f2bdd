/*
 * csrf.h — cross-site request forgery defence for state-changing requests (SPEC §6).
 *
 * Three checks, all required: `Sec-Fetch-Site: cross-site` is refused; an `Origin` header must
 * be Usher's own origin; and the request must carry the session's token, in the
 * `X-CSRF-Token` header (JSON calls) or the `csrf_token` form field (forms). The token is an
 * HMAC of the session id under SECRET_KEY (session_store.h), so an anonymous visitor's form
 * verifies without any row: the cookie's id alone gives the expected token.
 */
#ifndef USHER_WEB_CSRF_H
#define USHER_WEB_CSRF_H

#include "web/request.h"

/* 0 when the request may change state, USHER_EFORBIDDEN otherwise (with a log line). */
int web_csrf_check(struct web_request *r);

#endif
