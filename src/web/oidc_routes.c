/*
 * oidc_routes.c — /oidc/authenticate/, /oidc/callback/ and /logout/ (SPEC §6).
 *
 * GET /oidc/authenticate/?next=PATH starts a login: fresh state, nonce and PKCE verifier go
 * into the server-side session (with `next`, kept only when it is a local path), and the
 * browser is sent (303) to Keycloak's authorization endpoint.
 *
 * GET /oidc/callback/ finishes it. The state must name a pending login of this session and is
 * used up at once; an `error` answer, an `iss` from another issuer, a refused code exchange or
 * an ID token that fails verification (signature, issuer, audience, expiry, nonce) all end in
 * a 400 page saying why. On success the session id is rotated (the cookie from before login
 * stops working), the verified claims and the ID token are kept in the session, and the
 * browser goes to `next`.
 *
 * GET /logout/ shows "you are logged out" (or a Log out button to a visitor still logged in).
 * POST /logout/ (CSRF-checked by the dispatcher) deletes the Usher session, clears the
 * cookie, and sends the browser to Keycloak's end-session endpoint with id_token_hint,
 * post_logout_redirect_uri = LOGOUT_REDIRECT_URL and client_id (or straight to
 * LOGOUT_REDIRECT_URL when there is no ID token or Keycloak is unavailable).
 *
 * Without KEYCLOAK_SERVER_URL, KEYCLOAK_REALM, OIDC_RP_CLIENT_ID and OIDC_RP_CLIENT_SECRET the
 * login routes answer 503 "Login is not configured".
 */
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/messages.h"
#include "db/db.h"
#include "domain/entitlements.h"
#include "domain/provisioning.h"
#include "domain/session_store.h"
#include "domain/users.h"
#include "integrations/oidc.h"
#include "web/app.h"
#include "web/handlers.h"
#include "web/pages.h"
#include "web/response.h"
#include "web/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CODE_MAX 4096

static bool settings(struct web_request *r, struct oidc_settings *s)
{
    if (oidc_settings_init(s, r->app->cfg) == 0)
        return true;
    web_reply_error(r, 503, msg("login.not_configured"));
    return false;
}

int web_oidc_authenticate(struct web_request *r)
{
    struct oidc_settings s;
    if (!settings(r, &s))
        return 0;
    json_t *data = web_session_data(r);
    struct oidc_login_request req = {0};
    /* The pending login is kept in the session: a visitor without a row starts one here. */
    int rc = web_session_admit(r);
    if (rc == 0)
        rc = data ? oidc_login_start(&s, r->now, &req) : USHER_EDB;
    if (rc == 0) {
        oidc_pending_put(data, &req, web_query(r, "next"), r->now);
        web_session_changed(r);
        web_redirect(r, req.url);
    } else if (rc == USHER_EUPSTREAM) {
        log_warn("request_id=%s msg=\"login unavailable: identity provider unreachable\"",
                 r->request_id);
        web_reply_error(r, 503, msg("login.unavailable"));
        rc = 0;
    }
    oidc_login_request_cleanup(&req);
    oidc_settings_cleanup(&s);
    return rc;
}

/* A 400 page for a callback that is not accepted, and one log line saying why: why is a
 * "refusal.*" message id, the log's reason as it is and the customer's sentence through
 * the table. */
static void refuse(struct web_request *r, const char *why)
{
    log_warn("request_id=%s msg=\"login refused\" reason=\"%s\"", r->request_id, why);
    char *message = msg_format("login.refused", json_pack("{s:s}", "reason", msg(why)));
    web_reply_error_kind(r, 400, "login_failed", message);
    free(message);
}

static bool is_error_code(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || s[n] == '_') || n >= 64)
            return false;
    return n > 0;
}

static void refuse_provider_error(struct web_request *r, const char *error)
{
    char quoted[128];
    log_quote(quoted, sizeof quoted, error);
    log_warn("request_id=%s msg=\"login refused\" reason=\"provider error\" error=\"%s\"",
             r->request_id, quoted);
    char *message = msg_format("login.provider_error",
                               json_pack("{s:s}", "error", is_error_code(error) ? error : "error"));
    web_reply_error_kind(r, 400, "login_failed", message);
    free(message);
}

/* A subscriber's seats, groups and attributes are re-synced at each login (SPEC §6); the
 * worker does it, so the login never waits for Keycloak. */
static int request_sync_for_subscriber(struct web_request *r, int64_t user_id)
{
    struct user u;
    int rc = users_get(r->app->db, user_id, &u);
    if (rc != 0)
        return rc;
    if (entitlements_status_grants(u.subscription_status))
        rc = provisioning_request_sync(r->app->db, user_id, r->now);
    users_cleanup(&u);
    return rc;
}

/*
 * Called once the ID token is verified. Finds or creates the local user by
 * preferred_username and updates them from the claims (SPEC §6), keeps what logout needs in
 * the session under "auth" (the raw id_token for id_token_hint, the groups, login_at), sets
 * the session's user and rotates its id, so a cookie from before the login is never valid
 * after it.
 */
