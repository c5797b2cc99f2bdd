/* test_expiry.c — the final expiry (domain/expiry.h): the decision as a pure function, and on
 * each database a closure that is complete, idempotent, survives an identity provider outage
 * half-way, leaves a recovered user alone, and the periodic scan that enqueues each closure
 * once and at most `limit` per run. The identity provider is a recorder that can fail. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/err.h"
#include "db/db.h"
#include "domain/expiry.h"
#include "testdb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1790000000LL
#define DAY 86400
#define PG_SCHEMA "usher_test_expiry"

static bool use_pg;
static struct testdb tdb;
static struct db_pool *pool;

struct idp {
    struct buf calls;
    int fail_with; /* returned by delete_user while non-zero */
    bool gone; /* the user was deleted already */
};

static int idp_delete(void *ctx, const char *ref)
{
    struct idp *r = ctx;
    buf_printf(&r->calls, "delete %s;", ref);
    if (r->fail_with)
        return r->fail_with;
    if (r->gone)
        return USHER_ENOTFOUND;
    r->gone = true;
    return 0;
}

static int idp_exists(void *ctx, const char *ref, bool *exists)
{
    (void)ref;
    *exists = !((struct idp *)ctx)->gone;
    return 0;
}

static void run(const char *sql, const struct db_param *p, int n)
{
    testdb_exec(pool, sql, p, n);
}

static int64_t scalar(const char *sql)
{
    return testdb_scalar(pool, sql);
}

static const char *text_of(const char *sql, char *out, size_t size)
{
    struct db_result *res = NULL;
    assert_int_equal(db_pool_query(pool, sql, NULL, 0, &res), 0);
    const char *v = db_result_rows(res) ? db_result_text(res, 0, 0) : NULL;
    snprintf(out, size, "%s", v ? v : "(null)");
    db_result_free(res);
    return out;
}

/* User 7 (ada): canceled, final expiry a day ago, a seat on foggy with its group, an extra
 * group, a session, a Keycloak link. User 8 (bob): canceled, final expiry tomorrow. */
