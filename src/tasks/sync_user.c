/*
 * sync_user.c — the sync_user_post_checkout task (SPEC §8): one user's seats, groups and
 * Keycloak attributes brought in line with their subscription (domain/provisioning.h).
 * Idempotent; retried on the long schedule, because a Keycloak outage must not leave a
 * paying customer without access.
 */
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "domain/identity_keycloak.h"
#include "domain/provisioning.h"
#include "tasks/builtin.h"
#include "tasks/task.h"

int task_sync_user_post_checkout(struct task_run *run)
{
    json_int_t user_id = json_integer_value(json_object_get(run->args, "user_id"));
    if (user_id <= 0) {
        task_run_error(run, "sync_user_post_checkout: args need a positive user_id");
        run->permanent = true;
        return USHER_EINVAL;
    }
    struct identity_ops ops;
    int rc = identity_keycloak_ops(run->cfg, &ops);
    if (rc != 0) {
        task_run_error(run, "sync_user_post_checkout: Keycloak Admin API not configured");
        return rc;
    }
    struct provisioning_report report;
    rc = provisioning_sync_user(run->pool, (int64_t)user_id, clock_now(), &ops, &report);
    if (rc != 0) {
        task_run_error(run, "sync_user_post_checkout: user %lld: %s", (long long)user_id,
                       *report.problem ? report.problem : usher_strerror(rc));
        return rc;
    }
    log_info("msg=\"user synced\" user_id=%lld seats_taken=%d seats_waiting=%d "
             "seats_released=%d groups_added=%d groups_removed=%d attributes_dropped=%d",
             (long long)user_id, report.seats_taken, report.seats_waiting, report.seats_released,
             report.groups_added, report.groups_removed, report.attributes_dropped);
    return 0;
}
