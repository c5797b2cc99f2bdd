/*
 * test_admin_users.c — the admin users list, user page and bulk jobs (domain/admin_users.h,
 * domain/admin_bulk.h) on SQLite and PostgreSQL: keyset pages, the status filter, each kind
 * of search (substring on PostgreSQL, prefix on SQLite), hostile search text, the
 * detail sections, a bulk job's tasks, audit entries and result, and users_exists (the
 * bulk task's check).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "core/mem.h"
#include "db/db.h"
#include "db/task_store.h"
#include "domain/admin_bulk.h"
#include "domain/admin_users.h"
#include "domain/users.h"
#include "testdb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1790000000LL
#define PG_SCHEMA "usher_test_admin_users"
#define KC1 "0a1b2c3d-0000-4000-8000-000000000001"

static bool use_pg;
static struct testdb tdb;
static struct db_pool *pool;

static void run(const char *sql, const struct db_param *p, int n)
{
    testdb_exec(pool, sql, p, n);
}

static int setup(void **state)
{
    (void)state;
    testdb_open(&tdb, "admin-users", use_pg, PG_SCHEMA, 3);
    pool = tdb.pool;
    run("INSERT INTO products (id, name, slug, page, provisioner, created_at, updated_at) "
        "VALUES (1, 'Cloud', 'cloud', 'plan', 'group', 1, 1)",
        NULL, 0);
    run("INSERT INTO groups (id, name) VALUES (1, 'beta'), (2, 'cloud-foggy')", NULL, 0);
    /* 30 users; every third is active, the rest have no subscription. */
    for (int i = 1; i <= 30; i++) {
        char name[32], email[64], kc[40];
        snprintf(name, sizeof name, "user%02d", i);
        snprintf(email, sizeof email, "person%02d@example.test", i);
        snprintf(kc, sizeof kc, "0a1b2c3d-0000-4000-8000-%012d", i);
        const struct db_param p[] = {DB_INT(i),
                                     DB_TEXT(name),
                                     DB_TEXT(email),
                                     DB_TEXT(kc),
                                     DB_TEXT(i % 3 == 0 ? "active" : ""),
                                     DB_INT(NOW + i)};
        run("INSERT INTO users (id, username, email, keycloak_id, subscription_status, "
            "date_joined) VALUES ($1, $2, $3, $4, $5, $6)",
            p, 6);
    }
    run("INSERT INTO users (id, username, email, stripe_customer_id, stripe_subscription_id, "
        "subscription_status, date_joined) VALUES (31, 'pct_under', 'odd%_\\x@example.test', "
        "'cus_Abc123', 'sub_Xyz789', 'past_due', 1)",
        NULL, 0);
    run("INSERT INTO user_groups (user_id, group_id) VALUES (3, 1), (3, 2), (6, 1)", NULL, 0);
    run("INSERT INTO subscription_items (user_id, product_id, stripe_price_id) VALUES "
        "(3, 1, 'price_a'), (31, NULL, 'price_unknown')",
        NULL, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    testdb_close(&tdb);
    return 0;
}

static json_t *list(const char *status, const char *search, int64_t before, int limit, int want)
{
    struct admin_users_query q = {
        .status = status, .search = search, .before_id = before, .limit = limit};
    json_t *out = NULL;
    const char *error = NULL;
    int rc = admin_users_list(pool, &q, &out, &error);
    assert_int_equal(rc, want);
    if (want != 0) {
        assert_non_null(error);
        assert_null(out);
    }
    return out;
}

static int64_t id_at(const json_t *page, size_t i)
{
    return json_integer_value(
        json_object_get(json_array_get(json_object_get(page, "users"), i), "id"));
}

static size_t count_of(const json_t *page)
{
    return json_array_size(json_object_get(page, "users"));
}

