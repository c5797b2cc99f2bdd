/*
 * admin_ops.h — what the operations pages of the admin console (Stripe events, tasks,
 * waitlist, assignments) share on the web side: a list's paging turned into the domain's
 * `before`, an action's outcome as a flash and a redirect, and ids in paths.
 */
#ifndef USHER_WEB_ADMIN_OPS_H
#define USHER_WEB_ADMIN_OPS_H

#include "domain/admin_ops.h"
#include "web/admin.h"
#include "web/request.h"

/* Paging of list: *before the id to continue before (0: first page). USHER_EINVAL when the
 * 400 page was sent (the handler returns 0). */
int web_ops_paging(struct web_request *r, const char *list, int *limit, int64_t *before);

/* Puts rows, count_label ("1,234", "about 1,200,000"), the next-page link (keeping the query
 * fields named in keep) and an empty-state flag into ctx. Takes the page's rows. */
void web_ops_list_ctx(struct web_request *r, json_t *ctx, const char *list, struct admin_page *page,
                      const char *const *keep);

/*
 * The id in path after prefix ("/admin/tasks/" + "12/" + rest): *rest gets what follows
 * the id's slash ("" or e.g. "retry/"). 0 when the path holds no well-formed id (a forged
 * id: the caller answers 404).
 */
int64_t web_ops_path_id(const char *path, const char *prefix, const char **rest);

/*
 * An action's outcome: success → flash msg; not found → 404 page; a conflict, a limit or
 * bad input → flash msg as an error; then 303 to back. Other errors are returned for the
 * dispatcher (500/503). Returns what the handler should return.
 */
int web_ops_outcome(struct web_request *r, int rc, const char *msg, const char *back);

/*
 * One record's routes under prefix: GET <prefix><id>/ shows it (page, with the record under
 * key), POST <prefix><id>/<action> runs the action and redirects back to the record's page.
 * Anything else under the prefix, and forged ids, are 404.
 */
typedef int (*web_ops_get_fn)(struct db_pool *pool, int64_t id, json_t **out);
typedef int (*web_ops_action_fn)(struct db_pool *pool, const struct admin_actor *actor, int64_t id,
                                 int64_t now, char *msg, size_t msg_size);
struct web_ops_record {
    const char *prefix; /* "/admin/tasks/" */
    const char *section, *title, *page, *key; /* nav section, title, template, ctx key */
    const char *missing; /* the 404 page's sentence */
    web_ops_get_fn get;
    const char *action; /* "retry/" */
    web_ops_action_fn act;
};
int web_ops_record_route(struct web_request *r, const struct web_ops_record *d);

#endif
