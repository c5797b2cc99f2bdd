/*
 * admin.h — what every admin console page shares (SPEC §9): the page context with the
 * section navigation, one-time flash messages, the confirmation page for destructive or bulk
 * actions, the admin error page, and the list helpers (keyset cursors, page size, search
 * terms, count labels).
 *
 * Access is decided before a handler runs: every /admin/ route is WEB_ADMIN (web/access.c:
 * logged in, users.is_admin, and ADMIN_GROUP membership confirmed with Keycloak on every
 * request), and every POST carries the session's CSRF token (web/csrf.c, the dispatcher). A
 * form only has to include `<input type="hidden" name="csrf_token" value="{{csrf_token}}">`.
 *
 * Pages render templates/pages/admin/<name>.mustache, which extend layouts/admin (the
 * navigation, the flash, the admin stylesheet). Words on admin pages live in those
 * templates: operators read them, not customers.
 */
#ifndef USHER_WEB_ADMIN_H
#define USHER_WEB_ADMIN_H

#include "core/cursor.h"
#include "db/count.h"
#include "domain/admin_list.h"
#include "web/request.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define WEB_ADMIN_PAGE_SIZE 50
#define WEB_ADMIN_PAGE_SIZE_MAX 200
#define WEB_ADMIN_SEARCH_MAX 200 /* characters of a search term */

/*
 * web_page_context plus: admin{username}, nav (array of {key, label, url, current}) with
 * section marked current (aria-current), section.<key> true, and flash{kind, text} when the
 * previous request left one (it is taken out of the session now). Caller owns.
 */
json_t *web_admin_context(struct web_request *r, const char *title, const char *section);

/* Leaves a one-time message for the next admin page (kind "success" or "error"); text is
 * copied. Typically followed by a 303 to the page that shows it. */
void web_admin_flash(struct web_request *r, const char *kind, const char *text);

/* An error page inside the admin layout (status 400, 404, 409, …), message as its text. */
void web_admin_error(struct web_request *r, int status, const char *message);

/* A confirmation page: "Are you sure?" for a destructive or bulk action. */
struct web_admin_confirm {
    const char *title; /* "Retry 3 tasks?" */
    const char *text; /* what will happen */
    const char *action; /* the POST target (Usher's own path) */
    const json_t *fields; /* object name → string: hidden fields re-posted (may be NULL) */
    const char *button; /* "Retry 3 tasks" */
    const char *back; /* where "Cancel" goes */
    const char *section; /* nav section */
};
/* Renders it (200): a POST form with the fields, csrf_token and confirmed=yes. */
void web_admin_confirm(struct web_request *r, const struct web_admin_confirm *c);
/* Whether the POST came from that page (confirmed=yes). */
bool web_admin_confirmed(struct web_request *r);

/* A list request's paging: ?after=<cursor> and ?limit=. */
struct web_admin_page {
    int limit; /* WEB_ADMIN_PAGE_SIZE, or ?limit= within 1..WEB_ADMIN_PAGE_SIZE_MAX */
    bool has_after;
    struct cursor after; /* valid when has_after */
};
/* Reads the paging of list (the cursor's binding, e.g. "products"). A forged, truncated or
 * foreign cursor, or a limit out of range, gets a 400 admin page saying so here and returns
 * USHER_EINVAL (the handler returns 0). */
int web_admin_page_params(struct web_request *r, const char *list, struct web_admin_page *p);

/*
 * A search or filter term from the query string: *out borrowed ("" when absent). Longer than
 * WEB_ADMIN_SEARCH_MAX characters, not UTF-8, or with control characters: a 400 admin page and
 * USHER_EINVAL. Quotes, % and _ are ordinary characters (the queries bind and escape them).
 */
int web_admin_term(struct web_request *r, const char *name, const char **out);

/*
 * ctx.next_url: the current path with the query parameters named in keep (NULL-terminated;
 * only those that are non-empty) and after=<cursor for next>. Nothing when next is NULL.
 */
void web_admin_next_link(struct web_request *r, json_t *ctx, const char *list,
                         const struct cursor *next, const char *const *keep);

/* One list page's reply (templates/pages/admin/<page>.mustache). */
struct web_admin_list {
    const char *page, *title, *section;
    const char *list; /* the cursors' binding */
    const char *const *filters; /* query parameters kept in the next link and shown again */
    const char *key; /* the sort key's field in a row (NULL: the list is ordered by id) */
    json_t *extra; /* more context (stolen; may be NULL) */
};
/* Replies 200 with ctx {filter, rows (stolen), empty, next_url when more: a cursor after the
 * last row's id and key}. */
void web_admin_list_reply(struct web_request *r, const struct web_admin_list *l, json_t *rows,
                          bool more);

/* "1,234", "more than 10,000", "about 1,200,000" into out. */
void web_admin_count_label(const struct db_count *c, char *out, size_t size);

/* The positive id in the query (or, for a POST without one, the form) field name; 0 when
 * absent or malformed (the
 * caller answers 404: a forged id is a page that does not exist). */
int64_t web_admin_id(struct web_request *r, const char *name);

/* A yes/no filter (?name=yes|no, absent or "" for any) into *out (1, 0, -1); anything else
 * gets a 400 admin page and USHER_EINVAL. */
int web_admin_yes_no(struct web_request *r, const char *name, int *out);
/* Whether the form's checkbox name was ticked. */
bool web_admin_checked(struct web_request *r, const char *name);
/* The POST's "back" field when it is a path under prefix (a list with its filters), else
 * prefix: where to go after an inline edit. Never a URL the request could point elsewhere. */
const char *web_admin_back(struct web_request *r, const char *prefix);
/* ctx.filter: every query parameter named in names (NULL-terminated) as given ("" when
 * absent), for the filter form to show them again; plus filter.<name>_<value> = true, for
 * selects. */
void web_admin_filter_ctx(struct web_request *r, json_t *ctx, const char *const *names);

/* admin_lists.c, for the lists filtered by product: ?product=<id> into *product_id (0 when
 * absent); a malformed one gets a 404 admin page and USHER_EINVAL. */
int web_admin_product_param(struct web_request *r, int64_t *product_id);
/* Every product as {id, slug, name, selected} for a filter's select (caller owns). */
int web_admin_product_choices(struct web_request *r, int64_t selected, json_t **out);

/* The current path with the query parameters named in keep (non-empty ones), heap. */
char *web_admin_here(struct web_request *r, const char *const *keep);

/* The admin's identity for audit entries. */
const char *web_admin_actor(const struct web_request *r);
struct admin_actor web_admin_who(const struct web_request *r);

/* "2026-12-04 21:33 UTC", or "—" for 0 / NULL. */
void web_admin_time(int64_t t, char *out, size_t size);
/* For each key of obj in keys (NULL-terminated) holding Unix seconds (integer or text), sets
 * "<key>_text" to web_admin_time's text. */
void web_admin_times(json_t *obj, const char *const *keys);
/* The id in a path remainder "<digits>/", or 0 when it is anything else. */
int64_t web_admin_path_id(const char *s);

#endif
