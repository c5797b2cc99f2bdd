/*
 * handlers.c — the one place where task handlers and periodic jobs are registered
 * (see task.h). Each handler lives in its own tasks/<name>.c and is added below with one
 * line when it lands.
 */
#include "core/log.h"
#include "domain/admin_bulk.h"
#include "domain/expiry.h"
#include "domain/recovery.h"
#include "tasks/builtin.h"
#include "tasks/task.h"

#include <stdbool.h>
#include <stdlib.h>

static void must(int rc, const char *name)
{
    if (rc != 0) {
        log_error("msg=\"cannot register task handler\" name=%s", name);
        abort(); /* a programming error: two handlers under one name, or a bad name */
    }
}

void task_register_all(void)
{
    static bool done;
    if (done)
        return;
    done = true;

    /* Built in (tasks/builtin.h). */
    must(task_schedule_periodic("cleanup", TASK_CLEANUP_INTERVAL_SECONDS, task_cleanup), "cleanup");
    must(task_register(TASK_PROBE_NAME, task_queue_probe), TASK_PROBE_NAME);
    must(task_schedule_periodic("fill_waiting_seats", TASK_FILL_WAITING_INTERVAL_SECONDS,
                                task_fill_waiting_seats),
         "fill_waiting_seats");
    must(task_register("sync_user_post_checkout", task_sync_user_post_checkout),
         "sync_user_post_checkout");
    must(task_register("waitlist_add_member", task_waitlist_add_member), "waitlist_add_member");
    must(task_register("send_keycloak_password_reset_email",
                       task_send_keycloak_password_reset_email),
         "send_keycloak_password_reset_email");
    must(task_register("notify_subscription_canceled", task_notify_subscription_canceled),
         "notify_subscription_canceled");
    must(task_register("notify_payment_failed", task_notify_payment_failed),
         "notify_payment_failed");
    must(task_register("process_stripe_event", task_process_stripe_event), "process_stripe_event");
    must(task_register(RECOVERY_CODE_TASK, task_send_recovery_code), RECOVERY_CODE_TASK);
    must(task_register("cancel_stale_subscription", task_cancel_stale_subscription),
         "cancel_stale_subscription");
    must(task_schedule_periodic("reconcile_subscriptions", TASK_RECONCILE_INTERVAL_SECONDS,
                                task_reconcile_subscriptions),
         "reconcile_subscriptions");
    must(task_schedule_periodic("close_expired_accounts", TASK_CLOSE_EXPIRED_INTERVAL_SECONDS,
                                task_close_expired_accounts),
         "close_expired_accounts");
    must(task_register(EXPIRY_TASK_NAME, task_expire_account), EXPIRY_TASK_NAME);
    /* admin-users: the admin console's bulk actions on users. */
    must(task_register(ADMIN_BULK_TASK, task_admin_user_action), ADMIN_BULK_TASK);

    /*
     * Registration points (SPEC §8). Handlers that call Keycloak, Stripe or Mailgun are added
     * here with task_register(name, fn) by the modules that implement them, periodic jobs
     * with task_schedule_periodic(name, interval_seconds, fn). Until a name is registered,
     * its tasks fail visibly (task.h) instead of vanishing.
     */
}
