/*
 * subscription_state.c — the shared steps of Stripe event processing (see
 * stripe_processing_internal.h): the per-subscription transaction, ordering and parking, a
 * Stripe subscription applied to a user (status + items), and Keycloak's enabled flag brought
 * in line with the committed state.
 */
#include "domain/stripe_processing_internal.h"

#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "db/db.h"
#include "db/task_store.h"
#include "domain/identity_keycloak.h"
#include "domain/session_store.h"
#include "integrations/keycloak_admin.h"
#include "integrations/stripe_client.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATUS_MAX 32
/* How often the enabled flag is re-applied while other events keep changing the state. */
#define CONVERGE_ROUNDS 5

void sp_ignore(struct sp_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->res->note, sizeof c->res->note, fmt, ap);
    va_end(ap);
    c->res->outcome = STRIPE_OUTCOME_IGNORED;
}

int sp_fail(struct sp_ctx *c, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->res->note, sizeof c->res->note, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- transaction -------------------------------------------------------------------------- */

int sp_begin(struct sp_ctx *c, const char *subscription_id, struct db_conn **conn)
{
    *conn = NULL;
    int rc = db_acquire(c->pool, DB_WAIT_MS, conn);
    if (rc == 0)
        rc = db_begin(*conn, DB_TX_WRITE);
    /* SQLite's write transaction already excludes every other writer; PostgreSQL needs a
     * lock that two events of one subscription (or a checkout and an early event) share. */
    if (rc == 0 && subscription_id && db_conn_dialect(*conn) == DB_POSTGRES) {
        const struct db_param p[] = {DB_TEXT(subscription_id)};
        struct db_result *res = NULL;
        rc = db_query(*conn, "SELECT 1 FROM (SELECT pg_advisory_xact_lock(hashtext($1))) AS l", p,
                      1, &res);
        db_result_free(res);
    }
    if (rc != 0) {
        db_release(*conn);
        *conn = NULL;
        return sp_fail(c, rc, "database: %s", usher_strerror(rc));
    }
    return 0;
}

int sp_finish(struct db_conn *conn, int rc)
{
    if (rc == 0)
        rc = db_commit(conn);
    db_release(conn); /* rolls back what is still open */
    return rc;
}

/* ---- users and ordering ------------------------------------------------------------------- */

int sp_user_by_subscription(struct db_conn *conn, const char *subscription_id, struct sp_user *u)
{
    memset(u, 0, sizeof *u);
    const struct db_param p[] = {DB_TEXT(subscription_id)};
    struct db_result *res = NULL;
    int rc = db_query(conn,
                      "SELECT id, stripe_state_at, subscription_status, payment_disabled "
                      "FROM users WHERE stripe_subscription_id = $1 ORDER BY id LIMIT 1",
                      p, 1, &res);
    if (rc == 0 && db_result_rows(res) > 0) {
        u->id = db_result_int(res, 0, 0);
        u->state_at = db_result_int(res, 0, 1);
        const char *status = db_result_text(res, 0, 2);
        snprintf(u->status, sizeof u->status, "%s", status ? status : "");
        u->payment_disabled = db_result_bool(res, 0, 3);
    }
    db_result_free(res);
    return rc;
}

bool sp_stale(struct sp_ctx *c, const struct sp_user *u)
{
    if (c->ev.created >= u->state_at)
        return false;
    sp_ignore(c, "older than the state already applied (event created %lld, user %lld at %lld)",
              (long long)c->ev.created, (long long)u->id, (long long)u->state_at);
    return true;
}

static char *park_note(const char *subscription_id)
{
    return xasprintf("parked: no user has subscription %s yet", subscription_id);
}

int sp_park(struct sp_ctx *c, struct db_conn *conn, const char *subscription_id)
{
    char *note = park_note(subscription_id);
    sp_ignore(c, "%s", note);
    c->recorded = true;
    const struct db_param p[] = {DB_TEXT(c->ev.id), DB_TEXT(note), DB_INT(c->now)};
    int rc = db_exec(conn,
                     "UPDATE stripe_events SET status = 'ignored', last_error = $2, "
                     "processed_at = $3 WHERE event_id = $1",
                     p, DB_NPARAMS(p), NULL);
    free(note);
    return rc;
}

int sp_replay_parked(struct sp_ctx *c, struct db_conn *conn, const char *subscription_id)
{
    char *note = park_note(subscription_id);
    const struct db_param p[] = {DB_TEXT(note)};
    struct db_result *res = NULL;
    int rc = db_query(conn,
                      "UPDATE stripe_events SET status = 'pending', last_error = NULL, "
                      "processed_at = NULL WHERE status = 'ignored' AND last_error = $1 "
                      "RETURNING event_id",
                      p, 1, &res);
    free(note);
    for (int r = 0; rc == 0 && r < db_result_rows(res); r++) {
        const char *id = db_result_text(res, r, 0);
        /* One replay per parked event and linking checkout: a re-run enqueues nothing new. */
        char *key = xasprintf("%s:after:%s", id, c->ev.id);
        rc = sp_enqueue(conn, "process_stripe_event", json_pack("{s:s}", "event_id", id),
                        "process_stripe_event:", key, c->now);
        free(key);
        if (rc == 0)
            log_info("msg=\"parked stripe event queued again\" event_id=%s subscription=%s", id,
                     subscription_id);
    }
    db_result_free(res);
    return rc;
}

int sp_touch_state(struct sp_ctx *c, struct db_conn *conn, int64_t user_id)
{
    const struct db_param p[] = {DB_INT(c->ev.created), DB_INT(user_id)};
    return db_exec(conn,
                   "UPDATE users SET stripe_state_at = CASE WHEN stripe_state_at > $1 "
                   "THEN stripe_state_at ELSE $1 END WHERE id = $2",
                   p, DB_NPARAMS(p), NULL);
}

/* ---- a subscription applied to a user ----------------------------------------------------- */

const char *sp_subscription_status(const json_t *subscription)
{
    const char *s = stripe_str(subscription, "status");
    if (!s || !*s || strlen(s) > STATUS_MAX)
        return NULL;
    for (const char *p = s; *p; p++)
        if (!(*p >= 'a' && *p <= 'z') && *p != '_')
            return NULL;
    return s;
}

/* The catalog's product for a price: *product_id 0 when the price is unknown. */
static int price_product(struct db_conn *conn, const struct stripe_sub_item *it,
                         int64_t *product_id)
{
    const struct db_param p[] = {DB_TEXT(it->price_id)};
    struct db_result *res = NULL;
    int rc = db_query(conn,
                      "SELECT pp.product_id, p.stripe_product_id, p.slug FROM product_prices pp "
                      "JOIN products p ON p.id = pp.product_id WHERE pp.stripe_price_id = $1",
                      p, 1, &res);
    *product_id = 0;
    if (rc == 0 && db_result_rows(res) > 0) {
        *product_id = db_result_int(res, 0, 0);
        const char *expected = db_result_text(res, 0, 1);
        if (expected && *expected && it->product_id && strcmp(expected, it->product_id)) {
            char price[96], got[96], want[96];
            log_quote(price, sizeof price, it->price_id);
            log_quote(got, sizeof got, it->product_id);
            log_quote(want, sizeof want, expected);
            log_warn("msg=\"stripe product mismatch: the price belongs to another Stripe "
                     "product than the catalog's\" price=\"%s\" stripe_product=\"%s\" "
                     "catalog_product=\"%s\"",
                     price, got, want);
        }
    } else if (rc == 0) {
        char price[96];
        log_quote(price, sizeof price, it->price_id);
        log_warn("msg=\"subscription item with a price the catalog does not know\" price=\"%s\"",
                 price);
    }
    db_result_free(res);
    return rc;
}

static int insert_item(struct db_conn *conn, int64_t user_id, const struct stripe_sub_item *it)
{
    int64_t product_id = 0;
    int rc = price_product(conn, it, &product_id);
    if (rc != 0)
        return rc;
    const struct db_param p[] = {
        DB_INT(user_id),
        product_id ? DB_INT(product_id) : DB_NULL,
        DB_TEXT(it->price_id),
        DB_TEXT_OR_NULL(it->id),
        DB_INT(it->quantity >= 1 ? it->quantity : 1),
        it->current_period_end ? DB_INT(it->current_period_end) : DB_NULL,
    };
    /* Stripe refuses one price twice in a subscription; should it happen, count both. */
    return db_exec(conn,
                   "INSERT INTO subscription_items (user_id, product_id, stripe_price_id, "
                   "stripe_item_id, quantity, current_period_end) VALUES ($1, $2, $3, $4, $5, $6) "
                   "ON CONFLICT (user_id, stripe_price_id) DO UPDATE SET "
                   "quantity = subscription_items.quantity + excluded.quantity",
                   p, DB_NPARAMS(p), NULL);
}

int sp_apply_subscription(struct db_conn *conn, int64_t user_id, const json_t *subscription)
{
    const char *status = sp_subscription_status(subscription);
    const char *id = stripe_str(subscription, "id");
    if (!status || !id || !stripe_id_valid(id))
        return USHER_EINVAL;
    const char *customer = stripe_expandable_id(json_object_get(subscription, "customer"));
    if (customer && !stripe_id_valid(customer))
        customer = NULL;
    const struct db_param p[] = {DB_TEXT(status), DB_TEXT(id), DB_TEXT_OR_NULL(customer),
                                 DB_INT(user_id)};
    int rc = db_exec(conn,
                     "UPDATE users SET subscription_status = $1, stripe_subscription_id = $2, "
                     "stripe_customer_id = COALESCE($3, stripe_customer_id) WHERE id = $4",
                     p, DB_NPARAMS(p), NULL);
    const struct db_param u[] = {DB_INT(user_id)};
    if (rc == 0)
        rc = db_exec(conn, "DELETE FROM subscription_items WHERE user_id = $1", u, 1, NULL);
    size_t n = stripe_subscription_item_count(subscription);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct stripe_sub_item it;
        if (stripe_subscription_item(subscription, i, &it) != 0 || !stripe_id_valid(it.price_id)) {
            log_warn("msg=\"malformed subscription item skipped\" index=%zu", i);
            continue;
        }
        rc = insert_item(conn, user_id, &it);
    }
    return rc;
}

