/*
 * notify.c — the notify_subscription_canceled and notify_payment_failed tasks (SPEC §4, §8):
 * one Mailgun email each, telling the user what happened to their subscription and how to
 * get it back (templates/email/subscription_canceled.*, payment_failed.*; tasks/email.h).
 *
 * Args {"user_id": N}. Outcomes:
 * - sent (and the send recorded, so a re-run does not send again; email.h explains the
 *   at-least-once choice);
 * - nothing to send, done: the task's email was already recorded as sent, or the user's
 *   subscription is active again by the time the task runs (an email saying it was canceled
 *   or unpaid would be wrong; this happens when Mailgun was down for longer than the user
 *   took to pay);
 * - permanent failure (no retries, visible in `usher task list --failed`): malformed args,
 *   the user no longer exists, the user has no email address, the account was already
 *   closed for good (status expired), or Mailgun refused the message itself (400);
 * - failure, retried by the task policy: the database, Mailgun down or rate limited,
 *   Mailgun not configured yet, a template that does not load.
 */
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/human_format.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/messages.h"
#include "domain/users.h"
#include "tasks/builtin.h"
#include "tasks/email.h"
#include "tasks/task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct notice {
    const char *task; /* the task name, also the sent-marker's kind */
    const char *template_name;
    const char *subject_id; /* message id; {{site_name}} */
    const char *tag;
};

static const struct notice canceled_notice = {
    .task = "notify_subscription_canceled",
    .template_name = "subscription_canceled",
    .subject_id = MSG_ID("email.subscription_canceled_subject"),
    .tag = "subscription-canceled",
};

static const struct notice payment_failed_notice = {
    .task = "notify_payment_failed",
    .template_name = "payment_failed",
    .subject_id = MSG_ID("email.payment_failed_subject"),
    .tag = "payment-failed",
};

/* The user is paying again: the notice no longer describes their account. */
static bool paying(const struct user *u)
{
    const char *s = u->subscription_status ? u->subscription_status : "";
    return !strcmp(s, "active") || !strcmp(s, "trialing");
}

static json_t *notice_context(const struct usher_config *cfg, const struct user *u)
{
    char *recovery = xasprintf("%s/recovery/", cfg->public_base_url);
    char *billing = xasprintf("%s/dashboard/", cfg->public_base_url);
    json_t *ctx =
        json_pack("{s:s, s:s, s:s, s:s}", "first_name", u->first_name ? u->first_name : "",
                  "username", u->username, "recovery_url", recovery, "billing_url", billing);
    free(recovery);
    free(billing);
    if (ctx && u->access_expires_at > 0) {
        char date[FORMAT_DATE_MAX];
        format_long_date(u->access_expires_at, date, sizeof date);
        json_object_set_new(ctx, "final_date", json_string(date));
    }
    return ctx;
}

/* Mailgun's verdict on this message: 400 means the message itself is refused (an address
 * Mailgun will never take), which no retry changes. */
static bool refused_for_good(int rc, const struct http_error *err)
{
    return rc == USHER_EINVAL || (rc == USHER_EUPSTREAM && err->status == 400);
}

static int send_notice(struct task_run *run, const struct notice *n, const struct user *u)
{
    const struct usher_config *cfg = run->cfg;
    json_t *ctx = notice_context(cfg, u);
    if (!ctx) {
        task_run_error(run, "%s: user %lld: cannot build the email", n->task, (long long)u->id);
        run->permanent = true;
        return USHER_EINVAL;
    }
    char *subject = msg_format(n->subject_id, json_pack("{s:s}", "site_name", cfg->site_name));
    struct email_message msg = {.to = u->email,
                                .subject = subject,
                                .template_name = n->template_name,
                                .tag = n->tag,
                                .ctx = ctx};
    char *message_id = NULL;
    struct http_error err = {0};
    int rc = email_send(cfg, &msg, &message_id, &err);
    free(subject);
    json_decref(ctx);
    if (rc != 0) {
        run->permanent = refused_for_good(rc, &err);
        if (err.status > 0)
            task_run_error(run, "%s: user %lld: Mailgun answered %ld: %s", n->task,
                           (long long)u->id, err.status, usher_strerror(rc));
        else
            task_run_error(run, "%s: user %lld: email not sent: %s", n->task, (long long)u->id,
                           usher_strerror(rc));
        return rc;
    }
    /* Sent: from here on the task succeeds whatever happens, a retry would send it again. */
    int mark = email_sent_record(run->pool, run->id, n->task, u->id, message_id, clock_now());
    if (mark != 0)
        log_warn("msg=\"email sent but not recorded\" task_id=%lld name=%s user_id=%lld "
                 "error=\"%s\"",
                 (long long)run->id, n->task, (long long)u->id, usher_strerror(mark));
    char quoted[160];
    log_quote(quoted, sizeof quoted, message_id ? message_id : "");
    log_info("msg=\"email sent\" task_id=%lld name=%s user_id=%lld message_id=\"%s\"",
             (long long)run->id, n->task, (long long)u->id, quoted);
    free(message_id);
    return 0;
}

static int run_notice(struct task_run *run, const struct notice *n)
{
    json_int_t user_id = json_integer_value(json_object_get(run->args, "user_id"));
    if (user_id <= 0) {
        task_run_error(run, "%s: args need a positive user_id", n->task);
        run->permanent = true;
        return USHER_EINVAL;
    }
    bool sent = false;
    int rc = email_sent_find(run->pool, run->id, &sent);
    if (rc != 0) {
        task_run_error(run, "%s: user %lld: %s", n->task, (long long)user_id, usher_strerror(rc));
        return rc;
    }
    if (sent) {
        log_info("msg=\"email already sent, not sending again\" task_id=%lld name=%s "
                 "user_id=%lld",
                 (long long)run->id, n->task, (long long)user_id);
        return 0;
    }
    struct user u;
    rc = users_get(run->pool, (int64_t)user_id, &u);
    if (rc == USHER_ENOTFOUND) {
        task_run_error(run, "%s: user %lld does not exist (deleted?)", n->task, (long long)user_id);
        run->permanent = true;
        return rc;
    }
    if (rc != 0) {
        task_run_error(run, "%s: user %lld: %s", n->task, (long long)user_id, usher_strerror(rc));
        return rc;
    }
    if (!u.email || !*u.email) {
        task_run_error(run, "%s: user %lld has no email address", n->task, (long long)user_id);
        run->permanent = true;
        rc = USHER_EINVAL;
    } else if (u.subscription_status && !strcmp(u.subscription_status, "expired")) {
        /* Closed for good before the notice went out: it would offer a recovery that no
         * longer exists. Nothing to send is not a failure. */
        log_info("msg=\"email not sent: the account was closed for good\" task_id=%lld "
                 "name=%s user_id=%lld",
                 (long long)run->id, n->task, (long long)user_id);
        rc = 0;
    } else if (paying(&u)) {
        log_info("msg=\"email not sent: the subscription is active again\" task_id=%lld "
                 "name=%s user_id=%lld",
                 (long long)run->id, n->task, (long long)user_id);
        rc = 0;
    } else {
        rc = send_notice(run, n, &u);
    }
    users_cleanup(&u);
    return rc;
}

int task_notify_subscription_canceled(struct task_run *run)
{
    return run_notice(run, &canceled_notice);
}

int task_notify_payment_failed(struct task_run *run)
{
    return run_notice(run, &payment_failed_notice);
}
