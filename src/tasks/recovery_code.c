/*
 * recovery_code.c — the send_recovery_code task (SPEC §7): everything /recovery/send-code/
 * does that depends on the account, moved off the request path so that every request gets
 * the same answer in the same time, whoever it names.
 *
 * Args {identifier, session_hash}. A recoverable account gets a recovery code (domain/codes.h,
 * purpose "recovery", bound to the asking browser session) at its own address; the code's
 * per-address limits apply silently here (the person already has the neutral answer). Any
 * other case sends no code. With RECOVERY_NOTIFY_UNKNOWN, the address typed (or the address of
 * a known account that cannot be recovered) gets a notice instead: "there is no recoverable
 * account; sign up or log in", at most one per address per day.
 *
 * The digits exist only in this handler's memory between code_issue and Mailgun: never in the
 * task's arguments, its error text or a log line. A retry issues a fresh code.
 */
#include "core/clock.h"
#include "core/config.h"
#include "core/crypto.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/messages.h"
#include "domain/codes.h"
#include "domain/rate_limit.h"
#include "domain/recovery.h"
#include "domain/validate.h"
#include "tasks/builtin.h"
#include "tasks/email.h"
#include "tasks/task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOTICE_WINDOW_SECONDS (24 * 60 * 60)

/* Sends template_name to `to` with ctx; on failure describes it in the task (what names the
 * mail) and returns the error. */
static int mail(struct task_run *run, const char *to, const char *subject_id,
                const char *template_name, const json_t *ctx, const char *what)
{
    char *subject = msg_format(subject_id, json_pack("{s:s}", "site_name", run->cfg->site_name));
    struct email_message msg = {.to = to,
                                .subject = subject,
                                .template_name = template_name,
                                .tag = template_name,
                                .ctx = ctx};
    struct http_error err = {0};
    int rc = email_send(run->cfg, &msg, NULL, &err);
    free(subject);
    if (rc != 0)
        task_run_error(run, "send_recovery_code: %s not sent (HTTP %ld): %s", what, err.status,
                       usher_strerror(rc));
    return rc;
}

static int send_code(struct task_run *run, const struct recovery_account *a,
                     const char *session_hash)
{
    const struct usher_config *cfg = run->cfg;
    struct code_subject who = {
        .purpose = "recovery", .email = a->email, .session_hash = session_hash};
    struct code_issued issued;
    int rc = code_issue(run->pool, cfg->secret_key, &who, NULL, clock_now(), &issued);
    if (rc == USHER_ELIMIT) {
        /* A retry after a failed send meets the resend cooldown of its own first attempt:
         * wait it out rather than drop the code. */
        if (issued.limit == CODE_LIMIT_COOLDOWN && run->attempt > 1) {
            task_run_error(run, "send_recovery_code: user %lld: waiting for the resend cooldown",
                           (long long)a->id);
            return rc;
        }
        log_info("msg=\"recovery code not sent: limit\" task_id=%lld user_id=%lld limit=%d",
                 (long long)run->id, (long long)a->id, (int)issued.limit);
        return 0;
    }
    if (rc != 0) {
        task_run_error(run, "send_recovery_code: user %lld: %s", (long long)a->id,
                       usher_strerror(rc));
        return rc;
    }
    char *recovery_url = xasprintf("%s/recovery/", cfg->public_base_url);
    json_t *ctx = json_pack("{s:s, s:s, s:s, s:i, s:s}", "first_name", a->first_name, "username",
                            a->username, "code", issued.code, "minutes", CODE_TTL_SECONDS / 60,
                            "recovery_url", recovery_url);
    code_issued_wipe(&issued);
    free(recovery_url);
    rc = mail(run, a->email, MSG_ID("email.recovery_code_subject"), "recovery_code", ctx,
              "the code");
    json_decref(ctx);
    if (rc != 0) {
        int irc = code_invalidate(run->pool, issued.id);
        if (irc != 0)
            log_error("msg=\"unsent recovery code not invalidated\" task_id=%lld error=\"%s\"",
                      (long long)run->id, usher_strerror(irc));
        return rc;
    }
    log_info("msg=\"recovery code sent\" task_id=%lld user_id=%lld", (long long)run->id,
             (long long)a->id);
    return 0;
}

/* The notice for an address without a recoverable account; once a day per address. */
static int send_notice(struct task_run *run, const char *email, enum recovery_state state)
{
    const struct usher_config *cfg = run->cfg;
    char hash[CRYPTO_SHA256_HEX_LEN + 1];
    crypto_sha256_hex(email, hash);
    char bucket[RATE_LIMIT_BUCKET_MAX];
    snprintf(bucket, sizeof bucket, "recovery-notice:%s", hash);
    struct rate_limit_result limit;
    int rc = rate_limit_hit_pool(run->pool, bucket, 1, NOTICE_WINDOW_SECONDS, clock_now(), &limit);
    if (rc != 0) {
        task_run_error(run, "send_recovery_code: notice limit: %s", usher_strerror(rc));
        return rc;
    }
    if (!limit.allowed) {
        log_info("msg=\"recovery notice not sent: one a day\" task_id=%lld", (long long)run->id);
        return 0;
    }
    char *signup_url = xasprintf("%s/onboarding/", cfg->public_base_url);
    char *login_url = xasprintf("%s/", cfg->public_base_url);
    json_t *ctx = json_pack("{s:s, s:s, s:b}", "signup_url", signup_url, "login_url", login_url,
                            "closed", state == RECOVERY_CLOSED);
    free(signup_url);
    free(login_url);
    /* The day's hit is counted before sending: a notice lost to a Mailgun failure is not
     * worth a second one the same day (it is optional, and says nothing the site doesn't). */
    rc = mail(run, email, MSG_ID("email.recovery_notice_subject"), "recovery_notice", ctx,
              "the notice");
    json_decref(ctx);
    if (rc != 0)
        return rc;
    log_info("msg=\"recovery notice sent\" task_id=%lld", (long long)run->id);
    return 0;
}

int task_send_recovery_code(struct task_run *run)
{
    const char *identifier = json_string_value(json_object_get(run->args, "identifier"));
    const char *session_hash = json_string_value(json_object_get(run->args, "session_hash"));
    if (!recovery_identifier_valid(identifier) || !session_hash ||
        strlen(session_hash) != CRYPTO_SHA256_HEX_LEN) {
        task_run_error(run, "send_recovery_code: args need an identifier and a session_hash");
        run->permanent = true;
        return USHER_EINVAL;
    }
    struct recovery_account a;
    int rc = recovery_find(run->pool, identifier, clock_now(), &a);
    if (rc != 0) {
        task_run_error(run, "send_recovery_code: %s", usher_strerror(rc));
        recovery_account_cleanup(&a);
        return rc;
    }
    if (a.state == RECOVERY_RECOVERABLE && a.email && *a.email) {
        rc = send_code(run, &a, session_hash);
    } else if (run->cfg->recovery_notify_unknown) {
        char *typed = NULL;
        const char *why = NULL;
        const char *address = a.id && a.email && *a.email ? a.email : NULL;
        if (!address && validate_email(identifier, &typed, &why) == 0)
            address = typed;
        rc = address ? send_notice(run, address, a.state) : 0;
        free(typed);
    } else {
        log_info("msg=\"recovery asked for an account that cannot be recovered\" task_id=%lld "
                 "state=%d",
                 (long long)run->id, (int)a.state);
    }
    recovery_account_cleanup(&a);
    return rc;
}
