/*
 * expire.c — the final expiry in the worker (SPEC §7, §8; domain/expiry.h):
 *
 * close_expired_accounts (periodic): enqueues one expire_account task per user whose final
 *   expiry has passed (or whose closure is unfinished), at most EXPIRY_SCAN_LIMIT per run;
 *   the dedup key names the user and the final expiry, so however often the scan runs and
 *   however many workers there are, a closure is enqueued once.
 * expire_account(user_id): closes that account. Retried on the long schedule (enqueued with
 *   TASK_LONG_MAX_ATTEMPTS): a Keycloak outage delays a closure and loses nothing. A user
 *   who is not due any more (recovered) is done with an info line.
 */
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "domain/expiry.h"
#include "domain/identity_keycloak.h"
#include "tasks/builtin.h"
#include "tasks/task.h"

int task_close_expired_accounts(struct task_run *run)
{
    int enqueued = 0;
    int rc = expiry_enqueue_due(run->pool, clock_now(), EXPIRY_SCAN_LIMIT, &enqueued);
    if (rc != 0) {
        task_run_error(run, "close_expired_accounts: %s", usher_strerror(rc));
        return rc;
    }
    if (enqueued)
        log_info("msg=\"account closures enqueued\" count=%d", enqueued);
    return 0;
}

static const char *keycloak_word(enum expiry_keycloak k)
{
    return k == EXPIRY_KC_DELETED ? "deleted" : k == EXPIRY_KC_ALREADY_GONE ? "gone" : "none";
}

int task_expire_account(struct task_run *run)
{
    json_int_t user_id = json_integer_value(json_object_get(run->args, "user_id"));
    if (user_id <= 0) {
        task_run_error(run, EXPIRY_TASK_NAME ": args need a positive user_id");
        run->permanent = true;
        return USHER_EINVAL;
    }
    struct expiry_identity idp;
    bool have_idp = identity_keycloak_expiry(run->cfg, &idp) == 0;
    struct expiry_report report;
    int rc = expiry_close_user(run->pool, (int64_t)user_id, clock_now(), "worker",
                               have_idp ? &idp : NULL, &report);
    if (rc == USHER_ENOTFOUND) {
        task_run_error(run, EXPIRY_TASK_NAME ": user %lld does not exist", (long long)user_id);
        run->permanent = true;
        return rc;
    }
    if (rc != 0) {
        task_run_error(run, EXPIRY_TASK_NAME ": user %lld: %s", (long long)user_id, report.problem);
        return rc;
    }
    if (report.state == EXPIRY_NOT_DUE || report.state == EXPIRY_DONE) {
        log_info("msg=\"account closure: nothing to do\" user_id=%lld reason=%s",
                 (long long)user_id, report.state == EXPIRY_DONE ? "already_closed" : "not_due");
        return 0;
    }
    log_info("msg=\"account closure complete\" user_id=%lld decided=%s keycloak_user=%s "
             "seats_released=%d groups_removed=%d sessions_ended=%lld",
             (long long)user_id, report.decided ? "now" : "earlier", keycloak_word(report.keycloak),
             report.seats_released, report.groups_removed, (long long)report.sessions_ended);
    return 0;
}
