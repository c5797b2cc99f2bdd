/*
 * provisioning.c — one user's seats, groups and attributes (see provisioning.h).
 */
#include "domain/provisioning.h"

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "db/db.h"
#include "db/task_store.h"
#include "domain/allocation.h"
#include "domain/entitlements.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct user_state {
    char *keycloak_id; /* NULL when not linked yet */
    bool retained; /* canceled, inside the recovery window: seats are kept */
    json_t *wanted; /* product ids (integers) that need a seat */
    json_t *held; /* product ids with an assignment now */
};

static void user_state_cleanup(struct user_state *u)
{
    free(u->keycloak_id);
    json_decref(u->wanted);
    json_decref(u->held);
}

static int read_ids(struct db_conn *conn, const char *sql, int64_t user_id, json_t **out)
{
    const struct db_param p[] = {DB_INT(user_id)};
    struct db_result *res = NULL;
    int rc = db_query(conn, sql, p, 1, &res);
    *out = json_array();
    for (int r = 0; rc == 0 && r < db_result_rows(res); r++)
        json_array_append_new(*out, json_integer(db_result_int(res, r, 0)));
    db_result_free(res);
    return rc;
}

static int load_user(struct db_pool *pool, int64_t user_id, int64_t now, struct user_state *u)
{
    struct db_conn *conn = NULL;
    int rc = db_acquire(pool, DB_WAIT_MS, &conn);
    if (rc != 0)
        return rc;
    const struct db_param p[] = {DB_INT(user_id)};
    struct db_result *res = NULL;
    rc = db_query(conn,
                  "SELECT keycloak_id, subscription_status, access_expires_at FROM users "
                  "WHERE id = $1",
                  p, 1, &res);
    if (rc == 0 && db_result_rows(res) == 0)
        rc = USHER_ENOTFOUND;
    if (rc == 0) {
        u->keycloak_id = xstrdup(db_result_text(res, 0, 0));
        /* SPEC §4: after a cancellation the seats stay until the final expiry, so that a
         * recovery needs no re-provisioning; the final-expiry job releases them. */
        const char *status = db_result_text(res, 0, 1);
        u->retained = status && !strcmp(status, "canceled") && !db_result_is_null(res, 0, 2) &&
                      db_result_int(res, 0, 2) > now;
    }
    db_result_free(res);
    if (rc == 0)
        rc = read_ids(conn,
                      "SELECT DISTINCT p.id FROM subscription_items si "
                      "JOIN users u ON u.id = si.user_id JOIN products p ON p.id = si.product_id "
                      "WHERE si.user_id = $1 AND p.requires_instance "
                      "AND u.subscription_status IN ('active', 'trialing', 'past_due')",
                      user_id, &u->wanted);
    if (rc == 0)
        rc = read_ids(conn, "SELECT product_id FROM instance_assignments WHERE user_id = $1",
                      user_id, &u->held);
    if (rc == 0 && u->retained)
        json_array_extend(u->wanted, u->held);
    db_release(conn);
    return rc;
}

static bool contains(const json_t *ids, int64_t id)
{
    size_t i;
    const json_t *v;
    json_array_foreach (ids, i, v) {
        if (json_integer_value(v) == id)
            return true;
    }
    return false;
}

/* The group names of the user's active seat for a product with the group provisioner. */
static int seat_groups(struct db_pool *pool, int64_t user_id, int64_t product_id, json_t **out)
{
    struct db_conn *conn = NULL;
    int rc = db_acquire(pool, DB_WAIT_MS, &conn);
    if (rc != 0)
        return rc;
    const struct db_param p[] = {DB_INT(user_id), DB_INT(product_id)};
    struct db_result *res = NULL;
    rc = db_query(conn,
                  "SELECT g.id, g.name, i.name FROM instance_assignments a "
                  "JOIN instances i ON i.id = a.instance_id "
                  "JOIN products pr ON pr.id = a.product_id AND pr.provisioner = 'group' "
                  "JOIN instance_groups ig ON ig.instance_id = a.instance_id "
                  "JOIN groups g ON g.id = ig.group_id "
                  "WHERE a.user_id = $1 AND a.product_id = $2 AND a.state = 'active' "
                  "ORDER BY g.name",
                  p, 2, &res);
    *out = json_array();
    for (int r = 0; rc == 0 && r < db_result_rows(res); r++)
        json_array_append_new(
            *out, json_pack("{s:I, s:s, s:s}", "id", (json_int_t)db_result_int(res, r, 0), "name",
                            db_result_text(res, r, 1), "instance", db_result_text(res, r, 2)));
    db_result_free(res);
    db_release(conn);
    return rc;
}

