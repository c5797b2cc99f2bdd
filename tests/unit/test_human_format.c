/* test_human_format.c — money, prices and long dates as customers read them, with their words
 * from the message table (en.json, and a translated copy of it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/human_format.h"
#include "core/mem.h"
#include "core/messages.h"

#include <jansson.h>
#include <stdlib.h>
#include <unistd.h>

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

/* A second language is a translation of the table: German month names, word order and
 * period words, with no change to the code. */
static void test_translated_words(void **state)
{
    (void)state;
    char *path = xasprintf("%s/%s", getenv("USHER_DATA_DIR"), MESSAGES_FILE);
    json_t *table = json_load_file(path, 0, NULL);
    free(path);
    assert_non_null(table);
    json_object_set_new(table, "date.january", json_string("Januar"));
    json_object_set_new(table, "date.long", json_string("{{day}}. {{month}} {{year}}"));
    json_object_set_new(table, "price.per_month", json_string("{{amount}} / Monat"));
    json_object_set_new(table, "price.per_year", json_string("{{amount}} pro Jahr"));
    char de[] = "/tmp/usher-messages-de-XXXXXX";
    int fd = mkstemp(de);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(json_dump_file(table, de, 0), 0);
    json_decref(table);
    char *error = NULL;
    int rc = messages_load_file(de, &error);
    unlink(de);
    if (rc != 0)
        fail_msg("%s", error);
    char out[FORMAT_DATE_MAX];
    format_long_date(1798848000, out, sizeof out);
    assert_string_equal(out, "2. Januar 2027");
    format_price(300, "eur", "monthly", out, sizeof out);
    assert_string_equal(out, "€3.00 / Monat");
    format_price(12000, "eur", "annual", out, sizeof out);
    assert_string_equal(out, "€120.00 pro Jahr");
    assert_int_equal(messages_load(getenv("USHER_DATA_DIR"), NULL), 0); /* back to English */
}

static int load_table(void **state)
{
    (void)state;
    return messages_load(getenv("USHER_DATA_DIR"), NULL);
}

static int unload_table(void **state)
{
    (void)state;
    messages_unload();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_money),
        cmocka_unit_test(test_price),
        cmocka_unit_test(test_long_date),
        cmocka_unit_test(test_translated_words),
    };
    return cmocka_run_group_tests(tests, load_table, unload_table);
}
