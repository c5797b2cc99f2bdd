/*
 * test_rate_limit.c — fixed-window counters: counting, the limit, the window reset, bucket
 * independence, rollback, purging, and exact counts under concurrent hits. Runs over SQLite
 * (a fresh temporary database per test) and over PostgreSQL when USHER_TEST_PG_URL names a
 * database (each test then works in a fresh schema, usher_test_rate_limit).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/err.h"
#include "core/mem.h"
#include "db/db.h"
#include "db/migrate.h"
#include "testdb.h"
#include "domain/rate_limit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PG_SCHEMA "usher_test_rate_limit"
#define T0 1790000000LL

static struct db_pool *pool;
static bool use_pg;

/* ---- per-test databases ---- */

static struct testdb db;

static int setup(void **state)
{
    (void)state;
    testdb_open(&db, "rate-limit", use_pg, PG_SCHEMA, 8);
    pool = db.pool;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    testdb_close(&db);
    pool = NULL;
    return 0;
}

static struct rate_limit_result hit(const char *bucket, int64_t limit, int64_t window, int64_t now)
{
    struct rate_limit_result r;
    assert_int_equal(rate_limit_hit_pool(pool, bucket, limit, window, now, &r), 0);
    return r;
}

static int64_t stored_count(const char *bucket)
{
    struct db_conn *c = NULL;
    assert_int_equal(db_acquire(pool, 5000, &c), 0);
    const struct db_param p[] = {DB_TEXT(bucket)};
    struct db_result *res = NULL;
    assert_int_equal(db_query(c, "SELECT count FROM rate_limits WHERE bucket = $1", p, 1, &res), 0);
    int64_t n = db_result_rows(res) ? db_result_int(res, 0, 0) : -1;
    db_result_free(res);
    db_release(c);
    return n;
}

/* ---- tests ---- */

static void test_counts_up_to_the_limit(void **state)
{
    (void)state;
    for (int i = 1; i <= 3; i++) {
        struct rate_limit_result r = hit("t:a", 3, 60, T0 + i);
        assert_int_equal(r.count, i);
        assert_true(r.allowed);
        assert_int_equal(r.window_start, T0 + 1);
    }
    struct rate_limit_result r = hit("t:a", 3, 60, T0 + 10);
    assert_int_equal(r.count, 4);
    assert_false(r.allowed);
    assert_int_equal(r.retry_after, T0 + 1 + 60 - (T0 + 10));
    /* Refused hits still count. */
    r = hit("t:a", 3, 60, T0 + 11);
    assert_int_equal(r.count, 5);
    assert_false(r.allowed);
}

static void test_window_resets(void **state)
{
    (void)state;
    hit("t:w", 2, 60, T0);
    hit("t:w", 2, 60, T0 + 30);
    struct rate_limit_result r = hit("t:w", 2, 60, T0 + 59); /* last second of the window */
    assert_int_equal(r.count, 3);
    assert_false(r.allowed);
    assert_int_equal(r.retry_after, 1);
    r = hit("t:w", 2, 60, T0 + 60); /* a new window starts */
    assert_int_equal(r.count, 1);
    assert_true(r.allowed);
    assert_int_equal(r.window_start, T0 + 60);
    r = hit("t:w", 2, 60, T0 + 500);
    assert_int_equal(r.count, 1);
    assert_int_equal(r.window_start, T0 + 500);
}

static void test_buckets_are_independent(void **state)
{
    (void)state;
    for (int i = 0; i < 5; i++)
        hit("t:x", 1, 60, T0);
    struct rate_limit_result r = hit("t:y", 1, 60, T0);
    assert_int_equal(r.count, 1);
    assert_true(r.allowed);
    assert_int_equal(stored_count("t:x"), 5);
    assert_int_equal(stored_count("t:y"), 1);
}

static void test_limit_zero_refuses_everything(void **state)
{
    (void)state;
    struct rate_limit_result r = hit("t:z", 0, 60, T0);
    assert_false(r.allowed);
}

