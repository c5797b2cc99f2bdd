/*
 * admin_tasks.c — /admin/tasks/: the task queue by state and name, one task's detail, and
 * retrying failed tasks, one from its page or several from the list after a confirmation
 * (domain/admin_tasks.h).
 */
#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"
#include "domain/admin_tasks.h"
#include "web/admin_ops.h"
#include "web/app.h"
#include "web/handlers.h"
#include "web/response.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TASKS_PATH "/admin/tasks/"

static const char *const states[] = {"queued", "running", "done", "failed"};

int web_admin_tasks(struct web_request *r)
{
    const char *state = NULL, *name = NULL;
    int limit = 0;
    int64_t before = 0;
    if (web_admin_term(r, "state", &state) != 0 || web_admin_term(r, "name", &name) != 0 ||
        web_ops_paging(r, "tasks", &limit, &before))
        return 0;
    struct admin_task_filter f = {.state = state, .name = name};
    struct admin_page page = {0};
    int rc = admin_tasks_list(r->app->db, &f, before, limit, &page);
    if (rc == USHER_EINVAL) {
        web_admin_error(r, 400,
                        "Those filters are not valid: the state must be queued, running, done or "
                        "failed, and the name a task name such as sync_user_post_checkout.");
        return 0;
    }
    json_t *names = NULL;
    if (rc == 0)
        rc = admin_task_names(r->app->db, &names);
    if (rc != 0) {
        admin_page_cleanup(&page);
        return rc;
    }
    json_t *ctx = web_admin_context(r, "Tasks", "tasks");
    json_t *opts = json_array();
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
        json_array_append_new(opts, json_pack("{s:s,s:b}", "value", states[i], "selected",
                                              !strcmp(state, states[i])));
    json_object_set_new(ctx, "states", opts);
    json_object_set_new(ctx, "names", names);
    json_object_set_new(ctx, "f", json_pack("{s:s,s:s}", "state", state, "name", name));
    static const char *const keep[] = {"state", "name", NULL};
    web_ops_list_ctx(r, ctx, "tasks", &page, keep);
    web_reply_page(r, 200, "admin/tasks", ctx);
    json_decref(ctx);
    return 0;
}

int web_admin_task(struct web_request *r)
{
    static const struct web_ops_record d = {
        .prefix = TASKS_PATH,
        .section = "tasks",
        .title = "Task",
        .page = "admin/task",
        .key = "task",
        .missing = "That task does not exist (done tasks are purged after a while).",
        .get = admin_task_get,
        .action = "retry/",
        .act = admin_task_retry,
    };
    return web_ops_record_route(r, &d);
}

/* ---- bulk retry --------------------------------------------------------------------------- */

/* The selected ids: repeated "id" fields (the list's checkboxes) or one "ids" field (the
 * confirmation page), comma-separated either way. Returns how many, or -1 when one is not an
 * id or there are too many. */
static int selected_ids(struct web_request *r, int64_t *ids, int max)
{
    const char *ids_field = web_form(r, "ids");
    json_t *list = ids_field ? NULL : web_form_list(r, "id", (size_t)max);
    struct buf all;
    buf_init(&all);
    if (ids_field) {
        buf_puts(&all, ids_field);
    } else {
        size_t i;
        json_t *v;
        json_array_foreach (list, i, v)
            buf_printf(&all, "%s%s", i ? "," : "", json_string_value(v));
    }
    json_decref(list);
    int n = 0;
    for (const char *p = all.data; *p && n >= 0;) {
        size_t len = strcspn(p, ",");
        size_t digits = strspn(p, "0123456789");
        long long id = 0;
        if (digits == len && digits > 0 && digits <= 18 && p[0] != '0')
            id = strtoll(p, NULL, 10); /* stops at the comma; 18 digits cannot overflow */
        if (id <= 0 || n >= max)
            n = -1;
        else
            ids[n++] = id;
        p += len;
        if (*p == ',' && *++p == '\0')
            n = -1; /* a trailing comma */
    }
    buf_cleanup(&all);
    return n;
}

int web_admin_tasks_retry(struct web_request *r)
{
    int64_t ids[ADMIN_TASKS_BULK_MAX];
    int n = selected_ids(r, ids, ADMIN_TASKS_BULK_MAX);
    if (n <= 0) {
        web_admin_flash(r, "error",
                        n == 0 ? "Select at least one failed task to retry."
                               : "The selection is not valid (at most 100 task ids).");
        web_redirect(r, TASKS_PATH "?state=failed");
        return 0;
    }
    if (!web_admin_confirmed(r)) {
        struct buf list;
        buf_init(&list);
        for (int i = 0; i < n; i++)
            buf_printf(&list, "%s%lld", i ? "," : "", (long long)ids[i]);
        char title[64], text[160], button[64];
        snprintf(title, sizeof title, "Retry %d task%s?", n, n == 1 ? "" : "s");
        snprintf(text, sizeof text,
                 "The failed ones among tasks %s are queued to run now with a fresh set of "
                 "retries. Tasks that are not failed are left alone.",
                 list.data);
        snprintf(button, sizeof button, "Retry %d task%s", n, n == 1 ? "" : "s");
        json_t *fields = json_pack("{s:s}", "ids", list.data);
        struct web_admin_confirm c = {.title = title,
                                      .text = text,
                                      .action = TASKS_PATH "retry/",
                                      .fields = fields,
                                      .button = button,
                                      .back = TASKS_PATH "?state=failed",
                                      .section = "tasks"};
        web_admin_confirm(r, &c);
        json_decref(fields);
        buf_cleanup(&list);
        return 0;
    }
    struct admin_actor actor = web_admin_who(r);
    json_t *results = NULL;
    int retried = 0;
    int rc = admin_tasks_retry_many(r->app->db, &actor, ids, n, r->now, &results, &retried);
    if (rc != 0)
        return rc;
    json_t *ctx = web_admin_context(r, "Tasks retried", "tasks");
    json_object_set_new(ctx, "results", results);
    json_object_set_new(ctx, "retried", json_integer(retried));
    json_object_set_new(ctx, "skipped", json_integer(n - retried));
    web_reply_page(r, 200, "admin/tasks_retried", ctx);
    json_decref(ctx);
    return 0;
}
