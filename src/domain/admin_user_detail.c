/*
 * admin_user_detail.c — what the admin console's user page shows about one user (see
 * admin_users.h, admin_user_detail). Every part is one bounded, indexed query: tasks through
 * tasks.user_id (migration 0007), audit entries through audit_log_target_idx, Stripe events
 * by their payload among the newest ADMIN_USER_EVENT_SCAN only (events carry no user column;
 * the cleanup keeps about 30 days of them).
 */
#include "domain/admin_users.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"
#include "db/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rows as objects of column name → text (null for NULL); the page formats them. */
static json_t *rows_json(const struct db_result *res, const char *const *names)
{
    json_t *rows = json_array();
    for (int r = 0; r < db_result_rows(res); r++) {
        json_t *row = json_object();
        for (int c = 0; names[c]; c++) {
            const char *v = db_result_text(res, r, c);
            json_object_set_new(row, names[c], v ? json_string(v) : json_null());
        }
        json_array_append_new(rows, row);
    }
    return rows;
}

static int section(struct db_conn *conn, json_t *out, const char *key, const char *sql,
                   const struct db_param *p, int n, const char *const *names)
{
    struct db_result *res = NULL;
    int rc = db_query(conn, sql, p, n, &res);
    if (rc == 0)
        json_object_set_new(out, key, rows_json(res, names));
    db_result_free(res);
    return rc;
}

/* '%"<id>"%' with LIKE's metacharacters escaped (Stripe ids contain '_'). */
static char *quoted_id_pattern(const char *id)
{
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "%\"");
    for (const char *p = id; *p; p++) {
        if (*p == '%' || *p == '_' || *p == '\\')
            buf_putc(&b, '\\');
        buf_putc(&b, *p);
    }
    buf_puts(&b, "\"%");
    char *out = buf_detach(&b);
    buf_cleanup(&b); /* buf_detach leaves a fresh empty buffer */
    return out;
}

static const char *const user_cols[] = {
    "id",
    "username",
    "email",
    "first_name",
    "last_name",
    "is_admin",
    "date_joined",
    "last_login",
    "keycloak_id",
    "stripe_customer_id",
    "stripe_subscription_id",
    "status",
    "canceled_at",
    "access_expires_at",
    "payment_disabled",
    NULL,
};

static int events(struct db_conn *conn, json_t *out, const char *customer, const char *subscription)
{
    static const char *const cols[] = {"id", "event_id", "type", "status", "created", NULL};
    char *a = quoted_id_pattern(customer ? customer : "");
    char *b = quoted_id_pattern(subscription ? subscription : "");
    const struct db_param p[] = {DB_INT(ADMIN_USER_EVENT_SCAN),
                                 DB_TEXT(a),
                                 DB_TEXT(b),
                                 DB_BOOL(customer != NULL),
                                 DB_BOOL(subscription != NULL),
                                 DB_INT(ADMIN_USER_DETAIL_ROWS)};
    int rc = section(conn, out, "events",
                     "SELECT id, event_id, type, status, created FROM "
                     "(SELECT id, event_id, type, status, created, payload FROM stripe_events "
                     "ORDER BY id DESC LIMIT $1) e "
                     "WHERE ($4 AND payload LIKE $2 ESCAPE '\\') "
                     "OR ($5 AND payload LIKE $3 ESCAPE '\\') ORDER BY id DESC LIMIT $6",
                     p, DB_NPARAMS(p), cols);
    free(a);
    free(b);
    return rc;
}