static void test_invalid_arguments(void **state)
{
    (void)state;
    struct rate_limit_result r;
    assert_int_equal(rate_limit_hit_pool(pool, "", 1, 60, T0, &r), USHER_EINVAL);
    assert_int_equal(rate_limit_hit_pool(pool, NULL, 1, 60, T0, &r), USHER_EINVAL);
    assert_int_equal(rate_limit_hit_pool(pool, "t:a", -1, 60, T0, &r), USHER_EINVAL);
    assert_int_equal(rate_limit_hit_pool(pool, "t:a", 1, 0, T0, &r), USHER_EINVAL);
    char longname[RATE_LIMIT_BUCKET_MAX + 2];
    memset(longname, 'b', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(rate_limit_hit_pool(pool, longname, 1, 60, T0, &r), USHER_EINVAL);
    longname[RATE_LIMIT_BUCKET_MAX] = '\0';
    assert_int_equal(rate_limit_hit_pool(pool, longname, 1, 60, T0, &r), 0);
}

static void test_rolled_back_hit_does_not_count(void **state)
{
    (void)state;
    hit("t:r", 5, 60, T0);
    struct db_conn *c = NULL;
    assert_int_equal(db_acquire(pool, 5000, &c), 0);
    assert_int_equal(db_begin(c, DB_TX_WRITE), 0);
    struct rate_limit_result r;
    assert_int_equal(rate_limit_hit(c, "t:r", 5, 60, T0 + 1, &r), 0);
    assert_int_equal(r.count, 2);
    assert_int_equal(db_rollback(c), 0);
    db_release(c);
    assert_int_equal(stored_count("t:r"), 1);
}

static void test_purge(void **state)
{
    (void)state;
    hit("t:old", 5, 60, T0);
    hit("t:new", 5, 60, T0 + 3600);
    struct db_conn *c = NULL;
    assert_int_equal(db_acquire(pool, 5000, &c), 0);
    int64_t deleted = 0;
    assert_int_equal(rate_limit_purge(c, T0 + 3600, &deleted), 0);
    db_release(c);
    assert_int_equal(deleted, 1);
    assert_int_equal(stored_count("t:old"), -1);
    assert_int_equal(stored_count("t:new"), 1);
}

#define THREADS 8
#define HITS_PER_THREAD 25

struct hitter {
    int64_t counts[HITS_PER_THREAD];
    int failures;
};

static void *hammer(void *arg)
{
    struct hitter *h = arg;
    for (int i = 0; i < HITS_PER_THREAD; i++) {
        struct rate_limit_result r;
        if (rate_limit_hit_pool(pool, "t:concurrent", 100, 3600, T0, &r) != 0)
            h->failures++;
        h->counts[i] = r.count;
    }
    return NULL;
}

static void test_concurrent_hits_are_counted_exactly(void **state)
{
    (void)state;
    static struct hitter hitters[THREADS];
    memset(hitters, 0, sizeof hitters);
    pthread_t threads[THREADS];
    for (int t = 0; t < THREADS; t++)
        assert_int_equal(pthread_create(&threads[t], NULL, hammer, &hitters[t]), 0);
    for (int t = 0; t < THREADS; t++)
        pthread_join(threads[t], NULL);
    /* Every count 1..N was handed out exactly once. */
    int total = THREADS * HITS_PER_THREAD;
    char *seen = xcalloc((size_t)total + 1, 1);
    int allowed = 0;
    for (int t = 0; t < THREADS; t++) {
        assert_int_equal(hitters[t].failures, 0);
        for (int i = 0; i < HITS_PER_THREAD; i++) {
            int64_t n = hitters[t].counts[i];
            assert_true(n >= 1 && n <= total);
            assert_int_equal(seen[n], 0);
            seen[n] = 1;
            allowed += n <= 100;
        }
    }
    free(seen);
    assert_int_equal(allowed, 100);
    assert_int_equal(stored_count("t:concurrent"), total);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

static const struct CMUnitTest tests[] = {
    T(test_counts_up_to_the_limit),
    T(test_window_resets),
    T(test_buckets_are_independent),
    T(test_limit_zero_refuses_everything),
    T(test_invalid_arguments),
    T(test_rolled_back_hit_does_not_count),
    T(test_purge),
    T(test_concurrent_hits_are_counted_exactly),
};

int main(void)
{
    use_pg = false;
    int failed = cmocka_run_group_tests_name("rate_limit/sqlite", tests, NULL, NULL);
    const char *pg = getenv("USHER_TEST_PG_URL");
    if (!pg || !*pg) {
        printf("skipped: USHER_TEST_PG_URL unset (PostgreSQL half of test_rate_limit)\n");
        return failed;
    }
    use_pg = true;
    failed += cmocka_run_group_tests_name("rate_limit/postgres", tests, NULL, NULL);
    return failed;
}
