/* test_dashboard.c — service cards: assigned instances, every active instance for admins,
 * subscribed standalone products, title case and URL hosts; and users_upsert_from_login. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "core/mem.h"
#include "db/db.h"
#include "db/migrate.h"
#include "testdb.h"
#include "domain/allocation.h"
#include "domain/dashboard.h"
#include "domain/users.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOW 1790000000LL

static struct db_pool *pool;
static struct testdb tdb;

static void run(const char *sql, const struct db_param *p, int n)
{
    testdb_exec(pool, sql, p, n);
}

static int setup(void **state)
{
    (void)state;
    testdb_open(&tdb, "dash", false, NULL, 2);
    pool = tdb.pool;
    const struct db_param t[] = {DB_INT(NOW)};
    run("INSERT INTO products (id, name, slug, page, provisioner, requires_instance, is_addon, "
        "standalone_url, dashboard_name, description, icon, created_at, updated_at) VALUES "
        "(1, 'Cloud', 'cloud', 'plan', 'group', 1, 0, NULL, 'Cloud Files', 'Files', 'cloud', $1, "
        "$1), "
        "(2, 'Vault', 'vault', 'addon', 'standalone', 0, 0, 'https://vault.example.test/app', '', "
        "'Passwords', 'key', $1, $1), "
        "(3, 'Extra', 'extra', 'storage', 'standalone', 0, 1, 'https://x.example.test', '', '', "
        "'', $1, $1)",
        t, 1);
    run("INSERT INTO instances (id, product_id, name, base_url, is_active, created_at, updated_at) "
        "VALUES (1, 1, 'foggy-north', 'https://foggy.example.test', 1, $1, $1), "
        "(2, 1, 'cirrus', 'https://cirrus.example.test', 1, $1, $1), "
        "(3, 1, 'retired', 'https://old.example.test', 0, $1, $1)",
        t, 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    testdb_close(&tdb);
    pool = NULL;
    return 0;
}

static void test_login_creates_then_updates(void **state)
{
    (void)state;
    struct user_login l = {"kc-1", "Ada", "ada@example.test", "Ada", "Lovelace", false};
    int64_t id = 0, again = 0;
    bool created = false;
    assert_int_equal(users_upsert_from_login(pool, &l, NOW, &id, &created), 0);
    assert_true(created);
    l.email = "ada@new.example.test";
    l.is_admin = true;
    assert_int_equal(users_upsert_from_login(pool, &l, NOW + 5, &again, &created), 0);
    assert_false(created);
    assert_int_equal(again, id);
    struct user u;
    assert_int_equal(users_get(pool, id, &u), 0);
    assert_string_equal(u.username, "ada");
    assert_string_equal(u.email, "ada@new.example.test");
    assert_true(u.is_admin);
    assert_string_equal(u.keycloak_id, "kc-1");
    users_cleanup(&u);
    /* Renamed in Keycloak: found by sub, renamed here. */
    l.username = "ada.l";
    assert_int_equal(users_upsert_from_login(pool, &l, NOW + 9, &again, &created), 0);
    assert_false(created);
    assert_int_equal(again, id);
    struct user_login bad = {"", "x", NULL, NULL, NULL, false};
    assert_int_equal(users_upsert_from_login(pool, &bad, NOW, &again, &created), USHER_EINVAL);
}

static void test_cards(void **state)
{
    (void)state;
    struct user_login l = {"kc-2", "grace", "grace@example.test", "Grace", "Hopper", false};
    int64_t id = 0;
    bool created = false;
    assert_int_equal(users_upsert_from_login(pool, &l, NOW, &id, &created), 0);
    json_t *cards = NULL;
    assert_int_equal(dashboard_cards(pool, id, false, &cards), 0);
    assert_int_equal(json_array_size(cards), 0);
    json_decref(cards);

    const struct db_param u[] = {DB_INT(id)};
    run("UPDATE users SET subscription_status = 'active' WHERE id = $1", u, 1);
    run("INSERT INTO subscription_items (user_id, product_id, stripe_price_id) VALUES "
        "($1, 1, 'p1'), ($1, 2, 'p2'), ($1, 3, 'p3')",
        u, 1);
    run("INSERT INTO instance_assignments (user_id, product_id, instance_id, state, assigned_at, "
        "created_at) VALUES ($1, 1, 1, 'active', 1, 1)",
        u, 1);
    assert_int_equal(dashboard_cards(pool, id, false, &cards), 0);
    assert_int_equal(json_array_size(cards), 3);
    json_t *c0 = json_array_get(cards, 0), *c1 = json_array_get(cards, 1);
    json_t *c2 = json_array_get(cards, 2);
    assert_string_equal(json_string_value(json_object_get(c0, "product")), "Cloud Files");
    assert_string_equal(json_string_value(json_object_get(c0, "instance")), "Foggy-North");
    assert_string_equal(json_string_value(json_object_get(c0, "url")),
                        "https://foggy.example.test");
    assert_string_equal(json_string_value(json_object_get(c1, "product")), "Vault");
    assert_string_equal(json_string_value(json_object_get(c1, "instance")), "vault.example.test");
    /* A paid add-on with its own address gets a card too. */
    assert_string_equal(json_string_value(json_object_get(c2, "product")), "Extra");
    assert_string_equal(json_string_value(json_object_get(c2, "url")), "https://x.example.test");
    json_decref(cards);

    /* Admins see every active instance (plus their own standalone products and add-ons). */
    assert_int_equal(dashboard_cards(pool, id, true, &cards), 0);
    assert_int_equal(json_array_size(cards), 4);
    json_decref(cards);

    /* Canceled: no standalone card (the instance seat is kept for recovery). */
    run("UPDATE users SET subscription_status = 'canceled' WHERE id = $1", u, 1);
    assert_int_equal(dashboard_cards(pool, id, false, &cards), 0);
    assert_int_equal(json_array_size(cards), 1);
    json_decref(cards);
}

static void test_helpers(void **state)
{
    (void)state;
    char out[64];
    dashboard_title_case("north wind_b", out, sizeof out);
    assert_string_equal(out, "North Wind_B");
    dashboard_url_host("https://vault.example.test:8443/x", out, sizeof out);
    assert_string_equal(out, "vault.example.test");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_login_creates_then_updates),
        cmocka_unit_test(test_cards),
        cmocka_unit_test(test_helpers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
