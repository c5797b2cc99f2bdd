/*
 * recovery_codes.c — account recovery's code endpoints (SPEC §2, §7):
 *
 *   POST /recovery/send-code/    {identifier}        -> {"sent":true, "message", "resend_after"}
 *   POST /recovery/verify-code/  {identifier, code}  -> {"recovered":true, "plan", …}
 *                                                     | {"recovered":false, "active"|"closed", …}
 *                                                     | 400 {"recovered":false, "error"}
 *
 * No account enumeration: send-code does the same work for every well-formed identifier —
 * a syntax check, the per-address-of-client and per-browser limits, one queued task — and
 * gives the same answer; whether a code or a notice is mailed is decided by the worker
 * (tasks/recovery_code.c). The code rules are the signup's (domain/codes.h, purpose
 * "recovery", bound to this browser session). A verified code puts the account id into the
 * session's "recovery" object; what the person may do next is decided from the account as
 * it is then (domain/recovery.h).
 */
#include "core/config.h"
#include "core/err.h"
#include "core/human_format.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/messages.h"
#include "core/metrics.h"
#include "domain/codes.h"
#include "domain/rate_limit.h"
#include "domain/recovery.h"
#include "domain/session_store.h"
#include "web/app.h"
#include "web/handlers.h"
#include "web/recovery_session.h"
#include "web/response.h"
#include "web/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void count(const char *event)
{
    char labels[64];
    snprintf(labels, sizeof labels, "event=\"%s\"", event);
    metrics_counter_add("usher_recovery_requests_total",
                        "Account recovery requests, by what was asked and how it ended.", labels,
                        1);
}

static void reply(struct web_request *r, int status, json_t *body)
{
    web_reply_json(r, status, body);
    json_decref(body);
}

static void reply_limited(struct web_request *r, const char *message, int64_t retry_after)
{
    char seconds[24];
    snprintf(seconds, sizeof seconds, "%lld", (long long)retry_after);
    web_set_header(r, "Retry-After", seconds);
    reply(r, 429,
          json_pack("{s:s, s:I}", "error", message, "retry_after", (json_int_t)retry_after));
    count("limited");
}

/* The body's identifier, trimmed; NULL (with the 400 sent, shaped by verify) when it is
 * neither a username nor an email. */
static char *read_identifier(struct web_request *r, const json_t *body, bool verify)
{
    const char *raw = json_string_value(json_object_get(body, "identifier"));
    while (raw && (*raw == ' ' || *raw == '\t'))
        raw++;
    size_t n = raw ? strlen(raw) : 0;
    while (n && (raw[n - 1] == ' ' || raw[n - 1] == '\t'))
        n--;
    char *identifier = raw ? xstrndup(raw, n) : NULL;
    if (identifier && recovery_identifier_valid(identifier))
        return identifier;
    free(identifier);
    reply(r, 400,
          verify ? json_pack("{s:b, s:s}", "recovered", 0, "error", msg("recovery.bad_identifier"))
                 : json_pack("{s:s, s:{s:s}}", "error", msg("recovery.bad_identifier"), "errors",
                             "identifier", msg("recovery.bad_identifier")));
    return NULL;
}

/* One hit on bucket; replies 429 and returns 1 when it is over limit. */
static int limited(struct web_request *r, const char *bucket, int64_t limit, int64_t window,
                   const char *message_id)
{
    struct rate_limit_result hit;
    int rc = rate_limit_hit_pool(r->app->db, bucket, limit, window, r->now, &hit);
    if (rc != 0)
        return rc;
    if (hit.allowed)
        return 0;
    char *message =
        msg_format(message_id, json_pack("{s:I}", "seconds", (json_int_t)hit.retry_after));
    reply_limited(r, message, hit.retry_after);
    free(message);
    return 1;
}