char *sp_items_json(const json_t *subscription)
{
    json_t *items = json_array();
    size_t n = stripe_subscription_item_count(subscription);
    for (size_t i = 0; i < n; i++) {
        struct stripe_sub_item it;
        if (stripe_subscription_item(subscription, i, &it) == 0 && stripe_id_valid(it.price_id))
            json_array_append_new(items,
                                  json_pack("{s:s, s:I}", "price", it.price_id, "quantity",
                                            (json_int_t)(it.quantity >= 1 ? it.quantity : 1)));
    }
    char *text = json_dumps(items, JSON_COMPACT);
    json_decref(items);
    char *out = xstrdup(text ? text : "[]");
    free(text);
    return out;
}

int sp_enqueue(struct db_conn *conn, const char *name, json_t *args, const char *dedup_prefix,
               const char *dedup_key, int64_t now)
{
    if (!args)
        return USHER_EINVAL;
    char *key = xasprintf("%s%s", dedup_prefix, dedup_key);
    int rc = task_enqueue(conn, name, args, TASK_DEFAULT_MAX_ATTEMPTS, now, key, NULL);
    free(key);
    json_decref(args);
    return rc;
}

int sp_request_sync(struct sp_ctx *c, struct db_conn *conn, int64_t user_id)
{
    return sp_enqueue(conn, "sync_user_post_checkout",
                      json_pack("{s:I}", "user_id", (json_int_t)user_id), "sync:", c->ev.id,
                      c->now);
}