/* The first page of a query has n rows (and is freed). */
static void expect_rows(const char *status, const char *search, size_t n)
{
    json_t *page = list(status, search, 0, 50, 0);
    assert_int_equal(count_of(page), n);
    json_decref(page);
}

static void test_keyset_pages_cover_everyone_once(void **state)
{
    (void)state;
    int64_t before = 0, seen = 0, last = INT64_MAX;
    for (;;) {
        json_t *page = list(NULL, NULL, before, 7, 0);
        for (size_t i = 0; i < count_of(page); i++) {
            assert_true(id_at(page, i) < last); /* newest first, never twice */
            last = id_at(page, i);
            seen++;
        }
        json_t *next = json_object_get(page, "next_before");
        before = json_is_null(next) ? 0 : json_integer_value(next);
        json_decref(page);
        if (!before)
            break;
    }
    assert_int_equal(seen, 31);
    /* Groups and products ride along. */
    json_t *page = list(NULL, NULL, 4, 1, 0);
    json_t *u = json_array_get(json_object_get(page, "users"), 0);
    assert_int_equal(json_integer_value(json_object_get(u, "id")), 3);
    assert_int_equal(json_array_size(json_object_get(u, "groups")), 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(u, "products"), 0)),
                        "Cloud");
    assert_string_equal(json_string_value(json_object_get(u, "keycloak_short")), "0a1b2c3d");
    json_decref(page);
    /* A cursor past the end is an empty page, not an error; bad pages are refused. */
    page = list(NULL, NULL, 1, 10, 0);
    assert_int_equal(count_of(page), 0);
    assert_true(json_is_null(json_object_get(page, "next_before")));
    json_decref(page);
    list(NULL, NULL, -5, 10, USHER_EINVAL);
    list(NULL, NULL, 0, 0, USHER_EINVAL);
    list(NULL, NULL, 0, ADMIN_USERS_PAGE_MAX + 1, USHER_EINVAL);
}

static void test_status_filter(void **state)
{
    (void)state;
    json_t *page = list("active", NULL, 0, 50, 0);
    assert_int_equal(count_of(page), 10);
    assert_int_equal(id_at(page, 0), 30);
    assert_int_equal(json_integer_value(json_object_get(page, "matches")), 10);
    json_decref(page);
    expect_rows("none", NULL, 20);
    expect_rows("past_due", NULL, 1);
    list("active' OR 1=1 --", NULL, 0, 50, USHER_EINVAL);
}

static void test_search_kinds(void **state)
{
    (void)state;
    json_t *page = list(NULL, "cus_Abc123", 0, 50, 0);
    assert_string_equal(json_string_value(json_object_get(page, "search_kind")), "stripe_customer");
    assert_int_equal(count_of(page), 1);
    assert_int_equal(id_at(page, 0), 31);
    json_decref(page);
    expect_rows(NULL, "sub_Xyz789", 1);
    expect_rows(NULL, "cus_Abc12", 0); /* ids match exactly */
    page = list(NULL, "0A1B2C3D-0000-4000-8000-000000000007", 0, 50, 0);
    assert_string_equal(json_string_value(json_object_get(page, "search_kind")), "keycloak_id");
    assert_int_equal(count_of(page), 1);
    assert_int_equal(id_at(page, 0), 7);
    json_decref(page);
    /* A prefix works on both databases: username, email, short Keycloak id. */
    expect_rows(NULL, "user1", 10); /* user10..user19 */
    expect_rows(NULL, "Person2", 10);
    page = list(NULL, "0a1b2c3d", 0, 50, 0);
    assert_int_equal(count_of(page), 30);
    assert_int_equal(json_integer_value(json_object_get(page, "matches")), 30);
    json_decref(page);
    expect_rows("active", "user1", 3); /* both filters: 12, 15, 18 */
    /* Substring only on PostgreSQL. */
    expect_rows(NULL, "example.test", use_pg ? 31 : 0);
}

