/*
 * onboarding_progress.c — local-account facts for the checkout and the success page (see
 * onboarding_progress.h).
 */
#include "domain/onboarding_progress.h"

#include "core/err.h"
#include "core/messages.h"
#include "db/db.h"
#include "db/task_store.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

const char *onboarding_progress_name(enum onboarding_progress p)
{
    switch (p) {
    case ONBOARDING_ACCOUNT_CREATED: return "account_created";
    case ONBOARDING_WAITING_CAPACITY: return "waiting_capacity";
    case ONBOARDING_READY: return "ready";
    case ONBOARDING_PENDING: break;
    }
    return "pending";
}

const char *onboarding_progress_message(enum onboarding_progress p)
{
    switch (p) {
    case ONBOARDING_ACCOUNT_CREATED: return msg("progress.account_created");
    case ONBOARDING_WAITING_CAPACITY: return msg("progress.waiting_capacity");
    case ONBOARDING_READY: return msg("progress.ready");
    case ONBOARDING_PENDING: break;
    }
    return msg("progress.pending");
}

int onboarding_local_taken(struct db_pool *pool, const char *username, const char *email,
                           bool *username_taken, bool *email_taken)
{
    *username_taken = false;
    *email_taken = false;
    struct db_conn *conn = NULL;
    int rc = db_acquire(pool, DB_WAIT_MS, &conn);
    if (rc != 0)
        return rc;
    struct db_result *res = NULL;
    if (username) {
        const struct db_param p[] = {DB_TEXT(username)};
        rc = db_query(conn, "SELECT COUNT(*) FROM users WHERE username = $1", p, DB_NPARAMS(p),
                      &res);
        if (rc == 0)
            *username_taken = db_result_int(res, 0, 0) > 0;
        db_result_free(res);
        res = NULL;
    }
    if (rc == 0 && email) {
        const struct db_param p[] = {DB_TEXT(email)};
        rc = db_query(conn, "SELECT COUNT(*) FROM users WHERE lower(email) = $1", p, DB_NPARAMS(p),
                      &res);
        if (rc == 0)
            *email_taken = db_result_int(res, 0, 0) > 0;
        db_result_free(res);
    }
    db_release(conn);
    return rc;
}

/* The newest user whose column equals id: *user_id (0 when none), *linked (has a Keycloak
 * id) and *subscribed (a status under which products are provisioned, SPEC §5). */
static int find_user(struct db_conn *conn, const char *sql, const char *id, int64_t *user_id,
                     bool *linked, bool *subscribed)
{
    if (!id || !*id)
        return 0;
    const struct db_param p[] = {DB_TEXT(id)};
    struct db_result *res = NULL;
    int rc = db_query(conn, sql, p, DB_NPARAMS(p), &res);
    if (rc != 0)
        return rc;
    if (db_result_rows(res) > 0) {
        const char *kc = db_result_text(res, 0, 1);
        const char *status = db_result_text(res, 0, 2);
        *user_id = db_result_int(res, 0, 0);
        *linked = kc && *kc;
        *subscribed = status && (!strcmp(status, "active") || !strcmp(status, "trialing") ||
                                 !strcmp(status, "past_due"));
    }
    db_result_free(res);
    return 0;
}

static int count_of(struct db_conn *conn, const char *sql, const struct db_param *p, int n,
                    int64_t *out)
{
    struct db_result *res = NULL;
    int rc = db_query(conn, sql, p, n, &res);
    if (rc == 0)
        *out = db_result_int(res, 0, 0);
    db_result_free(res);
    return rc;
}

/* Seats of the subscribed instance products: *missing when one has none (or one on an
 * inactive instance), *waiting when one waits for capacity. */
static int seat_facts(struct db_conn *conn, int64_t user_id, bool *missing, bool *waiting)
{
    const struct db_param p[] = {DB_INT(user_id)};
    struct db_result *res = NULL;
    int rc = db_query(conn,
                      "SELECT a.state, i.is_active FROM subscription_items s "
                      "JOIN products p ON p.id = s.product_id "
                      "LEFT JOIN instance_assignments a "
                      "ON a.user_id = s.user_id AND a.product_id = p.id "
                      "LEFT JOIN instances i ON i.id = a.instance_id "
                      "WHERE s.user_id = $1 AND p.requires_instance",
                      p, DB_NPARAMS(p), &res);
    if (rc != 0)
        return rc;
    for (int i = 0; i < db_result_rows(res); i++) {
        const char *state = db_result_text(res, i, 0);
        if (state && !strcmp(state, "waiting_capacity"))
            *waiting = true;
        else if (!state || strcmp(state, "active") || !db_result_bool(res, i, 1))
            *missing = true;
    }
    db_result_free(res);
    return 0;
}

