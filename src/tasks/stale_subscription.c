/*
 * stale_subscription.c — the cancel_stale_subscription task: a subscription Stripe would go on
 * trying to charge although nobody uses it any more is canceled in Stripe. Two cases queue it:
 *   - superseded: a customer who came back after a failed payment pays with a new
 *     subscription (recovery); the old one is still past due;
 *   - closed: a past-due account reached its final expiry and was closed for good
 *     (domain/expiry.c).
 *
 * Args {subscription_id, user_id}. Never the current subscription of an account that is not
 * closed (checked again here, whatever queued the task). Already canceled or unknown to
 * Stripe counts as done; other failures are retried. The customer.subscription.deleted event
 * that follows changes nothing: it names no user's subscription, or an expired user's, which
 * Stripe events leave alone.
 */
#include "core/err.h"
#include "core/log.h"
#include "db/db.h"
#include "integrations/stripe_client.h"
#include "tasks/builtin.h"
#include "tasks/task.h"

#include <string.h>

static int still_current(struct task_run *run, int64_t user_id, const char *sub_id, bool *current)
{
    const struct db_param p[] = {DB_INT(user_id), DB_TEXT(sub_id)};
    struct db_result *res = NULL;
    int rc = db_pool_query(run->pool,
                           "SELECT 1 FROM users WHERE id = $1 AND stripe_subscription_id = $2 "
                           "AND subscription_status <> 'expired'",
                           p, 2, &res);
    *current = rc == 0 && db_result_rows(res) > 0;
    db_result_free(res);
    return rc;
}

int task_cancel_stale_subscription(struct task_run *run)
{
    const char *sub_id = json_string_value(json_object_get(run->args, "subscription_id"));
    json_int_t user_id = json_integer_value(json_object_get(run->args, "user_id"));
    if (!sub_id || !stripe_id_valid(sub_id) || user_id <= 0) {
        task_run_error(run, "cancel_stale_subscription: args need subscription_id, user_id");
        run->permanent = true;
        return USHER_EINVAL;
    }
    bool current = false;
    int rc = still_current(run, (int64_t)user_id, sub_id, &current);
    if (rc != 0) {
        task_run_error(run, "cancel_stale_subscription: %s", usher_strerror(rc));
        return rc;
    }
    if (current) {
        log_warn("msg=\"not canceling the user's current subscription\" task_id=%lld "
                 "user_id=%lld",
                 (long long)run->id, (long long)user_id);
        return 0;
    }
    json_t *sub = NULL;
    struct stripe_error err;
    memset(&err, 0, sizeof err);
    rc = stripe_subscription_cancel(run->cfg, sub_id, &sub, &err);
    json_decref(sub);
    if (rc == USHER_ENOTFOUND) {
        log_info("msg=\"stale subscription unknown to Stripe: nothing to cancel\" "
                 "task_id=%lld user_id=%lld",
                 (long long)run->id, (long long)user_id);
        return 0;
    }
    if (rc != 0) {
        task_run_error(run, "cancel_stale_subscription: user %lld: Stripe answered %ld: %s",
                       (long long)user_id, (long)err.http.status, usher_strerror(rc));
        run->permanent = rc == USHER_EINVAL || rc == USHER_ECONFIG;
        return rc;
    }
    log_info("msg=\"stale subscription canceled\" task_id=%lld user_id=%lld", (long long)run->id,
             (long long)user_id);
    return 0;
}
