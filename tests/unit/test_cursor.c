/* test_cursor.c — signed keyset cursors: round trips, and every way a cursor from the
 * address bar can be wrong (forged, truncated, tampered, foreign, out of range). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/crypto.h"
#include "core/cursor.h"
#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET "test-secret-key-0123456789abcdef"

static struct cursor make(int64_t id, const char *key)
{
    struct cursor c = {.id = id};
    if (key) {
        c.has_key = true;
        snprintf(c.key, sizeof c.key, "%s", key);
    }
    return c;
}

/* A correctly signed cursor for an arbitrary payload, as an attacker who knew the key
 * could make: checks the parser behind the signature. */
static char *signed_raw(const char *list, const char *payload)
{
    char msg[1200];
    snprintf(msg, sizeof msg, "usher-cursor-v1\n%s\n%s", list, payload);
    unsigned char mac[CRYPTO_SHA256_LEN];
    assert_int_equal(crypto_hmac_sha256(SECRET, strlen(SECRET), msg, strlen(msg), mac), 0);
    size_t n = strlen(payload);
    char *out = malloc(2 * n + 34);
    crypto_hex((const unsigned char *)payload, n, out);
    out[2 * n] = '.';
    crypto_hex(mac, 16, out + 2 * n + 1);
    return out;
}

static void test_round_trip(void **state)
{
    (void)state;
    struct cursor c = make(42, NULL), out;
    char *text = cursor_encode(SECRET, "products", &c);
    assert_non_null(text);
    assert_int_equal(cursor_decode(SECRET, "products", text, &out), 0);
    assert_int_equal(out.id, 42);
    assert_false(out.has_key);
    free(text);

    c = make(INT64_MAX, "it's 100% \"quoted\" _x_ ünïcode:colon");
    text = cursor_encode(SECRET, "users", &c);
    assert_int_equal(cursor_decode(SECRET, "users", text, &out), 0);
    assert_int_equal(out.id, INT64_MAX);
    assert_true(out.has_key);
    assert_string_equal(out.key, c.key);
    free(text);

    c = make(7, ""); /* an empty sort key is still a key */
    text = cursor_encode(SECRET, "users", &c);
    assert_int_equal(cursor_decode(SECRET, "users", text, &out), 0);
    assert_true(out.has_key);
    assert_string_equal(out.key, "");
    free(text);
}

static void test_encode_refuses_out_of_range(void **state)
{
    (void)state;
    struct cursor c = make(0, NULL);
    assert_null(cursor_encode(SECRET, "products", &c));
    c = make(-5, NULL);
    assert_null(cursor_encode(SECRET, "products", &c));
    c = make(1, NULL);
    assert_null(cursor_encode("", "products", &c));
    assert_null(cursor_encode(SECRET, "", &c));
}

static void test_forged_and_tampered(void **state)
{
    (void)state;
    struct cursor c = make(1234, "alpha"), out;
    char *text = cursor_encode(SECRET, "products", &c);
    /* Another list, another secret. */
    assert_int_equal(cursor_decode(SECRET, "prices", text, &out), USHER_EINVAL);
    assert_int_equal(cursor_decode("other-secret", "products", text, &out), USHER_EINVAL);
    /* One payload character changed (the id 1234 → 1235: '4' is hex 34, '5' is 35). */
    char *tampered = strdup(text);
    char *four = strstr(tampered, "34");
    assert_non_null(four);
    four[1] = '5';
    assert_int_equal(cursor_decode(SECRET, "products", tampered, &out), USHER_EINVAL);
    /* One tag character changed. */
    strcpy(tampered, text);
    size_t len = strlen(tampered);
    tampered[len - 1] = tampered[len - 1] == '0' ? '1' : '0';
    assert_int_equal(cursor_decode(SECRET, "products", tampered, &out), USHER_EINVAL);
    /* Upper-case hex is not what Usher hands out. */
    strcpy(tampered, text);
    for (char *p = tampered; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    assert_int_equal(cursor_decode(SECRET, "products", tampered, &out), USHER_EINVAL);
    /* Made-up strings. */
    const char *junk[] = {"",
                          ".",
                          "abc",
                          "1234",
                          "31.",
                          ".00000000000000000000000000000000",
                          "zz.00000000000000000000000000000000",
                          "' OR 1=1 --",
                          "%00",
                          NULL};
    for (size_t i = 0; junk[i]; i++)
        assert_int_equal(cursor_decode(SECRET, "products", junk[i], &out), USHER_EINVAL);
    free(tampered);
    free(text);
}

static void test_truncated(void **state)
{
    (void)state;
    struct cursor c = make(99, "key"), out;
    char *text = cursor_encode(SECRET, "products", &c);
    size_t len = strlen(text);
    for (size_t cut = 0; cut < len; cut++) {
        char *t = strndup(text, cut);
        assert_int_equal(cursor_decode(SECRET, "products", t, &out), USHER_EINVAL);
        free(t);
    }
    free(text);
}

static void test_out_of_range_behind_a_valid_signature(void **state)
{
    (void)state;
    struct cursor out;
    const char *bad[] = {
        "0", "-1", "007", "9223372036854775808", "99999999999999999999", "12a", ":key",
        "",  " 1", NULL};
    for (size_t i = 0; bad[i]; i++) {
        char *t = signed_raw("products", bad[i]);
        assert_int_equal(cursor_decode(SECRET, "products", t, &out), USHER_EINVAL);
        free(t);
    }
    char *t = signed_raw("products", "9223372036854775807:k");
    assert_int_equal(cursor_decode(SECRET, "products", t, &out), 0);
    assert_int_equal(out.id, INT64_MAX);
    free(t);
    /* A NUL byte hidden in the hex payload. */
    t = signed_raw("products", "5:ab");
    t[4] = '0';
    t[5] = '0'; /* ':' (3a) → 00 */
    assert_int_equal(cursor_decode(SECRET, "products", t, &out), USHER_EINVAL);
    free(t);
}

static void test_overlong(void **state)
{
    (void)state;
    struct cursor c = make(1, NULL), out;
    memset(c.key, 'k', CURSOR_KEY_MAX);
    c.key[CURSOR_KEY_MAX] = '\0';
    c.has_key = true;
    char *text = cursor_encode(SECRET, "users", &c); /* the longest key fits */
    assert_non_null(text);
    assert_true(strlen(text) <= CURSOR_TEXT_MAX);
    assert_int_equal(cursor_decode(SECRET, "users", text, &out), 0);
    free(text);
    char *huge = malloc(10 * 1024 + 1);
    memset(huge, 'a', 10 * 1024);
    huge[10 * 1024] = '\0';
    assert_int_equal(cursor_decode(SECRET, "users", huge, &out), USHER_EINVAL);
    free(huge);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_encode_refuses_out_of_range),
        cmocka_unit_test(test_forged_and_tampered),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_out_of_range_behind_a_valid_signature),
        cmocka_unit_test(test_overlong),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
