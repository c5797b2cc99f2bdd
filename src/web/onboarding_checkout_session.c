/*
 * onboarding_checkout_session.c — the checkout's JSON endpoints around payment (SPEC §2, §3):
 *
 *   POST /onboarding/checkout/validate/  {email, username}
 *        -> {"valid":true} | {"valid":false,"errors":{field:msg}}; 503 when Keycloak can't say
 *   POST /onboarding/checkout/session/   {email, last_name, username}
 *        -> {"clientSecret":…} (embedded) | {"url":…} (hosted)
 *
 * Availability means: no local user and no Keycloak user has the username or the email.
 * The session endpoint trusts nothing it checked before: the email must be the one verified
 * in this browser session, the stored choice is checked again (the catalog may have changed,
 * the session may be tampered with), names and availability are checked again, and only
 * then is the Stripe Checkout Session created (web/stripe_checkout.h). Nothing is
 * stored unless Stripe answered; then the details go into the session's "onboarding"
 * object (last_name, username, email).
 */
#include "core/config.h"
#include "core/crypto.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/messages.h"
#include "domain/onboarding.h"
#include "domain/onboarding_progress.h"
#include "domain/session_store.h"
#include "domain/validate.h"
#include "integrations/keycloak_admin.h"
#include "integrations/stripe_client.h"
#include "web/app.h"
#include "web/stripe_checkout.h"
#include "web/handlers.h"
#include "web/onboarding_session.h"
#include "web/response.h"
#include "web/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void reply(struct web_request *r, int status, json_t *body)
{
    web_reply_json(r, status, body);
    json_decref(body);
}

/* Logs a Keycloak failure once, without the user's data. */
static void log_kc(struct web_request *r, const char *what, int rc, const struct kc_error *err)
{
    char detail[300];
    log_quote(detail, sizeof detail, err->message);
    log_error("request_id=%s msg=\"keycloak %s lookup failed\" error=\"%s\" status=%ld "
              "detail=\"%s\"",
              r->request_id, what, usher_strerror(rc), (long)err->http.status, detail);
}

/* One Keycloak lookup: *taken when a user (or several) has it. USHER_EUPSTREAM when Keycloak
 * could not answer. */
static int kc_taken(struct web_request *r, bool email, const char *value, bool *taken)
{
    struct kc_error err;
    memset(&err, 0, sizeof err);
    json_t *user = NULL;
    int rc = email ? kc_user_find_by_email(r->app->kc, value, &user, &err)
                   : kc_user_find_by_username(r->app->kc, value, &user, &err);
    json_decref(user);
    if (rc == 0 || rc == USHER_ECONFLICT) {
        *taken = true;
        return 0;
    }
    if (rc == USHER_ENOTFOUND)
        return 0;
    log_kc(r, email ? "email" : "username", rc, &err);
    return USHER_EUPSTREAM;
}

/*
 * Adds to errors a message for the username and/or email (NULL: not checked) that a local
 * or Keycloak user already has. USHER_EUPSTREAM when Keycloak is not configured or could not
 * answer; a database error as it is.
 */
static int check_available(struct web_request *r, const char *username, const char *email,
                           json_t *errors)
{
    bool user_taken = false, email_taken = false;
    int rc = onboarding_local_taken(r->app->db, username, email, &user_taken, &email_taken);
    if (rc != 0)
        return rc;
    if (!r->app->kc) {
        log_error("request_id=%s msg=\"keycloak admin api not configured: cannot check "
                  "availability\"",
                  r->request_id);
        return USHER_EUPSTREAM;
    }
    if (username && !user_taken)
        rc = kc_taken(r, false, username, &user_taken);
    if (rc == 0 && email && !email_taken)
        rc = kc_taken(r, true, email, &email_taken);
    if (rc != 0)
        return rc;
    if (user_taken)
        json_object_set_new(errors, "username", json_string(msg("checkout.username_taken")));
    if (email_taken)
        json_object_set_new(errors, "email", json_string(msg("checkout.email_taken")));
    return 0;
}

