/*
 * admin.c — the admin console's shared page pieces (see admin.h).
 */
#include "web/admin.h"

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/human_format.h"
#include "core/mem.h"
#include "domain/users.h"
#include "integrations/form.h"
#include "web/app.h"
#include "web/pages.h"
#include "web/response.h"
#include "web/session.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FLASH_KEY "admin_flash"
#define FLASH_MAX 512

/* The sections, in navigation order. Sections another part of the console builds are listed
 * from the start, so the layout never changes shape. */
static const struct {
    const char *key, *label, *url;
} sections[] = {
    {"home", "Overview", "/admin/"},
    {"products", "Products", "/admin/products/"},
    {"prices", "Prices", "/admin/prices/"},
    {"instances", "Instances", "/admin/instances/"},
    {"groups", "Groups", "/admin/groups/"},
    {"users", "Users", "/admin/users/"},
    {"stripe_events", "Stripe events", "/admin/stripe-events/"},
    {"tasks", "Tasks", "/admin/tasks/"},
    {"waitlist", "Waitlist", "/admin/waitlist/"},
    {"assignments", "Assignments", "/admin/assignments/"},
    {"audit", "Audit log", "/admin/audit/"},
};

static json_t *take_flash(struct web_request *r)
{
    json_t *data = web_session_data(r);
    json_t *flash = data ? json_object_get(data, FLASH_KEY) : NULL;
    if (!json_is_object(flash))
        return NULL;
    const char *kind = json_string_value(json_object_get(flash, "kind"));
    const char *text = json_string_value(json_object_get(flash, "text"));
    json_t *out = NULL;
    if (kind && text)
        out = json_pack("{s:s, s:s, s:b}", "kind", kind, "text", text, kind, 1);
    json_object_del(data, FLASH_KEY);
    web_session_changed(r);
    return out;
}

json_t *web_admin_context(struct web_request *r, const char *title, const char *section)
{
    json_t *ctx = web_page_context(r, title);
    json_t *nav = json_array();
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++)
        json_array_append_new(nav,
                              json_pack("{s:s, s:s, s:s, s:b}", "key", sections[i].key, "label",
                                        sections[i].label, "url", sections[i].url, "current",
                                        section && !strcmp(section, sections[i].key)));
    json_object_set_new(ctx, "nav", nav);
    if (section)
        json_object_set_new(ctx, "section", json_pack("{s:b}", section, 1));
    json_object_set_new(ctx, "admin", json_pack("{s:s}", "username", web_admin_actor(r)));
    json_t *flash = take_flash(r);
    if (flash)
        json_object_set_new(ctx, "flash", flash);
    return ctx;
}

void web_admin_flash(struct web_request *r, const char *kind, const char *text)
{
    json_t *data = web_session_data(r);
    if (!data || !kind || !text)
        return;
    char cut[FLASH_MAX + 1];
    snprintf(cut, sizeof cut, "%s", text);
    json_object_set_new(data, FLASH_KEY, json_pack("{s:s, s:s}", "kind", kind, "text", cut));
    web_session_changed(r);
}

void web_admin_error(struct web_request *r, int status, const char *message)
{
    if (web_wants_json(r)) {
        web_reply_json_error(r, status, message);
        return;
    }
    json_t *ctx = web_admin_context(r, "Error", NULL);
    json_object_set_new(ctx, "status", json_integer(status));
    json_object_set_new(ctx, "message", json_string(message));
    web_reply_page(r, status, "admin/error", ctx);
    json_decref(ctx);
}

void web_admin_confirm(struct web_request *r, const struct web_admin_confirm *c)
{
    json_t *ctx = web_admin_context(r, c->title, c->section);
    json_t *fields = json_array();
    const char *name;
    json_t *value;
    json_object_foreach ((json_t *)c->fields, name, value) {
        if (json_is_string(value))
            json_array_append_new(fields, json_pack("{s:s, s:O}", "name", name, "value", value));
    }
    json_object_set_new(ctx, "confirm",
                        json_pack("{s:s, s:s, s:s, s:o, s:s, s:s}", "title", c->title, "text",
                                  c->text ? c->text : "", "action", c->action, "fields", fields,
                                  "button", c->button, "back", c->back ? c->back : "/admin/"));
    web_reply_page(r, 200, "admin/confirm", ctx);
    json_decref(ctx);
}

