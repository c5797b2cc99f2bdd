/* test_admin_core.c — the admin console's domain and db pieces on SQLite and PostgreSQL:
 * capped and estimated counts, audit entries (diff, record, list with filters and keyset),
 * and the ADMIN_GROUP match in a Keycloak groups answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "db/count.h"
#include "domain/admin_access.h"
#include "domain/admin_list.h"
#include "domain/audit.h"
#include "testdb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG_SCHEMA "test_admin_core"

static bool use_pg;
static struct testdb db;

static int setup(void **state)
{
    (void)state;
    testdb_open(&db, "admin_core", use_pg, PG_SCHEMA, 2);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    testdb_close(&db);
    return 0;
}

static void test_counts(void **state)
{
    (void)state;
    testdb_exec(db.pool,
                "INSERT INTO groups (name) SELECT 'g' || x FROM (SELECT 1 AS x UNION SELECT 2 "
                "UNION SELECT 3 UNION SELECT 4 UNION SELECT 5) t",
                NULL, 0);
    struct db_conn *conn = NULL;
    assert_int_equal(db_acquire(db.pool, 1000, &conn), 0);
    struct db_count c;
    assert_int_equal(db_count_table(conn, "groups", 10000, 10000, &c), 0);
    assert_int_equal(c.n, 5);
    assert_false(c.estimated);
    assert_false(c.more);
    assert_int_equal(db_count_table(conn, "groups", 10000, 3, &c), 0);
    assert_int_equal(c.n, 3);
    assert_true(c.more);
    assert_int_equal(db_count_table(conn, "groups; DROP TABLE users", 1, 1, &c), USHER_EINVAL);
    assert_int_equal(db_count_table(conn, "Groups", 1, 1, &c), USHER_EINVAL);
    const struct db_param p[] = {DB_TEXT("g%")};
    assert_int_equal(db_count_capped(conn, "SELECT 1 FROM groups WHERE name LIKE $1", p, 1, 4, &c),
                     0);
    assert_int_equal(c.n, 4);
    assert_true(c.more);
    if (use_pg) {
        /* Statistics saying "big": the estimate is used, and flagged. */
        assert_int_equal(db_exec(conn, "ANALYZE groups", NULL, 0, NULL), 0);
        assert_int_equal(db_count_table(conn, "groups", 3, 10000, &c), 0);
        assert_true(c.estimated);
        assert_int_equal(c.n, 5);
    }
    db_release(conn);
}

static void test_audit_diff(void **state)
{
    (void)state;
    json_t *before = json_pack("{s:i, s:s, s:b}", "order", 1, "name", "Cloud", "active", 1);
    json_t *after = json_pack("{s:i, s:s, s:b}", "order", 2, "name", "Cloud", "active", 0);
    json_t *d = audit_diff(before, after);
    json_t *want = json_pack("{s:{s:i, s:b}, s:{s:i, s:b}}", "before", "order", 1, "active", 1,
                             "after", "order", 2, "active", 0);
    assert_true(json_equal(d, want));
    json_decref(d);
    json_decref(want);
    d = audit_diff(NULL, after); /* a creation */
    assert_true(json_is_null(json_object_get(d, "before")));
    assert_true(json_equal(json_object_get(d, "after"), after));
    json_decref(d);
    json_decref(before);
    json_decref(after);
}

static void record(const char *actor, const char *action, const char *type, const char *id)
{
    struct db_conn *conn = NULL;
    assert_int_equal(db_acquire(db.pool, 1000, &conn), 0);
    json_t *b = json_pack("{s:i}", "v", 1), *a = json_pack("{s:i}", "v", 2);
    struct audit_entry e = {.actor = actor,
                            .action = action,
                            .target_type = type,
                            .target_id = id,
                            .before = b,
                            .after = a};
    assert_int_equal(audit_record(conn, 1790000000, &e), 0);
    json_decref(b);
    json_decref(a);
    db_release(conn);
}

static size_t list_count(const struct audit_filter *f, int64_t *next)
{
    json_t *rows = NULL;
    assert_int_equal(audit_list(db.pool, f, &rows, next), 0);
    size_t n = json_array_size(rows);
    json_decref(rows);
    return n;
}