static void test_hostile_search(void **state)
{
    (void)state;
    /* LIKE metacharacters match only themselves. */
    expect_rows(NULL, "odd%_", 1);
    expect_rows(NULL, "%%%", 0);
    expect_rows(NULL, "___", 0);
    expect_rows(NULL, "odd%_\\", 1);
    expect_rows(NULL, "'; DROP TABLE users; --", 0);
    expect_rows(NULL, "ünï©ødé", 0);
    list(NULL, "ab", 0, 50, USHER_EINVAL); /* too short */
    list(NULL, "bad\xff\xfe", 0, 50, USHER_EINVAL); /* not UTF-8 */
    list(NULL, "\xc0\xafxx", 0, 50, USHER_EINVAL); /* overlong */
    list(NULL, "tab\there", 0, 50, USHER_EINVAL);
    char longer[ADMIN_USERS_SEARCH_MAX + 2];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    list(NULL, longer, 0, 50, USHER_EINVAL);
    longer[ADMIN_USERS_SEARCH_MAX] = '\0';
    json_decref(list(NULL, longer, 0, 50, 0));
}

static void test_detail(void **state)
{
    (void)state;
    json_t *args = json_pack("{s:I}", "user_id", (json_int_t)3);
    struct db_conn *conn = NULL;
    assert_int_equal(db_acquire(pool, 1000, &conn), 0);
    assert_int_equal(task_enqueue(conn, "sync_user_post_checkout", args, 0, NOW, NULL, NULL), 0);
    json_decref(args);
    args = json_pack("{s:s}", "user_id", "3"); /* not an integer: not this user's */
    assert_int_equal(task_enqueue(conn, "other", args, 0, NOW, NULL, NULL), 0);
    json_decref(args);
    db_release(conn);
    run("INSERT INTO stripe_events (event_id, type, created, payload, status, received_at) "
        "VALUES ('evt_1', 'invoice.paid', 1, '{\"data\":{\"object\":{\"customer\":"
        "\"cus_Abc123\"}}}', 'processed', 1), ('evt_2', 'invoice.paid', 1, "
        "'{\"customer\":\"cusXAbc123\"}', 'processed', 1)",
        NULL, 0);
    json_t *d = NULL;
    assert_int_equal(admin_user_detail(pool, 3, &d), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(d, "user"), "username")),
                        "user03");
    assert_int_equal(json_array_size(json_object_get(d, "groups")), 2);
    assert_int_equal(json_array_size(json_object_get(d, "items")), 1);
    assert_int_equal(json_array_size(json_object_get(d, "tasks")), 1);
    assert_int_equal(json_array_size(json_object_get(d, "events")), 0);
    json_decref(d);
    assert_int_equal(admin_user_detail(pool, 31, &d), 0);
    json_t *events = json_object_get(d, "events");
    assert_int_equal(json_array_size(events), 1); /* '_' in cus_ is not a wildcard */
    assert_string_equal(json_string_value(json_object_get(json_array_get(events, 0), "event_id")),
                        "evt_1");
    json_t *item = json_array_get(json_object_get(d, "items"), 0);
    assert_true(json_is_null(json_object_get(item, "product")));
    json_decref(d);
    assert_int_equal(admin_user_detail(pool, 999, &d), USHER_ENOTFOUND);
    assert_int_equal(admin_user_detail(pool, -1, &d), USHER_ENOTFOUND);
}