int sp_fetch_subscription(struct sp_ctx *c, const char *id, json_t **out)
{
    *out = NULL;
    struct stripe_error err = {0};
    int rc = stripe_subscription_retrieve(c->cfg, id, out, &err);
    if (rc != 0)
        return sp_fail(c, rc, "Stripe: reading subscription %s: %s (HTTP %ld)", id,
                       usher_strerror(rc), err.http.status);
    if (!sp_subscription_status(*out)) {
        json_decref(*out);
        *out = NULL;
        return sp_fail(c, USHER_EUPSTREAM, "Stripe: subscription %s without a valid status", id);
    }
    return 0;
}

/* ---- Keycloak's enabled flag -------------------------------------------------------------- */

enum access { ACCESS_LEAVE, ACCESS_ENABLE, ACCESS_DISABLE };

struct access_state {
    char *keycloak_id;
    char status[40];
    bool payment_disabled;
};

static int read_access(struct db_pool *pool, int64_t user_id, struct access_state *a)
{
    free(a->keycloak_id);
    memset(a, 0, sizeof *a);
    const struct db_param p[] = {DB_INT(user_id)};
    struct db_result *res = NULL;
    int rc = db_pool_query(pool,
                           "SELECT keycloak_id, subscription_status, payment_disabled FROM users "
                           "WHERE id = $1",
                           p, 1, &res);
    if (rc == 0 && db_result_rows(res) == 0)
        rc = USHER_ENOTFOUND;
    if (rc == 0) {
        const char *kc = db_result_text(res, 0, 0);
        a->keycloak_id = kc && *kc ? xstrdup(kc) : NULL;
        const char *status = db_result_text(res, 0, 1);
        snprintf(a->status, sizeof a->status, "%s", status ? status : "");
        a->payment_disabled = db_result_bool(res, 0, 2);
    }
    db_result_free(res);
    return rc;
}

