/* test_allocation.c — seat allocation: preference order, caps, waiting seats, release, manual
 * assignment, and the invariants under concurrent allocation. Runs on SQLite, and on
 * PostgreSQL too when USHER_TEST_PG_URL is set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "core/mem.h"
#include "db/db.h"
#include "db/migrate.h"
#include "domain/allocation.h"
#include "testdb.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOW 1790000000LL

struct fixture {
    struct testdb db;
    struct db_pool *pool;
    int64_t product_id;
};

static int64_t insert_id(struct db_pool *pool, const char *sql, const struct db_param *p, int n)
{
    struct db_conn *conn = NULL;
    assert_int_equal(db_acquire(pool, 1000, &conn), 0);
    struct db_result *res = NULL;
    int rc = db_query(conn, sql, p, n, &res);
    if (rc != 0)
        fail_msg("insert failed: %d", rc);
    int64_t id = db_result_int(res, 0, 0);
    db_result_free(res);
    db_release(conn);
    return id;
}

static void exec(struct db_pool *pool, const char *sql, const struct db_param *p, int n)
{
    struct db_conn *conn = NULL;
    assert_int_equal(db_acquire(pool, 1000, &conn), 0);
    assert_int_equal(db_exec(conn, sql, p, n, NULL), 0);
    db_release(conn);
}

static int64_t scalar(struct db_pool *pool, const char *sql, const struct db_param *p, int n)
{
    struct db_conn *conn = NULL;
    assert_int_equal(db_acquire(pool, 1000, &conn), 0);
    struct db_result *res = NULL;
    assert_int_equal(db_query(conn, sql, p, n, &res), 0);
    int64_t v = db_result_int(res, 0, 0);
    db_result_free(res);
    db_release(conn);
    return v;
}

static int64_t add_instance(struct fixture *f, const char *name, int soft, int alloc, int hard)
{
    const struct db_param p[] = {DB_INT(f->product_id), DB_TEXT(name), DB_INT(soft),
                                 DB_INT(alloc),         DB_INT(hard),  DB_INT(NOW)};
    return insert_id(f->pool,
                     "INSERT INTO instances (product_id, name, base_url, soft_cap, "
                     "allocation_cap, hard_cap, created_at, updated_at) "
                     "VALUES ($1, $2, 'https://x.example.test', $3, $4, $5, $6, $6) RETURNING id",
                     p, DB_NPARAMS(p));
}

static int64_t add_user(struct fixture *f, int n)
{
    char name[32];
    snprintf(name, sizeof name, "user%d", n);
    const struct db_param p[] = {DB_TEXT(name), DB_INT(NOW)};
    return insert_id(
        f->pool, "INSERT INTO users (username, date_joined) VALUES ($1, $2) RETURNING id", p, 2);
}

static int64_t seats(struct fixture *f, int64_t instance_id)
{
    const struct db_param p[] = {DB_INT(instance_id)};
    return scalar(f->pool, "SELECT allocated_seats FROM instances WHERE id = $1", p, 1);
}

/* The invariant: every instance's allocated_seats equals its active assignments. */
static void assert_seats_match_assignments(struct fixture *f)
{
    assert_int_equal(scalar(f->pool,
                            "SELECT count(*) FROM instances i WHERE i.allocated_seats <> "
                            "(SELECT count(*) FROM instance_assignments a WHERE a.instance_id = "
                            "i.id AND a.state = 'active')",
                            NULL, 0),
                     0);
}

#define PG_SCHEMA "usher_test_alloc"

static void seed_product(struct fixture *f)
{
    const struct db_param p[] = {DB_INT(NOW)};
    f->product_id = insert_id(f->pool,
                              "INSERT INTO products (name, slug, page, provisioner, created_at, "
                              "updated_at) VALUES ('Cloud', 'cloud', 'plan', 'group', $1, $1) "
                              "RETURNING id",
                              p, 1);
}

/* Each test gets a fresh database of its own (testdb.h). */
static int setup_on(void **state, bool pg)
{
    struct fixture *f = xcalloc(1, sizeof *f);
    testdb_open(&f->db, "alloc", pg, PG_SCHEMA, 12);
    f->pool = f->db.pool;
    seed_product(f);
    *state = f;
    return 0;
}

static int setup_sqlite(void **state)
{
    return setup_on(state, false);
}

static int setup_pg(void **state)
{
    return setup_on(state, true);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    testdb_close(&f->db);
    free(f);
    return 0;
}

static void test_prefers_soft_cap_then_fewest_seats(void **state)
{
    struct fixture *f = *state;
    int64_t a = add_instance(f, "alpha", 1, 2, 3);
    int64_t b = add_instance(f, "bravo", 1, 2, 3);
    struct alloc_result r;
    int64_t got[5];
    for (int i = 0; i < 5; i++) {
        assert_int_equal(alloc_assign(f->pool, add_user(f, i), f->product_id, NOW, &r), 0);
        got[i] = r.instance_id;
        assert_int_equal(r.outcome, i < 4 ? ALLOC_ASSIGNED : ALLOC_WAITING);
    }
    /* alpha (name order) then bravo (still under soft cap), then the fewest seats. */
    assert_true(got[0] == a && got[1] == b);
    assert_int_equal(seats(f, a), 2);
    assert_int_equal(seats(f, b), 2);
    assert_int_equal(got[4], 0);
    int64_t waiting = 0;
    assert_int_equal(alloc_count_waiting(f->pool, &waiting), 0);
    assert_int_equal(waiting, 1);
    assert_seats_match_assignments(f);
}