static int load(struct db_conn *conn, int64_t user_id, json_t *out)
{
    const struct db_param id[] = {DB_INT(user_id)};
    struct db_result *res = NULL;
    int rc = db_query(conn,
                      "SELECT id, username, email, first_name, last_name, is_admin, date_joined, "
                      "last_login, keycloak_id, stripe_customer_id, stripe_subscription_id, "
                      "subscription_status, canceled_at, access_expires_at, payment_disabled "
                      "FROM users WHERE id = $1",
                      id, 1, &res);
    if (rc == 0 && db_result_rows(res) == 0)
        rc = USHER_ENOTFOUND;
    if (rc != 0) {
        db_result_free(res);
        return rc;
    }
    json_t *rows = rows_json(res, user_cols);
    json_t *user = json_incref(json_array_get(rows, 0));
    json_decref(rows);
    /* Booleans read the same on both dialects ("t"/"1"). */
    json_object_set_new(user, "is_admin", json_boolean(db_result_bool(res, 0, 5)));
    json_object_set_new(user, "payment_disabled", json_boolean(db_result_bool(res, 0, 14)));
    char *customer = db_result_is_null(res, 0, 9) ? NULL : xstrdup(db_result_text(res, 0, 9));
    char *subscription = db_result_is_null(res, 0, 10) ? NULL : xstrdup(db_result_text(res, 0, 10));
    db_result_free(res);
    json_object_set_new(out, "user", user);

    static const char *const group_cols[] = {"id", "name", NULL};
    static const char *const item_cols[] = {"stripe_price_id",    "stripe_item_id", "quantity",
                                            "current_period_end", "product",        NULL};
    static const char *const seat_cols[] = {"state",       "product",    "instance",   "base_url",
                                            "assigned_at", "created_at", "product_id", NULL};
    static const char *const task_cols[] = {"id",       "name",         "state",
                                            "attempts", "max_attempts", "last_error",
                                            "run_at",   "updated_at",   NULL};
    static const char *const audit_cols[] = {"id", "created_at", "actor", "action", "detail", NULL};
    const struct db_param lim[] = {DB_INT(user_id), DB_INT(ADMIN_USER_DETAIL_ROWS)};
    char target[24];
    snprintf(target, sizeof target, "%lld", (long long)user_id);
    const struct db_param audit[] = {DB_TEXT(target), DB_INT(ADMIN_USER_DETAIL_ROWS)};
    rc = section(conn, out, "groups",
                 "SELECT g.id, g.name FROM user_groups ug JOIN groups g ON g.id = ug.group_id "
                 "WHERE ug.user_id = $1 ORDER BY g.name",
                 id, 1, group_cols);
    if (rc == 0)
        rc = section(conn, out, "items",
                     "SELECT si.stripe_price_id, si.stripe_item_id, si.quantity, "
                     "si.current_period_end, p.name FROM subscription_items si "
                     "LEFT JOIN products p ON p.id = si.product_id WHERE si.user_id = $1 "
                     "ORDER BY si.id",
                     id, 1, item_cols);
    if (rc == 0)
        rc = section(conn, out, "seats",
                     "SELECT a.state, p.name, i.name, i.base_url, a.assigned_at, a.created_at, "
                     "a.product_id FROM instance_assignments a "
                     "JOIN products p ON p.id = a.product_id "
                     "LEFT JOIN instances i ON i.id = a.instance_id WHERE a.user_id = $1 "
                     "ORDER BY p.name",
                     id, 1, seat_cols);
    if (rc == 0)
        rc = section(conn, out, "tasks",
                     "SELECT id, name, state, attempts, max_attempts, last_error, run_at, "
                     "updated_at FROM tasks WHERE user_id = $1 ORDER BY id DESC LIMIT $2",
                     lim, 2, task_cols);
    if (rc == 0)
        rc = section(conn, out, "audit",
                     "SELECT id, created_at, actor, action, detail FROM audit_log "
                     "WHERE target_type = 'user' AND target_id = $1 ORDER BY id DESC LIMIT $2",
                     audit, 2, audit_cols);
    if (rc == 0 && (customer || subscription))
        rc = events(conn, out, customer, subscription);
    else if (rc == 0)
        json_object_set_new(out, "events", json_array());
    free(customer);
    free(subscription);
    return rc;
}

int admin_user_detail(struct db_pool *pool, int64_t user_id, json_t **out)
{
    *out = NULL;
    if (user_id <= 0)
        return USHER_ENOTFOUND;
    struct db_conn *conn = NULL;
    int rc = db_acquire(pool, DB_WAIT_MS, &conn);
    if (rc != 0)
        return rc;
    json_t *page = json_object();
    rc = db_begin(conn, DB_TX_READ); /* one snapshot for every section */
    if (rc == 0)
        rc = load(conn, user_id, page);
    if (rc == 0)
        rc = db_commit(conn);
    db_release(conn);
    if (rc != 0) {
        json_decref(page);
        return rc;
    }
    *out = page;
    return 0;
}
