/*
 * admin_audit.c — /admin/audit/: the audit log, newest first, searchable by actor, action and
 * target, each entry showing who, when, what and the fields before → after (SPEC §9).
 */
#include "core/err.h"
#include "domain/audit.h"
#include "web/admin.h"
#include "web/app.h"
#include "web/handlers.h"
#include "web/response.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const filters[] = {"actor", "action", "target", NULL};

/* A JSON value as a short line of text: strings as they are, the rest as JSON. */
static json_t *value_text(const json_t *v)
{
    if (!v || json_is_null(v))
        return json_string("—");
    if (json_is_string(v))
        return json_string(json_string_value(v));
    char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    json_t *out = json_string(text ? text : "");
    free(text);
    return out;
}

/* detail {"before":{…},"after":{…}} → changes [{field, before, after}]; other shapes (the
 * catalog apply's counts, …) → detail_text. */
static void view_entry(json_t *e)
{
    json_t *detail = json_object_get(e, "detail");
    json_t *before = json_object_get(detail, "before"), *after = json_object_get(detail, "after");
    time_t t = (time_t)json_integer_value(json_object_get(e, "created_at"));
    struct tm tm;
    char when[32] = "";
    if (gmtime_r(&t, &tm))
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
    json_object_set_new(e, "when", json_string(when));
    if ((json_is_object(before) || json_is_null(before)) &&
        (json_is_object(after) || json_is_null(after)) && (before || after)) {
        json_t *changes = json_array();
        const char *key;
        json_t *v;
        json_object_foreach (json_is_object(after) ? after : before, key, v)
            json_array_append_new(changes,
                                  json_pack("{s:s, s:o, s:o}", "field", key, "before",
                                            value_text(json_object_get(before, key)), "after",
                                            value_text(json_object_get(after, key))));
        json_object_set_new(e, "has_changes", json_boolean(json_array_size(changes) > 0));
        json_object_set_new(e, "changes", changes);
    } else if (detail && !json_is_null(detail)) {
        json_object_set_new(e, "detail_text", value_text(detail));
    }
    json_object_del(e, "detail");
}

int web_admin_audit(struct web_request *r)
{
    struct web_admin_page pg;
    struct audit_filter f = {0};
    if (web_admin_page_params(r, "audit", &pg) || web_admin_term(r, "actor", &f.actor) ||
        web_admin_term(r, "action", &f.action) || web_admin_term(r, "target", &f.target))
        return 0;
    if (strlen(f.actor) > AUDIT_FIELD_MAX || strlen(f.action) > AUDIT_FIELD_MAX) {
        web_admin_error(r, 400, "That search is too long.");
        return 0;
    }
    f.limit = pg.limit;
    f.before_id = pg.has_after ? pg.after.id : 0;
    json_t *rows = NULL;
    int64_t next_id = 0;
    int rc = audit_list(r->app->db, &f, &rows, &next_id);
    if (rc != 0)
        return rc;
    size_t i;
    json_t *e;
    json_array_foreach (rows, i, e)
        view_entry(e);
    json_t *ctx = web_admin_context(r, "Audit log", "audit");
    web_admin_filter_ctx(r, ctx, filters);
    json_object_set_new(ctx, "rows", rows);
    json_object_set_new(ctx, "empty", json_boolean(json_array_size(rows) == 0));
    if (next_id) {
        struct cursor next = {.id = next_id};
        web_admin_next_link(r, ctx, "audit", &next, filters);
    }
    web_reply_page(r, 200, "admin/audit", ctx);
    json_decref(ctx);
    return 0;
}
