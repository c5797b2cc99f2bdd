/*
 * admin_users_bulk.c — the users list's bulk actions (domain/admin_bulk.h):
 *   POST /admin/users/bulk/ with action and the checked ids: a confirmation page; posted
 *     again from it (confirmed=yes): the job starts and the browser goes to its result;
 *   GET /admin/users/bulk/<job>/: per user, done or failed with the error, while pending
 *     ones remain the page refreshes itself (static/admin_users.js; without JavaScript, the
 *     "Refresh" link does it).
 * A selection that names no user any more is not an error here: that user's line reports
 * "no such user" once its task ran.
 */
#include "core/err.h"
#include "core/mem.h"
#include "domain/admin_bulk.h"
#include "domain/users.h"
#include "web/admin.h"
#include "web/admin_users.h"
#include "web/app.h"
#include "web/handlers.h"
#include "web/response.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The checked ids ("ids", repeated or comma-joined): every one must be a positive id. */
static int read_ids(struct web_request *r, int64_t *ids, int *n, const char **error)
{
    *n = 0;
    json_t *list = web_form_list(r, "ids", ADMIN_BULK_MAX_USERS);
    int rc = 0;
    size_t i;
    json_t *v;
    json_array_foreach (list, i, v) {
        const char *s = json_string_value(v);
        if (!*s && json_array_size(list) == 1)
            break; /* nothing checked */
        char path[32];
        snprintf(path, sizeof path, "%s/", s);
        int64_t id = strlen(s) < 20 ? web_admin_path_id(path) : 0;
        if (id <= 0) {
            *error = "The selection holds something that is not a user id.";
            rc = USHER_EINVAL;
            break;
        }
        if (*n == ADMIN_BULK_MAX_USERS) {
            *error = "At most 200 users at a time.";
            rc = USHER_EINVAL;
            break;
        }
        ids[(*n)++] = id;
    }
    json_decref(list);
    if (rc == 0 && *n == 0) {
        *error = "Choose at least one user (tick the boxes in the list), then the action.";
        rc = USHER_EINVAL;
    }
    return rc;
}

static void confirm(struct web_request *r, enum admin_bulk_action action, const int64_t *ids, int n)
{
    char *joined = xstrdup("");
    for (int i = 0; i < n; i++) {
        char *next = xasprintf("%s%s%lld", joined, i ? "," : "", (long long)ids[i]);
        free(joined);
        joined = next;
    }
    char title[160], text[400], button[160];
    snprintf(title, sizeof title, "%s: %d user%s?", admin_bulk_action_label(action), n,
             n == 1 ? "" : "s");
    snprintf(text, sizeof text,
             "Each selected user gets one background task (user ids %s%s). The next page shows "
             "each one's success or failure as the worker runs them.",
             n > 12 ? "" : joined, n > 12 ? "as selected" : "");
    snprintf(button, sizeof button, "%s (%d)", admin_bulk_action_label(action), n);
    json_t *fields =
        json_pack("{s:s, s:s}", "action", admin_bulk_action_name(action), "ids", joined);
    const struct web_admin_confirm c = {.title = title,
                                        .text = text,
                                        .action = "/admin/users/bulk/",
                                        .fields = fields,
                                        .button = button,
                                        .back = "/admin/users/",
                                        .section = "users"};
    web_admin_confirm(r, &c);
    json_decref(fields);
    free(joined);
}

int web_admin_users_bulk(struct web_request *r)
{
    enum admin_bulk_action action;
    if (admin_bulk_action_parse(web_form(r, "action"), &action) != 0) {
        web_admin_error(r, 400, "Choose one of the bulk actions.");
        return 0;
    }
    int64_t ids[ADMIN_BULK_MAX_USERS];
    int n = 0;
    const char *error = NULL;
    if (read_ids(r, ids, &n, &error) != 0) {
        web_admin_error(r, 400, error);
        return 0;
    }
    if (!web_admin_confirmed(r)) {
        confirm(r, action, ids, n);
        return 0;
    }
    const struct admin_actor actor = web_admin_who(r);
    int64_t job = 0;
    int rc = admin_bulk_start(r->app->db, action, &actor, ids, n, r->now, &job);
    if (rc != 0)
        return rc;
    char location[64];
    snprintf(location, sizeof location, "/admin/users/bulk/%lld/", (long long)job);
    web_admin_flash(r, "success", "Started: the tasks are queued.");
    web_redirect(r, location);
    return 0;
}

int web_admin_users_bulk_result(struct web_request *r, int64_t job_id)
{
    json_t *job = NULL;
    int rc = admin_bulk_result(r->app->db, job_id, &job);
    if (rc == USHER_ENOTFOUND) {
        web_admin_error(r, 404, "There is no bulk action with that number.");
        return 0;
    }
    if (rc != 0)
        return rc;
    static const char *const times[] = {"created_at", NULL};
    web_admin_times(job, times);
    char title[200];
    snprintf(title, sizeof title, "%s — bulk action %lld",
             json_string_value(json_object_get(job, "label")), (long long)job_id);
    json_t *ctx = web_admin_context(r, title, "users");
    json_object_set_new(ctx, "job", job);
    json_object_set_new(ctx, "self_url", json_string(r->path));
    web_reply_page(r, 200, "admin/users_bulk", ctx);
    json_decref(ctx);
    return 0;
}
