/*
 * builtin.h — the task handlers Usher ships with no integration behind them.
 *
 * cleanup (periodic, hourly): deletes what has outlived its purpose —
 *   sessions past their idle or absolute timeout, abandoned anonymous ones included (in
 *   statements of CLEANUP_SESSION_BATCH rows, at most CLEANUP_SESSION_MAX_PER_RUN a run, so
 *   a flood never makes one long transaction: the rest goes in the next runs); verification
 *   codes expired or consumed more than a day ago (a day of history is what the send limits
 *   look back on); rate-limit windows that started more than a day ago (no window is
 *   longer); Stripe events processed or ignored more than 30 days ago (Stripe resends for up
 *   to 30 days, so they are kept at least that long; pending and failed events are kept);
 *   done tasks finished more than 30 days ago (failed tasks are kept until retried; outcome
 *   counts live in task_outcomes). What each run deleted is added to cleanup_totals:
 *   usher_cleanup_deleted_total{kind} in /metrics.
 *
 * queue_probe: proves that the queue works end to end — `usher task probe` enqueues probes
 *   and waits until a worker has run them (a deploy smoke test, and what the integration
 *   tests drive the worker with). Args {"sleep_ms": N} (0..60000) keep it busy that long, to
 *   see a task survive a stop or a killed worker.
 */
#ifndef USHER_TASKS_BUILTIN_H
#define USHER_TASKS_BUILTIN_H

#include <stdint.h>

struct db_conn;
struct task_run;

#define TASK_CLEANUP_INTERVAL_SECONDS 3600
#define CLEANUP_RATE_LIMIT_WINDOW_MAX_SECONDS 86400
#define CLEANUP_STRIPE_EVENT_KEEP_SECONDS (30 * 86400)
#define CLEANUP_DONE_TASK_KEEP_SECONDS (30 * 86400)
#define CLEANUP_SESSION_BATCH 1000
#define CLEANUP_SESSION_MAX_PER_RUN 100000
#define TASK_PROBE_NAME "queue_probe"
#define TASK_PROBE_SLEEP_MAX_MS 60000

struct cleanup_counts {
    int64_t sessions;
    int64_t codes;
    int64_t rate_limits;
    int64_t stripe_events;
    int64_t tasks;
};

/* The cleanup's deletions as of now, each its own statement (a failure leaves the others). */
int task_cleanup_run(struct db_conn *conn, int64_t now, struct cleanup_counts *counts);

int task_cleanup(struct task_run *run);
int task_queue_probe(struct task_run *run);
/* sync_user.c: sync_user_post_checkout(user_id). */
int task_sync_user_post_checkout(struct task_run *run);
/* fill_waiting.c: the periodic seating of waiting_capacity assignments. */
#define TASK_FILL_WAITING_INTERVAL_SECONDS 60
int task_fill_waiting_seats(struct task_run *run);
/* waitlist_member.c: waitlist_add_member(email). */
int task_waitlist_add_member(struct task_run *run);
/* notify.c: notify_subscription_canceled(user_id), notify_payment_failed(user_id). */
int task_notify_subscription_canceled(struct task_run *run);
int task_notify_payment_failed(struct task_run *run);
/* password_email.c: send_keycloak_password_reset_email(keycloak_id). */
int task_send_keycloak_password_reset_email(struct task_run *run);
/* process_event.c: process_stripe_event(event_id). */
int task_process_stripe_event(struct task_run *run);
/* recovery_code.c: send_recovery_code(identifier, session_hash), queued by
 * /recovery/send-code/ (recovery_request_code). */
int task_send_recovery_code(struct task_run *run);
/* stale_subscription.c: cancel_stale_subscription(subscription_id, user_id). */
int task_cancel_stale_subscription(struct task_run *run);
/* reconcile.c: the daily re-read of live subscriptions from Stripe (periodic). */
#define TASK_RECONCILE_INTERVAL_SECONDS 86400
int task_reconcile_subscriptions(struct task_run *run);
/* expire.c: the final expiry (SPEC §7): the periodic scan and the per-user closure. */
#define TASK_CLOSE_EXPIRED_INTERVAL_SECONDS 900
#define EXPIRY_SCAN_LIMIT 200
int task_close_expired_accounts(struct task_run *run);
int task_expire_account(struct task_run *run);
/* admin_user_action.c: admin_user_action(user_id, action, bulk_job), one user's share of an
 * admin console bulk action (domain/admin_bulk.h). */
int task_admin_user_action(struct task_run *run);

#endif
