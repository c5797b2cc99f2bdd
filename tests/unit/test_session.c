/* test_session.c — server-side sessions: lazy rows, tagged ids, derived CSRF tokens, hashing,
 * expiry, rotation, per-user deletion, the bounded purge. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/crypto.h"
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

#define KEY "unit-test-secret-key-0123456789abcdef"

/* A session with a row, as a request that stored something leaves it. */
static struct session *stored(struct db_conn *conn, int64_t now, char **cookie)
{
    struct session *s = NULL;
    assert_int_equal(session_create(KEY, now, &s, cookie), 0);
    json_object_set_new(s->data, "k", json_string("v"));
    s->dirty = true;
    assert_int_equal(session_save(conn, s, now), 0);
    assert_true(s->stored);
    return s;
}

static void test_create_writes_nothing_until_there_is_something_to_keep(void **state)
{
    struct fixture *f = *state;
    struct session *s = NULL;
    char *cookie = NULL;
    assert_int_equal(session_create(KEY, T0, &s, &cookie), 0);
    assert_int_equal(strlen(cookie), SESSION_ID_HEX_LEN);
    assert_false(s->stored);
    assert_false(session_needs_insert(s));
    assert_false(session_needs_save(s, T0));
    assert_int_equal(session_save(f->conn, s, T0), 0); /* nothing to keep: no row */
    assert_int_equal(count_rows(f->conn, s->id_hash), 0);

    /* The next request with the cookie has the same id and token, still without a row. */
    struct session *again = NULL;
    assert_int_equal(session_load(f->conn, KEY, cookie, T0 + 600, &again), 0);
    assert_false(again->stored);
    assert_string_equal(again->id_hash, s->id_hash);
    assert_string_equal(again->csrf_token, s->csrf_token);

    /* Something to keep: the row is written with the token the pages already show. */
    json_object_set_new(again->data, "first_name", json_string("Ada"));
    again->dirty = true;
    assert_true(session_needs_insert(again));
    assert_true(session_needs_save(again, T0 + 601));
    assert_int_equal(session_save(f->conn, again, T0 + 601), 0);
    assert_true(again->stored);
    assert_int_equal(count_rows(f->conn, cookie), 0);
    assert_int_equal(count_rows(f->conn, s->id_hash), 1);
    session_free(again);

    assert_int_equal(session_load(f->conn, KEY, cookie, T0 + 602, &again), 0);
    assert_true(again->stored);
    assert_string_equal(again->csrf_token, s->csrf_token);
    assert_int_equal(again->created_at, T0 + 601);
    assert_string_equal(json_string_value(json_object_get(again->data, "first_name")), "Ada");
    session_free(again);
    session_free(s);
    free(cookie);
}

static void test_csrf_token_derivation(void **state)
{
    (void)state;
    const char *id = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    char a[65], b[65], c[65], d[65];
    assert_int_equal(session_csrf_token(KEY, id, a), 0);
    assert_int_equal(session_csrf_token(KEY, id, b), 0);
    assert_string_equal(a, b); /* stable: a page rendered earlier still verifies */
    assert_int_equal(strlen(a), 64);
    assert_int_equal(session_csrf_token("another-secret-key-0123456789abcdef", id, c), 0);
    assert_string_not_equal(a, c); /* bound to SECRET_KEY */
    const char *other = "10112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    assert_int_equal(session_csrf_token(KEY, other, d), 0);
    assert_string_not_equal(a, d); /* bound to the id */
    /* Neither the id nor its stored hash. */
    char hash[65];
    crypto_sha256_hex(id, hash);
    assert_string_not_equal(a, id);
    assert_string_not_equal(a, hash);

    struct session *s = NULL;
    char *cookie = NULL;
    assert_int_equal(session_create(KEY, T0, &s, &cookie), 0);
    assert_int_equal(session_csrf_token(KEY, cookie, a), 0);
    assert_string_equal(s->csrf_token, a);
    session_free(s);
    free(cookie);
}

