/*
 * onboarding_codes.c — the checkout's email verification endpoints (SPEC §2, §3):
 *
 *   POST /onboarding/checkout/send-code/    {email}        -> {"sent":true, "resend_after":s}
 *                                                             | 429 {"error", "retry_after":s}
 *   POST /onboarding/checkout/verify-code/  {email, code}  -> {"verified":true}
 *                        | 400 {"verified":false, "error":…, "attempts_left":n (after a wrong
 *                          code: the wrong attempts it still takes, 0 once it is dead)}
 *
 * The rules live in domain/codes.c; this file maps them to HTTP. A code is bound to the
 * requesting session (its id hash), so both endpoints need the session the CSRF check
 * already demanded. The email is rendered from templates/email/verification_code.{txt,html}
 * and sent synchronously, inside the request: the digits never sit in a queue in clear.
 * When Mailgun fails the new code is invalidated at once and the answer is 503. A verified
 * address is stored as `email_verified` (normalized) in the session's "onboarding" object,
 * which the checkout session endpoint requires.
 *
 * Metrics: usher_verification_codes_total{event} with event sent, send_failed, limited,
 * verified, incorrect, expired, no_code, too_many.
 */
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/messages.h"
#include "core/metrics.h"
#include "core/mustache.h"
#include "domain/codes.h"
#include "domain/session_store.h"
#include "domain/validate.h"
#include "integrations/mailgun.h"
#include "web/app.h"
#include "web/handlers.h"
#include "web/response.h"
#include "web/onboarding_session.h"
#include "web/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EMAIL_TAG "verification-code"

static void count(const char *event)
{
    struct buf labels;
    buf_init(&labels);
    metrics_labels(&labels, 1, "event", event);
    metrics_counter_add("usher_verification_codes_total",
                        "Email verification codes sent and checked, by outcome.", labels.data, 1);
    buf_cleanup(&labels);
}

/* Reads {email, …} and normalizes the email; on failure the 400 is already sent (shaped
 * by verify: the verify endpoint answers {"verified":false,…}). */
static int read_email(struct web_request *r, const char *const *required, bool verify,
                      json_t **body, char **email)
{
    *email = NULL;
    if (web_json_body(r, required, body) != 0)
        return USHER_EINVAL;
    const char *error = NULL;
    if (validate_email(json_string_value(json_object_get(*body, "email")), email, &error) == 0)
        return 0;
    json_t *reply = verify ? json_pack("{s:b, s:s}", "verified", 0, "error", error)
                           : json_pack("{s:s, s:{s:s}}", "error", error, "errors", "email", error);
    web_reply_json(r, 400, reply);
    json_decref(reply);
    json_decref(*body);
    *body = NULL;
    return USHER_EINVAL;
}

/* ---- send-code ----------------------------------------------------------------------- */

static void reply_limited(struct web_request *r, const struct code_issued *issued)
{
    char *message =
        msg_format(issued->limit == CODE_LIMIT_COOLDOWN       ? MSG_ID("code.wait")
                   : issued->limit == CODE_LIMIT_EMAIL_HOURLY ? MSG_ID("code.too_many_email")
                                                              : MSG_ID("code.too_many_network"),
                   json_pack("{s:I}", "seconds", (json_int_t)issued->retry_after));
    char seconds[24];
    snprintf(seconds, sizeof seconds, "%lld", (long long)issued->retry_after);
    web_set_header(r, "Retry-After", seconds);
    json_t *reply =
        json_pack("{s:s, s:I}", "error", message, "retry_after", (json_int_t)issued->retry_after);
    free(message);
    web_reply_json(r, 429, reply);
    json_decref(reply);
    count("limited");
}

static int render(struct web_request *r, const char *name, const json_t *ctx, struct buf *out)
{
    int rc = mustache_render(r->app->templates, name, ctx, out);
    if (rc != 0)
        log_error("request_id=%s msg=\"email template failed\" template=%s error=\"%s\"",
                  r->request_id, name, usher_strerror(rc));
    return rc;
}

