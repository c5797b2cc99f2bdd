/* test_session.c — server-side sessions: hashing, expiry, rotation, per-user deletion. */
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
#include "domain/session_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T0 1790000000LL

struct fixture {
    struct testdb db;
    struct db_pool *pool;
    struct db_conn *conn;
};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof *f);
    testdb_open(&f->db, "session", false, NULL, 2);
    f->pool = f->db.pool;
    assert_int_equal(db_acquire(f->pool, 1000, &f->conn), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    db_release(f->conn);
    testdb_close(&f->db);
    free(f);
    return 0;
}

static int64_t count_rows(struct db_conn *conn, const char *where_hash)
{
    const struct db_param p[] = {DB_TEXT(where_hash)};
    struct db_result *res = NULL;
    assert_int_equal(db_query(conn, "SELECT count(*) FROM sessions WHERE id_hash = $1", p, 1, &res),
                     0);
    int64_t n = db_result_int(res, 0, 0);
    db_result_free(res);
    return n;
}

static void test_create_stores_only_the_hash(void **state)
{
    struct fixture *f = *state;
    struct session *s = NULL;
    char *cookie = NULL;
    assert_int_equal(session_create(f->conn, T0, &s, &cookie), 0);
    assert_int_equal(strlen(cookie), 64);
    assert_string_not_equal(cookie, s->id_hash);
    assert_int_equal(count_rows(f->conn, cookie), 0);
    assert_int_equal(count_rows(f->conn, s->id_hash), 1);
    assert_int_equal(strlen(s->csrf_token), 64);
    session_free(s);

    struct session *loaded = NULL;
    assert_int_equal(session_load(f->conn, cookie, T0 + 10, &loaded), 0);
    assert_int_equal(loaded->created_at, T0);
    session_free(loaded);
    free(cookie);
}

static void test_data_round_trip_and_touch(void **state)
{
    struct fixture *f = *state;
    struct session *s = NULL;
    char *cookie = NULL;
    assert_int_equal(session_create(f->conn, T0, &s, &cookie), 0);
    json_object_set_new(s->data, "first_name", json_string("Ada"));
    s->dirty = true;
    assert_int_equal(session_save(f->conn, s, T0 + 5), 0);
    session_free(s);

    assert_int_equal(session_load(f->conn, cookie, T0 + 1700, &s), 0);
    assert_string_equal(json_string_value(json_object_get(s->data, "first_name")), "Ada");
    assert_int_equal(session_save(f->conn, s, T0 + 1700), 0); /* a stale last_seen: touched */
    session_free(s);
    /* 1700 s after the touch at T0+1700 is still inside the idle window. */
    assert_int_equal(session_load(f->conn, cookie, T0 + 3400, &s), 0);
    session_free(s);
    free(cookie);
}

static void test_idle_and_absolute_expiry(void **state)
{
    struct fixture *f = *state;
    struct session *s = NULL;
    char *cookie = NULL;
    assert_int_equal(session_create(f->conn, T0, &s, &cookie), 0);
    char hash[65];
    memcpy(hash, s->id_hash, sizeof hash);
    session_free(s);
    assert_int_equal(session_load(f->conn, cookie, T0 + SESSION_IDLE_SECONDS, &s), USHER_ENOTFOUND);
    assert_int_equal(count_rows(f->conn, hash), 0); /* expired rows are removed on sight */
    free(cookie);

    assert_true(
        session_is_live(T0, T0 + SESSION_ABSOLUTE_SECONDS - 60, T0 + SESSION_ABSOLUTE_SECONDS - 1));
    assert_false(
        session_is_live(T0, T0 + SESSION_ABSOLUTE_SECONDS - 60, T0 + SESSION_ABSOLUTE_SECONDS));
}

static void test_rotate_invalidates_old_cookie(void **state)
{
    struct fixture *f = *state;
    struct session *s = NULL;
    char *old_cookie = NULL, *new_cookie = NULL;
    assert_int_equal(session_create(f->conn, T0, &s, &old_cookie), 0);
    char old_csrf[65];
    memcpy(old_csrf, s->csrf_token, sizeof old_csrf);
    json_object_set_new(s->data, "k", json_string("v"));
    assert_int_equal(session_rotate(f->conn, s, T0 + 1, &new_cookie), 0);
    assert_string_not_equal(old_csrf, s->csrf_token);
    session_free(s);

    assert_int_equal(session_load(f->conn, old_cookie, T0 + 2, &s), USHER_ENOTFOUND);
    assert_int_equal(session_load(f->conn, new_cookie, T0 + 2, &s), 0);
    assert_string_equal(json_string_value(json_object_get(s->data, "k")), "v");
    session_free(s);
    free(old_cookie);
    free(new_cookie);
}

static void test_garbage_cookies_are_unknown(void **state)
{
    struct fixture *f = *state;
    struct session *s = NULL;
    const char *bad[] = {"", "x", "'; DROP TABLE sessions; --",
                         "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(session_load(f->conn, bad[i], T0, &s), USHER_ENOTFOUND);
}

static void test_delete_for_user_and_purge(void **state)
{
    struct fixture *f = *state;
    const struct db_param u[] = {DB_TEXT("ada"), DB_TEXT("ada@example.test"), DB_INT(T0)};
    struct db_result *res = NULL;
    assert_int_equal(db_query(f->conn,
                              "INSERT INTO users (username, email, date_joined) "
                              "VALUES ($1, $2, $3) RETURNING id",
                              u, 3, &res),
                     0);
    int64_t user_id = db_result_int(res, 0, 0);
    db_result_free(res);
    char *cookies[3];
    for (int i = 0; i < 3; i++) {
        struct session *s = NULL;
        assert_int_equal(session_create(f->conn, T0, &s, &cookies[i]), 0);
        if (i < 2) {
            s->user_id = user_id;
            s->dirty = true;
            assert_int_equal(session_save(f->conn, s, T0), 0);
        }
        session_free(s);
    }
    int64_t deleted = 0;
    assert_int_equal(session_delete_for_user(f->conn, user_id, &deleted), 0);
    assert_int_equal(deleted, 2);
    struct session *s = NULL;
    assert_int_equal(session_load(f->conn, cookies[0], T0 + 1, &s), USHER_ENOTFOUND);
    assert_int_equal(session_load(f->conn, cookies[2], T0 + 1, &s), 0);
    session_free(s);
    assert_int_equal(session_purge_expired(f->conn, T0 + SESSION_ABSOLUTE_SECONDS, &deleted), 0);
    assert_true(deleted >= 1);
    for (int i = 0; i < 3; i++)
        free(cookies[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_stores_only_the_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_round_trip_and_touch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_and_absolute_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotate_invalidates_old_cookie, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_cookies_are_unknown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_for_user_and_purge, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