static int set_local_group(struct db_pool *pool, int64_t user_id, int64_t group_id, bool member)
{
    struct db_conn *conn = NULL;
    int rc = db_acquire(pool, DB_WAIT_MS, &conn);
    if (rc != 0)
        return rc;
    const struct db_param p[] = {DB_INT(user_id), DB_INT(group_id)};
    rc = db_exec(conn,
                 member ? "INSERT INTO user_groups (user_id, group_id) VALUES ($1, $2) "
                          "ON CONFLICT DO NOTHING"
                        : "DELETE FROM user_groups WHERE user_id = $1 AND group_id = $2",
                 p, 2, NULL);
    db_release(conn);
    return rc;
}

static void describe_group_failure(struct provisioning_report *report, const json_t *group,
                                   bool member, int rc)
{
    char name[128], instance[128];
    log_quote(name, sizeof name, json_string_value(json_object_get(group, "name")));
    log_quote(instance, sizeof instance, json_string_value(json_object_get(group, "instance")));
    if (rc == USHER_ENOTFOUND)
        snprintf(report->problem, sizeof report->problem,
                 "Keycloak group \"%s\" of instance \"%s\" does not exist; create it in the "
                 "realm (usher check lists every missing group)",
                 name, instance);
    else
        snprintf(report->problem, sizeof report->problem,
                 "%s Keycloak group \"%s\" of instance \"%s\" failed: %s",
                 member ? "joining" : "leaving", name, instance, usher_strerror(rc));
}

/* Grants (member) or revokes the groups of the user's seat for one product. */
static int apply_groups(struct db_pool *pool, int64_t user_id, int64_t product_id, bool member,
                        const struct user_state *u, const struct identity_ops *idp,
                        struct provisioning_report *report)
{
    json_t *groups = NULL;
    int rc = seat_groups(pool, user_id, product_id, &groups);
    size_t i;
    json_t *g;
    json_array_foreach (groups, i, g) {
        const char *name = json_string_value(json_object_get(g, "name"));
        if (rc == 0 && u->keycloak_id) {
            rc = member ? idp->add_to_group(idp->ctx, u->keycloak_id, name)
                        : idp->remove_from_group(idp->ctx, u->keycloak_id, name);
            /* A group the realm does not have holds nobody: revoking it is already done,
             * and failing here would retry a cancellation or downgrade for hours. */
            if (rc == USHER_ENOTFOUND && !member)
                rc = 0;
            if (rc != 0)
                describe_group_failure(report, g, member, rc);
        }
        if (rc == 0)
            rc = set_local_group(pool, user_id, json_integer_value(json_object_get(g, "id")),
                                 member);
        if (rc == 0)
            *(member ? &report->groups_added : &report->groups_removed) += 1;
    }
    json_decref(groups);
    return rc;
}

static int sync_seats(struct db_pool *pool, int64_t user_id, int64_t now,
                      const struct user_state *u, const struct identity_ops *idp,
                      struct provisioning_report *report)
{
    int rc = 0;
    size_t i;
    json_t *v;
    json_array_foreach (u->wanted, i, v) {
        struct alloc_result r;
        int64_t product_id = json_integer_value(v);
        rc = alloc_assign(pool, user_id, product_id, now, &r);
        if (rc == 0 && r.outcome == ALLOC_ASSIGNED)
            report->seats_taken++;
        if (rc == 0 && r.outcome == ALLOC_WAITING)
            report->seats_waiting++;
        if (rc == 0)
            rc = apply_groups(pool, user_id, product_id, true, u, idp, report);
        if (rc != 0)
            return rc;
    }
    json_array_foreach (u->held, i, v) {
        int64_t product_id = json_integer_value(v);
        if (contains(u->wanted, product_id))
            continue;
        rc = apply_groups(pool, user_id, product_id, false, u, idp, report);
        if (rc == 0)
            rc = alloc_release(pool, user_id, product_id);
        if (rc != 0)
            return rc;
        report->seats_released++;
    }
    return 0;
}