/* Renders and sends the code to email; 0 when Mailgun accepted it. */
static int send_code_email(struct web_request *r, const char *email, const char *code)
{
    const struct usher_config *cfg = r->app->cfg;
    json_t *ctx =
        json_pack("{s:{s:s, s:s}, s:s, s:i}", "site", "name", cfg->site_name, "support_email",
                  cfg->support_email, "code", code, "minutes", CODE_TTL_SECONDS / 60);
    struct buf text, html;
    buf_init(&text);
    buf_init(&html);
    int rc = render(r, "email/verification_code.txt", ctx, &text);
    if (rc == 0)
        rc = render(r, "email/verification_code.html", ctx, &html);
    json_decref(ctx);
    if (rc == 0) {
        char *subject = msg_format("email.verification_code_subject",
                                   json_pack("{s:s}", "site_name", cfg->site_name));
        struct mailgun_message msg = {.to = email,
                                      .subject = subject,
                                      .text = text.data,
                                      .html = html.data,
                                      .tag = EMAIL_TAG};
        char *message_id = NULL;
        rc = mailgun_send(cfg, &msg, &message_id);
        if (rc != 0)
            log_error("request_id=%s msg=\"verification email not sent\" error=\"%s\"",
                      r->request_id, usher_strerror(rc));
        free(message_id);
        free(subject);
    }
    explicit_bzero(text.data, text.len);
    explicit_bzero(html.data, html.len);
    buf_cleanup(&text);
    buf_cleanup(&html);
    return rc;
}

int web_onboarding_send_code(struct web_request *r)
{
    static const char *const required[] = {"email", NULL};
    json_t *body = NULL;
    char *email = NULL;
    if (read_email(r, required, false, &body, &email) != 0)
        return 0;
    json_decref(body);
    if (!r->session) { /* the CSRF check requires one; never reached */
        free(email);
        return USHER_EFORBIDDEN;
    }
    struct code_subject who = {
        .purpose = "signup", .email = email, .session_hash = r->session->id_hash};
    struct code_issued issued;
    int rc = code_issue(r->app->db, r->app->cfg->secret_key, &who, r->client_key, r->now, &issued);
    if (rc == USHER_ELIMIT) {
        reply_limited(r, &issued);
        free(email);
        return 0;
    }
    if (rc != 0) {
        free(email);
        return rc;
    }
    rc = send_code_email(r, email, issued.code);
    code_issued_wipe(&issued);
    free(email);
    if (rc != 0) {
        int irc = code_invalidate(r->app->db, issued.id);
        if (irc != 0)
            log_error("request_id=%s msg=\"unsent code not invalidated\" error=\"%s\"",
                      r->request_id, usher_strerror(irc));
        count("send_failed");
        json_t *reply = json_pack("{s:s}", "error", msg("mail.failed"));
        web_reply_json(r, 503, reply);
        json_decref(reply);
        return 0;
    }
    count("sent");
    web_session_changed(r); /* the code is bound to this id: keep the session */
    json_t *reply =
        json_pack("{s:b, s:i}", "sent", 1, "resend_after", CODE_RESEND_COOLDOWN_SECONDS);
    web_reply_json(r, 200, reply);
    json_decref(reply);
    return 0;
}

/* ---- verify-code --------------------------------------------------------------------- */

static const char *event_name(enum code_outcome outcome)
{
    switch (outcome) {
    case CODE_VERIFIED: return "verified";
    case CODE_INCORRECT: return "incorrect";
    case CODE_EXPIRED: return "expired";
    case CODE_TOO_MANY: return "too_many";
    case CODE_NO_CODE: break;
    }
    return "no_code";
}

static void mark_verified(struct web_request *r, const char *email)
{
    json_t *state = web_onboarding_state(r, true);
    json_object_set_new(state, "email_verified", json_string(email));
    json_object_set_new(state, "email", json_string(email));
    web_session_changed(r);
}

int web_onboarding_verify_code(struct web_request *r)
{
    static const char *const required[] = {"email", "code", NULL};
    json_t *body = NULL;
    char *email = NULL;
    if (read_email(r, required, true, &body, &email) != 0)
        return 0;
    if (!r->session) {
        json_decref(body);
        free(email);
        return USHER_EFORBIDDEN;
    }
    struct code_subject who = {
        .purpose = "signup", .email = email, .session_hash = r->session->id_hash};
    enum code_outcome outcome = CODE_NO_CODE;
    int attempts_left = 0;
    int rc = code_verify_attempts(r->app->db, r->app->cfg->secret_key, &who,
                                  json_string_value(json_object_get(body, "code")), r->now,
                                  &outcome, &attempts_left);
    json_decref(body);
    if (rc != 0) {
        free(email);
        return rc;
    }
    count(event_name(outcome));
    json_t *reply;
    if (outcome == CODE_VERIFIED) {
        mark_verified(r, email);
        reply = json_pack("{s:b}", "verified", 1);
    } else {
        reply = json_pack("{s:b, s:s, s:i}", "verified", 0, "error", code_outcome_message(outcome),
                          "attempts_left", attempts_left);
    }
    web_reply_json(r, outcome == CODE_VERIFIED ? 200 : 400, reply);
    json_decref(reply);
    free(email);
    return 0;
}
