/*
 * onboarding_checkout_fields.c — what step 4 keeps while the visitor types (issue 18):
 *
 *   POST /onboarding/checkout/fields/        {last_name?, username?, email?}  -> {"saved":bool}
 *   POST /onboarding/checkout/change-email/  {}                               -> {"verified":false}
 *
 * fields/ keeps the typed values in the session's "onboarding" object, so a reload or the
 * browser's Back shows them again (GET /onboarding/checkout/ pre-fills them). Only these three
 * keys are read — never the code — and each is kept as typed (trimmed), bounded by the lengths
 * the checkout accepts; the checkout session endpoint validates them for real. A visitor
 * without an onboarding in progress (no first name) gets {"saved":false} and nothing is
 * written; an unchanged value writes nothing either, so the session stays lazy.
 *
 * change-email/ drops `email_verified`: the address is unlocked and must be verified again
 * before payment. The verified address stays as the typed email, to be edited. Both are
 * CSRF-protected POSTs like every state change (web/dispatch.c).
 */
#include "core/err.h"
#include "core/messages.h"
#include "domain/validate.h"
#include "web/handlers.h"
#include "web/onboarding_session.h"
#include "web/response.h"
#include "web/session.h"

#include <ctype.h>
#include <string.h>

#define LAST_NAME_MAX_LEN 150

struct kept_field {
    const char *key;
    size_t max;
};

static const struct kept_field kept[] = {
    {"last_name", LAST_NAME_MAX_LEN},
    {"username", USERNAME_MAX_LEN},
    {"email", EMAIL_MAX_LEN},
};

static bool has_first_name(const json_t *state)
{
    const char *s = json_string_value(json_object_get(state, "first_name"));
    return s && *s;
}

/* Stores body[key] trimmed into state when it is a string within max bytes and differs.
 * Returns 1 when it changed state, 0 when not, USHER_EINVAL when it is too long or no
 * string. */
static int keep(json_t *state, const json_t *body, const struct kept_field *f)
{
    const json_t *v = json_object_get(body, f->key);
    if (!v)
        return 0;
    const char *s = json_string_value(v);
    if (!s)
        return USHER_EINVAL;
    size_t len = json_string_length(v);
    while (len && isspace((unsigned char)*s)) {
        s++;
        len--;
    }
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    if (len > f->max || memchr(s, '\0', len))
        return USHER_EINVAL;
    const json_t *old = json_object_get(state, f->key);
    if (json_is_string(old) && json_string_length(old) == len &&
        !memcmp(json_string_value(old), s, len))
        return 0;
    json_object_set_new(state, f->key, json_stringn(s, len));
    return 1;
}

int web_onboarding_checkout_fields(struct web_request *r)
{
    json_t *body = NULL;
    if (web_json_body(r, NULL, &body) != 0)
        return 0;
    json_t *state = web_onboarding_state(r, false);
    bool saved = false;
    int rc = 0;
    if (state && has_first_name(state)) {
        bool changed = false;
        for (size_t i = 0; rc == 0 && i < sizeof kept / sizeof kept[0]; i++) {
            int k = keep(state, body, &kept[i]);
            if (k < 0)
                rc = k;
            else if (k > 0)
                changed = true;
        }
        if (changed)
            web_session_changed(r);
        saved = rc == 0;
    }
    json_decref(body);
    if (rc != 0) {
        web_reply_json_error(r, 400, msg("http.invalid_request"));
        return 0;
    }
    json_t *reply = json_pack("{s:b}", "saved", saved);
    web_reply_json(r, 200, reply);
    json_decref(reply);
    return 0;
}

int web_onboarding_change_email(struct web_request *r)
{
    json_t *body = NULL;
    if (web_json_body(r, NULL, &body) != 0)
        return 0;
    json_decref(body);
    json_t *state = web_onboarding_state(r, false);
    json_t *verified = json_object_get(state, "email_verified");
    if (verified) {
        if (json_is_string(verified))
            json_object_set(state, "email", verified);
        json_object_del(state, "email_verified");
        web_session_changed(r);
    }
    json_t *reply = json_pack("{s:b}", "verified", 0);
    web_reply_json(r, 200, reply);
    json_decref(reply);
    return 0;
}
