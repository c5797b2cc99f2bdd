/*
 * dashboard.c — building the service cards (see dashboard.h).
 */
#include "domain/dashboard.h"

#include "core/err.h"
#include "db/db.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

void dashboard_title_case(const char *in, char *out, size_t size)
{
    size_t n = 0;
    bool word_start = true;
    for (const char *p = in; *p && n + 1 < size; p++) {
        unsigned char c = (unsigned char)*p;
        out[n++] = (char)(word_start ? toupper(c) : c);
        word_start = c == ' ' || c == '-' || c == '_';
    }
    out[n] = '\0';
}

void dashboard_url_host(const char *url, char *out, size_t size)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t len = strcspn(p, "/:?#");
    snprintf(out, size, "%.*s", (int)len, p);
}

static const char admin_cards_sql[] =
    "SELECT COALESCE(NULLIF(p.dashboard_name, ''), p.name), i.name, i.base_url, "
    "COALESCE(NULLIF(p.dashboard_description, ''), p.description), p.icon, 1 "
    "FROM instances i JOIN products p ON p.id = i.product_id WHERE i.is_active "
    "ORDER BY p.page, p.display_order, p.name, i.name";

/* A seat is ready once the user holds every group of its instance (group provisioner): until
 * the sync has granted them, an "Open" link would lead to a login the service refuses. */
static const char seat_cards_sql[] =
    "SELECT COALESCE(NULLIF(p.dashboard_name, ''), p.name), i.name, i.base_url, "
    "COALESCE(NULLIF(p.dashboard_description, ''), p.description), p.icon, "
    "CASE WHEN p.provisioner <> 'group' OR NOT EXISTS (SELECT 1 FROM instance_groups ig "
    "WHERE ig.instance_id = i.id AND NOT EXISTS (SELECT 1 FROM user_groups ug "
    "WHERE ug.user_id = a.user_id AND ug.group_id = ig.group_id)) THEN 1 ELSE 0 END "
    "FROM instances i JOIN products p ON p.id = i.product_id "
    "JOIN instance_assignments a ON a.instance_id = i.id AND a.state = 'active' "
    "WHERE a.user_id = $1 AND i.is_active "
    "ORDER BY p.page, p.display_order, p.name, i.name";

/* Paid for, but no seat yet (just signed up, or waiting for capacity). */
static const char pending_cards_sql[] =
    "SELECT DISTINCT COALESCE(NULLIF(p.dashboard_name, ''), p.name), '', '', "
    "COALESCE(NULLIF(p.dashboard_description, ''), p.description), p.icon, 0, "
    "p.page, p.display_order, p.name "
    "FROM subscription_items si JOIN users u ON u.id = si.user_id "
    "JOIN products p ON p.id = si.product_id "
    "WHERE si.user_id = $1 AND p.requires_instance "
    "AND u.subscription_status IN ('active', 'trialing', 'past_due') "
    "AND NOT EXISTS (SELECT 1 FROM instance_assignments a "
    "JOIN instances i ON i.id = a.instance_id AND i.is_active "
    "WHERE a.user_id = si.user_id AND a.product_id = p.id AND a.state = 'active') "
    "ORDER BY p.page, p.display_order, p.name";

/* Standalone products, add-ons included: a paid add-on with its own address gets its card. */
static const char standalone_cards_sql[] =
    "SELECT DISTINCT COALESCE(NULLIF(p.dashboard_name, ''), p.name), '', "
    "p.standalone_url, "
    "COALESCE(NULLIF(p.dashboard_description, ''), p.description), p.icon, 1, "
    "p.page, p.display_order, p.name "
    "FROM subscription_items si JOIN users u ON u.id = si.user_id "
    "JOIN products p ON p.id = si.product_id "
    "WHERE si.user_id = $1 AND NOT p.requires_instance "
    "AND p.standalone_url IS NOT NULL AND p.standalone_url <> '' "
    "AND u.subscription_status IN ('active', 'trialing', 'past_due') "
    "ORDER BY p.page, p.display_order, p.name";

static int add_rows(json_t *cards, const struct db_result *res, bool url_host_as_name)
{
    for (int r = 0; r < db_result_rows(res); r++) {
        char name[256];
        if (url_host_as_name)
            dashboard_url_host(db_result_text(res, r, 2), name, sizeof name);
        else
            dashboard_title_case(db_result_text(res, r, 1), name, sizeof name);
        json_array_append_new(
            cards, json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "product", db_result_text(res, r, 0),
                             "instance", name, "url", db_result_text(res, r, 2), "description",
                             db_result_text(res, r, 3), "icon", db_result_text(res, r, 4), "ready",
                             db_result_int(res, r, 5) != 0));
    }
    return 0;
}

static int query_into(struct db_conn *conn, const char *sql, int64_t user_id, json_t *cards,
                      bool url_host_as_name)
{
    const struct db_param p[] = {DB_INT(user_id)};
    struct db_result *res = NULL;
    int rc = db_query(conn, sql, p, user_id ? 1 : 0, &res);
    if (rc == 0)
        add_rows(cards, res, url_host_as_name);
    db_result_free(res);
    return rc;
}

int dashboard_cards(struct db_pool *pool, int64_t user_id, bool is_admin, json_t **cards)
{
    struct db_conn *conn = NULL;
    int rc = db_acquire(pool, DB_WAIT_MS, &conn);
    if (rc != 0)
        return rc;
    json_t *out = json_array();
    rc = is_admin ? query_into(conn, admin_cards_sql, 0, out, false)
                  : query_into(conn, seat_cards_sql, user_id, out, false);
    if (rc == 0 && !is_admin)
        rc = query_into(conn, pending_cards_sql, user_id, out, true);
    if (rc == 0)
        rc = query_into(conn, standalone_cards_sql, user_id, out, true);
    db_release(conn);
    if (rc != 0) {
        json_decref(out);
        return rc;
    }
    *cards = out;
    return 0;
}

int dashboard_subscription_items(struct db_pool *pool, int64_t user_id, json_t **items)
{
    struct db_conn *conn = NULL;
    int rc = db_acquire(pool, DB_WAIT_MS, &conn);
    if (rc != 0)
        return rc;
    const struct db_param p[] = {DB_INT(user_id)};
    struct db_result *res = NULL;
    rc = db_query(conn,
                  "SELECT COALESCE(p.name, si.stripe_price_id), si.quantity, pp.amount, "
                  "pp.currency, pp.billing_period, si.current_period_end "
                  "FROM subscription_items si LEFT JOIN products p ON p.id = si.product_id "
                  "LEFT JOIN product_prices pp ON pp.stripe_price_id = si.stripe_price_id "
                  "WHERE si.user_id = $1 ORDER BY p.page, p.display_order, p.name",
                  p, 1, &res);
    json_t *out = json_array();
    for (int r = 0; rc == 0 && r < db_result_rows(res); r++)
        json_array_append_new(
            out, json_pack("{s:s, s:I, s:I, s:s, s:s, s:I}", "product", db_result_text(res, r, 0),
                           "quantity", (json_int_t)db_result_int(res, r, 1), "amount",
                           (json_int_t)db_result_int(res, r, 2), "currency",
                           db_result_is_null(res, r, 3) ? "" : db_result_text(res, r, 3),
                           "billing_period",
                           db_result_is_null(res, r, 4) ? "" : db_result_text(res, r, 4),
                           "renews_at", (json_int_t)db_result_int(res, r, 5)));
    db_result_free(res);
    db_release(conn);
    if (rc != 0) {
        json_decref(out);
        return rc;
    }
    *items = out;
    return 0;
}