static int setup(void **state)
{
    (void)state;
    testdb_open(&tdb, "expiry", use_pg, PG_SCHEMA, 3);
    pool = tdb.pool;
    const struct db_param t[] = {DB_INT(NOW), DB_INT(NOW - DAY), DB_INT(NOW + DAY)};
    run("INSERT INTO products (id, name, slug, page, provisioner, requires_instance, created_at, "
        "updated_at) VALUES (1, 'Cloud', 'cloud', 'plan', 'group', true, $1, $1)",
        t, 1);
    run("INSERT INTO instances (id, product_id, name, base_url, allocated_seats, created_at, "
        "updated_at) VALUES (1, 1, 'foggy', 'https://foggy.example.test', 1, $1, $1)",
        t, 1);
    run("INSERT INTO groups (id, name) VALUES (1, 'cloud-foggy'), (2, 'beta-testers')", NULL, 0);
    run("INSERT INTO instance_groups (instance_id, group_id) VALUES (1, 1)", NULL, 0);
    run("INSERT INTO users (id, username, email, keycloak_id, subscription_status, date_joined, "
        "canceled_at, access_expires_at, previous_items) VALUES "
        "(7, 'ada', 'ada@example.test', 'kc-7', 'canceled', $1, $1, $2, '[]'), "
        "(8, 'bob', 'bob@example.test', 'kc-8', 'canceled', $1, $1, $3, '[]')",
        t, 3);
    run("INSERT INTO instance_assignments (user_id, product_id, instance_id, state, assigned_at, "
        "created_at) VALUES (7, 1, 1, 'active', $1, $1)",
        t, 1);
    run("INSERT INTO user_groups (user_id, group_id) VALUES (7, 1), (7, 2)", NULL, 0);
    run("INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, last_seen_at) "
        "VALUES ('h7', 7, 'c', $1, $1)",
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

static void test_decide(void **state)
{
    (void)state;
    assert_int_equal(expiry_decide("canceled", NOW - 1, NOW, false), EXPIRY_DUE);
    assert_int_equal(expiry_decide("canceled", NOW, NOW, false), EXPIRY_DUE);
    assert_int_equal(expiry_decide("past_due", NOW - DAY, NOW, false), EXPIRY_DUE);
    assert_int_equal(expiry_decide("canceled", NOW + 1, NOW, true), EXPIRY_NOT_DUE);
    assert_int_equal(expiry_decide("past_due", 0, NOW, true), EXPIRY_NOT_DUE); /* unset */
    assert_int_equal(expiry_decide("active", NOW - DAY, NOW, true), EXPIRY_NOT_DUE);
    assert_int_equal(expiry_decide("trialing", NOW - DAY, NOW, true), EXPIRY_NOT_DUE);
    assert_int_equal(expiry_decide("", NOW - DAY, NOW, true), EXPIRY_NOT_DUE);
    assert_int_equal(expiry_decide(NULL, NOW - DAY, NOW, true), EXPIRY_NOT_DUE);
    assert_int_equal(expiry_decide("expired", NOW - DAY, NOW, true), EXPIRY_UNFINISHED);
    assert_int_equal(expiry_decide("expired", NOW - DAY, NOW, false), EXPIRY_DONE);
}

static void assert_closed(int64_t audit_rows)
{
    char buf[64];
    assert_string_equal(
        text_of("SELECT subscription_status FROM users WHERE id = 7", buf, sizeof buf), "expired");
    assert_string_equal(text_of("SELECT keycloak_id FROM users WHERE id = 7", buf, sizeof buf),
                        "(null)");
    assert_string_equal(text_of("SELECT username FROM users WHERE id = 7", buf, sizeof buf), "ada");
    assert_int_equal(scalar("SELECT access_expires_at FROM users WHERE id = 7"), NOW - DAY);
    assert_int_equal(scalar("SELECT count(*) FROM instance_assignments WHERE user_id = 7"), 0);
    assert_int_equal(scalar("SELECT allocated_seats FROM instances WHERE id = 1"), 0);
    assert_int_equal(scalar("SELECT count(*) FROM user_groups WHERE user_id = 7"), 0);
    assert_int_equal(scalar("SELECT count(*) FROM sessions WHERE user_id = 7"), 0);
    assert_int_equal(scalar("SELECT count(*) FROM audit_log WHERE action = 'account.expired' "
                            "AND target_type = 'user' AND target_id = '7'"),
                     audit_rows);
}

static void test_close_then_rerun_changes_nothing(void **state)
{
    (void)state;
    struct idp rec = {0};
    buf_init(&rec.calls);
    struct expiry_identity idp = {&rec, idp_delete, idp_exists};

    struct expiry_plan plan;
    assert_int_equal(expiry_plan_read(pool, 7, NOW, &plan), 0);
    assert_int_equal(plan.state, EXPIRY_DUE);
    assert_string_equal(plan.keycloak_id, "kc-7");
    assert_int_equal(json_array_size(plan.seats), 1);
    assert_int_equal(json_array_size(plan.groups), 2);
    assert_int_equal(plan.sessions, 1);
    expiry_plan_cleanup(&plan);

    struct expiry_report rep;
    assert_int_equal(expiry_close_user(pool, 7, NOW, "worker", &idp, &rep), 0);
    assert_int_equal(rep.state, EXPIRY_DUE);
    assert_true(rep.decided);
    assert_int_equal(rep.keycloak, EXPIRY_KC_DELETED);
    assert_int_equal(rep.seats_released, 1);
    assert_int_equal(rep.groups_removed, 2); /* the seat's group and the other one */
    assert_int_equal(rep.sessions_ended, 1);
    assert_string_equal(rec.calls.data, "delete kc-7;");
    assert_closed(1);
    char detail[512];
    text_of("SELECT detail FROM audit_log WHERE action = 'account.expired'", detail, sizeof detail);
    assert_non_null(strstr(detail, "\"status_before\":\"canceled\""));
    assert_non_null(strstr(detail, "\"keycloak_id\":\"kc-7\""));
    assert_non_null(strstr(detail, "\"reason\":\"final expiry passed\""));

    /* Again: nothing to do, no call, no second audit row. */
    assert_int_equal(expiry_close_user(pool, 7, NOW + 60, "cli", &idp, &rep), 0);
    assert_int_equal(rep.state, EXPIRY_DONE);
    assert_false(rep.decided);
    assert_string_equal(rec.calls.data, "delete kc-7;");
    assert_closed(1);

    /* Bob's final expiry is tomorrow: refused, untouched. */
    assert_int_equal(expiry_close_user(pool, 8, NOW, "worker", &idp, &rep), 0);
    assert_int_equal(rep.state, EXPIRY_NOT_DUE);
    char buf[32];
    assert_string_equal(
        text_of("SELECT subscription_status FROM users WHERE id = 8", buf, sizeof buf), "canceled");
    buf_cleanup(&rec.calls);
}

static void test_outage_half_way_then_completed(void **state)
{
    (void)state;
    struct idp rec = {.fail_with = USHER_EUPSTREAM};
    buf_init(&rec.calls);
    struct expiry_identity idp = {&rec, idp_delete, idp_exists};
    struct expiry_report rep;
    assert_int_equal(expiry_close_user(pool, 7, NOW, "worker", &idp, &rep), USHER_EUPSTREAM);
    assert_non_null(strstr(rep.problem, "Keycloak"));
    /* The decision stands; what needs the provider waits. */
    char buf[32];
    assert_string_equal(
        text_of("SELECT subscription_status FROM users WHERE id = 7", buf, sizeof buf), "expired");
    assert_string_equal(text_of("SELECT keycloak_id FROM users WHERE id = 7", buf, sizeof buf),
                        "kc-7");
    assert_int_equal(scalar("SELECT allocated_seats FROM instances WHERE id = 1"), 1);
    struct expiry_plan plan;
    assert_int_equal(expiry_plan_read(pool, 7, NOW, &plan), 0);
    assert_int_equal(plan.state, EXPIRY_UNFINISHED);
    expiry_plan_cleanup(&plan);
    int64_t closed = -1, pending = -1;
    assert_int_equal(expiry_counts(pool, NOW, &closed, &pending), 0);
    assert_int_equal(closed, 1);
    assert_int_equal(pending, 1);

    /* Deleted by the provider, but the link not cleared (a crash): a 404 counts as done. */
    rec.fail_with = 0;
    rec.gone = true;
    assert_int_equal(expiry_close_user(pool, 7, NOW + 30, "worker", &idp, &rep), 0);
    assert_int_equal(rep.state, EXPIRY_UNFINISHED);
    assert_false(rep.decided);
    assert_int_equal(rep.keycloak, EXPIRY_KC_ALREADY_GONE);
    assert_int_equal(rep.seats_released, 1);
    assert_closed(1);
    assert_int_equal(expiry_counts(pool, NOW, &closed, &pending), 0);
    assert_int_equal(pending, 0);
    buf_cleanup(&rec.calls);
}

static void test_recovered_user_is_left_alone(void **state)
{
    (void)state;
    run("UPDATE users SET subscription_status = 'active', access_expires_at = NULL WHERE id = 7",
        NULL, 0);
    struct idp rec = {0};
    buf_init(&rec.calls);
    struct expiry_identity idp = {&rec, idp_delete, idp_exists};
    struct expiry_report rep;
    assert_int_equal(expiry_close_user(pool, 7, NOW, "worker", &idp, &rep), 0);
    assert_int_equal(rep.state, EXPIRY_NOT_DUE);
    assert_int_equal(rec.calls.len, 0);
    assert_int_equal(scalar("SELECT allocated_seats FROM instances WHERE id = 1"), 1);
    assert_int_equal(scalar("SELECT count(*) FROM audit_log"), 0);
    /* Without a provider, a linked user cannot be closed: a configuration error, retried. */
    run("UPDATE users SET subscription_status = 'past_due', access_expires_at = $1 WHERE id = 7",
        (const struct db_param[]){DB_INT(NOW - 1)}, 1);
    assert_int_equal(expiry_close_user(pool, 7, NOW, "worker", NULL, &rep), USHER_ECONFIG);
    buf_cleanup(&rec.calls);
}

static void test_scan_enqueues_once_and_is_bounded(void **state)
{
    (void)state;
    /* Three more due users (ids 9..11), oldest expiry first. */
    for (int i = 9; i <= 11; i++) {
        char name[16];
        snprintf(name, sizeof name, "u%d", i);
        const struct db_param p[] = {DB_INT(i), DB_TEXT(name), DB_INT(NOW - 10 * DAY + i)};
        run("INSERT INTO users (id, username, subscription_status, date_joined, "
            "access_expires_at) VALUES ($1, $2, 'past_due', 0, $3)",
            p, 3);
    }
    int n = -1;
    assert_int_equal(expiry_enqueue_due(pool, NOW, 2, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(scalar("SELECT count(*) FROM tasks WHERE name = 'expire_account' AND "
                            "dedup_key IN ('expire_account:9:1789136009', "
                            "'expire_account:10:1789136010')"),
                     2);
    assert_int_equal(scalar("SELECT min(max_attempts) FROM tasks WHERE name = 'expire_account'"),
                     11);
    assert_int_equal(expiry_enqueue_due(pool, NOW, 10, &n), 0);
    assert_int_equal(n, 2); /* u11 and ada; bob is not due */
    assert_int_equal(expiry_enqueue_due(pool, NOW, 10, &n), 0);
    assert_int_equal(n, 0);
    /* A failed closure is not enqueued again behind the operator's back. */
    run("UPDATE tasks SET state = 'failed' WHERE name = 'expire_account'", NULL, 0);
    assert_int_equal(expiry_enqueue_due(pool, NOW, 10, &n), 0);
    assert_int_equal(n, 0);
    /* Bob's turn comes with his final expiry. */
    assert_int_equal(expiry_enqueue_due(pool, NOW + 2 * DAY, 10, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(scalar("SELECT count(*) FROM tasks WHERE name = 'expire_account'"), 5);
}

static const struct CMUnitTest pure_tests[] = {
    cmocka_unit_test(test_decide),
};

static const struct CMUnitTest db_tests[] = {
    cmocka_unit_test_setup_teardown(test_close_then_rerun_changes_nothing, setup, teardown),
    cmocka_unit_test_setup_teardown(test_outage_half_way_then_completed, setup, teardown),
    cmocka_unit_test_setup_teardown(test_recovered_user_is_left_alone, setup, teardown),
    cmocka_unit_test_setup_teardown(test_scan_enqueues_once_and_is_bounded, setup, teardown),
};

int main(void)
{
    int failed = cmocka_run_group_tests_name("expiry/decide", pure_tests, NULL, NULL);
    use_pg = false;
    failed += cmocka_run_group_tests_name("expiry/sqlite", db_tests, NULL, NULL);
    const char *pg = getenv("USHER_TEST_PG_URL");
    if (!pg || !*pg) {
        printf("skipped: USHER_TEST_PG_URL unset (PostgreSQL half of test_expiry)\n");
        return failed;
    }
    use_pg = true;
    failed += cmocka_run_group_tests_name("expiry/postgres", db_tests, NULL, NULL);
    return failed;
}
