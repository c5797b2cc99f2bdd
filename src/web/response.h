/*
 * response.h — building the one reply of a request.
 *
 * Every function sets status, headers and body of r's reply; the last call wins. Security
 * headers, the request id and the session cookie are added by the dispatcher for all
 * replies, so handlers only say what is specific to them.
 */
#ifndef USHER_WEB_RESPONSE_H
#define USHER_WEB_RESPONSE_H

#include "web/request.h"

#include <jansson.h>

void web_set_header(struct web_request *r, const char *name, const char *value);
/* One more Set-Cookie (beside any set with web_set_header): Path=/, HttpOnly, SameSite=Lax,
 * Secure unless DEBUG, no Domain, gone with the browser session. 0, or USHER_EIO. */
int web_add_cookie(struct web_request *r, const char *name, const char *value);
/* Takes a reference-free borrow of body: it is serialized at once. */
void web_reply_json(struct web_request *r, int status, const json_t *body);
/* {"error": message} */
void web_reply_json_error(struct web_request *r, int status, const char *message);
void web_reply_bytes(struct web_request *r, int status, const char *content_type, const void *body,
                     size_t len);
void web_reply_empty(struct web_request *r, int status);
/* 303 See Other to a local path, a configured URL or one an upstream issued (never one the
 * request supplied). */
void web_redirect(struct web_request *r, const char *location);
/* Renders templates/pages/<page>.mustache with ctx (borrowed) into a text/html reply; a
 * rendering failure becomes a 500 page. */
void web_reply_page(struct web_request *r, int status, const char *page, json_t *ctx);
/* An error reply in the shape the client wants: JSON {"error": …} or an HTML page. 500s
 * carry the request id. */
void web_reply_error(struct web_request *r, int status, const char *message);
/* The same, with kind (may be NULL) set as a flag in the page's context, so the error page
 * can word a known failure itself: "login_failed" (a refused login callback). */
void web_reply_error_kind(struct web_request *r, int status, const char *kind, const char *message);

#endif
