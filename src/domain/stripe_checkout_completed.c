/*
 * stripe_checkout_completed.c — checkout.session.completed (SPEC §4): the paid signup (or
 * re-subscription) becomes a Keycloak account, a local user with its subscription and items,
 * a password-setup email for a new account, and a provisioning sync.
 *
 * The session is re-read from Stripe with its subscription and customer expanded: the event's
 * snapshot may be older than the subscription, and the expanded objects carry the email and
 * the real status. The Keycloak account is found by email before one is created, and a 409
 * from a concurrent create finds it again, so a re-run never makes a second account. Whether
 * the account is new is decided from its creation time (after the checkout session began),
 * not from who created it, so a re-run after a crash between the create and the commit still
 * sends the password-setup email — once, by its dedup key.
 *
 * A returning customer whose old subscription is still past due (a recovery after a failed
 * payment) would be billed twice: that subscription is canceled in Stripe once the new one
 * is linked (the cancel_stale_subscription task, queued in the same transaction).
 */
#include "core/config.h"
#include "core/crypto.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "db/db.h"
#include "domain/identity_keycloak.h"
#include "domain/stripe_processing_internal.h"
#include "domain/validate.h"
#include "integrations/keycloak_admin.h"
#include "integrations/stripe_client.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NAME_MAX_LEN 150

struct signup {
    char *email; /* normalized */
    char *username; /* wanted, SPEC §3 rules */
    char *first_name;
    char *last_name;
    int64_t session_created;
    const char *customer_id;
    const json_t *subscription; /* borrowed from the session or `fetched` */
    json_t *fetched;
};

struct account {
    char *id;
    char *username;
    bool is_new;
};

static void signup_cleanup(struct signup *s)
{
    free(s->email);
    free(s->username);
    free(s->first_name);
    free(s->last_name);
    json_decref(s->fetched);
}

static void account_cleanup(struct account *a)
{
    free(a->id);
    free(a->username);
}

/* ---- names -------------------------------------------------------------------------------- */

static bool username_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
           ch == '-';
}

