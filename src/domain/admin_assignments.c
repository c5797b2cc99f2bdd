/*
 * admin_assignments.c — listing instance assignments and seating a waiting one now (see
 * admin_assignments.h).
 */
#include "domain/admin_assignments.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"
#include "db/db.h"
#include "domain/admin_change.h"
#include "domain/allocation.h"
#include "domain/provisioning.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *assignment_row(const struct db_result *res, int i)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(db_result_int(res, i, 0)));
    json_object_set_new(o, "user_id", json_integer(db_result_int(res, i, 1)));
    admin_set_text(o, "username", res, i, 2);
    admin_set_text(o, "email", res, i, 3);
    json_object_set_new(o, "product_id", json_integer(db_result_int(res, i, 4)));
    admin_set_text(o, "product", res, i, 5);
    if (db_result_is_null(res, i, 6))
        json_object_set_new(o, "instance_id", json_null());
    else
        json_object_set_new(o, "instance_id", json_integer(db_result_int(res, i, 6)));
    admin_set_text(o, "instance", res, i, 7);
    admin_set_text(o, "state", res, i, 8);
    const char *state = db_result_text(res, i, 8);
    json_object_set_new(o, "waiting", json_boolean(state && !strcmp(state, "waiting_capacity")));
    admin_set_time(o, "assigned_at", res, i, 9);
    admin_set_time(o, "created_at", res, i, 10);
    return o;
}

int admin_assignments_list(struct db_pool *pool, const struct admin_assignment_filter *f,
                           int64_t before, int limit, struct admin_page *out)
{
    out->rows = NULL;
    out->next_before = 0;
    const char *state = f->state && *f->state ? f->state : NULL;
    if (admin_page_check(before, limit) != 0 || f->product_id < 0 || f->instance_id < 0 ||
        (state && strcmp(state, "active") && strcmp(state, "waiting_capacity")))
        return USHER_EINVAL;
    struct admin_query q;
    admin_query_init(&q, "instance_assignments",
                     "SELECT a.id, a.user_id, u.username, u.email, a.product_id, p.name, "
                     "a.instance_id, i.name, a.state, a.assigned_at, a.created_at "
                     "FROM instance_assignments a JOIN users u ON u.id = a.user_id "
                     "JOIN products p ON p.id = a.product_id "
                     "LEFT JOIN instances i ON i.id = a.instance_id WHERE 1 = 1");
    if (state)
        admin_query_and(&q, "a.state =", DB_TEXT(state));
    if (f->product_id)
        admin_query_and(&q, "a.product_id =", DB_INT(f->product_id));
    if (f->instance_id)
        admin_query_and(&q, "a.instance_id =", DB_INT(f->instance_id));
    return admin_query_page(&q, pool, "a.id", before, limit, assignment_row, out);
}

int admin_assignment_choices(struct db_pool *pool, json_t **products, json_t **instances)
{
    *products = NULL;
    *instances = NULL;
    struct db_result *res = NULL;
    int rc = db_pool_query(
        pool, "SELECT id, name FROM products WHERE requires_instance ORDER BY name", NULL, 0, &res);
    if (rc != 0)
        return rc;
    *products = json_array();
    for (int i = 0; i < db_result_rows(res); i++)
        json_array_append_new(*products,
                              json_pack("{s:I,s:s}", "id", (json_int_t)db_result_int(res, i, 0),
                                        "name", db_result_text(res, i, 1)));
    db_result_free(res);
    res = NULL;
    rc = db_pool_query(pool,
                       "SELECT i.id, i.name, p.name FROM instances i "
                       "JOIN products p ON p.id = i.product_id ORDER BY p.name, i.name",
                       NULL, 0, &res);
    if (rc != 0) {
        json_decref(*products);
        *products = NULL;
        return rc;
    }
    *instances = json_array();
    for (int i = 0; i < db_result_rows(res); i++)
        json_array_append_new(*instances,
                              json_pack("{s:I,s:s,s:s}", "id", (json_int_t)db_result_int(res, i, 0),
                                        "name", db_result_text(res, i, 1), "product",
                                        db_result_text(res, i, 2)));
    db_result_free(res);
    return 0;
}