static int login_establish(struct web_request *r, const struct oidc_claims *c, const char *id_token)
{
    bool is_admin = oidc_claims_in_group(c, r->app->cfg->admin_group);
    struct user_login login = {c->sub,        c->preferred_username, c->email,
                               c->given_name, c->family_name,        is_admin};
    int64_t user_id = 0;
    bool created = false;
    int rc = users_upsert_from_login(r->app->db, &login, r->now, &user_id, &created);
    if (rc == 0)
        rc = request_sync_for_subscriber(r, user_id);
    if (rc != 0)
        return rc;
    json_t *data = web_session_data(r);
    oidc_pending_clear(data);
    json_t *groups = json_array();
    for (size_t i = 0; i < c->group_count; i++)
        json_array_append_new(groups, json_string(c->groups[i]));
    json_t *auth = json_object();
    json_object_set_new(auth, "sub", json_string(c->sub));
    json_object_set_new(auth, "groups", groups);
    json_object_set_new(auth, "is_admin", json_boolean(is_admin));
    json_object_set_new(auth, "id_token", json_string(id_token));
    json_object_set_new(auth, "login_at", json_integer(r->now));
    json_object_set_new(data, "auth", auth);
    r->session->user_id = user_id;
    web_session_changed(r);
    log_info("request_id=%s msg=\"login\" user_id=%lld created=%s", r->request_id,
             (long long)user_id, created ? "true" : "false");
    return web_session_rotate(r);
}

int web_oidc_callback(struct web_request *r)
{
    struct oidc_settings s;
    if (!settings(r, &s))
        return 0;
    struct oidc_pending pending = {0};
    struct oidc_claims claims = {0};
    char *id_token = NULL;
    const char *why = NULL;
    int rc = 0;
    json_t *data = web_session_data(r);
    if (!data || oidc_pending_take(data, web_query(r, "state"), r->now, &pending) != 0) {
        refuse(r, MSG_ID("refusal.unknown_state"));
        goto out;
    }
    web_session_changed(r); /* the state is used up whatever happens below */
    const char *error = web_query(r, "error");
    const char *iss = web_query(r, "iss");
    const char *code = web_query(r, "code");
    if (error) {
        refuse_provider_error(r, error);
    } else if (iss && strcmp(iss, s.issuer)) { /* RFC 9207: a mix-up with another issuer */
        refuse(r, MSG_ID("refusal.other_provider"));
    } else if (!code || !*code || strlen(code) > CODE_MAX) {
        refuse(r, MSG_ID("refusal.no_code"));
    } else {
        rc = oidc_login_finish(&s, code, pending.verifier, pending.nonce, r->now, &claims,
                               &id_token, &why);
        if (rc == USHER_EUPSTREAM) {
            log_warn("request_id=%s msg=\"login failed\" reason=\"%s\"", r->request_id, why);
            web_reply_error(r, 502, msg("login.provider_unreachable"));
            rc = 0;
        } else if (rc != 0) {
            refuse(r, why);
            rc = 0;
        } else if ((rc = login_establish(r, &claims, id_token)) == 0) {
            web_redirect(r, pending.next);
        }
    }
out:
    free(id_token);
    oidc_claims_cleanup(&claims);
    oidc_pending_cleanup(&pending);
    oidc_settings_cleanup(&s);
    return rc;
}

/* Deletes the request's session from the database and forgets it for this request. */
static int end_session(struct web_request *r)
{
    if (!r->session)
        return 0;
    int rc = 0;
    if (r->session->stored) {
        struct db_conn *conn = NULL;
        rc = db_acquire(r->app->db, DB_WAIT_MS, &conn);
        if (rc == 0)
            rc = session_delete(conn, r->session);
        db_release(conn);
    }
    if (rc != 0)
        return rc;
    session_free(r->session);
    r->session = NULL;
    free(r->new_cookie);
    r->new_cookie = NULL;
    return 0;
}

/* GET /logout/: where the identity provider sends the browser after logging out (the default
 * LOGOUT_REDIRECT_URL), or a bookmarked link: it confirms the logout, or offers the button
 * when the visitor is still logged in. It never logs out by itself: no state changes on GET. */
static int logout_page(struct web_request *r)
{
    json_t *ctx = web_page_context(r, msg("title.log_out"));
    json_object_set_new(ctx, "logged_in", json_boolean(r->session && r->session->user_id));
    web_reply_page(r, 200, "logout", ctx);
    json_decref(ctx);
    return 0;
}

int web_logout(struct web_request *r)
{
    if (!strcmp(r->method, "GET") || !strcmp(r->method, "HEAD"))
        return logout_page(r);
    const struct usher_config *cfg = r->app->cfg;
    json_t *auth = json_object_get(web_session_data(r), "auth");
    char *id_token = xstrdup(json_string_value(json_object_get(auth, "id_token")));
    int rc = end_session(r);
    if (rc != 0) {
        free(id_token);
        return rc;
    }
    char *cookie = xasprintf("%s=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax%s",
                             web_session_cookie_name(r), cfg->debug ? "" : "; Secure");
    web_set_header(r, "Set-Cookie", cookie);
    free(cookie);

    char *target = NULL;
    struct oidc_settings s;
    if (id_token && oidc_settings_init(&s, cfg) == 0) {
        if (oidc_logout_url(&s, id_token, cfg->logout_redirect_url, r->now, &target) != 0)
            log_warn("request_id=%s msg=\"logout: no end-session endpoint, local logout "
                     "only\"",
                     r->request_id);
        oidc_settings_cleanup(&s);
    }
    web_redirect(r, target ? target : cfg->logout_redirect_url);
    free(target);
    free(id_token);
    return 0;
}