int web_recovery_send_code(struct web_request *r)
{
    static const char *const required[] = {"identifier", NULL};
    json_t *body = NULL;
    if (web_json_body(r, required, &body) != 0)
        return 0;
    char *identifier = read_identifier(r, body, false);
    json_decref(body);
    if (!identifier)
        return 0;
    if (!r->session) { /* the CSRF check requires one; never reached */
        free(identifier);
        return USHER_EFORBIDDEN;
    }
    char bucket[RATE_LIMIT_BUCKET_MAX];
    snprintf(bucket, sizeof bucket, "recovery:browser:%s", r->session->id_hash);
    int rc = limited(r, bucket, 1, CODE_RESEND_COOLDOWN_SECONDS, "recovery.wait");
    if (rc == 0 && *r->client_key) {
        snprintf(bucket, sizeof bucket, "recovery:ip:%s", r->client_key);
        rc = limited(r, bucket, r->app->cfg->recovery_requests_per_ip_per_hour,
                     CODE_LIMIT_WINDOW_SECONDS, MSG_ID("recovery.too_many"));
    }
    if (rc == 0)
        rc = recovery_request_code(r->app->db, identifier, r->session->id_hash, r->now);
    if (rc == 0) {
        web_recovery_remember_identifier(r, identifier);
        count("code_requested");
        reply(r, 200,
              json_pack("{s:b, s:s, s:i}", "sent", 1, "message", msg("recovery.sent"),
                        "resend_after", CODE_RESEND_COOLDOWN_SECONDS));
    }
    free(identifier);
    return rc > 0 ? 0 : rc;
}

/* ---- verify-code --------------------------------------------------------------------- */

/* The answer for a verified account, by what it is now. */
static json_t *outcome_for(struct web_request *r, const struct recovery_account *a)
{
    if (a->state == RECOVERY_ACTIVE) {
        count("verified_active");
        return json_pack("{s:b, s:b, s:s, s:s}", "recovered", 0, "active", 1, "message",
                         msg("recovery.active"), "login_url",
                         "/oidc/authenticate/?next=/dashboard/");
    }
    if (a->state != RECOVERY_RECOVERABLE) {
        count("verified_closed");
        char date[FORMAT_DATE_MAX] = "";
        if (a->access_expires_at)
            format_long_date(a->access_expires_at, date, sizeof date);
        char *message =
            msg_format("recovery.closed",
                       json_pack("{s:s}", "date", *date ? date : msg("recovery.final_date")));
        json_t *out =
            json_pack("{s:b, s:b, s:s, s:s, s:s}", "recovered", 0, "closed", 1, "closed_on", date,
                      "message", message, "signup_url", "/onboarding/");
        free(message);
        return out;
    }
    count("verified_recoverable");
    json_t *plan = NULL;
    int rc = recovery_previous_plan(r->app->db, a->id, &plan);
    char until[FORMAT_DATE_MAX];
    format_long_date(a->access_expires_at, until, sizeof until);
    json_t *out =
        json_pack("{s:b, s:s, s:s}", "recovered", 1, "username", a->username, "until", until);
    json_object_set_new(out, "plan", rc == 0 ? plan : json_null());
    return out;
}

int web_recovery_verify_code(struct web_request *r)
{
    static const char *const required[] = {"identifier", "code", NULL};
    json_t *body = NULL;
    if (web_json_body(r, required, &body) != 0)
        return 0;
    char *identifier = read_identifier(r, body, true);
    if (!identifier || !r->session) {
        json_decref(body);
        free(identifier);
        return identifier ? USHER_EFORBIDDEN : 0;
    }
    struct recovery_account a;
    int rc = recovery_find(r->app->db, identifier, r->now, &a);
    free(identifier);
    enum code_outcome outcome = CODE_NO_CODE;
    if (rc == 0 && a.id && a.email && *a.email) {
        struct code_subject who = {
            .purpose = "recovery", .email = a.email, .session_hash = r->session->id_hash};
        rc = code_verify(r->app->db, r->app->cfg->secret_key, &who,
                         json_string_value(json_object_get(body, "code")), r->now, &outcome);
    }
    json_decref(body);
    if (rc == 0 && outcome != CODE_VERIFIED) {
        count("code_refused");
        reply(r, 400,
              json_pack("{s:b, s:s}", "recovered", 0, "error", code_outcome_message(outcome)));
    } else if (rc == 0) {
        web_recovery_mark_verified(r, a.id);
        reply(r, 200, outcome_for(r, &a));
    }
    recovery_account_cleanup(&a);
    return rc;
}
