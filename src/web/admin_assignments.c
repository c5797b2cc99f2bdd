/*
 * admin_assignments.c — /admin/assignments/: who holds a seat on which instance, waiting
 * seats included, filtered by state, product and instance; and "allocate now" for a waiting
 * seat (domain/admin_assignments.h).
 */
#include "core/err.h"
#include "domain/admin_assignments.h"
#include "web/admin_ops.h"
#include "web/app.h"
#include "web/handlers.h"
#include "web/response.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ASSIGNMENTS_PATH "/admin/assignments/"

/* Marks the option whose id is current as selected. */
static void mark_selected(json_t *options, int64_t current)
{
    size_t i;
    json_t *o;
    json_array_foreach (options, i, o) {
        json_int_t id = json_integer_value(json_object_get(o, "id"));
        json_object_set_new(o, "selected", json_boolean(id == current));
    }
}

int web_admin_assignments(struct web_request *r)
{
    const char *state = NULL;
    int limit = 0;
    int64_t before = 0;
    if (web_admin_term(r, "state", &state) != 0 ||
        web_ops_paging(r, "assignments", &limit, &before))
        return 0;
    /* A forged product or instance id filters to nothing rather than erring; a malformed one
     * is refused below. */
    const char *product_text = web_query(r, "product");
    const char *instance_text = web_query(r, "instance");
    struct admin_assignment_filter f = {.state = state,
                                        .product_id = web_admin_id(r, "product"),
                                        .instance_id = web_admin_id(r, "instance")};
    bool malformed = (product_text && *product_text && !f.product_id) ||
                     (instance_text && *instance_text && !f.instance_id);
    struct admin_page page = {0};
    int rc =
        malformed ? USHER_EINVAL : admin_assignments_list(r->app->db, &f, before, limit, &page);
    if (rc == USHER_EINVAL) {
        web_admin_error(r, 400,
                        "Those filters are not valid: the state must be active or "
                        "waiting_capacity, and product and instance ids from the lists.");
        return 0;
    }
    json_t *products = NULL, *instances = NULL;
    if (rc == 0)
        rc = admin_assignment_choices(r->app->db, &products, &instances);
    if (rc != 0) {
        admin_page_cleanup(&page);
        return rc;
    }
    mark_selected(products, f.product_id);
    mark_selected(instances, f.instance_id);
    json_t *ctx = web_admin_context(r, "Instance assignments", "assignments");
    json_object_set_new(ctx, "products", products);
    json_object_set_new(ctx, "instances", instances);
    json_object_set_new(ctx, "f",
                        json_pack("{s:s,s:b,s:b}", "state", state, "active",
                                  !strcmp(state, "active"), "waiting",
                                  !strcmp(state, "waiting_capacity")));
    static const char *const keep[] = {"state", "product", "instance", NULL};
    web_ops_list_ctx(r, ctx, "assignments", &page, keep);
    web_reply_page(r, 200, "admin/assignments", ctx);
    json_decref(ctx);
    return 0;
}

int web_admin_assignment_allocate(struct web_request *r)
{
    const char *rest = NULL;
    int64_t id = web_ops_path_id(r->path, ASSIGNMENTS_PATH, &rest);
    if (!id || strcmp(rest, "allocate/")) {
        web_admin_error(r, 404, "There is no such page.");
        return 0;
    }
    struct admin_actor actor = web_admin_who(r);
    char msg[ADMIN_OPS_MSG_MAX];
    int rc = admin_assignment_allocate(r->app->db, &actor, id, r->now, msg, sizeof msg);
    return web_ops_outcome(r, rc, msg, ASSIGNMENTS_PATH "?state=waiting_capacity");
}
