/* test_recovery.c — account recovery's rules (domain/recovery.h) on SQLite and PostgreSQL:
 * the state of an account by status and final date, finding it by username or email, the
 * identifier syntax, the previous plan priced with today's catalog, and the queued task. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "domain/recovery.h"
#include "core/err.h"
#include "core/messages.h"
#include "testdb.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define PG_SCHEMA "usher_test_recovery"
#define NOW 1790000000LL
#define DAY 86400

static bool use_pg;
static struct testdb db;

static void test_classify(void **state)
{
    (void)state;
    assert_int_equal(recovery_classify("canceled", NOW + 1, NOW), RECOVERY_RECOVERABLE);
    assert_int_equal(recovery_classify("past_due", NOW + DAY, NOW), RECOVERY_RECOVERABLE);
    assert_int_equal(recovery_classify("canceled", NOW, NOW), RECOVERY_CLOSED);
    assert_int_equal(recovery_classify("past_due", NOW - 1, NOW), RECOVERY_CLOSED);
    assert_int_equal(recovery_classify("canceled", 0, NOW), RECOVERY_NONE);
    assert_int_equal(recovery_classify("expired", 0, NOW), RECOVERY_CLOSED);
    assert_int_equal(recovery_classify("active", NOW + DAY, NOW), RECOVERY_ACTIVE);
    assert_int_equal(recovery_classify("trialing", 0, NOW), RECOVERY_ACTIVE);
    assert_int_equal(recovery_classify("", 0, NOW), RECOVERY_NONE);
    assert_int_equal(recovery_classify("incomplete", 0, NOW), RECOVERY_NONE);
    assert_int_equal(recovery_classify(NULL, 0, NOW), RECOVERY_NONE);
}

static void test_identifier_syntax(void **state)
{
    (void)state;
    assert_true(recovery_identifier_valid("ada.lovelace"));
    assert_true(recovery_identifier_valid("Ada@Example.TEST"));
    assert_false(recovery_identifier_valid(""));
    assert_false(recovery_identifier_valid("ab"));
    assert_false(recovery_identifier_valid(NULL));
    assert_false(recovery_identifier_valid("<script>@x"));
    char long_one[300];
    memset(long_one, 'a', sizeof long_one - 1);
    long_one[sizeof long_one - 1] = '\0';
    assert_false(recovery_identifier_valid(long_one));
}

static int open_db(void **state)
{
    (void)state;
    testdb_open(&db, "recovery", use_pg, PG_SCHEMA, 2);
    const struct db_param t[] = {DB_INT(NOW)};
    testdb_exec(db.pool,
                "INSERT INTO products (id, name, slug, page, provisioner, requires_instance, "
                "is_active, created_at, updated_at) VALUES "
                "(1, 'Cloud', 'cloud', 'plan', 'group', true, true, $1, $1), "
                "(2, 'Storage', 'storage', 'storage', 'standalone', false, true, $1, $1)",
                t, 1);
    testdb_exec(db.pool,
                "INSERT INTO product_prices (product_id, stripe_price_id, billing_period, amount, "
                "currency, is_active, created_at, updated_at) VALUES "
                "(1, 'price_cloud', 'monthly', 1000, 'USD', true, $1, $1), "
                "(2, 'price_storage', 'monthly', 300, 'USD', true, $1, $1), "
                "(2, 'price_old', 'monthly', 200, 'USD', false, $1, $1)",
                t, 1);
    const struct db_param u[] = {DB_INT(NOW + 10 * DAY)};
    testdb_exec(db.pool,
                "INSERT INTO users (id, username, email, date_joined, subscription_status, "
                "access_expires_at, previous_items) VALUES "
                "(1, 'gone', 'gone@example.test', 1, 'canceled', $1, "
                "'[{\"price\":\"price_cloud\",\"quantity\":1},"
                "{\"price\":\"price_storage\",\"quantity\":3},"
                "{\"price\":\"price_old\",\"quantity\":1}]'), "
                "(2, 'late', 'late@example.test', 1, 'past_due', $1, NULL), "
                "(3, 'live', 'live@example.test', 1, 'active', NULL, NULL), "
                "(4, 'olden', 'olden@example.test', 1, 'canceled', $1, "
                "'[{\"price\":\"price_old\",\"quantity\":1}]')",
                u, 1);
    testdb_exec(db.pool,
                "INSERT INTO subscription_items (user_id, product_id, stripe_price_id, quantity) "
                "VALUES (2, 1, 'price_cloud', 1)",
                NULL, 0);
    return 0;
}

static int close_db(void **state)
{
    (void)state;
    testdb_close(&db);
    return 0;
}

static void test_find(void **state)
{
    (void)state;
    struct recovery_account a;
    assert_int_equal(recovery_find(db.pool, "  GONE ", NOW, &a), 0);
    assert_int_equal(a.id, 1);
    assert_int_equal(a.state, RECOVERY_RECOVERABLE);
    recovery_account_cleanup(&a);
    assert_int_equal(recovery_find(db.pool, "Late@Example.test", NOW, &a), 0);
    assert_int_equal(a.id, 2);
    assert_string_equal(a.username, "late");
    recovery_account_cleanup(&a);
    assert_int_equal(recovery_find(db.pool, "live", NOW, &a), 0);
    assert_int_equal(a.state, RECOVERY_ACTIVE);
    recovery_account_cleanup(&a);
    /* Past the final date: closed, even before the expiry job has run. */
    assert_int_equal(recovery_find(db.pool, "gone", NOW + 11 * DAY, &a), 0);
    assert_int_equal(a.state, RECOVERY_CLOSED);
    recovery_account_cleanup(&a);
    assert_int_equal(recovery_find(db.pool, "nobody", NOW, &a), 0);
    assert_int_equal(a.id, 0);
    assert_int_equal(a.state, RECOVERY_NONE);
    recovery_account_cleanup(&a);
    assert_int_equal(recovery_find(db.pool, "not an identifier!", NOW, &a), 0);
    assert_int_equal(a.id, 0);
    recovery_account_cleanup(&a);
}