/* Replies 503 for an unreachable Keycloak; other errors go back to the dispatcher. */
static int availability_failed(struct web_request *r, int rc)
{
    if (rc != USHER_EUPSTREAM)
        return rc;
    reply(r, 503, json_pack("{s:s}", "error", msg("checkout.details_unavailable")));
    return 0;
}

/* ---- validate ------------------------------------------------------------------------ */

int web_onboarding_checkout_validate(struct web_request *r)
{
    static const char *const required[] = {"email", "username", NULL};
    json_t *body = NULL;
    if (web_json_body(r, required, &body) != 0)
        return 0;
    json_t *errors = json_object();
    char *email = NULL, *username = NULL;
    const char *error = NULL;
    if (validate_email(json_string_value(json_object_get(body, "email")), &email, &error) != 0)
        json_object_set_new(errors, "email", json_string(error));
    if (validate_username(json_string_value(json_object_get(body, "username")), &username,
                          &error) != 0)
        json_object_set_new(errors, "username", json_string(error));
    json_decref(body);
    int rc = 0;
    if (email || username)
        rc = check_available(r, username, email, errors);
    if (rc != 0)
        rc = availability_failed(r, rc);
    else if (json_object_size(errors))
        reply(r, 200, json_pack("{s:b, s:O}", "valid", 0, "errors", errors));
    else
        reply(r, 200, json_pack("{s:b}", "valid", 1));
    json_decref(errors);
    free(email);
    free(username);
    return rc;
}

/* ---- session ------------------------------------------------------------------------- */

/* The visitor's details, normalized; heap strings. */
struct details {
    char *email;
    char *last_name;
    char *username;
};

static void details_cleanup(struct details *d)
{
    free(d->email);
    free(d->last_name);
    free(d->username);
}

/* The steps before this one are done; otherwise replies 400 naming where to go. */
static bool steps_done(struct web_request *r, const json_t *state)
{
    const char *first = json_string_value(json_object_get(state, "first_name"));
    const char *plan = json_string_value(json_object_get(state, "plan"));
    if (first && *first && plan && *plan)
        return true;
    bool no_name = !first || !*first;
    reply(r, 400,
          json_pack("{s:s, s:s}", "error",
                    no_name ? msg("checkout.start_with_name") : msg("checkout.choose_plan_first"),
                    "redirect", no_name ? "/onboarding/" : "/onboarding/plan/"));
    return false;
}

/* Reads and checks the body (after the earlier steps); on failure the reply is sent and
 * USHER_EINVAL returned. */
static int read_details(struct web_request *r, const json_t *state, struct details *d)
{
    static const char *const required[] = {"email", "last_name", "username", NULL};
    json_t *body = NULL;
    if (web_json_body(r, required, &body) != 0)
        return USHER_EINVAL;
    if (!steps_done(r, state)) {
        json_decref(body);
        return USHER_EINVAL;
    }
    json_t *errors = json_object();
    const char *error = NULL;
    if (validate_email(json_string_value(json_object_get(body, "email")), &d->email, &error))
        json_object_set_new(errors, "email", json_string(error));
    if (validate_name(json_string_value(json_object_get(body, "last_name")), FIRST_NAME_MAX_LEN,
                      &d->last_name, &error))
        json_object_set_new(errors, "last_name", json_string(error));
    if (validate_username(json_string_value(json_object_get(body, "username")), &d->username,
                          &error))
        json_object_set_new(errors, "username", json_string(error));
    json_decref(body);
    int rc = USHER_EINVAL;
    if (json_object_size(errors)) {
        const char *first = json_string_value(json_object_iter_value(json_object_iter(errors)));
        reply(r, 400, json_pack("{s:s, s:O}", "error", first, "errors", errors));
    } else {
        const char *verified = json_string_value(json_object_get(state, "email_verified"));
        if (!verified || !*verified)
            reply(r, 403, json_pack("{s:s}", "error", msg("checkout.email_not_verified")));
        else if (strcmp(verified, d->email))
            reply(r, 403, json_pack("{s:s}", "error", msg("checkout.other_email")));
        else
            rc = 0;
    }
    json_decref(errors);
    return rc;
}