bool web_admin_confirmed(struct web_request *r)
{
    const char *v = web_form(r, "confirmed");
    return v && !strcmp(v, "yes");
}

int web_admin_page_params(struct web_request *r, const char *list, struct web_admin_page *p)
{
    memset(p, 0, sizeof *p);
    p->limit = WEB_ADMIN_PAGE_SIZE;
    const char *limit = web_query(r, "limit");
    if (limit && *limit) {
        char *end = NULL;
        errno = 0;
        long v = strtol(limit, &end, 10);
        if (errno || *end || end == limit || v < 1 || v > WEB_ADMIN_PAGE_SIZE_MAX) {
            web_admin_error(r, 400, "The page size must be a number from 1 to 200.");
            return USHER_EINVAL;
        }
        p->limit = (int)v;
    }
    const char *after = web_query(r, "after");
    if (after && *after) {
        if (cursor_decode(r->app->cfg->secret_key, list, after, &p->after) != 0) {
            web_admin_error(r, 400,
                            "This page link is invalid or was made for another list. "
                            "Start again from the first page.");
            return USHER_EINVAL;
        }
        p->has_after = true;
    }
    return 0;
}

int web_admin_term(struct web_request *r, const char *name, const char **out)
{
    const char *v = web_query(r, name);
    *out = v ? v : "";
    /* jansson's string check doubles as a UTF-8 validator: PostgreSQL refuses invalid text,
     * which would otherwise surface as a database error. */
    json_t *valid = json_string(*out);
    json_decref(valid);
    if (!valid) {
        web_admin_error(r, 400, "Search terms must be valid UTF-8 text.");
        return USHER_EINVAL;
    }
    size_t chars = 0;
    for (const unsigned char *s = (const unsigned char *)*out; *s; s++) {
        if (*s < 0x20 || *s == 0x7f) {
            web_admin_error(r, 400, "Search terms cannot contain control characters.");
            return USHER_EINVAL;
        }
        if ((*s & 0xc0) != 0x80 && ++chars > WEB_ADMIN_SEARCH_MAX) {
            web_admin_error(r, 400, "That search is too long: at most 200 characters.");
            return USHER_EINVAL;
        }
    }
    return 0;
}

static void append_query(struct web_request *r, struct buf *url, const char *const *keep)
{
    buf_puts(url, r->path);
    for (size_t i = 0; keep && keep[i]; i++) {
        const char *v = web_query(r, keep[i]);
        if (v && *v)
            form_url_query(url, keep[i], v);
    }
}

char *web_admin_here(struct web_request *r, const char *const *keep)
{
    struct buf url;
    buf_init(&url);
    append_query(r, &url, keep);
    char *out = buf_detach(&url);
    buf_cleanup(&url); /* buf_detach leaves a fresh empty buffer behind */
    return out;
}

void web_admin_next_link(struct web_request *r, json_t *ctx, const char *list,
                         const struct cursor *next, const char *const *keep)
{
    if (!next)
        return;
    char *cursor = cursor_encode(r->app->cfg->secret_key, list, next);
    if (!cursor)
        return;
    struct buf url;
    buf_init(&url);
    append_query(r, &url, keep);
    bool kept_limit = false;
    for (size_t i = 0; keep && keep[i]; i++)
        kept_limit = kept_limit || !strcmp(keep[i], "limit");
    const char *limit = web_query(r, "limit");
    if (!kept_limit && limit && *limit) /* the page size always carries over, once */
        form_url_query(&url, "limit", limit);
    form_url_query(&url, "after", cursor);
    free(cursor);
    json_object_set_new(ctx, "next_url", json_string(url.data));
    buf_cleanup(&url);
}

void web_admin_count_label(const struct db_count *c, char *out, size_t size)
{
    char n[40];
    format_thousands(c->n < 0 ? 0 : (uint64_t)c->n, n, sizeof n);
    snprintf(out, size, "%s%s", c->estimated ? "about " : c->more ? "more than " : "", n);
}

int64_t web_admin_id(struct web_request *r, const char *name)
{
    /* The query first: a form's action names what it changes (…/edit/?id=N); a POST without
     * one (the inline forms) carries the id as a field. */
    const char *v = web_query(r, name);
    if (!v && !strcmp(r->method, "POST"))
        v = web_form(r, name);
    if (!v || !*v || strlen(v) > 19 || v[0] == '0' || strspn(v, "0123456789") != strlen(v))
        return 0;
    errno = 0;
    long long id = strtoll(v, NULL, 10);
    return errno ? 0 : (int64_t)id;
}