static void test_audit_record_and_list(void **state)
{
    (void)state;
    record("bob", "product.update", "product", "1");
    record("bob", "product.update", "product", "2");
    record("carol", "instance.update", "instance", "1");
    record("carol", "price.update", "price", "7");
    record("bob", "product.update", "product", "1");

    struct audit_filter f = {.limit = 2};
    int64_t next = 0;
    json_t *rows = NULL;
    assert_int_equal(audit_list(db.pool, &f, &rows, &next), 0);
    assert_int_equal(json_array_size(rows), 2);
    json_t *first = json_array_get(rows, 0);
    assert_string_equal(json_string_value(json_object_get(first, "actor")), "bob");
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_object_get(first, "detail"), "after"), "v")),
                     2);
    json_decref(rows);
    assert_true(next > 0);
    f.before_id = next;
    assert_int_equal(list_count(&f, &next), 2);
    f.before_id = next;
    assert_int_equal(list_count(&f, &next), 1);
    assert_int_equal(next, 0);

    f = (struct audit_filter){.limit = 50, .actor = "carol"};
    assert_int_equal(list_count(&f, &next), 2);
    f = (struct audit_filter){.limit = 50, .action = "product.update"};
    assert_int_equal(list_count(&f, &next), 3);
    f = (struct audit_filter){.limit = 50, .action = "product."}; /* a prefix */
    assert_int_equal(list_count(&f, &next), 3);
    f = (struct audit_filter){.limit = 50, .action = "product"}; /* not a prefix: exact */
    assert_int_equal(list_count(&f, &next), 0);
    f = (struct audit_filter){.limit = 50, .target = "product:1"};
    assert_int_equal(list_count(&f, &next), 2);
    f = (struct audit_filter){.limit = 50, .target = "instance"};
    assert_int_equal(list_count(&f, &next), 1);
    f = (struct audit_filter){.limit = 50, .target = "7"};
    assert_int_equal(list_count(&f, &next), 1);
    f = (struct audit_filter){.limit = 50, .actor = "' OR '1'='1", .target = "%:_"};
    assert_int_equal(list_count(&f, &next), 0);
    f = (struct audit_filter){.limit = 0};
    assert_int_equal(audit_list(db.pool, &f, &rows, &next), USHER_EINVAL);

    /* Missing actor or action: refused, nothing written. */
    struct db_conn *conn = NULL;
    assert_int_equal(db_acquire(db.pool, 1000, &conn), 0);
    struct audit_entry e = {.actor = "", .action = "x"};
    assert_int_equal(audit_record(conn, 1, &e), USHER_EINVAL);
    db_release(conn);
    assert_int_equal(testdb_scalar(db.pool, "SELECT count(*) FROM audit_log"), 5);
}

static void test_admin_group_match(void **state)
{
    (void)state;
    json_t *groups = json_loads("[{\"id\":\"a\",\"name\":\"nextcloud-foggy\",\"path\":"
                                "\"/nextcloud-foggy\"},{\"id\":\"b\",\"name\":\"usher-admins\","
                                "\"path\":\"/staff/usher-admins\"}]",
                                0, NULL);
    assert_non_null(groups);
    assert_true(admin_access_in_groups(groups, "usher-admins"));
    assert_true(admin_access_in_groups(groups, "/staff/usher-admins"));
    assert_false(admin_access_in_groups(groups, "/usher-admins"));
    assert_false(admin_access_in_groups(groups, "usher"));
    assert_false(admin_access_in_groups(groups, ""));
    json_t *empty = json_array();
    assert_false(admin_access_in_groups(empty, "usher-admins"));
    assert_false(admin_access_in_groups(NULL, "usher-admins"));
    json_decref(empty);
    json_decref(groups);
}

static void test_like_pattern_and_fingerprint(void **state)
{
    (void)state;
    const char *cases[][2] = {{"", ""},           {"abc", "%abc%"},         {"100%", "%100\\%%"},
                              {"a_b", "%a\\_b%"}, {"back\\", "%back\\\\%"}, {"'", "%'%"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *p = admin_like_pattern(cases[i][0]);
        assert_string_equal(p, cases[i][1]);
        free(p);
    }
    json_t *a = json_pack("{s:i, s:s}", "x", 1, "y", "z");
    json_t *b = json_pack("{s:s, s:i}", "y", "z", "x", 1); /* same state, other key order */
    char fa[ADMIN_FINGERPRINT_LEN + 1], fb[ADMIN_FINGERPRINT_LEN + 1];
    admin_fingerprint(a, fa);
    admin_fingerprint(b, fb);
    assert_string_equal(fa, fb);
    assert_int_equal(strlen(fa), ADMIN_FINGERPRINT_LEN);
    assert_true(admin_fingerprint_matches(b, fa));
    json_object_set_new(b, "x", json_integer(2));
    assert_false(admin_fingerprint_matches(b, fa));
    assert_false(admin_fingerprint_matches(a, NULL));
    assert_false(admin_fingerprint_matches(a, "not-a-fingerprint"));
    json_decref(a);
    json_decref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_counts, setup, teardown),
        cmocka_unit_test(test_audit_diff),
        cmocka_unit_test_setup_teardown(test_audit_record_and_list, setup, teardown),
        cmocka_unit_test(test_admin_group_match),
        cmocka_unit_test(test_like_pattern_and_fingerprint),
    };
    use_pg = false;
    int failed = cmocka_run_group_tests_name("admin_core/sqlite", tests, NULL, NULL);
    if (!testdb_pg_url()) {
        printf("skipped: USHER_TEST_PG_URL unset (PostgreSQL half of test_admin_core)\n");
        return failed;
    }
    use_pg = true;
    failed += cmocka_run_group_tests_name("admin_core/postgres", tests, NULL, NULL);
    return failed;
}