static int sync_attributes(struct db_pool *pool, int64_t user_id, const struct user_state *u,
                           const struct identity_ops *idp, struct provisioning_report *report)
{
    struct db_conn *conn = NULL;
    int rc = db_acquire(pool, DB_WAIT_MS, &conn);
    if (rc != 0)
        return rc;
    json_t *attrs = NULL, *keys = NULL, *dropped = NULL;
    rc = entitlements_for_user(conn, user_id, &attrs);
    if (rc == 0)
        rc = entitlements_catalog_keys(conn, &keys);
    db_release(conn);
    if (rc == 0)
        rc = idp->replace_attributes(idp->ctx, u->keycloak_id, keys, attrs, &dropped);
    report->attributes_dropped = (int)json_array_size(dropped);
    if (report->attributes_dropped)
        log_warn("msg=\"identity provider dropped Usher attributes; see README (unmanaged "
                 "attributes)\" user_id=%lld count=%d",
                 (long long)user_id, report->attributes_dropped);
    json_decref(attrs);
    json_decref(keys);
    json_decref(dropped);
    return rc;
}

int provisioning_sync_user(struct db_pool *pool, int64_t user_id, int64_t now,
                           const struct identity_ops *idp, struct provisioning_report *report)
{
    memset(report, 0, sizeof *report);
    struct user_state u = {0};
    int rc = load_user(pool, user_id, now, &u);
    if (rc == 0)
        rc = sync_seats(pool, user_id, now, &u, idp, report);
    if (rc == 0 && u.keycloak_id)
        rc = sync_attributes(pool, user_id, &u, idp, report);
    user_state_cleanup(&u);
    return rc;
}

int provisioning_sync_attributes(struct db_pool *pool, int64_t user_id, int64_t now,
                                 const struct identity_ops *idp, struct provisioning_report *report)
{
    memset(report, 0, sizeof *report);
    struct user_state u = {0};
    int rc = load_user(pool, user_id, now, &u);
    if (rc == 0 && !u.keycloak_id) {
        snprintf(report->problem, sizeof report->problem, "no Keycloak account is linked");
        rc = USHER_ENOTFOUND;
    }
    if (rc == 0)
        rc = sync_attributes(pool, user_id, &u, idp, report);
    user_state_cleanup(&u);
    return rc;
}

int provisioning_request_sync_conn(struct db_conn *conn, int64_t user_id, int64_t now)
{
    json_t *args = json_pack("{s:I}", "user_id", (json_int_t)user_id);
    int rc = task_enqueue(conn, "sync_user_post_checkout", args, TASK_LONG_MAX_ATTEMPTS, now, NULL,
                          NULL);
    json_decref(args);
    return rc;
}

int provisioning_request_sync(struct db_pool *pool, int64_t user_id, int64_t now)
{
    struct db_conn *conn = NULL;
    int rc = db_acquire(pool, DB_WAIT_MS, &conn);
    if (rc != 0)
        return rc;
    rc = provisioning_request_sync_conn(conn, user_id, now);
    db_release(conn);
    return rc;
}

int provisioning_required_groups(struct db_pool *pool, json_t **out)
{
    struct db_result *res = NULL;
    int rc = db_pool_query(pool,
                           "SELECT i.name, g.name FROM instances i "
                           "JOIN products p ON p.id = i.product_id AND p.provisioner = 'group' "
                           "JOIN instance_groups ig ON ig.instance_id = i.id "
                           "JOIN groups g ON g.id = ig.group_id "
                           "WHERE i.is_active ORDER BY i.name, g.name",
                           NULL, 0, &res);
    if (rc != 0)
        return rc;
    *out = json_array();
    for (int r = 0; r < db_result_rows(res); r++)
        json_array_append_new(*out, json_pack("{s:s, s:s}", "instance", db_result_text(res, r, 0),
                                              "group", db_result_text(res, r, 1)));
    db_result_free(res);
    return 0;
}
