/* test_human_format.c — money, prices and long dates as customers read them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/human_format.h"

static void test_money(void **state)
{
    (void)state;
    char out[FORMAT_PRICE_MAX];
    format_money(1200, "usd", out, sizeof out);
    assert_string_equal(out, "$12.00");
    format_money(125000, "EUR", out, sizeof out);
    assert_string_equal(out, "€1,250.00");
    format_money(500, "jpy", out, sizeof out);
    assert_string_equal(out, "¥500");
    format_money(350, "chf", out, sizeof out);
    assert_string_equal(out, "CHF 3.50");
    format_money(1234, "kwd", out, sizeof out);
    assert_string_equal(out, "KWD 1.234");
    format_money(-300, "gbp", out, sizeof out);
    assert_string_equal(out, "-£3.00");
}

static void test_price(void **state)
{
    (void)state;
    char out[FORMAT_PRICE_MAX];
    format_price(300, "usd", "monthly", out, sizeof out);
    assert_string_equal(out, "$3.00 / month");
    format_price(12000, "usd", "annual", out, sizeof out);
    assert_string_equal(out, "$120.00 / year");
}

static void test_long_date(void **state)
{
    (void)state;
    char out[FORMAT_DATE_MAX];
    format_long_date(0, out, sizeof out);
    assert_string_equal(out, "1 January 1970");
    format_long_date(1798848000, out, sizeof out); /* 2027-01-02T12:00:00Z */
    assert_string_equal(out, "2 January 2027");
    format_long_date(1709251199, out, sizeof out); /* 2024-02-29T23:59:59Z */
    assert_string_equal(out, "29 February 2024");
    format_long_date(1735689599, out, sizeof out); /* 2024-12-31T23:59:59Z */
    assert_string_equal(out, "31 December 2024");
    char tiny[5];
    format_long_date(1798848000, tiny, sizeof tiny);
    assert_string_equal(tiny, "2 Ja");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_money),
        cmocka_unit_test(test_price),
        cmocka_unit_test(test_long_date),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
