/*
 * admin_instances.c — /admin/instances/ (filter by product, active, auto-allocate; search by
 * name or base URL) and /admin/instances/edit/?id=N: base URL, API key, groups, caps with a
 * message per field, seats read-only (SPEC §9; rules in domain/admin_instances.h).
 */
#include "core/buf.h"
#include "core/err.h"
#include "domain/admin_catalog.h"
#include "domain/admin_instances.h"
#include "web/admin.h"
#include "web/app.h"
#include "web/handlers.h"
#include "web/response.h"

#include <stdio.h>
#include <string.h>

static const char *const filters[] = {"q", "product", "active", "auto_allocate", NULL};

int web_admin_instances(struct web_request *r)
{
    struct web_admin_page pg;
    struct admin_instance_filter f = {0};
    if (web_admin_page_params(r, "instances", &pg) || web_admin_term(r, "q", &f.q) ||
        web_admin_product_param(r, &f.product_id) || web_admin_yes_no(r, "active", &f.active) ||
        web_admin_yes_no(r, "auto_allocate", &f.auto_allocate))
        return 0;
    f.limit = pg.limit;
    f.after_id = pg.has_after ? pg.after.id : 0;
    json_t *rows = NULL, *products = NULL;
    bool more = false;
    int rc = admin_instances_list(r->app->db, &f, &rows, &more);
    if (rc == 0)
        rc = web_admin_product_choices(r, f.product_id, &products);
    if (rc != 0) {
        json_decref(rows);
        return rc;
    }
    const struct web_admin_list l = {"admin/instances",
                                     "Instances",
                                     "instances",
                                     "instances",
                                     filters,
                                     NULL,
                                     json_pack("{s:o}", "products", products)};
    web_admin_list_reply(r, &l, rows, more);
    return 0;
}

/* The groups as the form's textarea shows them: one per line. */
static void groups_text(json_t *inst)
{
    struct buf text;
    buf_init(&text);
    size_t i;
    json_t *g;
    json_array_foreach (json_object_get(inst, "groups"), i, g) {
        if (i)
            buf_putc(&text, '\n');
        buf_puts(&text, json_string_value(g));
    }
    json_object_set_new(inst, "groups_text", json_string(text.data));
    buf_cleanup(&text);
}

static void render(struct web_request *r, int status, json_t *inst, json_t *errors,
                   const char *banner)
{
    json_t *ctx = web_admin_context(r, "Edit instance", "instances");
    if (!json_object_get(inst, "groups_text"))
        groups_text(inst);
    json_object_set_new(ctx, "instance", json_incref(inst));
    if (errors && json_object_size(errors)) {
        json_object_set_new(ctx, "errors", json_incref(errors));
        json_object_set_new(ctx, "has_errors", json_true());
    }
    if (banner)
        json_object_set_new(ctx, "banner", json_string(banner));
    web_reply_page(r, status, "admin/instance_edit", ctx);
    json_decref(ctx);
}

/* Puts the submitted text over the stored values, so a refused form keeps what was typed. */
static void overlay_form(json_t *inst, const struct admin_instance_form *f)
{
    const struct {
        const char *key, *value;
    } fields[] = {{"base_url", f->base_url},
                  {"soft_cap", f->soft_cap},
                  {"allocation_cap", f->allocation_cap},
                  {"hard_cap", f->hard_cap},
                  {"groups_text", f->groups}};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        json_t *s = json_string(fields[i].value ? fields[i].value : "");
        json_object_set_new(inst, fields[i].key, s ? s : json_string(""));
    }
    json_object_set_new(inst, "is_active", json_boolean(f->is_active));
    json_object_set_new(inst, "auto_allocate", json_boolean(f->auto_allocate));
}

int web_admin_instance_edit(struct web_request *r)
{
    int64_t id = web_admin_id(r, "id");
    json_t *inst = NULL;
    int rc = id ? admin_instance_get(r->app->db, id, &inst) : USHER_ENOTFOUND;
    if (rc == USHER_ENOTFOUND) {
        web_admin_error(r, 404, "There is no such instance. It may have been deleted.");
        return 0;
    }
    if (rc != 0)
        return rc;
    if (strcmp(r->method, "POST")) {
        render(r, 200, inst, NULL, NULL);
        json_decref(inst);
        return 0;
    }
    const struct admin_instance_form f = {
        .base_url = web_form(r, "base_url"),
        .api_key = web_form(r, "api_key"),
        .groups = web_form(r, "groups"),
        .soft_cap = web_form(r, "soft_cap"),
        .allocation_cap = web_form(r, "allocation_cap"),
        .hard_cap = web_form(r, "hard_cap"),
        .is_active = web_admin_checked(r, "is_active"),
        .auto_allocate = web_admin_checked(r, "auto_allocate"),
    };
    const struct admin_actor who = web_admin_who(r);
    json_t *errors = NULL;
    rc = admin_instance_save(r->app->db, &who, id, web_form(r, "fp"), &f, r->now, &errors);
    if (rc == 0) {
        web_admin_flash(r, "success", "Saved the instance.");
        char location[64];
        snprintf(location, sizeof location, "/admin/instances/edit/?id=%lld", (long long)id);
        web_redirect(r, location);
    } else if (rc == USHER_EINVAL) {
        overlay_form(inst, &f);
        render(r, 400, inst, errors, "Nothing was saved. Correct the fields marked below.");
        rc = 0;
    } else if (rc == USHER_ECONFLICT) {
        json_decref(inst);
        inst = NULL;
        rc = admin_instance_get(r->app->db, id, &inst);
        if (rc == 0)
            render(r, 409, inst, NULL,
                   "Nothing was saved: this instance was changed by someone else since you "
                   "opened the form. The form now shows the current values; make your change "
                   "again.");
    } else if (rc == USHER_ENOTFOUND) {
        web_admin_error(r, 404, "There is no such instance. It may have been deleted.");
        rc = 0;
    }
    json_decref(errors);
    json_decref(inst);
    return rc;
}