/* Creates the Checkout Session for order (web_checkout_start: 0 when created, 1 when a
 * failure was answered). */
static int create_session(struct web_request *r, const json_t *state, const struct details *d,
                          const json_t *order)
{
    const struct usher_config *cfg = r->app->cfg;
    const json_t *lines = json_object_get(order, "lines");
    size_t n = json_array_size(lines);
    struct stripe_line_item *items = xcalloc(n ? n : 1, sizeof *items);
    for (size_t i = 0; i < n; i++) {
        items[i].price =
            json_string_value(json_object_get(json_array_get(lines, i), "stripe_price_id"));
        items[i].quantity = 1;
    }
    const struct stripe_metadata metadata[] = {
        {"first_name", json_string_value(json_object_get(state, "first_name"))},
        {"last_name", d->last_name},
        {"username", d->username},
    };
    char *return_url =
        xasprintf("%s/onboarding/success/?session_id={CHECKOUT_SESSION_ID}", cfg->public_base_url);
    char *cancel_url = xasprintf("%s/onboarding/cancel/", cfg->public_base_url);
    struct stripe_checkout_params p = {.items = items,
                                       .item_count = n,
                                       .customer_email = d->email,
                                       .metadata = metadata,
                                       .metadata_count = 3,
                                       .return_url = return_url,
                                       .cancel_url = cancel_url};
    int rc = web_checkout_start(r, &p);
    free(return_url);
    free(cancel_url);
    free(items);
    return rc;
}

static void remember(struct web_request *r, json_t *state, const struct details *d)
{
    json_object_set_new(state, "last_name", json_string(d->last_name));
    json_object_set_new(state, "username", json_string(d->username));
    json_object_set_new(state, "email", json_string(d->email));
    web_session_changed(r);
}

/* Checks the stored choice again and prices it; on refusal replies 400 and returns 1. */
static int load_order(struct web_request *r, const json_t *state, json_t **order)
{
    struct onboarding_choice choice = {
        .plan = json_string_value(json_object_get(state, "plan")),
        .cycle = json_string_value(json_object_get(state, "billing_cycle")),
        .addons = json_object_get(state, "general_addons"),
        .storage = json_object_get(state, "storage_addons")};
    char *error = NULL;
    int rc = onboarding_check(r->app->db, &choice, &error);
    if (rc == 0)
        rc = onboarding_order(r->app->db, &choice, order, &error);
    if (rc != 0 && error) {
        reply(r, 400, json_pack("{s:s, s:s}", "error", error, "redirect", "/onboarding/plan/"));
        rc = 1;
    }
    free(error);
    return rc;
}

int web_onboarding_checkout_session(struct web_request *r)
{
    json_t *state = web_onboarding_state(r, false);
    if (!r->session)
        return USHER_EFORBIDDEN; /* the CSRF check requires one; never reached */
    struct details d = {0};
    if (read_details(r, state, &d) != 0) {
        details_cleanup(&d);
        return 0;
    }
    json_t *order = NULL;
    int rc = load_order(r, state, &order);
    if (rc != 0) {
        details_cleanup(&d);
        return rc > 0 ? 0 : rc;
    }
    json_t *errors = json_object();
    rc = check_available(r, d.username, d.email, errors);
    if (rc != 0) {
        rc = availability_failed(r, rc);
    } else if (json_object_size(errors)) {
        const char *first = json_string_value(json_object_iter_value(json_object_iter(errors)));
        reply(r, 409, json_pack("{s:s, s:O}", "error", first, "errors", errors));
    } else if (create_session(r, state, &d, order) == 0) {
        remember(r, state, &d);
    }
    json_decref(errors);
    json_decref(order);
    details_cleanup(&d);
    return rc;
}
