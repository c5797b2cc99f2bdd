/* test_entitlements.c — attributes from subscription items: has_<slug>, <slug>_instance,
 * summed numeric grants, status gating, and which keys Usher owns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/mem.h"
#include "db/db.h"
#include "db/migrate.h"
#include "testdb.h"
#include "domain/allocation.h"
#include "domain/entitlements.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOW 1790000000LL

static struct db_pool *pool;
static struct db_conn *conn;
static struct testdb tdb;
static int64_t user_id;

static void run(const char *sql, const struct db_param *p, int n)
{
    int rc = db_exec(conn, sql, p, n, NULL);
    if (rc != 0)
        fail_msg("statement failed (%d): %s", rc, sql);
}

static int setup(void **state)
{
    (void)state;
    testdb_open(&tdb, "ent", false, NULL, 2);
    pool = tdb.pool;
    assert_int_equal(db_acquire(pool, 1000, &conn), 0);
    const struct db_param t[] = {DB_INT(NOW)};
    run("INSERT INTO products (id, name, slug, page, provisioner, created_at, updated_at) VALUES "
        "(1, 'Cloud', 'cloud', 'plan', 'group', $1, $1), "
        "(2, 'Storage', 'storage', 'storage', 'standalone', $1, $1), "
        "(3, 'Photos', 'photos', 'addon', 'group', $1, $1)",
        t, 1);
    run("UPDATE products SET requires_instance = 0 WHERE id = 2", NULL, 0);
    run("INSERT INTO product_prices (product_id, stripe_price_id, billing_period, amount, "
        "entitlements, created_at, updated_at) VALUES "
        "(1, 'price_cloud', 'monthly', 900, NULL, $1, $1), "
        "(2, 'price_storage', 'monthly', 300, '{\"storage_gb\":100,\"tier\":\"plus\"}', $1, $1), "
        "(3, 'price_photos', 'monthly', 400, '{\"storage_gb\":50}', $1, $1)",
        t, 1);
    run("INSERT INTO instances (id, product_id, name, base_url, created_at, updated_at) "
        "VALUES (1, 1, 'foggy', 'https://foggy.example.test', $1, $1)",
        t, 1);
    struct db_result *res = NULL;
    assert_int_equal(db_query(conn,
                              "INSERT INTO users (username, subscription_status, date_joined) "
                              "VALUES ('ada', 'active', $1) RETURNING id",
                              t, 1, &res),
                     0);
    user_id = db_result_int(res, 0, 0);
    db_result_free(res);
    const struct db_param u[] = {DB_INT(user_id)};
    run("INSERT INTO subscription_items (user_id, product_id, stripe_price_id, quantity) VALUES "
        "($1, 1, 'price_cloud', 1), ($1, 2, 'price_storage', 3), ($1, 3, 'price_photos', 1)",
        u, 1);
    db_release(conn);
    struct alloc_result r;
    assert_int_equal(alloc_assign(pool, user_id, 1, NOW, &r), 0);
    assert_int_equal(db_acquire(pool, 1000, &conn), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    db_release(conn);
    testdb_close(&tdb);
    pool = NULL;
    return 0;
}

static const char *attr(const json_t *attrs, const char *key)
{
    return json_string_value(json_array_get(json_object_get(attrs, key), 0));
}

static void test_attributes_for_active_subscription(void **state)
{
    (void)state;
    json_t *attrs = NULL;
    assert_int_equal(entitlements_for_user(conn, user_id, &attrs), 0);
    assert_string_equal(attr(attrs, "has_cloud"), "true");
    assert_string_equal(attr(attrs, "cloud_instance"), "https://foggy.example.test");
    assert_string_equal(attr(attrs, "has_storage"), "true");
    assert_null(attr(attrs, "storage_instance"));
    assert_string_equal(attr(attrs, "has_photos"), "true");
    assert_null(attr(attrs, "photos_instance")); /* no seat assigned yet */
    assert_string_equal(attr(attrs, "storage_gb"), "350"); /* 100 × 3 + 50 */
    assert_string_equal(attr(attrs, "tier"), "plus");
    json_decref(attrs);
}

static void test_status_gates_everything(void **state)
{
    (void)state;
    const struct db_param u[] = {DB_INT(user_id)};
    const char *statuses[] = {"canceled", "unpaid", "incomplete", "", "trialing", "past_due"};
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        const struct db_param p[] = {DB_TEXT(statuses[i]), DB_INT(user_id)};
        run("UPDATE users SET subscription_status = $1 WHERE id = $2", p, 2);
        json_t *attrs = NULL;
        assert_int_equal(entitlements_for_user(conn, user_id, &attrs), 0);
        assert_int_equal(json_object_size(attrs) > 0, entitlements_status_grants(statuses[i]));
        json_decref(attrs);
    }
    run("UPDATE users SET subscription_status = 'active' WHERE id = $1", u, 1);
}

static void test_owned_keys(void **state)
{
    (void)state;
    json_t *keys = NULL;
    assert_int_equal(entitlements_catalog_keys(conn, &keys), 0);
    assert_int_equal(json_array_size(keys), 2); /* storage_gb, tier — each once */
    assert_true(entitlements_owns_key("has_anything", keys));
    assert_true(entitlements_owns_key("cloud_instance", keys));
    assert_true(entitlements_owns_key("storage_gb", keys));
    assert_false(entitlements_owns_key("has_", keys));
    assert_false(entitlements_owns_key("locale", keys));
    assert_false(entitlements_owns_key("_instance", keys));
    json_decref(keys);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attributes_for_active_subscription),
        cmocka_unit_test(test_status_gates_everything),
        cmocka_unit_test(test_owned_keys),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