static bool access_equal(const struct access_state *a, const struct access_state *b)
{
    bool same_kc = (!a->keycloak_id && !b->keycloak_id) ||
                   (a->keycloak_id && b->keycloak_id && !strcmp(a->keycloak_id, b->keycloak_id));
    return same_kc && !strcmp(a->status, b->status) && a->payment_disabled == b->payment_disabled;
}

static enum access wanted_access(const struct access_state *a)
{
    if (!strcmp(a->status, "canceled") || !strcmp(a->status, "expired") || a->payment_disabled)
        return ACCESS_DISABLE;
    if (!strcmp(a->status, "active") || !strcmp(a->status, "trialing"))
        return ACCESS_ENABLE;
    return ACCESS_LEAVE;
}

static int delete_sessions(struct db_pool *pool, int64_t user_id)
{
    struct db_conn *conn = NULL;
    int rc = db_acquire(pool, DB_WAIT_MS, &conn);
    if (rc == 0)
        rc = session_delete_for_user(conn, user_id, NULL);
    db_release(conn);
    return rc;
}

static int apply_access(struct sp_ctx *c, int64_t user_id, const struct access_state *a)
{
    enum access want = wanted_access(a);
    if (want == ACCESS_LEAVE || !a->keycloak_id)
        return 0;
    struct kc_admin *kc = NULL;
    int rc = identity_keycloak_admin(c->cfg, &kc);
    if (rc != 0)
        return sp_fail(c, rc, "Keycloak Admin API not configured");
    struct kc_error err = {0};
    rc = kc_user_set_enabled(kc, a->keycloak_id, want == ACCESS_ENABLE, &err);
    if (rc == 0 && want == ACCESS_DISABLE)
        rc = kc_user_logout(kc, a->keycloak_id, &err);
    if (rc == USHER_ENOTFOUND) {
        /* Deleted in Keycloak (by an operator, or the final expiry): nothing left to switch;
         * retrying would not bring it back. */
        log_warn("msg=\"keycloak user of a stripe event is gone\" user_id=%lld",
                 (long long)user_id);
        rc = 0;
    }
    if (rc != 0)
        return sp_fail(c, rc, "Keycloak: %s user %lld: %s (HTTP %ld)",
                       want == ACCESS_ENABLE ? "enabling" : "disabling", (long long)user_id,
                       usher_strerror(rc), err.http.status);
    /* A login that slipped in between the commit and the disable must not outlive it. */
    if (want == ACCESS_DISABLE && (rc = delete_sessions(c->pool, user_id)) != 0)
        return sp_fail(c, rc, "database: %s", usher_strerror(rc));
    log_info("msg=\"keycloak access %s\" user_id=%lld event_id=%s",
             want == ACCESS_ENABLE ? "enabled" : "disabled", (long long)user_id, c->ev.id);
    return 0;
}

