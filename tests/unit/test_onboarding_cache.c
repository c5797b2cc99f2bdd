/*
 * test_onboarding_cache.c — the onboarding listings cache (domain/onboarding_cache.h) on
 * SQLite and PostgreSQL: the same listings as the database, any catalog change seen on the
 * next lookup (whatever made it: the catalog loader or plain SQL), hits shared.
 */
#include "core/err.h"
#include "core/mem.h"
#include "db/db.h"
#include "domain/catalog.h"
#include "domain/onboarding.h"
#include "domain/onboarding_cache.h"
#include "testdb.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#define PG_SCHEMA "test_onboarding_cache"

static bool use_pg;
static struct testdb db;
static struct onboarding_cache *cache;

static int setup(void **state)
{
    (void)state;
    testdb_open(&db, "onboarding_cache", use_pg, PG_SCHEMA, 2);
    char *path = xasprintf("%s/devstack/catalog.json", testdb_data_dir());
    struct catalog_apply_report report;
    assert_int_equal(catalog_apply_file(db.pool, path, &report), 0);
    free(path);
    cache = onboarding_cache_new();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    onboarding_cache_free(cache);
    cache = NULL;
    testdb_close(&db);
    return 0;
}

/* Runs sql, then waits out the window in which an earlier version reading may be reused. */
static void exec_sql(const char *sql)
{
    struct db_conn *conn = NULL;
    assert_int_equal(db_acquire(db.pool, DB_WAIT_MS, &conn), 0);
    assert_int_equal(db_exec(conn, sql, NULL, 0, NULL), 0);
    db_release(conn);
    struct timespec pause = {0, 2 * ONBOARDING_CACHE_VERSION_REUSE_NS};
    nanosleep(&pause, NULL);
}

/* The cached listing equals the uncached one. */
static void assert_same_as_database(const char *page, const char *parent)
{
    json_t *direct = NULL, *cached = NULL;
    assert_int_equal(onboarding_list(db.pool, page, parent, &direct), 0);
    assert_int_equal(onboarding_list_cached(cache, db.pool, page, parent, &cached), 0);
    assert_true(json_equal(direct, cached));
    json_decref(direct);
    json_decref(cached);
}

static void test_same_listings_as_the_database(void **state)
{
    (void)state;
    for (int round = 0; round < 2; round++) { /* a miss, then a hit */
        assert_same_as_database("plan", NULL);
        assert_same_as_database("addon", NULL);
        assert_same_as_database("storage", "nextcloud");
        assert_same_as_database("storage", "no-such-plan");
    }
    json_t *plans = NULL;
    assert_int_equal(onboarding_list_cached(cache, db.pool, "plan", NULL, &plans), 0);
    assert_true(json_array_size(plans) > 0);
    json_decref(plans);
    assert_int_equal(onboarding_list_cached(cache, db.pool, "bogus", NULL, &plans), USHER_EINVAL);
    assert_null(plans);
}

static void test_changes_are_seen_on_the_next_lookup(void **state)
{
    (void)state;
    assert_same_as_database("plan", NULL); /* cached now */
    exec_sql("UPDATE products SET name = 'Renamed plan' WHERE slug = 'nextcloud'");
    assert_same_as_database("plan", NULL);
    exec_sql("UPDATE product_prices SET is_active = false WHERE product_id = "
             "(SELECT id FROM products WHERE slug = 'nextcloud')");
    assert_same_as_database("plan", NULL);
    exec_sql("DELETE FROM product_prices WHERE product_id = "
             "(SELECT id FROM products WHERE slug = 'nextcloud')");
    assert_same_as_database("plan", NULL);

    json_t *plans = NULL;
    assert_int_equal(onboarding_list_cached(cache, db.pool, "plan", NULL, &plans), 0);
    bool renamed = false;
    size_t i;
    json_t *p;
    json_array_foreach (plans, i, p)
        renamed |= !strcmp(json_string_value(json_object_get(p, "name")), "Renamed plan");
    assert_true(renamed);
    json_decref(plans);
}

static void test_lookups_share_one_listing_until_a_change(void **state)
{
    (void)state;
    json_t *first = NULL, *second = NULL, *third = NULL;
    assert_int_equal(onboarding_list_cached(cache, db.pool, "plan", NULL, &first), 0);
    assert_int_equal(onboarding_list_cached(cache, db.pool, "plan", NULL, &second), 0);
    assert_ptr_equal(first, second); /* a hit: no query for the listing, no copy */
    exec_sql("UPDATE products SET display_order = display_order + 1 WHERE slug = 'teams'");
    assert_int_equal(onboarding_list_cached(cache, db.pool, "plan", NULL, &third), 0);
    assert_ptr_not_equal(first, third); /* rebuilt after the change */
    assert_true(json_array_size(first) > 0); /* the old one stays valid while referenced */
    json_decref(first);
    json_decref(second);
    json_decref(third);
}

static void test_many_parents_stay_bounded(void **state)
{
    (void)state;
    for (int i = 0; i < 200; i++) { /* far more keys than entries: old ones are replaced */
        char parent[32];
        snprintf(parent, sizeof parent, "plan-%d", i);
        json_t *list = NULL;
        assert_int_equal(onboarding_list_cached(cache, db.pool, "storage", parent, &list), 0);
        assert_int_equal(json_array_size(list), 0);
        json_decref(list);
    }
    assert_same_as_database("storage", "nextcloud");
}

static void test_without_a_cache_reads_the_database(void **state)
{
    (void)state;
    json_t *direct = NULL, *uncached = NULL;
    assert_int_equal(onboarding_list(db.pool, "addon", NULL, &direct), 0);
    assert_int_equal(onboarding_list_cached(NULL, db.pool, "addon", NULL, &uncached), 0);
    assert_true(json_equal(direct, uncached));
    json_decref(direct);
    json_decref(uncached);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

static const struct CMUnitTest tests[] = {
    T(test_same_listings_as_the_database),
    T(test_changes_are_seen_on_the_next_lookup),
    T(test_lookups_share_one_listing_until_a_change),
    T(test_many_parents_stay_bounded),
    T(test_without_a_cache_reads_the_database),
};

int main(void)
{
    use_pg = false;
    int failed = cmocka_run_group_tests_name("onboarding_cache/sqlite", tests, NULL, NULL);
    if (!testdb_pg_url()) {
        printf("skipped: USHER_TEST_PG_URL unset (PostgreSQL half of test_onboarding_cache)\n");
        return failed;
    }
    use_pg = true;
    failed += cmocka_run_group_tests_name("onboarding_cache/postgres", tests, NULL, NULL);
    return failed;
}