/* ---- allocate now ----------------------------------------------------------------------- */

static int allocate_body(struct db_conn *conn, struct admin_change *c)
{
    const struct db_param p[] = {DB_INT(c->id)};
    struct db_result *res = NULL;
    int rc = db_query(conn,
                      "SELECT a.user_id, a.product_id, a.state, u.username, p.name "
                      "FROM instance_assignments a JOIN users u ON u.id = a.user_id "
                      "JOIN products p ON p.id = a.product_id WHERE a.id = $1",
                      p, 1, &res);
    if (rc == 0 && db_result_rows(res) != 1) {
        snprintf(c->msg, c->msg_size, "Assignment %lld does not exist.", (long long)c->id);
        rc = USHER_ENOTFOUND;
    }
    if (rc == 0 && strcmp(db_result_text(res, 0, 2), "waiting_capacity")) {
        snprintf(c->msg, c->msg_size, "%s already has a seat on %s.", db_result_text(res, 0, 3),
                 db_result_text(res, 0, 4));
        rc = USHER_ECONFLICT;
    }
    int64_t user_id = rc == 0 ? db_result_int(res, 0, 0) : 0;
    int64_t product_id = rc == 0 ? db_result_int(res, 0, 1) : 0;
    char *who = rc == 0 ? xstrdup(db_result_text(res, 0, 3)) : NULL;
    char *product = rc == 0 ? xstrdup(db_result_text(res, 0, 4)) : NULL;
    db_result_free(res);
    struct alloc_result r = {0};
    if (rc == 0)
        rc = alloc_assign_in_tx(conn, user_id, product_id, c->now, &r);
    if (rc == 0 && r.outcome == ALLOC_ALREADY_ASSIGNED) {
        /* Another request seated it between the read above and the product lock taken by
         * the allocation (PostgreSQL): nothing was changed here. */
        snprintf(c->msg, c->msg_size, "%s already has a seat on %s.", who, product);
        rc = USHER_ECONFLICT;
    }
    if (rc == 0 && r.outcome == ALLOC_WAITING) {
        /* The caller rolls back: nothing about the seat changes. */
        snprintf(c->msg, c->msg_size,
                 "No instance of %s has room below its allocation cap: %s keeps waiting. Raise a "
                 "cap or add an instance, then try again.",
                 product, who);
        rc = USHER_ELIMIT;
    }
    res = NULL;
    const struct db_param ip[] = {DB_INT(r.instance_id)};
    if (rc == 0)
        rc = db_query(conn, "SELECT name FROM instances WHERE id = $1", ip, 1, &res);
    char *instance =
        rc == 0 && db_result_rows(res) == 1 ? xstrdup(db_result_text(res, 0, 0)) : xstrdup("?");
    db_result_free(res);
    if (rc == 0)
        rc = provisioning_request_sync_conn(conn, user_id, c->now);
    if (rc == 0) {
        c->before = json_pack("{s:s,s:n}", "state", "waiting_capacity", "instance_id");
        c->after = json_pack("{s:s,s:I,s:s}", "state", "active", "instance_id",
                             (json_int_t)r.instance_id, "instance", instance);
        snprintf(c->msg, c->msg_size, "%s now has a seat on %s (%s).", who, instance, product);
    }
    free(instance);
    free(who);
    free(product);
    return rc;
}

int admin_assignment_allocate(struct db_pool *pool, const struct admin_actor *actor, int64_t id,
                              int64_t now, char *msg, size_t msg_size)
{
    return admin_change_act(pool, actor, "assignment.allocate", "instance_assignment", id, now, msg,
                            msg_size, allocate_body);
}
