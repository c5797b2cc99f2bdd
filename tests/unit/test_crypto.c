/* test_crypto.c — hashing, HMAC (RFC 4231 vectors), randomness, constant-time equality. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/crypto.h"

#include <stdlib.h>
#include <string.h>

static void test_sha256_known_value(void **state)
{
    (void)state;
    char hex[CRYPTO_SHA256_HEX_LEN + 1];
    crypto_sha256_hex("abc", hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_hmac_rfc4231_case2(void **state)
{
    (void)state;
    char hex[CRYPTO_SHA256_HEX_LEN + 1];
    const char *data = "what do ya want for nothing?";
    assert_int_equal(crypto_hmac_sha256_hex("Jefe", data, strlen(data), hex), 0);
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void test_random_hex_is_fresh(void **state)
{
    (void)state;
    char *a = crypto_random_hex(32);
    char *b = crypto_random_hex(32);
    assert_int_equal(strlen(a), 64);
    assert_string_not_equal(a, b);
    free(a);
    free(b);
}

static void test_random_below_is_in_range_and_spread(void **state)
{
    (void)state;
    int seen[10] = {0};
    for (int i = 0; i < 5000; i++) {
        unsigned v = crypto_random_below(10);
        assert_true(v < 10);
        seen[v]++;
    }
    for (int i = 0; i < 10; i++)
        assert_true(seen[i] > 300); /* expected 500 each; 300 is far outside chance */
}

static void test_equal(void **state)
{
    (void)state;
    assert_true(crypto_equal_str("token", "token"));
    assert_false(crypto_equal_str("token", "tokem"));
    assert_false(crypto_equal_str("token", "token2"));
    assert_false(crypto_equal_str(NULL, "x"));
    assert_false(crypto_equal_str("", "x"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_known_value),
        cmocka_unit_test(test_hmac_rfc4231_case2),
        cmocka_unit_test(test_random_hex_is_fresh),
        cmocka_unit_test(test_random_below_is_in_range_and_spread),
        cmocka_unit_test(test_equal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
