/* test_stripe_webhook.c — Stripe-Signature verification rules (INTEGRATIONS.md). The
 * differential test against the official SDK lives in tests/conformance. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/crypto.h"
#include "integrations/stripe_webhook.h"

#include <stdio.h>
#include <string.h>

static const char secret[] = "whsec_test_secret";
static const char body[] = "{\"id\":\"evt_1\",\"type\":\"invoice.paid\"}";
#define NOW 1790000000LL

static void sign(long long t, const char *key, char out[65])
{
    struct buf b;
    buf_init(&b);
    buf_printf(&b, "%lld.%s", t, body);
    crypto_hmac_sha256_hex(key, b.data, b.len, out);
    buf_cleanup(&b);
}

static enum stripe_sig_result verify(const char *header)
{
    return stripe_webhook_verify(header, body, strlen(body), secret, NOW, 300);
}

static void test_valid_and_multiple_v1(void **state)
{
    (void)state;
    char good[65], header[512];
    sign(NOW, secret, good);
    snprintf(header, sizeof header, "t=%lld,v1=%s", NOW, good);
    assert_int_equal(verify(header), STRIPE_SIG_OK);
    snprintf(header, sizeof header, "t=%lld,v1=%064d,v1=%s,v0=abc", NOW, 0, good);
    assert_int_equal(verify(header), STRIPE_SIG_OK);
}

static void test_wrong_secret_and_tampered_body(void **state)
{
    (void)state;
    char bad[65], header[512];
    sign(NOW, "whsec_other", bad);
    snprintf(header, sizeof header, "t=%lld,v1=%s", NOW, bad);
    assert_int_equal(verify(header), STRIPE_SIG_MISMATCH);
    char good[65];
    sign(NOW, secret, good);
    snprintf(header, sizeof header, "t=%lld,v1=%s", NOW, good);
    const char tampered[] = "{\"id\":\"evt_1\",\"type\":\"invoice.paid \"}";
    assert_int_equal(stripe_webhook_verify(header, tampered, strlen(tampered), secret, NOW, 300),
                     STRIPE_SIG_MISMATCH);
}

static void test_v0_only_is_refused(void **state)
{
    (void)state;
    char good[65], header[512];
    sign(NOW, secret, good);
    snprintf(header, sizeof header, "t=%lld,v0=%s", NOW, good);
    assert_int_equal(verify(header), STRIPE_SIG_MALFORMED);
}

static void test_tolerance_both_ways(void **state)
{
    (void)state;
    char sig[65], header[512];
    sign(NOW - 301, secret, sig);
    snprintf(header, sizeof header, "t=%lld,v1=%s", NOW - 301, sig);
    assert_int_equal(verify(header), STRIPE_SIG_STALE);
    sign(NOW - 300, secret, sig);
    snprintf(header, sizeof header, "t=%lld,v1=%s", NOW - 300, sig);
    assert_int_equal(verify(header), STRIPE_SIG_OK);
    sign(NOW + 301, secret, sig);
    snprintf(header, sizeof header, "t=%lld,v1=%s", NOW + 301, sig);
    assert_int_equal(verify(header), STRIPE_SIG_FUTURE);
}

static void test_malformed_headers(void **state)
{
    (void)state;
    const char *bad[] = {"", "garbage", "t=,v1=00", "v1=00", "t=123", "t=12a,v1=00", "t=-5,v1=00"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(verify(bad[i]), STRIPE_SIG_MALFORMED);
    assert_int_equal(verify(NULL), STRIPE_SIG_MALFORMED);
    char good[65], header[512];
    sign(NOW, secret, good);
    snprintf(header, sizeof header, "t=%lld,v1=%s", NOW, good);
    assert_int_equal(stripe_webhook_verify(header, body, strlen(body), "", NOW, 300),
                     STRIPE_SIG_MALFORMED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_and_multiple_v1),
        cmocka_unit_test(test_wrong_secret_and_tampered_body),
        cmocka_unit_test(test_v0_only_is_refused),
        cmocka_unit_test(test_tolerance_both_ways),
        cmocka_unit_test(test_malformed_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
