/* test_provisioning.c — one user's sync: seats, group grants and revocations, attributes
 * replaced as a set; the upgrade of SPEC/issue 5 (gain storage × 3, lose photos). The
 * identity provider is a recorder of the calls a sync makes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"
#include "db/db.h"
#include "db/migrate.h"
#include "testdb.h"
#include "domain/provisioning.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOW 1790000000LL

static struct db_pool *pool;
static struct testdb tdb;
static int64_t user_id;

struct recorder {
    struct buf calls;
    json_t *attributes; /* the last replacement */
};

static int rec_add(void *ctx, const char *user_ref, const char *group)
{
    buf_printf(&((struct recorder *)ctx)->calls, "add %s %s;", user_ref, group);
    return 0;
}

/* An identity provider whose realm lacks the group photos-main. */
static int add_without_photos_group(void *ctx, const char *user_ref, const char *group)
{
    return strcmp(group, "photos-main") ? rec_add(ctx, user_ref, group) : USHER_ENOTFOUND;
}

static int rec_remove(void *ctx, const char *user_ref, const char *group)
{
    buf_printf(&((struct recorder *)ctx)->calls, "remove %s %s;", user_ref, group);
    return 0;
}

static int remove_without_photos_group(void *ctx, const char *user_ref, const char *group)
{
    return strcmp(group, "photos-main") ? rec_remove(ctx, user_ref, group) : USHER_ENOTFOUND;
}

static int rec_replace(void *ctx, const char *user_ref, const json_t *keys, const json_t *attrs,
                       json_t **dropped)
{
    struct recorder *r = ctx;
    (void)keys;
    buf_printf(&r->calls, "attributes %s;", user_ref);
    json_decref(r->attributes);
    r->attributes = json_deep_copy(attrs);
    *dropped = NULL;
    return 0;
}

static void run(const char *sql, const struct db_param *p, int n)
{
    testdb_exec(pool, sql, p, n);
}

static int64_t scalar(const char *sql)
{
    struct db_conn *conn = NULL;
    assert_int_equal(db_acquire(pool, 1000, &conn), 0);
    struct db_result *res = NULL;
    assert_int_equal(db_query(conn, sql, NULL, 0, &res), 0);
    int64_t v = db_result_int(res, 0, 0);
    db_result_free(res);
    db_release(conn);
    return v;
}