static int progress_on(struct db_conn *conn, const char *subscription_id, const char *customer_id,
                       enum onboarding_progress *out)
{
    int64_t user_id = 0;
    bool linked = false, subscribed = false;
    int rc = find_user(conn,
                       "SELECT id, keycloak_id, subscription_status FROM users "
                       "WHERE stripe_subscription_id = $1 ORDER BY id DESC LIMIT 1",
                       subscription_id, &user_id, &linked, &subscribed);
    if (rc == 0 && user_id == 0)
        rc = find_user(conn,
                       "SELECT id, keycloak_id, subscription_status FROM users "
                       "WHERE stripe_customer_id = $1 ORDER BY id DESC LIMIT 1",
                       customer_id, &user_id, &linked, &subscribed);
    if (rc != 0 || user_id == 0 || !linked)
        return rc;
    *out = ONBOARDING_ACCOUNT_CREATED;
    int64_t items = 0;
    const struct db_param uid[] = {DB_INT(user_id)};
    rc = count_of(conn, "SELECT COUNT(*) FROM subscription_items WHERE user_id = $1", uid,
                  DB_NPARAMS(uid), &items);
    if (rc != 0 || !subscribed || items == 0)
        return rc;
    bool missing = false, waiting = false;
    rc = seat_facts(conn, user_id, &missing, &waiting);
    if (rc != 0)
        return rc;
    /* The task's args are stored compact with sorted keys (task_store.c), so the text of
     * this user's sync is known exactly. */
    char args[48];
    snprintf(args, sizeof args, "{\"user_id\":%lld}", (long long)user_id);
    const struct db_param tp[] = {DB_TEXT(args)};
    int64_t syncing = 0;
    rc = count_of(conn,
                  "SELECT COUNT(*) FROM tasks WHERE name = 'sync_user_post_checkout' "
                  "AND state IN ('queued', 'running') AND args = $1",
                  tp, DB_NPARAMS(tp), &syncing);
    if (rc != 0)
        return rc;
    if (waiting)
        *out = ONBOARDING_WAITING_CAPACITY;
    else if (!missing && syncing == 0)
        *out = ONBOARDING_READY;
    return 0;
}

int onboarding_progress_get(struct db_pool *pool, const char *subscription_id,
                            const char *customer_id, enum onboarding_progress *out)
{
    *out = ONBOARDING_PENDING;
    struct db_conn *conn = NULL;
    int rc = db_acquire(pool, DB_WAIT_MS, &conn);
    if (rc != 0)
        return rc;
    rc = progress_on(conn, subscription_id, customer_id, out);
    db_release(conn);
    if (rc != 0)
        *out = ONBOARDING_PENDING;
    return rc;
}

struct password_request {
    const char *email;
    int64_t now;
    bool *enqueued;
};

static int enqueue_on(struct db_conn *conn, void *ctx)
{
    const struct password_request *req = ctx;
    const char *email = req->email;
    int64_t now = req->now;
    bool *enqueued = req->enqueued;
    const struct db_param p[] = {DB_TEXT(email)};
    struct db_result *res = NULL;
    int rc = db_query(conn,
                      "SELECT keycloak_id FROM users WHERE lower(email) = $1 "
                      "AND keycloak_id IS NOT NULL AND keycloak_id <> '' "
                      "ORDER BY id DESC LIMIT 1",
                      p, DB_NPARAMS(p), &res);
    if (rc != 0)
        return rc;
    if (db_result_rows(res) == 1) {
        json_t *args = json_pack("{s:s}", "keycloak_id", db_result_text(res, 0, 0));
        rc = task_enqueue(conn, "send_keycloak_password_reset_email", args,
                          TASK_DEFAULT_MAX_ATTEMPTS, now, NULL, NULL);
        json_decref(args);
        *enqueued = rc == 0;
    }
    db_result_free(res);
    return rc;
}

int onboarding_request_password_email(struct db_pool *pool, const char *email, int64_t now,
                                      bool *enqueued)
{
    *enqueued = false;
    struct password_request req = {email, now, enqueued};
    int rc = db_write_tx(pool, enqueue_on, &req);
    if (rc != 0)
        *enqueued = false; /* rolled back */
    return rc;
}
