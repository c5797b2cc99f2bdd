/*
 * session.h — the session middleware: the cookie on the way in and out.
 *
 * The cookie is `__Host-usher_session` (Secure, HttpOnly, SameSite=Lax, Path=/, no Domain),
 * or plain `usher_session` without Secure when DEBUG is on, so local http works.
 */
#ifndef USHER_WEB_SESSION_H
#define USHER_WEB_SESSION_H

#include "web/request.h"

#include <jansson.h>
#include <stdbool.h>

/* Loads the request's session if its cookie names a live one. */
int web_session_load(struct web_request *r);
/* Makes sure the request has a session, creating one (and its cookie) if needed. */
int web_session_ensure(struct web_request *r);
/* Persists changes and sends the cookie when it is new. Called once, after the handler. */
int web_session_finish(struct web_request *r);
/* Rotates the id and CSRF token (login). */
int web_session_rotate(struct web_request *r);
/* The session's state object (borrowed), or NULL without a session. Call
 * web_session_changed after modifying it. */
json_t *web_session_data(struct web_request *r);
void web_session_changed(struct web_request *r);
/* The object under key in the session's state (borrowed); with create it is made when
 * missing. NULL without a session, or when it is missing (or not an object) and !create. */
json_t *web_session_object(struct web_request *r, const char *key, bool create);
const char *web_session_cookie_name(const struct web_request *r);

#endif
