/*
 * test_session_cache.c — the in-memory copies of anonymous sessions (domain/session_cache.h):
 * a copy answers only its own id and state tag, only while young and live, never for a
 * logged-in or unsaved session, and each answer is the caller's own to change.
 */
#include "core/mem.h"
#include "domain/session_cache.h"
#include "domain/session_store.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#define NOW 1800000000
#define TAG_A "0123456789abcdef0123456789abcdef"
#define TAG_B "fedcba9876543210fedcba9876543210"

/* A stored anonymous session as session_load leaves one, with first_name in its data. */
static struct session *stored(const char *first_name)
{
    struct session *s = NULL;
    char *cookie = NULL;
    assert_int_equal(session_create("test-secret-key-of-enough-length", NOW, &s, &cookie), 0);
    free(cookie);
    s->stored = true;
    memcpy(s->state_tag, TAG_A, sizeof s->state_tag);
    json_object_set_new(s->data, "first_name", json_string(first_name));
    return s;
}

static const char *first_name(const struct session *s)
{
    return json_string_value(json_object_get(s->data, "first_name"));
}

static void test_a_copy_answers_its_id_and_tag_only(void **state)
{
    (void)state;
    struct session_cache *c = session_cache_new();
    struct session *s = stored("Ada");
    session_cache_put(c, s, NOW);

    struct session *hit = session_cache_get(c, s->id_hash, TAG_A, NOW + 1);
    assert_non_null(hit);
    assert_string_equal(first_name(hit), "Ada");
    assert_string_equal(hit->csrf_token, s->csrf_token);
    assert_true(hit->stored);
    assert_false(hit->dirty);
    assert_int_equal(hit->user_id, 0);
    /* The answer is the caller's: changing it leaves the copy as it was. */
    json_object_set_new(hit->data, "first_name", json_string("Eve"));
    session_free(hit);
    hit = session_cache_get(c, s->id_hash, TAG_A, NOW + 1);
    assert_string_equal(first_name(hit), "Ada");
    session_free(hit);

    assert_null(session_cache_get(c, s->id_hash, TAG_B, NOW + 1));
    assert_null(session_cache_get(c, s->id_hash, "short", NOW + 1));
    char other[CRYPTO_SHA256_HEX_LEN + 1];
    memcpy(other, s->id_hash, sizeof other);
    other[CRYPTO_SHA256_HEX_LEN - 1] = other[CRYPTO_SHA256_HEX_LEN - 1] == '0' ? '1' : '0';
    assert_null(session_cache_get(c, other, TAG_A, NOW + 1));
    session_free(s);
    session_cache_free(c);
}

static void test_a_copy_ages_out_and_follows_liveness(void **state)
{
    (void)state;
    struct session_cache *c = session_cache_new();
    struct session *s = stored("Ada");
    session_cache_put(c, s, NOW);
    assert_null(session_cache_get(c, s->id_hash, TAG_A, NOW + SESSION_CACHE_TTL_SECONDS));
    assert_null(session_cache_get(c, s->id_hash, TAG_A, NOW - 1)); /* a clock step back */

    /* Idle past the timeout by the copy's own times: refused even while young. */
    s->last_seen_at = NOW - SESSION_IDLE_SECONDS + 5;
    session_cache_put(c, s, NOW);
    struct session *hit = session_cache_get(c, s->id_hash, TAG_A, NOW + 4);
    assert_non_null(hit);
    session_free(hit);
    assert_null(session_cache_get(c, s->id_hash, TAG_A, NOW + 5));
    /* A touch written here moves the copy's last_seen_at, not its age. */
    session_cache_touched(c, s->id_hash, TAG_A, NOW + 3);
    hit = session_cache_get(c, s->id_hash, TAG_A, NOW + 5);
    assert_non_null(hit);
    assert_int_equal(hit->last_seen_at, NOW + 3);
    session_free(hit);
    session_free(s);
    session_cache_free(c);
}

static void test_only_saved_anonymous_sessions_are_kept(void **state)
{
    (void)state;
    struct session_cache *c = session_cache_new();
    struct session *s = stored("Ada");
    session_cache_put(c, s, NOW);
    s->user_id = 7; /* logged in: the copy of its id is dropped, nothing kept */
    session_cache_put(c, s, NOW);
    assert_null(session_cache_get(c, s->id_hash, TAG_A, NOW));

    s->user_id = 0;
    s->dirty = true; /* not what the row holds */
    session_cache_put(c, s, NOW);
    assert_null(session_cache_get(c, s->id_hash, TAG_A, NOW));
    s->dirty = false;
    s->stored = false;
    session_cache_put(c, s, NOW);
    assert_null(session_cache_get(c, s->id_hash, TAG_A, NOW));
    s->stored = true;
    s->state_tag[0] = '\0';
    session_cache_put(c, s, NOW);
    assert_null(session_cache_get(c, s->id_hash, TAG_A, NOW));

    memcpy(s->state_tag, TAG_A, sizeof s->state_tag);
    session_cache_put(c, s, NOW);
    struct session *hit = session_cache_get(c, s->id_hash, TAG_A, NOW);
    assert_non_null(hit);
    session_free(hit);
    session_cache_forget(c, s->id_hash);
    assert_null(session_cache_get(c, s->id_hash, TAG_A, NOW));
    session_free(s);
    session_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_copy_answers_its_id_and_tag_only),
        cmocka_unit_test(test_a_copy_ages_out_and_follows_liveness),
        cmocka_unit_test(test_only_saved_anonymous_sessions_are_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
