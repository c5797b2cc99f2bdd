/*
 * session.h — the session middleware: the cookie on the way in and out, and the ceiling on
 * new sessions per client IP.
 *
 * The cookie is `__Host-usher_session` (Secure, HttpOnly, SameSite=Lax, Path=/, no Domain),
 * or plain `usher_session` without Secure when DEBUG is on, so local http works. Sessions are
 * lazy (domain/session_store.h): a page view may hand out an id, but only a request that
 * stores something writes a row, and at most SESSION_NEW_PER_IP_PER_MINUTE such rows are
 * started per client IP and minute.
 */
#ifndef USHER_WEB_SESSION_H
#define USHER_WEB_SESSION_H

#include "web/request.h"

#include <jansson.h>
#include <stdbool.h>

/* Loads the request's session if its cookie names a live one (a row, or a valid unstored
 * id). A malformed, forged or stale cookie leaves the request without one. */
int web_session_load(struct web_request *r);
/* Makes sure the request has a session, starting one in memory (and its cookie) if needed.
 * Writes nothing. */
int web_session_ensure(struct web_request *r);
/*
 * Counts the request against the new-session ceiling of its IP when it has a session without
 * a row, so a request that would start a row is refused before it does any work. 0 when
 * admitted (or nothing to count); USHER_ELIMIT with Retry-After set when refused. The
 * dispatcher calls it for every state-changing request; a GET handler calls it before it
 * stores something in the session.
 */
int web_session_admit(struct web_request *r);
/* Persists what there is to keep and sends the cookie when it is new. Called once, after the
 * handler. */
int web_session_finish(struct web_request *r);
/* Rotates the id and CSRF token (login). */
int web_session_rotate(struct web_request *r);
/* The session's state object (borrowed), or NULL without a session. Call
 * web_session_changed after modifying it. */
json_t *web_session_data(struct web_request *r);
/* Marks the session as having something to keep: it is written (its row created if need be)
 * at the end of the request. */
void web_session_changed(struct web_request *r);
/* The object under key in the session's state (borrowed); with create it is made when
 * missing. NULL without a session, or when it is missing (or not an object) and !create. */
json_t *web_session_object(struct web_request *r, const char *key, bool create);
const char *web_session_cookie_name(const struct web_request *r);

#endif