static char *lowered(const char *s, size_t n)
{
    char *out = xstrndup(s, n);
    for (char *p = out; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return out;
}

/*
 * The metadata's username when it follows the rules; otherwise one made from the email's
 * local part (characters outside the rules dropped), or — when too little is left — a stable
 * name derived from the email, so a re-run picks the same one.
 */
static char *choose_username(const char *wanted, const char *email)
{
    char *u = NULL;
    const char *why = NULL;
    if (wanted && *wanted && validate_username(wanted, &u, &why) == 0)
        return u;
    const char *at = strchr(email, '@');
    char *local = lowered(email, at ? (size_t)(at - email) : strlen(email));
    char *out = xcalloc(1, USERNAME_MAX_LEN + 1);
    size_t n = 0;
    for (const char *p = local; *p && n < USERNAME_MAX_LEN; p++) {
        if (!username_char(*p) || (n == 0 && !isalnum((unsigned char)*p)))
            continue;
        out[n++] = *p;
    }
    free(local);
    if (n < USERNAME_MIN_LEN) {
        char hex[CRYPTO_SHA256_HEX_LEN + 1];
        crypto_sha256_hex(email, hex);
        snprintf(out, USERNAME_MAX_LEN + 1, "user-%.10s", hex);
    }
    return out;
}

static char *clean_name(const char *in)
{
    char *out = NULL;
    const char *error = NULL;
    if (in && validate_name(in, NAME_MAX_LEN, &out, &error) == 0)
        return out;
    return xstrdup("");
}

/* First and last name: the metadata Usher's checkout sets, else the name Stripe collected. */
static void choose_names(const json_t *session, struct signup *s)
{
    const json_t *md = json_object_get(session, "metadata");
    s->first_name = clean_name(stripe_str(md, "first_name"));
    s->last_name = clean_name(stripe_str(md, "last_name"));
    if (*s->first_name || *s->last_name)
        return;
    char *full = clean_name(stripe_str(json_object_get(session, "customer_details"), "name"));
    char *space = strchr(full, ' ');
    free(s->first_name);
    free(s->last_name);
    s->first_name = space ? xstrndup(full, (size_t)(space - full)) : xstrdup(full);
    s->last_name = xstrdup(space ? space + 1 : "");
    free(full);
}

/* ---- reading the session ------------------------------------------------------------------ */

/* 0 with s filled, 0 with the outcome ignored (nothing to do), or an error. */
static int read_session(struct sp_ctx *c, struct signup *s, json_t **session_out)
{
    const char *session_id = stripe_str(c->ev.object, "id");
    if (!session_id || !stripe_id_valid(session_id)) {
        sp_ignore(c, "checkout session without a valid id");
        return 0;
    }
    struct stripe_error err = {0};
    json_t *session = NULL;
    int rc = stripe_checkout_session_retrieve(c->cfg, session_id, &session, &err);
    if (rc != 0)
        return sp_fail(c, rc, "Stripe: reading checkout session %s: %s (HTTP %ld)", session_id,
                       usher_strerror(rc), err.http.status);
    *session_out = session;
    const char *mode = stripe_str(session, "mode");
    if (!mode || strcmp(mode, "subscription")) {
        sp_ignore(c, "checkout session mode is not subscription");
        return 0;
    }
    const char *email = stripe_session_email(session);
    const char *why = NULL;
    if (!email || validate_email(email, &s->email, &why) != 0) {
        log_warn("msg=\"checkout session without a usable email: nothing to provision\" "
                 "event_id=%s session=%s",
                 c->ev.id, session_id);
        sp_ignore(c, "checkout session without a usable email");
        return 0;
    }
    const json_t *sub = json_object_get(session, "subscription");
    const char *sub_id = stripe_expandable_id(sub);
    if (!sub_id || !stripe_id_valid(sub_id)) {
        sp_ignore(c, "checkout session without a subscription");
        return 0;
    }
    if (json_is_object(sub) && sp_subscription_status(sub)) {
        s->subscription = sub;
    } else {
        rc = sp_fetch_subscription(c, sub_id, &s->fetched);
        if (rc != 0)
            return rc;
        s->subscription = s->fetched;
    }
    s->customer_id = stripe_expandable_id(json_object_get(session, "customer"));
    if (s->customer_id && !stripe_id_valid(s->customer_id))
        s->customer_id = NULL;
    const json_t *md = json_object_get(session, "metadata");
    s->username = choose_username(stripe_str(md, "username"), s->email);
    choose_names(session, s);
    const json_t *created = json_object_get(session, "created");
    s->session_created = json_is_integer(created) ? json_integer_value(created) : c->ev.created;
    c->res->outcome = STRIPE_OUTCOME_PROCESSED;
    return 0;
}

/* ---- Keycloak ----------------------------------------------------------------------------- */

static int take_found(const json_t *user, const struct signup *s, struct account *a)
{
    const char *id = json_string_value(json_object_get(user, "id"));
    const char *username = json_string_value(json_object_get(user, "username"));
    if (!id || !*id || !username || !*username)
        return USHER_EUPSTREAM;
    a->id = xstrdup(id);
    a->username = lowered(username, strlen(username));
    /* Keycloak's createdTimestamp is in milliseconds. An account made after the checkout
     * session began was made for this signup (by this event, perhaps in a crashed run). */
    const json_t *ts = json_object_get(user, "createdTimestamp");
    a->is_new = json_is_integer(ts) && json_integer_value(ts) / 1000 >= s->session_created;
    return 0;
}

/* The account by username, when it is this person's (same email, or none yet). */
static int find_by_username(struct kc_admin *kc, const struct signup *s, struct account *a,
                            struct kc_error *err)
{
    json_t *user = NULL;
    int rc = kc_user_find_by_username(kc, s->username, &user, err);
    if (rc == 0) {
        const char *email = json_string_value(json_object_get(user, "email"));
        rc = (!email || !*email || !strcasecmp(email, s->email)) ? take_found(user, s, a)
                                                                 : USHER_ECONFLICT;
    }
    json_decref(user);
    return rc;
}

static int keycloak_account(struct sp_ctx *c, const struct signup *s, struct account *a)
{
    struct kc_admin *kc = NULL;
    int rc = identity_keycloak_admin(c->cfg, &kc);
    if (rc != 0)
        return sp_fail(c, rc, "Keycloak Admin API not configured");
    struct kc_error err = {0};
    json_t *user = NULL;
    rc = kc_user_find_by_email(kc, s->email, &user, &err);
    if (rc == 0) {
        rc = take_found(user, s, a);
        json_decref(user);
        return rc == 0 ? 0 : sp_fail(c, rc, "Keycloak: malformed user representation");
    }
    if (rc != USHER_ENOTFOUND)
        return sp_fail(c, rc, "Keycloak: finding the account by email: %s (HTTP %ld)",
                       usher_strerror(rc), err.http.status);
    struct kc_new_user nu = {.username = s->username,
                             .email = s->email,
                             .first_name = s->first_name,
                             .last_name = s->last_name,
                             .enabled = true,
                             .email_verified = true};
    rc = kc_user_create(kc, &nu, &a->id, &err);
    if (rc == 0) {
        a->username = xstrdup(s->username);
        a->is_new = true;
        log_info("msg=\"keycloak account created\" event_id=%s", c->ev.id);
        return 0;
    }
    if (rc != USHER_ECONFLICT)
        return sp_fail(c, rc, "Keycloak: creating the account: %s (HTTP %ld)", usher_strerror(rc),
                       err.http.status);
    /* 409: a concurrent run created it, or the username belongs to an account without (or
     * with this) email. */
    rc = kc_user_find_by_email(kc, s->email, &user, &err);
    if (rc == 0) {
        rc = take_found(user, s, a);
        json_decref(user);
        return rc == 0 ? 0 : sp_fail(c, rc, "Keycloak: malformed user representation");
    }
    rc = find_by_username(kc, s, a, &err);
    if (rc == USHER_ECONFLICT || rc == USHER_ENOTFOUND)
        return sp_fail(c, USHER_ECONFLICT,
                       "Keycloak: the username is taken by another account (409 on create)");
    return rc == 0 ? 0
                   : sp_fail(c, rc, "Keycloak: finding the account after a 409: %s",
                             usher_strerror(rc));
}

/* ---- the local user ----------------------------------------------------------------------- */

static int find_id(struct db_conn *conn, const char *sql, const char *key, int64_t *id)
{
    const struct db_param p[] = {DB_TEXT(key)};
    return db_query_id(conn, sql, p, 1, id);
}

static int insert_user(struct sp_ctx *c, struct db_conn *conn, const struct signup *s,
                       const struct account *a, int64_t *id)
{
    const struct db_param p[] = {DB_TEXT(a->username),  DB_TEXT(s->email), DB_TEXT(s->first_name),
                                 DB_TEXT(s->last_name), DB_TEXT(a->id),    DB_INT(c->now)};
    struct db_result *res = NULL;
    int rc = db_query(conn,
                      "INSERT INTO users (username, email, first_name, last_name, keycloak_id, "
                      "date_joined) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                      p, DB_NPARAMS(p), &res);
    if (rc == 0)
        *id = db_result_int(res, 0, 0);
    db_result_free(res);
    return rc;
}

/* A returning user: linked again, and their cancellation (with the items kept for it) or
 * payment block is over. */
static int update_user(struct db_conn *conn, const struct signup *s, const struct account *a,
                       int64_t id)
{
    const struct db_param u[] = {DB_TEXT(a->id), DB_INT(id)};
    int rc =
        db_exec(conn, "UPDATE users SET keycloak_id = NULL WHERE keycloak_id = $1 AND id <> $2", u,
                2, NULL);
    const struct db_param p[] = {DB_TEXT(s->email), DB_TEXT(s->first_name), DB_TEXT(s->last_name),
                                 DB_TEXT(a->id), DB_INT(id)};
    if (rc == 0)
        rc = db_exec(conn,
                     "UPDATE users SET email = $1, "
                     "first_name = CASE WHEN $2 = '' THEN first_name ELSE $2 END, "
                     "last_name = CASE WHEN $3 = '' THEN last_name ELSE $3 END, "
                     "keycloak_id = $4, canceled_at = NULL, access_expires_at = NULL, "
                     "previous_items = NULL, payment_disabled = false WHERE id = $5",
                     p, DB_NPARAMS(p), NULL);
    return rc;
}

/* Queues the cancellation of the user's previous subscription when Stripe would still try to
 * collect it and the new one replaces it. */
static int supersede(struct sp_ctx *c, struct db_conn *conn, int64_t user_id, const char *sub_id)
{
    const struct db_param p[] = {DB_INT(user_id), DB_TEXT(sub_id)};
    struct db_result *res = NULL;
    int rc = db_query(conn,
                      "SELECT stripe_subscription_id FROM users WHERE id = $1 "
                      "AND stripe_subscription_id IS NOT NULL AND stripe_subscription_id <> $2 "
                      "AND subscription_status IN ('past_due', 'unpaid')",
                      p, 2, &res);
    if (rc == 0 && db_result_rows(res) > 0) {
        const char *old = db_result_text(res, 0, 0);
        rc = sp_enqueue(
            conn, "cancel_stale_subscription",
            json_pack("{s:s, s:I}", "subscription_id", old, "user_id", (json_int_t)user_id),
            "supersede:", old, c->now);
        if (rc == 0)
            log_info("msg=\"previous subscription to be canceled\" event_id=%s user_id=%lld",
                     c->ev.id, (long long)user_id);
    }
    db_result_free(res);
    return rc;
}

static int apply_local(struct sp_ctx *c, struct db_conn *conn, const struct signup *s,
                       const struct account *a, const char *sub_id, int64_t *user_id)
{
    struct sp_user u;
    int rc = sp_user_by_subscription(conn, sub_id, &u);
    if (rc != 0 || (u.id && sp_stale(c, &u)))
        return rc;
    int64_t id = u.id;
    if (!id)
        rc = find_id(conn, "SELECT id FROM users WHERE keycloak_id = $1", a->id, &id);
    if (rc == 0 && !id)
        rc = find_id(conn, "SELECT id FROM users WHERE username = $1", a->username, &id);
    if (rc == 0 && id) {
        /* The same staleness rule for a user found by account, about another subscription. */
        const struct db_param p[] = {DB_INT(id)};
        struct db_result *res = NULL;
        rc = db_query(conn, "SELECT stripe_state_at FROM users WHERE id = $1", p, 1, &res);
        struct sp_user found = {.id = id};
        found.state_at = rc == 0 && db_result_rows(res) ? db_result_int(res, 0, 0) : 0;
        db_result_free(res);
        if (rc != 0 || sp_stale(c, &found))
            return rc;
    }
    if (rc == 0 && id)
        rc = supersede(c, conn, id, sub_id);
    if (rc == 0)
        rc = id ? update_user(conn, s, a, id) : insert_user(c, conn, s, a, &id);
    if (rc == 0)
        rc = sp_apply_subscription(conn, id, s->subscription);
    if (rc == 0 && s->customer_id) {
        const struct db_param p[] = {DB_TEXT(s->customer_id), DB_INT(id)};
        rc = db_exec(conn, "UPDATE users SET stripe_customer_id = $1 WHERE id = $2", p, 2, NULL);
    }
    if (rc == 0)
        rc = sp_touch_state(c, conn, id);
    if (rc == 0 && a->is_new)
        rc = sp_enqueue(conn, "send_keycloak_password_reset_email",
                        json_pack("{s:s}", "keycloak_id", a->id), "pwsetup:", a->id, c->now);
    if (rc == 0)
        rc = sp_request_sync(c, conn, id);
    if (rc == 0)
        rc = sp_replay_parked(c, conn, sub_id);
    *user_id = id;
    return rc;
}

int sp_checkout_completed(struct sp_ctx *c)
{
    struct signup s = {0};
    struct account a = {0};
    json_t *session = NULL;
    int rc = read_session(c, &s, &session);
    if (rc == 0 && c->res->outcome == STRIPE_OUTCOME_PROCESSED)
        rc = keycloak_account(c, &s, &a);
    int64_t user_id = 0;
    if (rc == 0 && c->res->outcome == STRIPE_OUTCOME_PROCESSED) {
        const char *sub_id = stripe_str(s.subscription, "id");
        struct db_conn *conn = NULL;
        rc = sp_begin(c, sub_id, &conn);
        if (rc == 0) {
            rc = apply_local(c, conn, &s, &a, sub_id, &user_id);
            rc = sp_finish(conn, rc);
            if (rc != 0 && !c->res->note[0])
                sp_fail(c, rc, "database: %s", usher_strerror(rc));
        }
    }
    if (rc == 0 && c->res->outcome == STRIPE_OUTCOME_PROCESSED && user_id) {
        rc = sp_converge_access(c, user_id);
        if (rc == 0)
            log_info("msg=\"checkout applied\" event_id=%s user_id=%lld new_account=%s", c->ev.id,
                     (long long)user_id, a.is_new ? "true" : "false");
    }
    account_cleanup(&a);
    signup_cleanup(&s);
    json_decref(session);
    return rc;
}