static void test_forged_stale_and_garbage_ids_are_unknown(void **state)
{
    struct fixture *f = *state;
    struct session *s = NULL;
    char *cookie = NULL;
    assert_int_equal(session_create(KEY, T0, &s, &cookie), 0);
    session_free(s);
    s = NULL;

    /* Any change to the id breaks its tag. */
    char forged[SESSION_ID_HEX_LEN + 1];
    for (size_t i = 0; i < SESSION_ID_HEX_LEN; i += 9) {
        memcpy(forged, cookie, sizeof forged);
        forged[i] = forged[i] == '0' ? '1' : '0';
        assert_int_equal(session_load(f->conn, KEY, forged, T0 + 1, &s), USHER_ENOTFOUND);
    }
    /* Another SECRET_KEY did not issue it. */
    assert_int_equal(
        session_load(f->conn, "other-key-0123456789abcdef0123456789", cookie, T0 + 1, &s),
        USHER_ENOTFOUND);
    /* Stale: an id without a row lives as long as a session could. */
    assert_int_equal(session_load(f->conn, KEY, cookie, T0 + SESSION_ABSOLUTE_SECONDS - 1, &s), 0);
    session_free(s);
    assert_int_equal(session_load(f->conn, KEY, cookie, T0 + SESSION_ABSOLUTE_SECONDS, &s),
                     USHER_ENOTFOUND);
    /* Issued in the future beyond clock skew. */
    assert_int_equal(session_load(f->conn, KEY, cookie, T0 - 3600, &s), USHER_ENOTFOUND);

    const char *bad[] = {"", "x", "'; DROP TABLE sessions; --",
                         "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ",
                         "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(session_load(f->conn, KEY, bad[i], T0, &s), USHER_ENOTFOUND);
    char *oversized = xmalloc(8193);
    memset(oversized, 'a', 8192);
    oversized[8192] = '\0';
    assert_int_equal(session_load(f->conn, KEY, oversized, T0, &s), USHER_ENOTFOUND);
    free(oversized);
    free(cookie);
}

static void test_untagged_id_with_a_row_is_accepted(void **state)
{
    struct fixture *f = *state;
    /* A row written before ids carried a tag (or by an operator's tool). */
    const char *raw = "ab00000000000000000000000000000000000000000000000000000000000000";
    char hash[65];
    crypto_sha256_hex(raw, hash);
    char token[65];
    memset(token, 'c', 64);
    token[64] = '\0';
    const struct db_param p[] = {DB_TEXT(hash), DB_TEXT(token), DB_INT(T0)};
    assert_int_equal(db_exec(f->conn,
                             "INSERT INTO sessions (id_hash, csrf_token, created_at, last_seen_at) "
                             "VALUES ($1, $2, $3, $3)",
                             p, 3, NULL),
                     0);
    struct session *s = NULL;
    assert_int_equal(session_load(f->conn, KEY, raw, T0 + 1, &s), 0);
    assert_true(s->stored);
    assert_int_equal(s->csrf_token[0], 'c');
    session_free(s);
    assert_int_equal(db_exec(f->conn, "DELETE FROM sessions", NULL, 0, NULL), 0);
    assert_int_equal(session_load(f->conn, KEY, raw, T0 + 1, &s), USHER_ENOTFOUND);
}

static void test_data_round_trip_and_touch(void **state)
{
    struct fixture *f = *state;
    char *cookie = NULL;
    struct session *s = stored(f->conn, T0, &cookie);
    json_object_set_new(s->data, "first_name", json_string("Ada"));
    s->dirty = true;
    assert_int_equal(session_save(f->conn, s, T0 + 5), 0);
    session_free(s);

    assert_int_equal(session_load(f->conn, KEY, cookie, T0 + 1700, &s), 0);
    assert_string_equal(json_string_value(json_object_get(s->data, "first_name")), "Ada");
    /* Seen less than SESSION_TOUCH_SECONDS ago and unchanged: nothing to write, so the web
     * layer borrows no connection for it. */
    assert_false(session_needs_save(s, T0 + 5 + SESSION_TOUCH_SECONDS - 1));
    assert_true(session_needs_save(s, T0 + 5 + SESSION_TOUCH_SECONDS));
    assert_int_equal(session_save(f->conn, s, T0 + 1700), 0); /* a stale last_seen: touched */
    assert_int_equal(s->last_seen_at, T0 + 1700);
    assert_false(session_needs_save(s, T0 + 1701));
    session_free(s);
    /* 1700 s after the touch at T0+1700 is still inside the idle window. */
    assert_int_equal(session_load(f->conn, KEY, cookie, T0 + 3400, &s), 0);
    assert_true(s->stored);
    session_free(s);
    free(cookie);
}

static void test_idle_and_absolute_expiry(void **state)
{
    struct fixture *f = *state;
    char *cookie = NULL;
    struct session *s = stored(f->conn, T0, &cookie);
    char hash[65];
    memcpy(hash, s->id_hash, sizeof hash);
    session_free(s);
    /* An expired row is removed on sight, and its id does not come back without one. */
    assert_int_equal(session_load(f->conn, KEY, cookie, T0 + SESSION_IDLE_SECONDS, &s),
                     USHER_ENOTFOUND);
    assert_int_equal(count_rows(f->conn, hash), 0);
    free(cookie);

    assert_true(
        session_is_live(T0, T0 + SESSION_ABSOLUTE_SECONDS - 60, T0 + SESSION_ABSOLUTE_SECONDS - 1));
    assert_false(
        session_is_live(T0, T0 + SESSION_ABSOLUTE_SECONDS - 60, T0 + SESSION_ABSOLUTE_SECONDS));
}

static void test_rotate_invalidates_old_cookie(void **state)
{
    struct fixture *f = *state;
    char *old_cookie = NULL, *new_cookie = NULL;
    struct session *s = stored(f->conn, T0, &old_cookie);
    char old_csrf[65];
    memcpy(old_csrf, s->csrf_token, sizeof old_csrf);
    assert_int_equal(session_rotate(f->conn, KEY, s, T0 + 1, &new_cookie), 0);
    assert_string_not_equal(old_csrf, s->csrf_token);
    assert_true(s->stored);
    session_free(s);

    /* The old id's row is gone; being tagged and recent, the id is only an empty visit. */
    assert_int_equal(session_load(f->conn, KEY, old_cookie, T0 + 2, &s), 0);
    assert_false(s->stored);
    assert_null(json_object_get(s->data, "k"));
    session_free(s);
    assert_int_equal(session_load(f->conn, KEY, new_cookie, T0 + 2, &s), 0);
    assert_true(s->stored);
    assert_string_equal(json_string_value(json_object_get(s->data, "k")), "v");
    /* A login id lives only with its row (logout). */
    assert_int_equal(session_delete(f->conn, s), 0);
    session_free(s);
    assert_int_equal(session_load(f->conn, KEY, new_cookie, T0 + 3, &s), USHER_ENOTFOUND);
    free(old_cookie);
    free(new_cookie);

    /* An unstored session rotates in memory and is written by the next save. */
    char *c1 = NULL, *c2 = NULL;
    assert_int_equal(session_create(KEY, T0, &s, &c1), 0);
    assert_int_equal(session_rotate(f->conn, KEY, s, T0 + 1, &c2), 0);
    assert_string_not_equal(c1, c2);
    assert_true(session_needs_insert(s));
    assert_int_equal(count_rows(f->conn, s->id_hash), 0);
    session_free(s);
    free(c1);
    free(c2);
}

static void test_delete_for_user(void **state)
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
    char hashes[3][65];
    for (int i = 0; i < 3; i++) {
        struct session *s = stored(f->conn, T0, &cookies[i]);
        if (i < 2) {
            s->user_id = user_id;
            s->dirty = true;
            assert_int_equal(session_save(f->conn, s, T0), 0);
        }
        memcpy(hashes[i], s->id_hash, 65);
        session_free(s);
    }
    int64_t deleted = 0;
    assert_int_equal(session_delete_for_user(f->conn, user_id, &deleted), 0);
    assert_int_equal(deleted, 2);
    assert_int_equal(count_rows(f->conn, hashes[0]), 0);
    struct session *s = NULL;
    assert_int_equal(session_load(f->conn, KEY, cookies[0], T0 + 1, &s), 0);
    assert_int_equal(s->user_id, 0); /* anonymous at once */
    assert_false(s->stored);
    session_free(s);
    assert_int_equal(session_load(f->conn, KEY, cookies[2], T0 + 1, &s), 0);
    assert_true(s->stored);
    session_free(s);
    for (int i = 0; i < 3; i++)
        free(cookies[i]);
}