static void test_assign_is_idempotent_and_release_frees(void **state)
{
    struct fixture *f = *state;
    int64_t a = add_instance(f, "alpha", 5, 5, 5);
    int64_t u = add_user(f, 1);
    struct alloc_result r;
    assert_int_equal(alloc_assign(f->pool, u, f->product_id, NOW, &r), 0);
    assert_int_equal(r.outcome, ALLOC_ASSIGNED);
    assert_int_equal(alloc_assign(f->pool, u, f->product_id, NOW, &r), 0);
    assert_int_equal(r.outcome, ALLOC_ALREADY_ASSIGNED);
    assert_int_equal(seats(f, a), 1);
    assert_int_equal(alloc_release(f->pool, u, f->product_id), 0);
    assert_int_equal(seats(f, a), 0);
    assert_int_equal(alloc_release(f->pool, u, f->product_id), 0); /* nothing left: no-op */
    assert_int_equal(seats(f, a), 0);
    assert_seats_match_assignments(f);
}

static void test_waiting_is_filled_when_capacity_appears(void **state)
{
    struct fixture *f = *state;
    int64_t a = add_instance(f, "alpha", 1, 1, 2);
    struct alloc_result r;
    int64_t u1 = add_user(f, 1), u2 = add_user(f, 2);
    assert_int_equal(alloc_assign(f->pool, u1, f->product_id, NOW, &r), 0);
    assert_int_equal(alloc_assign(f->pool, u2, f->product_id, NOW, &r), 0);
    assert_int_equal(r.outcome, ALLOC_WAITING);
    int filled = -1;
    assert_int_equal(alloc_fill_waiting(f->pool, NOW, &filled, NULL, NULL), 0);
    assert_int_equal(filled, 0);
    const struct db_param p[] = {DB_INT(a)};
    exec(f->pool, "UPDATE instances SET soft_cap = 2, allocation_cap = 2 WHERE id = $1", p, 1);
    assert_int_equal(alloc_fill_waiting(f->pool, NOW, &filled, NULL, NULL), 0);
    assert_int_equal(filled, 1);
    assert_int_equal(seats(f, a), 2);
    assert_seats_match_assignments(f);
}

static void test_inactive_or_manual_only_instances_are_skipped(void **state)
{
    struct fixture *f = *state;
    int64_t off = add_instance(f, "alpha", 5, 5, 5);
    int64_t beta = add_instance(f, "beta", 5, 5, 5);
    const struct db_param p1[] = {DB_INT(off)}, p2[] = {DB_INT(beta)};
    exec(f->pool, "UPDATE instances SET is_active = false WHERE id = $1", p1, 1);
    exec(f->pool, "UPDATE instances SET auto_allocate = false WHERE id = $1", p2, 1);
    struct alloc_result r;
    assert_int_equal(alloc_assign(f->pool, add_user(f, 1), f->product_id, NOW, &r), 0);
    assert_int_equal(r.outcome, ALLOC_WAITING);
}

static void test_manual_may_pass_allocation_cap_not_hard_cap(void **state)
{
    struct fixture *f = *state;
    int64_t a = add_instance(f, "alpha", 0, 0, 2);
    int64_t b = add_instance(f, "bravo", 0, 0, 2);
    assert_int_equal(alloc_assign_manual(f->pool, add_user(f, 1), a, NOW), 0);
    assert_int_equal(alloc_assign_manual(f->pool, add_user(f, 2), a, NOW), 0);
    int64_t u3 = add_user(f, 3);
    assert_int_equal(alloc_assign_manual(f->pool, u3, a, NOW), USHER_ELIMIT);
    assert_int_equal(seats(f, a), 2);
    assert_int_equal(alloc_assign_manual(f->pool, u3, b, NOW), 0);
    /* Moving a seat frees the old one. */
    assert_int_equal(alloc_assign_manual(f->pool, u3, a, NOW), USHER_ELIMIT);
    assert_int_equal(seats(f, b), 1);
    assert_int_equal(alloc_assign_manual(f->pool, u3, 999999, NOW), USHER_ENOTFOUND);
    assert_seats_match_assignments(f);
}

struct worker_arg {
    struct fixture *f;
    int64_t *users;
    int from, to;
    int failures;
};

static void *allocate_range(void *p)
{
    struct worker_arg *w = p;
    for (int i = w->from; i < w->to; i++) {
        struct alloc_result r;
        if (alloc_assign(w->f->pool, w->users[i], w->f->product_id, NOW, &r) != 0)
            w->failures++;
    }
    return NULL;
}

#define CONCURRENT_USERS 240
#define THREADS 8