const char *web_admin_actor(const struct web_request *r)
{
    return r->user ? r->user->username : "";
}

int web_admin_yes_no(struct web_request *r, const char *name, int *out)
{
    const char *v = web_query(r, name);
    *out = -1;
    if (!v || !*v)
        return 0;
    if (!strcmp(v, "yes") || !strcmp(v, "no")) {
        *out = !strcmp(v, "yes");
        return 0;
    }
    web_admin_error(r, 400, "A yes/no filter must be \"yes\", \"no\" or empty.");
    return USHER_EINVAL;
}

bool web_admin_checked(struct web_request *r, const char *name)
{
    const char *v = web_form(r, name);
    return v && *v;
}

const char *web_admin_back(struct web_request *r, const char *prefix)
{
    const char *v = web_form(r, "back");
    if (!v || strncmp(v, prefix, strlen(prefix)) || strlen(v) > 2048)
        return prefix;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f || *p == '\\')
            return prefix;
    return v;
}

void web_admin_filter_ctx(struct web_request *r, json_t *ctx, const char *const *names)
{
    json_t *filter = json_object();
    for (size_t i = 0; names[i]; i++) {
        const char *v = web_query(r, names[i]);
        json_object_set_new(filter, names[i], json_string(v ? v : ""));
        if (v && *v && strlen(v) < 64 && strlen(names[i]) < 64) {
            char key[130];
            snprintf(key, sizeof key, "%s_%s", names[i], v);
            json_object_set_new(filter, key, json_true());
        }
    }
    const char *after = web_query(r, "after");
    json_object_set_new(filter, "after", json_boolean(after && *after));
    json_object_set_new(ctx, "filter", filter);
}

struct admin_actor web_admin_who(const struct web_request *r)
{
    return (struct admin_actor){.user_id = r->user ? r->user->id : 0,
                                .username = web_admin_actor(r)};
}

void web_admin_list_reply(struct web_request *r, const struct web_admin_list *l, json_t *rows,
                          bool more)
{
    json_t *ctx = web_admin_context(r, l->title, l->section);
    web_admin_filter_ctx(r, ctx, l->filters);
    if (l->extra)
        json_object_update(ctx, l->extra);
    json_decref(l->extra);
    json_object_set_new(ctx, "empty", json_boolean(json_array_size(rows) == 0));
    json_t *last = json_array_get(rows, json_array_size(rows) - 1);
    if (more && last) {
        struct cursor next = {.id = json_integer_value(json_object_get(last, "id"))};
        json_t *key = l->key ? json_object_get(last, l->key) : NULL;
        if (json_is_integer(key))
            snprintf(next.key, sizeof next.key, "%lld", (long long)json_integer_value(key));
        else if (json_is_string(key))
            snprintf(next.key, sizeof next.key, "%s", json_string_value(key));
        next.has_key = key != NULL;
        web_admin_next_link(r, ctx, l->list, &next, l->filters);
    }
    json_object_set_new(ctx, "rows", rows);
    web_reply_page(r, 200, l->page, ctx);
    json_decref(ctx);
}

void web_admin_time(int64_t t, char *out, size_t size)
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (t <= 0 || !gmtime_r(&tt, &tm) || !strftime(out, size, "%Y-%m-%d %H:%M UTC", &tm))
        snprintf(out, size, "—");
}

/* Each key of obj that names a time (Unix seconds as text or integer) gets "<key>_text". */
void web_admin_times(json_t *obj, const char *const *keys)
{
    for (size_t i = 0; keys[i]; i++) {
        json_t *v = json_object_get(obj, keys[i]);
        int64_t t = json_is_integer(v)  ? (int64_t)json_integer_value(v)
                    : json_is_string(v) ? strtoll(json_string_value(v), NULL, 10)
                                        : 0;
        char text[40];
        web_admin_time(t, text, sizeof text);
        char key[64];
        snprintf(key, sizeof key, "%s_text", keys[i]);
        json_object_set_new(obj, key, json_string(text));
    }
}

/* A positive decimal id followed by exactly "/" (no sign, no leading zero, no overflow);
 * 0 otherwise. */
int64_t web_admin_path_id(const char *s)
{
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > 18 || s[0] == '0' || strcmp(s + n, "/") != 0)
        return 0;
    return (int64_t)strtoll(s, NULL, 10);
}
