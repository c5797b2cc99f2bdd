/*
 * entitlements.c — computing a user's attributes (see entitlements.h).
 */
#include "domain/entitlements.h"

#include "core/err.h"
#include "core/mem.h"
#include "db/db.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool entitlements_status_grants(const char *status)
{
    return status && (!strcmp(status, "active") || !strcmp(status, "trialing") ||
                      !strcmp(status, "past_due"));
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && !strcmp(s + n - m, suffix);
}

bool entitlements_owns_key(const char *key, const json_t *extra_keys)
{
    if ((!strncmp(key, "has_", 4) && key[4]) || ends_with(key, "_instance"))
        return true;
    size_t i;
    const json_t *k;
    json_array_foreach (extra_keys, i, k) {
        if (!strcmp(json_string_value(k), key))
            return true;
    }
    return false;
}

static void set_single(json_t *attrs, const char *key, const char *value)
{
    json_object_set_new(attrs, key, json_pack("[s]", value));
}

/* Adds one price's grants × quantity into totals (numbers) and strings (last wins). */
static void add_grants(json_t *totals, json_t *strings, const char *text, int64_t quantity)
{
    json_t *grants = text ? json_loads(text, 0, NULL) : NULL;
    const char *key;
    json_t *v;
    json_object_foreach (grants, key, v) {
        if (json_is_number(v)) {
            double sum = json_number_value(json_object_get(totals, key));
            json_object_set_new(totals, key,
                                json_real(sum + json_number_value(v) * (double)quantity));
        } else if (json_is_string(v)) {
            json_object_set(strings, key, v);
        }
    }
    json_decref(grants);
}

static void format_number(double v, char *out, size_t size)
{
    if (v == floor(v) && fabs(v) < 1e15)
        snprintf(out, size, "%lld", (long long)v);
    else
        snprintf(out, size, "%g", v);
}

static int add_products(struct db_conn *conn, int64_t user_id, json_t *attrs)
{
    const struct db_param p[] = {DB_INT(user_id)};
    struct db_result *res = NULL;
    int rc = db_query(conn,
                      "SELECT DISTINCT p.slug, i.base_url FROM subscription_items si "
                      "JOIN users u ON u.id = si.user_id "
                      "JOIN products p ON p.id = si.product_id "
                      "LEFT JOIN instance_assignments a ON a.user_id = si.user_id "
                      "AND a.product_id = p.id AND a.state = 'active' "
                      "LEFT JOIN instances i ON i.id = a.instance_id "
                      "WHERE si.user_id = $1 "
                      "AND u.subscription_status IN ('active', 'trialing', 'past_due')",
                      p, 1, &res);
    for (int r = 0; rc == 0 && r < db_result_rows(res); r++) {
        const char *slug = db_result_text(res, r, 0);
        const char *base_url = db_result_text(res, r, 1);
        char *has = xasprintf("has_%s", slug);
        set_single(attrs, has, "true");
        free(has);
        if (base_url) {
            char *inst = xasprintf("%s_instance", slug);
            set_single(attrs, inst, base_url);
            free(inst);
        }
    }
    db_result_free(res);
    return rc;
}

static int add_price_grants(struct db_conn *conn, int64_t user_id, json_t *attrs)
{
    const struct db_param p[] = {DB_INT(user_id)};
    struct db_result *res = NULL;
    int rc = db_query(conn,
                      "SELECT pp.entitlements, si.quantity FROM subscription_items si "
                      "JOIN users u ON u.id = si.user_id "
                      "JOIN product_prices pp ON pp.stripe_price_id = si.stripe_price_id "
                      "WHERE si.user_id = $1 AND pp.entitlements IS NOT NULL "
                      "AND u.subscription_status IN ('active', 'trialing', 'past_due') "
                      "ORDER BY si.stripe_price_id",
                      p, 1, &res);
    json_t *totals = json_object(), *strings = json_object();
    for (int r = 0; rc == 0 && r < db_result_rows(res); r++)
        add_grants(totals, strings, db_result_text(res, r, 0), db_result_int(res, r, 1));
    db_result_free(res);
    const char *key;
    json_t *v;
    json_object_foreach (totals, key, v) {
        char text[64];
        format_number(json_number_value(v), text, sizeof text);
        set_single(attrs, key, text);
    }
    json_object_foreach (strings, key, v) {
        set_single(attrs, key, json_string_value(v));
    }
    json_decref(totals);
    json_decref(strings);
    return rc;
}

int entitlements_for_user(struct db_conn *conn, int64_t user_id, json_t **out)
{
    json_t *attrs = json_object();
    int rc = add_products(conn, user_id, attrs);
    if (rc == 0)
        rc = add_price_grants(conn, user_id, attrs);
    if (rc != 0) {
        json_decref(attrs);
        return rc;
    }
    *out = attrs;
    return 0;
}

int entitlements_catalog_keys(struct db_conn *conn, json_t **out)
{
    struct db_result *res = NULL;
    int rc =
        db_query(conn, "SELECT entitlements FROM product_prices WHERE entitlements IS NOT NULL",
                 NULL, 0, &res);
    json_t *keys = json_array();
    for (int r = 0; rc == 0 && r < db_result_rows(res); r++) {
        json_t *grants = json_loads(db_result_text(res, r, 0), 0, NULL);
        const char *key;
        json_t *v;
        json_object_foreach (grants, key, v) {
            if (!entitlements_owns_key(key, keys))
                json_array_append_new(keys, json_string(key));
        }
        json_decref(grants);
    }
    db_result_free(res);
    if (rc != 0) {
        json_decref(keys);
        return rc;
    }
    *out = keys;
    return 0;
}

int entitlements_attribute_names(struct db_conn *conn, json_t **out)
{
    struct db_result *res = NULL;
    int rc =
        db_query(conn, "SELECT slug, requires_instance FROM products ORDER BY slug", NULL, 0, &res);
    json_t *names = json_array(), *keys = NULL;
    for (int r = 0; rc == 0 && r < db_result_rows(res); r++) {
        const char *slug = db_result_text(res, r, 0);
        json_array_append_new(names, json_sprintf("has_%s", slug));
        if (db_result_bool(res, r, 1))
            json_array_append_new(names, json_sprintf("%s_instance", slug));
    }
    db_result_free(res);
    if (rc == 0)
        rc = entitlements_catalog_keys(conn, &keys);
    if (rc == 0)
        json_array_extend(names, keys);
    json_decref(keys);
    if (rc != 0) {
        json_decref(names);
        return rc;
    }
    *out = names;
    return 0;
}
