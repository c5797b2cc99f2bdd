/*
 * admin_user_action.c — the admin_user_action task: one user's share of a bulk action
 * started in the admin console (domain/admin_bulk.h). Args {"user_id", "action",
 * "bulk_job"}; the action runs the same domain function as the command line:
 *   sync_keycloak     the Usher-owned Keycloak attributes (provisioning_sync_attributes);
 *   sync_assignments  seats, groups and attributes (provisioning_sync_user, `usher user sync`);
 *   refresh_stripe    status and items re-read from Stripe (stripe_refresh_user, `usher user
 *                     refresh`).
 * Enqueued with one attempt; a user that does not exist (any more) fails for good with
 * "no such user". Idempotent like the functions it calls.
 */
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "domain/admin_bulk.h"
#include "domain/identity_keycloak.h"
#include "domain/provisioning.h"
#include "domain/stripe_processing.h"
#include "domain/users.h"
#include "tasks/builtin.h"
#include "tasks/task.h"

#include <string.h>

static int keycloak(struct task_run *run, int64_t user_id, bool attributes_only)
{
    struct identity_ops ops;
    int rc = identity_keycloak_ops(run->cfg, &ops);
    if (rc != 0) {
        task_run_error(run, "the Keycloak Admin API is not configured");
        run->permanent = true;
        return rc;
    }
    struct provisioning_report report;
    rc = attributes_only
             ? provisioning_sync_attributes(run->pool, user_id, clock_now(), &ops, &report)
             : provisioning_sync_user(run->pool, user_id, clock_now(), &ops, &report);
    if (rc != 0)
        task_run_error(run, "%s%s", *report.problem ? report.problem : usher_strerror(rc),
                       rc == USHER_EUPSTREAM ? " (is Keycloak reachable?)" : "");
    return rc;
}

static int refresh(struct task_run *run, int64_t user_id)
{
    if (!*run->cfg->stripe_secret_key) {
        task_run_error(run, "STRIPE_SECRET_KEY is not configured");
        run->permanent = true;
        return USHER_EINVAL;
    }
    struct stripe_refresh_result res;
    memset(&res, 0, sizeof res);
    int rc = stripe_refresh_user(run->pool, run->cfg, user_id, clock_now(), &res);
    if (rc != 0)
        task_run_error(run, "%s", *res.note ? res.note : usher_strerror(rc));
    return rc;
}

int task_admin_user_action(struct task_run *run)
{
    json_int_t user_id = json_integer_value(json_object_get(run->args, "user_id"));
    enum admin_bulk_action action;
    if (user_id <= 0 ||
        admin_bulk_action_parse(json_string_value(json_object_get(run->args, "action")), &action) !=
            0) {
        task_run_error(run, "admin_user_action: args need a positive user_id and a known action");
        run->permanent = true;
        return USHER_EINVAL;
    }
    bool exists = false;
    int rc = users_exists(run->pool, (int64_t)user_id, &exists);
    if (rc != 0) {
        task_run_error(run, "database unavailable");
        return rc;
    }
    if (!exists) {
        task_run_error(run, "no such user");
        run->permanent = true;
        return USHER_ENOTFOUND;
    }
    switch (action) {
    case ADMIN_BULK_SYNC_KEYCLOAK: return keycloak(run, (int64_t)user_id, true);
    case ADMIN_BULK_SYNC_ASSIGNMENTS: return keycloak(run, (int64_t)user_id, false);
    case ADMIN_BULK_REFRESH_STRIPE: return refresh(run, (int64_t)user_id);
    }
    return USHER_EINVAL;
}