static void test_previous_plan(void **state)
{
    (void)state;
    json_t *plan = NULL;
    /* The items kept at cancellation, priced now; the retired price is left out. */
    assert_int_equal(recovery_previous_plan(db.pool, 1, &plan), 0);
    char *text = json_dumps(plan, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(text, "{\"cycle\":\"monthly\",\"lines\":["
                              "{\"label\":\"$10.00 / month\",\"name\":\"Cloud\",\"price_id\":"
                              "\"price_cloud\",\"quantity\":1},"
                              "{\"label\":\"$9.00 / month\",\"name\":\"Storage\",\"price_id\":"
                              "\"price_storage\",\"quantity\":3}],"
                              "\"total_label\":\"$19.00 / month\"}");
    free(text);
    json_decref(plan);
    /* A failed payment keeps the cached items instead. */
    assert_int_equal(recovery_previous_plan(db.pool, 2, &plan), 0);
    assert_int_equal(json_array_size(json_object_get(plan, "lines")), 1);
    json_decref(plan);
    /* Nothing of the plan can be bought again. */
    assert_int_equal(recovery_previous_plan(db.pool, 4, &plan), USHER_ENOTFOUND);
}

static void test_request_code_queues_one_task(void **state)
{
    (void)state;
    const char *hash = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    assert_int_equal(recovery_request_code(db.pool, "gone", hash, NOW), 0);
    assert_int_equal(
        testdb_scalar(db.pool, "SELECT count(*) FROM tasks WHERE name = '" RECOVERY_CODE_TASK "'"),
        1);
}

int main(void)
{
    /* Plan labels ("$10.00 / month") take their words from the message table. */
    if (messages_load(getenv("USHER_DATA_DIR"), NULL) != 0)
        return 1;
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_identifier_syntax),
    };
    const struct CMUnitTest db_tests[] = {
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_previous_plan),
        cmocka_unit_test(test_request_code_queues_one_task),
    };
    int failed = cmocka_run_group_tests_name("recovery/rules", pure, NULL, NULL);
    use_pg = false;
    failed += cmocka_run_group_tests_name("recovery/sqlite", db_tests, open_db, close_db);
    const char *pg = getenv("USHER_TEST_PG_URL");
    if (!pg || !*pg) {
        messages_unload();
        return failed;
    }
    use_pg = true;
    failed += cmocka_run_group_tests_name("recovery/postgres", db_tests, open_db, close_db);
    messages_unload();
    return failed;
}
