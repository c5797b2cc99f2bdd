/*
 * reconcile.c — the daily reconcile_subscriptions job (SPEC §8): every user whose
 * subscription grants access (active, trialing, past_due) has it re-read from Stripe and
 * applied (domain/stripe_processing.h, stripe_refresh_user), which catches webhooks Stripe
 * gave up on or Usher never got. One user's failure does not stop the others; the run then
 * fails, so it is retried and visible.
 */
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "domain/stripe_processing.h"
#include "tasks/builtin.h"
#include "tasks/task.h"

#define RECONCILE_PAGE 100

int task_reconcile_subscriptions(struct task_run *run)
{
    if (!*run->cfg->stripe_secret_key) {
        log_info("msg=\"reconcile_subscriptions skipped: STRIPE_SECRET_KEY is not set\"");
        return 0;
    }
    int64_t ids[RECONCILE_PAGE];
    int64_t after = 0;
    int n = 0, checked = 0, failed = 0, canceled = 0;
    int rc = 0;
    do {
        rc = stripe_reconcile_candidates(run->pool, after, RECONCILE_PAGE, ids, &n);
        for (int i = 0; rc == 0 && i < n; i++) {
            if (task_stop_requested()) {
                task_run_error(run, "reconcile_subscriptions: stopped after %d users", checked);
                return USHER_EIO;
            }
            after = ids[i];
            struct stripe_refresh_result res;
            int one = stripe_refresh_user(run->pool, run->cfg, ids[i], clock_now(), &res);
            checked++;
            if (one != 0) {
                failed++;
                log_warn("msg=\"reconcile: refresh failed\" user_id=%lld error=\"%s\"",
                         (long long)ids[i], res.note);
            } else if (res.outcome == STRIPE_REFRESH_CANCELED) {
                canceled++;
                log_info("msg=\"reconcile: missed cancellation applied\" user_id=%lld",
                         (long long)ids[i]);
            }
        }
    } while (rc == 0 && n == RECONCILE_PAGE);
    if (rc != 0) {
        task_run_error(run, "reconcile_subscriptions: listing users: %s", usher_strerror(rc));
        return rc;
    }
    log_info("msg=\"subscriptions reconciled\" checked=%d canceled=%d failed=%d", checked, canceled,
             failed);
    if (failed) {
        task_run_error(run, "reconcile_subscriptions: %d of %d users failed", failed, checked);
        return USHER_EUPSTREAM;
    }
    return 0;
}
