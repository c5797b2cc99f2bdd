/* test_onboarding_order.c — the checkout's pure rules: usernames (domain/validate.h)
 * (SPEC §3) and the order total (one currency per Stripe checkout, no overflow). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "core/messages.h"
#include "domain/onboarding.h"
#include "domain/validate.h"

#include <stdlib.h>
#include <string.h>

static void test_username_normalized(void **state)
{
    (void)state;
    const char *good[][2] = {
        {"  Grace.Hopper \n", "grace.hopper"}, {"abc", "abc"}, {"9lives_-.x", "9lives_-.x"}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char *out = NULL;
        const char *error = NULL;
        assert_int_equal(validate_username(good[i][0], &out, &error), 0);
        assert_string_equal(out, good[i][1]);
        free(out);
    }
    char max[USERNAME_MAX_LEN + 1];
    memset(max, 'a', USERNAME_MAX_LEN);
    max[USERNAME_MAX_LEN] = '\0';
    char *out = NULL;
    const char *error = NULL;
    assert_int_equal(validate_username(max, &out, &error), 0);
    free(out);
}

static void test_username_rejects(void **state)
{
    (void)state;
    const char *bad[] = {NULL,
                         "",
                         "   ",
                         "ab",
                         "-abc",
                         ".abc",
                         "_abc",
                         "a bc",
                         "a/bc",
                         "gr\xc3\xa2"
                         "ce",
                         "a@b.c",
                         "abc\x01",
                         "a+b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *out = (char *)"untouched";
        const char *error = NULL;
        assert_int_equal(validate_username(bad[i], &out, &error), USHER_EINVAL);
        assert_null(out);
        assert_non_null(error);
    }
    char long_name[USERNAME_MAX_LEN + 2];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    char *out = NULL;
    const char *error = NULL;
    assert_int_equal(validate_username(long_name, &out, &error), USHER_EINVAL);
}

static json_t *line(json_int_t amount, const char *currency)
{
    return json_pack("{s:I, s:s}", "amount", amount, "currency", currency);
}

static void test_total_sums_one_currency(void **state)
{
    (void)state;
    json_t *lines = json_array();
    json_array_append_new(lines, line(1000, "USD"));
    json_array_append_new(lines, line(300, "usd"));
    json_array_append_new(lines, line(0, "USD"));
    int64_t total = -1;
    const char *currency = NULL;
    assert_int_equal(onboarding_order_total(lines, &total, &currency), 0);
    assert_int_equal(total, 1300);
    assert_string_equal(currency, "USD");
    json_decref(lines);
}

static void test_total_refuses(void **state)
{
    (void)state;
    int64_t total = -1;
    const char *currency = NULL;
    json_t *empty = json_array();
    assert_int_equal(onboarding_order_total(empty, &total, &currency), USHER_EINVAL);
    assert_int_equal(onboarding_order_total(NULL, &total, &currency), USHER_EINVAL);
    json_decref(empty);

    json_t *mixed = json_array();
    json_array_append_new(mixed, line(1000, "USD"));
    json_array_append_new(mixed, line(300, "EUR"));
    assert_int_equal(onboarding_order_total(mixed, &total, &currency), USHER_EINVAL);
    assert_null(currency);
    json_decref(mixed);

    json_t *overflow = json_array();
    json_array_append_new(overflow, line(INT64_MAX, "USD"));
    json_array_append_new(overflow, line(1, "USD"));
    assert_int_equal(onboarding_order_total(overflow, &total, &currency), USHER_EINVAL);
    json_decref(overflow);

    json_t *negative = json_array();
    json_array_append_new(negative, line(-5, "USD"));
    assert_int_equal(onboarding_order_total(negative, &total, &currency), USHER_EINVAL);
    json_decref(negative);

    json_t *malformed = json_array();
    json_array_append_new(malformed, json_pack("{s:s, s:s}", "amount", "10", "currency", "USD"));
    assert_int_equal(onboarding_order_total(malformed, &total, &currency), USHER_EINVAL);
    json_decref(malformed);
}

static void test_renews_at(void **state)
{
    (void)state;
    /* 2027-01-15 12:00:00 UTC */
    assert_int_equal(onboarding_renews_at(1800014400, "monthly"), 1800014400 + 31 * 86400);
    assert_int_equal(onboarding_renews_at(1800014400, "annual"), 1800014400 + 365 * 86400);
    /* 2027-01-31 00:00:00 UTC → 2027-02-28; 2028-01-31 → 2028-02-29 (leap) */
    assert_int_equal(onboarding_renews_at(1801353600, "monthly"), 1801353600 + 28 * 86400);
    assert_int_equal(onboarding_renews_at(1832889600, "monthly"), 1832889600 + 29 * 86400);
    /* 2028-02-29 → 2029-02-28; 2027-12-16 → 2028-01-16 */
    assert_int_equal(onboarding_renews_at(1835395200, "annual"), 1835395200 + 365 * 86400);
    assert_int_equal(onboarding_renews_at(1828915200, "monthly"), 1828915200 + 31 * 86400);
}

int main(void)
{
    if (messages_load(getenv("USHER_DATA_DIR"), NULL) != 0) /* the texts asserted below */
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_username_normalized),
        cmocka_unit_test(test_username_rejects),
        cmocka_unit_test(test_total_sums_one_currency),
        cmocka_unit_test(test_total_refuses),
        cmocka_unit_test(test_renews_at),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
