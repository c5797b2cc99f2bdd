/*
 * pages.h — the context every HTML page starts from: brand, CSRF token, request id.
 */
#ifndef USHER_WEB_PAGES_H
#define USHER_WEB_PAGES_H

#include "web/request.h"

#include <jansson.h>

/* A new object (caller owns) with site{name, logo_url, brand_color, support_email,
 * terms_url, privacy_url} ("" when unset), title,
 * csrf_token (when the request has a session) and request_id. */
json_t *web_page_context(struct web_request *r, const char *title);
struct usher_config;
/* The site{…} object alone (caller owns). `usher serve` builds it once (web_app.site): the
 * configuration does not change while it runs, and every page shares it read-only. */
json_t *web_site_context(const struct usher_config *cfg);

#endif
