/*
 * stripe_checkout.c — see stripe_checkout.h.
 */
#include "web/stripe_checkout.h"

#include "core/config.h"
#include "core/crypto.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/messages.h"
#include "domain/session_store.h"
#include "integrations/form.h"
#include "web/app.h"
#include "web/response.h"
#include "web/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_PREFIX "usher-checkout-"

/* KEY_PREFIX + hex HMAC of the session and the request's form body. */
static int idempotency_key(struct web_request *r, const struct stripe_checkout_params *p, char *out,
                           size_t size)
{
    struct form f;
    form_init(&f);
    int rc = stripe_checkout_form(r->app->cfg, p, &f);
    if (rc == 0) {
        char *material = xasprintf("%s\n%s", r->session->id_hash, form_data(&f));
        char mac[CRYPTO_SHA256_HEX_LEN + 1];
        rc = crypto_hmac_sha256_hex(r->app->cfg->secret_key, material, strlen(material), mac);
        free(material);
        if (rc == 0)
            snprintf(out, size, "%s%s", KEY_PREFIX, mac);
    }
    form_cleanup(&f);
    return rc;
}

static void reply(struct web_request *r, int status, json_t *body)
{
    web_reply_json(r, status, body);
    json_decref(body);
}

int web_checkout_start(struct web_request *r, struct stripe_checkout_params *p)
{
    const struct usher_config *cfg = r->app->cfg;
    char key[sizeof KEY_PREFIX + CRYPTO_SHA256_HEX_LEN];
    int rc = idempotency_key(r, p, key, sizeof key);
    json_t *session = NULL;
    struct stripe_error err;
    memset(&err, 0, sizeof err);
    if (rc == 0) {
        p->idempotency_key = key;
        rc = stripe_checkout_session_create(cfg, p, &session, &err);
        p->idempotency_key = NULL; /* points into this frame */
    }
    bool embedded = cfg->stripe_checkout_ui == CHECKOUT_UI_EMBEDDED;
    const char *secret = stripe_str(session, "client_secret");
    const char *url = stripe_str(session, "url");
    if (rc == 0 && (embedded ? !secret : !url))
        rc = USHER_EUPSTREAM;
    if (rc != 0) {
        char detail[600];
        log_quote(detail, sizeof detail, err.message);
        log_error("request_id=%s msg=\"checkout session not created\" error=\"%s\" status=%ld "
                  "type=\"%s\" code=\"%s\" detail=\"%s\"",
                  r->request_id, usher_strerror(rc), (long)err.http.status, err.type, err.code,
                  detail);
        /* USHER_EINVAL: refused before any request, e.g. names too long for Stripe's
         * metadata (500 characters, counted here in bytes). */
        int status = rc == USHER_ECONFIG ? 503 : rc == USHER_EINVAL ? 400 : 502;
        const char *message = rc == USHER_ECONFIG  ? msg("payment.not_set_up")
                              : rc == USHER_EINVAL ? msg("payment.name_too_long")
                                                   : msg("payment.start_failed");
        reply(r, status, json_pack("{s:s}", "error", message));
        json_decref(session);
        return 1;
    }
    if (embedded)
        reply(r, 200, json_pack("{s:s}", "clientSecret", secret));
    else
        reply(r, 200, json_pack("{s:s}", "url", url));
    json_decref(session);
    return 0;
}

static const char *str_or_empty(const char *s)
{
    return s ? s : "";
}

/* What progress needs, kept in the web session instead of the finished onboarding. */
static json_t *signup_of(const char *session_id, const json_t *cs, const char *email,
                         const char *first_name)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "checkout_session_id", session_id, "customer_id",
                     str_or_empty(stripe_expandable_id(json_object_get(cs, "customer"))),
                     "subscription_id",
                     str_or_empty(stripe_expandable_id(json_object_get(cs, "subscription"))),
                     "email", email, "first_name", first_name);
}

static void remember_signup(struct web_request *r, json_t *signup)
{
    json_t *data = web_session_data(r);
    if (!data)
        return;
    json_object_set(data, "signup", signup);
    json_object_del(data, "onboarding");
    web_session_changed(r);
}

json_t *web_checkout_follow(struct web_request *r, const char *session_id, const json_t *cs,
                            const char *first_name)
{
    json_t *signup =
        signup_of(session_id, cs, str_or_empty(stripe_session_email(cs)), str_or_empty(first_name));
    remember_signup(r, signup);
    return signup;
}

int web_checkout_confirm(struct web_request *r, const char *back_path, json_t **cs)
{
    const char *id = web_query(r, "session_id");
    if (!id || strncmp(id, "cs_", 3) || !stripe_id_valid(id)) {
        web_redirect(r, back_path);
        return 1;
    }
    struct stripe_error err;
    memset(&err, 0, sizeof err);
    *cs = NULL;
    int rc = stripe_checkout_session_retrieve(r->app->cfg, id, cs, &err);
    if (rc == USHER_ENOTFOUND || rc == USHER_EINVAL) {
        web_redirect(r, back_path);
        return 1;
    }
    if (rc != 0) {
        log_error("request_id=%s msg=\"checkout session not retrieved\" error=\"%s\" status=%ld",
                  r->request_id, usher_strerror(rc), (long)err.http.status);
        web_reply_error(r, 502, msg("payment.confirm_failed"));
        return 1;
    }
    const char *status = stripe_str(*cs, "status");
    const char *mode = stripe_str(*cs, "mode");
    if (!status || strcmp(status, "complete") || !mode || strcmp(mode, "subscription")) {
        json_decref(*cs);
        *cs = NULL;
        web_redirect(r, back_path);
        return 1;
    }
    rc = web_session_admit(r);
    if (rc != 0) {
        json_decref(*cs);
        *cs = NULL;
    }
    return rc;
}