int sp_converge_access(struct sp_ctx *c, int64_t user_id)
{
    struct access_state before = {0}, after = {0};
    int rc = read_access(c->pool, user_id, &before);
    for (int round = 0; rc == 0 && round < CONVERGE_ROUNDS; round++) {
        rc = apply_access(c, user_id, &before);
        if (rc == 0)
            rc = read_access(c->pool, user_id, &after);
        if (rc != 0 || access_equal(&before, &after))
            break;
        struct access_state tmp = before;
        before = after;
        after = tmp;
    }
    if (rc != 0 && !c->res->note[0])
        sp_fail(c, rc, "database: %s", usher_strerror(rc));
    free(before.keycloak_id);
    free(after.keycloak_id);
    return rc;
}

/* ---- the common event shape --------------------------------------------------------------- */

static bool wants_fetch(enum sp_fetch fetch, const struct sp_user *u)
{
    return u->id && (fetch == SP_FETCH_ALWAYS ||
                     (fetch == SP_FETCH_IF_PAYMENT_DISABLED && u->payment_disabled));
}

/* The user as seen without the lock: only to decide whether Stripe is worth asking. */
static int peek_user(struct sp_ctx *c, const char *subscription_id, struct sp_user *u)
{
    struct db_conn *conn = NULL;
    int rc = db_acquire(c->pool, DB_WAIT_MS, &conn);
    if (rc == 0)
        rc = sp_user_by_subscription(conn, subscription_id, u);
    db_release(conn);
    return rc == 0 ? 0 : sp_fail(c, rc, "database: %s", usher_strerror(rc));
}

int sp_for_subscription(struct sp_ctx *c, const char *subscription_id, enum sp_fetch fetch,
                        sp_apply_fn fn, int64_t *user_id)
{
    *user_id = 0;
    c->res->outcome = STRIPE_OUTCOME_PROCESSED;
    json_t *sub = NULL;
    struct sp_user u;
    int rc = peek_user(c, subscription_id, &u);
    /* A user linked between the peek and the lock needs the re-read too: one more round. */
    for (int round = 0; rc == 0 && round < 3; round++) {
        if (!sub && wants_fetch(fetch, &u) &&
            (rc = sp_fetch_subscription(c, subscription_id, &sub)) != 0)
            break;
        struct db_conn *conn = NULL;
        if ((rc = sp_begin(c, subscription_id, &conn)) != 0)
            break;
        rc = sp_user_by_subscription(conn, subscription_id, &u);
        bool again = rc == 0 && !sub && wants_fetch(fetch, &u);
        if (rc == 0 && !again) {
            if (!u.id)
                rc = sp_park(c, conn, subscription_id);
            else if (!strcmp(u.status, "expired"))
                /* Closed for good (domain/expiry.h): a late event (Stripe ending an unpaid
                 * subscription, say) must not reopen a recovery window or send a mail. */
                sp_ignore(c, "the account of user %lld was closed for good at its final expiry",
                          (long long)u.id);
            else if (!sp_stale(c, &u)) {
                rc = fn(c, conn, &u, sub);
                if (rc == 0)
                    rc = sp_touch_state(c, conn, u.id);
                if (rc == 0)
                    *user_id = u.id;
            }
        }
        rc = sp_finish(conn, again ? USHER_ECONFLICT : rc);
        if (again && rc == USHER_ECONFLICT) {
            rc = 0;
            continue;
        }
        if (rc != 0 && !c->res->note[0])
            sp_fail(c, rc, "database: %s", usher_strerror(rc));
        break;
    }
    json_decref(sub);
    if (rc == 0 && !*user_id && c->res->outcome == STRIPE_OUTCOME_PROCESSED)
        return sp_fail(c, USHER_ECONFLICT, "subscription %s kept changing hands", subscription_id);
    return rc;
}