static void insert_times(struct db_conn *conn, int i, int64_t created, int64_t seen)
{
    char hash[32];
    snprintf(hash, sizeof hash, "h%d", i);
    const struct db_param p[] = {DB_TEXT(hash), DB_INT(created), DB_INT(seen)};
    assert_int_equal(db_exec(conn,
                             "INSERT INTO sessions (id_hash, csrf_token, created_at, last_seen_at) "
                             "VALUES ($1, 't', $2, $3)",
                             p, 3, NULL),
                     0);
}

static int64_t count_all(struct db_conn *conn)
{
    struct db_result *res = NULL;
    assert_int_equal(db_query(conn, "SELECT count(*) FROM sessions", NULL, 0, &res), 0);
    int64_t n = db_result_int(res, 0, 0);
    db_result_free(res);
    return n;
}

static void test_purge_is_bounded(void **state)
{
    struct fixture *f = *state;
    const int64_t now = T0 + 10 * SESSION_ABSOLUTE_SECONDS;
    for (int i = 0; i < 25; i++) /* abandoned: idle past the timeout */
        insert_times(f->conn, i, now - 3600, now - SESSION_IDLE_SECONDS);
    for (int i = 25; i < 30; i++) /* past the absolute timeout, though seen just now */
        insert_times(f->conn, i, now - SESSION_ABSOLUTE_SECONDS, now - 1);
    for (int i = 30; i < 34; i++) /* live */
        insert_times(f->conn, i, now - 600, now - 60);

    int64_t deleted = -1;
    /* At most max rows a run, in statements of at most batch rows. */
    assert_int_equal(session_purge_expired(f->conn, now, 4, 10, &deleted), 0);
    assert_int_equal(deleted, 10);
    assert_int_equal(count_all(f->conn), 24);
    assert_int_equal(session_purge_expired(f->conn, now, 7, 1000, &deleted), 0);
    assert_int_equal(deleted, 20);
    assert_int_equal(count_all(f->conn), 4); /* only the live ones */
    assert_int_equal(session_purge_expired(f->conn, now, 7, 1000, &deleted), 0);
    assert_int_equal(deleted, 0);
    assert_int_equal(session_purge_expired(f->conn, now, 0, 10, &deleted), USHER_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_writes_nothing_until_there_is_something_to_keep,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_csrf_token_derivation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_stale_and_garbage_ids_are_unknown, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_untagged_id_with_a_row_is_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_round_trip_and_touch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_and_absolute_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotate_invalidates_old_cookie, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_for_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_purge_is_bounded, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