static int setup(void **state)
{
    (void)state;
    testdb_open(&tdb, "prov", false, NULL, 2);
    pool = tdb.pool;
    const struct db_param t[] = {DB_INT(NOW)};
    run("INSERT INTO products (id, name, slug, page, provisioner, requires_instance, created_at, "
        "updated_at) VALUES (1, 'Cloud', 'cloud', 'plan', 'group', 1, $1, $1), "
        "(2, 'Storage', 'storage', 'storage', 'standalone', 0, $1, $1), "
        "(3, 'Photos', 'photos', 'addon', 'group', 1, $1, $1)",
        t, 1);
    run("INSERT INTO product_prices (product_id, stripe_price_id, billing_period, amount, "
        "entitlements, created_at, updated_at) VALUES "
        "(1, 'price_cloud', 'monthly', 900, NULL, $1, $1), "
        "(2, 'price_storage', 'monthly', 300, '{\"storage_gb\":100}', $1, $1), "
        "(3, 'price_photos', 'monthly', 400, NULL, $1, $1)",
        t, 1);
    run("INSERT INTO instances (id, product_id, name, base_url, created_at, updated_at) VALUES "
        "(1, 1, 'foggy', 'https://foggy.example.test', $1, $1), "
        "(2, 3, 'main', 'https://photos.example.test', $1, $1)",
        t, 1);
    run("INSERT INTO groups (id, name) VALUES (1, 'cloud-foggy'), (2, 'photos-main')", NULL, 0);
    run("INSERT INTO instance_groups (instance_id, group_id) VALUES (1, 1), (2, 2)", NULL, 0);
    run("INSERT INTO users (id, username, keycloak_id, subscription_status, date_joined) "
        "VALUES (7, 'ada', 'kc-7', 'active', $1)",
        t, 1);
    user_id = 7;
    run("INSERT INTO subscription_items (user_id, product_id, stripe_price_id, quantity) VALUES "
        "(7, 1, 'price_cloud', 1), (7, 3, 'price_photos', 1)",
        NULL, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    testdb_close(&tdb);
    pool = NULL;
    return 0;
}

static const char *attr(const json_t *attrs, const char *key)
{
    return json_string_value(json_array_get(json_object_get(attrs, key), 0));
}

static void test_signup_then_upgrade(void **state)
{
    (void)state;
    struct recorder rec = {0};
    buf_init(&rec.calls);
    struct identity_ops idp = {&rec, rec_add, rec_remove, rec_replace};
    struct provisioning_report report;

    assert_int_equal(provisioning_sync_user(pool, user_id, NOW, &idp, &report), 0);
    assert_int_equal(report.seats_taken, 2);
    assert_string_equal(rec.calls.data,
                        "add kc-7 cloud-foggy;add kc-7 photos-main;attributes kc-7;");
    assert_string_equal(attr(rec.attributes, "photos_instance"), "https://photos.example.test");
    assert_int_equal(scalar("SELECT count(*) FROM user_groups WHERE user_id = 7"), 2);

    /* A second sync changes nothing (idempotent) but re-asserts the grants. */
    assert_int_equal(provisioning_sync_user(pool, user_id, NOW, &idp, &report), 0);
    assert_int_equal(report.seats_taken, 0);
    assert_int_equal(scalar("SELECT allocated_seats FROM instances WHERE id = 1"), 1);

    /* Upgrade: gains storage × 3, loses photos. */
    run("DELETE FROM subscription_items WHERE stripe_price_id = 'price_photos'", NULL, 0);
    run("INSERT INTO subscription_items (user_id, product_id, stripe_price_id, quantity) "
        "VALUES (7, 2, 'price_storage', 3)",
        NULL, 0);
    buf_reset(&rec.calls);
    assert_int_equal(provisioning_sync_user(pool, user_id, NOW, &idp, &report), 0);
    assert_int_equal(report.seats_released, 1);
    assert_non_null(strstr(rec.calls.data, "remove kc-7 photos-main;"));
    assert_null(strstr(rec.calls.data, "remove kc-7 cloud-foggy;"));
    assert_string_equal(attr(rec.attributes, "storage_gb"), "300");
    assert_string_equal(attr(rec.attributes, "has_storage"), "true");
    assert_null(json_object_get(rec.attributes, "has_photos"));
    assert_null(json_object_get(rec.attributes, "photos_instance"));
    assert_int_equal(scalar("SELECT allocated_seats FROM instances WHERE id = 2"), 0);
    assert_int_equal(scalar("SELECT count(*) FROM user_groups WHERE user_id = 7"), 1);

    /* Canceled, inside the recovery window: seats and groups stay, entitlements go. */
    const struct db_param expiry[] = {DB_INT(NOW + 30 * 86400)};
    run("UPDATE users SET subscription_status = 'canceled', access_expires_at = $1 WHERE id = 7",
        expiry, 1);
    assert_int_equal(provisioning_sync_user(pool, user_id, NOW, &idp, &report), 0);
    assert_int_equal(json_object_size(rec.attributes), 0);
    assert_int_equal(report.seats_released, 0);
    assert_int_equal(scalar("SELECT allocated_seats FROM instances WHERE id = 1"), 1);

    /* Past the final expiry: every seat and group goes. */
    assert_int_equal(provisioning_sync_user(pool, user_id, NOW + 31 * 86400, &idp, &report), 0);
    assert_int_equal(report.seats_released, 1);
    assert_int_equal(scalar("SELECT count(*) FROM user_groups WHERE user_id = 7"), 0);
    assert_int_equal(scalar("SELECT count(*) FROM instance_assignments WHERE user_id = 7"), 0);
    assert_int_equal(scalar("SELECT allocated_seats FROM instances WHERE id = 1"), 0);

    json_decref(rec.attributes);
    buf_cleanup(&rec.calls);
}

/* Runs after test_signup_then_upgrade, which leaves the user past the final expiry. */
static void test_missing_group_is_named(void **state)
{
    (void)state;
    run("UPDATE users SET subscription_status = 'active', access_expires_at = NULL WHERE id = 7",
        NULL, 0);
    run("INSERT INTO subscription_items (user_id, product_id, stripe_price_id, quantity) "
        "VALUES (7, 3, 'price_photos', 1)",
        NULL, 0);
    struct recorder rec = {0};
    buf_init(&rec.calls);
    struct identity_ops idp = {&rec, add_without_photos_group, rec_remove, rec_replace};
    struct provisioning_report report;
    assert_int_equal(provisioning_sync_user(pool, user_id, NOW, &idp, &report), USHER_ENOTFOUND);
    assert_string_equal(report.problem,
                        "Keycloak group \"photos-main\" of instance \"main\" does not exist; "
                        "create it in the realm (usher check lists every missing group)");
    /* The group that exists was granted; the missing one is not recorded as granted. */
    assert_int_equal(scalar("SELECT count(*) FROM user_groups WHERE user_id = 7"), 1);

    json_t *required = NULL;
    assert_int_equal(provisioning_required_groups(pool, &required), 0);
    char *text = json_dumps(required, JSON_COMPACT);
    assert_string_equal(text, "[{\"instance\":\"foggy\",\"group\":\"cloud-foggy\"},"
                              "{\"instance\":\"main\",\"group\":\"photos-main\"}]");
    free(text);
    json_decref(required);
    json_decref(rec.attributes);
    buf_cleanup(&rec.calls);
}

/* Runs after test_missing_group_is_named: the photos seat is held, its group missing in the
 * realm. Dropping the add-on revokes a group nobody can be in: nothing to do, so the sync
 * succeeds and releases the seat instead of failing and retrying for hours. */
static void test_revoking_a_missing_group_succeeds(void **state)
{
    (void)state;
    assert_int_equal(scalar("SELECT count(*) FROM instance_assignments WHERE user_id = 7 AND "
                            "instance_id = 2"),
                     1);
    run("DELETE FROM subscription_items WHERE user_id = 7 AND product_id = 3", NULL, 0);
    struct recorder rec = {0};
    buf_init(&rec.calls);
    struct identity_ops idp = {&rec, add_without_photos_group, remove_without_photos_group,
                               rec_replace};
    struct provisioning_report report;
    assert_int_equal(provisioning_sync_user(pool, user_id, NOW, &idp, &report), 0);
    assert_string_equal(report.problem, "");
    assert_int_equal(report.seats_released, 1);
    assert_int_equal(scalar("SELECT count(*) FROM instance_assignments WHERE user_id = 7 AND "
                            "instance_id = 2"),
                     0);
    assert_int_equal(scalar("SELECT allocated_seats FROM instances WHERE id = 2"), 0);
    json_decref(rec.attributes);
    buf_cleanup(&rec.calls);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signup_then_upgrade),
        cmocka_unit_test(test_missing_group_is_named),
        cmocka_unit_test(test_revoking_a_missing_group_succeeds),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