static void test_bulk_job(void **state)
{
    (void)state;
    struct admin_actor actor = {.user_id = 1, .username = "user01"};
    const int64_t ids[] = {3, 999, 3, 6};
    int64_t job = 0;
    assert_int_equal(admin_bulk_start(pool, ADMIN_BULK_SYNC_KEYCLOAK, &actor, ids, 4, NOW, &job),
                     0);
    assert_true(job > 0);
    assert_int_equal(testdb_scalar(pool, "SELECT count(*) FROM tasks WHERE name = "
                                         "'admin_user_action' AND max_attempts = 1"),
                     3);
    assert_int_equal(testdb_scalar(pool, "SELECT count(*) FROM audit_log WHERE target_type = "
                                         "'user' AND action = 'user.bulk.sync_keycloak'"),
                     3);
    assert_int_equal(testdb_scalar(pool, "SELECT count(*) FROM audit_log WHERE target_type = "
                                         "'bulk_job'"),
                     1);
    run("UPDATE tasks SET state = 'failed', last_error = 'no such user' WHERE user_id = 999", NULL,
        0);
    run("UPDATE tasks SET state = 'done' WHERE user_id = 3", NULL, 0);
    json_t *r = NULL;
    assert_int_equal(admin_bulk_result(pool, job, &r), 0);
    assert_int_equal(json_integer_value(json_object_get(r, "total")), 3);
    assert_int_equal(json_integer_value(json_object_get(r, "done")), 1);
    assert_int_equal(json_integer_value(json_object_get(r, "failed")), 1);
    assert_int_equal(json_integer_value(json_object_get(r, "pending")), 1);
    assert_false(json_is_true(json_object_get(r, "finished")));
    json_t *gone = json_array_get(json_object_get(r, "items"), 2);
    assert_int_equal(json_integer_value(json_object_get(gone, "user_id")), 999);
    assert_true(json_is_null(json_object_get(gone, "username")));
    assert_string_equal(json_string_value(json_object_get(gone, "error")), "no such user");
    assert_string_equal(json_string_value(json_object_get(r, "label")), "Sync to Keycloak");
    json_decref(r);
    /* The user page lists the audit entry. */
    assert_int_equal(admin_user_detail(pool, 3, &r), 0);
    assert_int_equal(json_array_size(json_object_get(r, "audit")), 1);
    json_decref(r);
    assert_int_equal(admin_bulk_result(pool, job + 1, &r), USHER_ENOTFOUND);
    /* Bad selections write nothing. */
    const int64_t bad[] = {3, 0};
    assert_int_equal(admin_bulk_start(pool, ADMIN_BULK_SYNC_KEYCLOAK, &actor, bad, 2, NOW, &job),
                     USHER_EINVAL);
    assert_int_equal(admin_bulk_start(pool, ADMIN_BULK_SYNC_KEYCLOAK, &actor, ids, 0, NOW, &job),
                     USHER_EINVAL);
    assert_int_equal(testdb_scalar(pool, "SELECT count(*) FROM admin_bulk_jobs"), 1);
    enum admin_bulk_action a;
    assert_int_equal(admin_bulk_action_parse("refresh_stripe", &a), 0);
    assert_int_equal(a, ADMIN_BULK_REFRESH_STRIPE);
    assert_int_equal(admin_bulk_action_parse("drop_tables", &a), USHER_EINVAL);
    assert_int_equal(admin_bulk_action_parse(NULL, &a), USHER_EINVAL);
    /* The admin_user_action task's check: 999 was selected but is not on file. */
    bool exists = false;
    assert_int_equal(users_exists(pool, 3, &exists), 0);
    assert_true(exists);
    assert_int_equal(users_exists(pool, 999, &exists), 0);
    assert_false(exists);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_keyset_pages_cover_everyone_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_search_kinds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_search, setup, teardown),
        cmocka_unit_test_setup_teardown(test_detail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bulk_job, setup, teardown),
    };
    use_pg = false;
    int failed = cmocka_run_group_tests_name("admin_users/sqlite", tests, NULL, NULL);
    const char *pg = getenv("USHER_TEST_PG_URL");
    if (!pg || !*pg) {
        printf("skipped: USHER_TEST_PG_URL unset (PostgreSQL half of test_admin_users)\n");
        return failed;
    }
    use_pg = true;
    failed += cmocka_run_group_tests_name("admin_users/postgres", tests, NULL, NULL);
    return failed;
}
