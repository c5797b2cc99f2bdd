/*
 * admin_ops.c — shared pieces of the operations pages (see admin_ops.h).
 */
#include "web/admin_ops.h"

#include "core/err.h"
#include "core/mem.h"
#include "domain/users.h"
#include "web/app.h"
#include "web/response.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int web_ops_paging(struct web_request *r, const char *list, int *limit, int64_t *before)
{
    struct web_admin_page p;
    int rc = web_admin_page_params(r, list, &p);
    if (rc != 0)
        return rc;
    *limit = p.limit;
    *before = p.has_after ? p.after.id : 0;
    return 0;
}

void web_ops_list_ctx(struct web_request *r, json_t *ctx, const char *list, struct admin_page *page,
                      const char *const *keep)
{
    json_object_set_new(ctx, "empty", json_boolean(json_array_size(page->rows) == 0));
    char count[64];
    web_admin_count_label(&page->count, count, sizeof count);
    json_object_set_new(ctx, "count_label", json_string(count));
    json_object_set_new(
        ctx, "count_one",
        json_boolean(page->count.n == 1 && !page->count.estimated && !page->count.more));
    json_object_set_new(ctx, "rows", page->rows);
    page->rows = NULL;
    if (page->next_before > 0) {
        struct cursor next = {.id = page->next_before};
        web_admin_next_link(r, ctx, list, &next, keep);
    }
}

int64_t web_ops_path_id(const char *path, const char *prefix, const char **rest)
{
    size_t plen = strlen(prefix);
    if (strncmp(path, prefix, plen))
        return 0;
    const char *p = path + plen;
    size_t digits = strspn(p, "0123456789");
    if (digits == 0 || digits > 18 || p[0] == '0' || p[digits] != '/')
        return 0;
    errno = 0;
    long long id = strtoll(p, NULL, 10);
    if (errno || id <= 0)
        return 0;
    *rest = p + digits + 1;
    return (int64_t)id;
}

int web_ops_outcome(struct web_request *r, int rc, const char *msg, const char *back)
{
    if (rc == USHER_ENOTFOUND) {
        web_admin_error(r, 404, msg && *msg ? msg : "That record does not exist.");
        return 0;
    }
    if (rc == 0 || rc == USHER_ECONFLICT || rc == USHER_ELIMIT || rc == USHER_EINVAL) {
        web_admin_flash(r, rc == 0 ? "success" : "error",
                        msg && *msg ? msg : "The request could not be carried out.");
        web_redirect(r, back);
        return 0;
    }
    return rc;
}

static int show_record(struct web_request *r, const struct web_ops_record *d, int64_t id)
{
    json_t *record = NULL;
    int rc = d->get(r->app->db, id, &record);
    if (rc == USHER_ENOTFOUND) {
        web_admin_error(r, 404, d->missing);
        return 0;
    }
    if (rc != 0)
        return rc;
    json_t *ctx = web_admin_context(r, d->title, d->section);
    json_object_set_new(ctx, d->key, record);
    web_reply_page(r, 200, d->page, ctx);
    json_decref(ctx);
    return 0;
}

int web_ops_record_route(struct web_request *r, const struct web_ops_record *d)
{
    const char *rest = NULL;
    int64_t id = web_ops_path_id(r->path, d->prefix, &rest);
    bool post = !strcmp(r->method, "POST");
    if (id && !post && !*rest)
        return show_record(r, d, id);
    if (!id || !post || strcmp(rest, d->action)) {
        web_admin_error(r, 404, "There is no such page.");
        return 0;
    }
    struct admin_actor actor = web_admin_who(r);
    char msg[ADMIN_OPS_MSG_MAX];
    int rc = d->act(r->app->db, &actor, id, r->now, msg, sizeof msg);
    char *back = xasprintf("%s%lld/", d->prefix, (long long)id);
    rc = web_ops_outcome(r, rc, msg, back);
    free(back);
    return rc;
}