static void test_concurrent_allocations_hold_the_invariants(void **state)
{
    struct fixture *f = *state;
    int64_t inst[3] = {add_instance(f, "alpha", 20, 40, 50), add_instance(f, "bravo", 30, 60, 70),
                       add_instance(f, "charlie", 10, 25, 25)};
    const int capacity = 40 + 60 + 25;
    int64_t users[CONCURRENT_USERS];
    for (int i = 0; i < CONCURRENT_USERS; i++)
        users[i] = add_user(f, i);
    pthread_t threads[THREADS];
    struct worker_arg args[THREADS];
    for (int t = 0; t < THREADS; t++) {
        args[t] = (struct worker_arg){f, users, t * CONCURRENT_USERS / THREADS,
                                      (t + 1) * CONCURRENT_USERS / THREADS, 0};
        assert_int_equal(pthread_create(&threads[t], NULL, allocate_range, &args[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        assert_int_equal(args[t].failures, 0);
    }
    assert_int_equal(seats(f, inst[0]), 40);
    assert_int_equal(seats(f, inst[1]), 60);
    assert_int_equal(seats(f, inst[2]), 25);
    assert_int_equal(scalar(f->pool,
                            "SELECT count(*) FROM instance_assignments WHERE state = 'active'",
                            NULL, 0),
                     capacity);
    assert_int_equal(scalar(f->pool,
                            "SELECT count(*) FROM instance_assignments "
                            "WHERE state = 'waiting_capacity'",
                            NULL, 0),
                     CONCURRENT_USERS - capacity);
    assert_seats_match_assignments(f);
}

/* The choice of instance must come from instances_choice_idx (migration 0009), not from a
 * sort of every instance of the product: instances grow with the users, and that sort made
 * an allocation 7 times slower at a million users (bench/cost_growth.sh). The SELECT is the
 * subquery of take_best_seat in src/domain/allocation.c, word for word: keep them in step.
 * (SQLite's plan; PostgreSQL's planner picks by table statistics, which a test table of a
 * few rows does not have.) */
static void test_choice_of_instance_reads_the_index(void **state)
{
    struct fixture *f = *state;
    const struct db_param p[] = {DB_INT(f->product_id)};
    struct db_conn *conn = NULL;
    assert_int_equal(db_acquire(f->pool, 1000, &conn), 0);
    struct db_result *res = NULL;
    assert_int_equal(
        db_query(conn,
                 "EXPLAIN QUERY PLAN SELECT id FROM instances WHERE product_id = $1 "
                 "AND is_active AND auto_allocate AND allocated_seats < allocation_cap "
                 "ORDER BY CASE WHEN allocated_seats < soft_cap THEN 0 ELSE 1 END, "
                 "allocated_seats, name LIMIT 1",
                 p, 1, &res),
        0);
    char plan[1024] = "";
    for (int i = 0; i < db_result_rows(res); i++) {
        const char *detail = db_result_text(res, i, db_result_cols(res) - 1);
        strncat(plan, detail ? detail : "", sizeof plan - strlen(plan) - 2);
        strncat(plan, ";", sizeof plan - strlen(plan) - 1);
    }
    db_result_free(res);
    db_release(conn);
    if (!strstr(plan, "USING INDEX instances_choice_idx") || strstr(plan, "TEMP B-TREE"))
        fail_msg("the choice of instance does not read instances_choice_idx: %s", plan);
}

#define ON_SQLITE(fn) cmocka_unit_test_setup_teardown(fn, setup_sqlite, teardown)
#define ON_PG(fn) cmocka_unit_test_setup_teardown(fn, setup_pg, teardown)

int main(void)
{
    const struct CMUnitTest sqlite_tests[] = {
        ON_SQLITE(test_prefers_soft_cap_then_fewest_seats),
        ON_SQLITE(test_assign_is_idempotent_and_release_frees),
        ON_SQLITE(test_waiting_is_filled_when_capacity_appears),
        ON_SQLITE(test_inactive_or_manual_only_instances_are_skipped),
        ON_SQLITE(test_manual_may_pass_allocation_cap_not_hard_cap),
        ON_SQLITE(test_concurrent_allocations_hold_the_invariants),
        ON_SQLITE(test_choice_of_instance_reads_the_index),
    };
    int failed = cmocka_run_group_tests_name("allocation (sqlite)", sqlite_tests, NULL, NULL);
    if (!testdb_pg_url()) {
        printf("allocation (postgres): skipped: USHER_TEST_PG_URL unset\n");
        return failed;
    }
    const struct CMUnitTest pg_tests[] = {
        ON_PG(test_prefers_soft_cap_then_fewest_seats),
        ON_PG(test_assign_is_idempotent_and_release_frees),
        ON_PG(test_waiting_is_filled_when_capacity_appears),
        ON_PG(test_inactive_or_manual_only_instances_are_skipped),
        ON_PG(test_manual_may_pass_allocation_cap_not_hard_cap),
        ON_PG(test_concurrent_allocations_hold_the_invariants),
    };
    return failed + cmocka_run_group_tests_name("allocation (postgres)", pg_tests, NULL, NULL);
}
