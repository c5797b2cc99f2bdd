/* test_csv.c — RFC 4180 quoting and the formula-injection guard of core/csv.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/csv.h"

#include <stdlib.h>

/* One row of fields, as csv.h writes it. */
static char *row(const char *const *fields, int n)
{
    struct buf b;
    buf_init(&b);
    for (int i = 0; i < n; i++)
        csv_field(&b, fields[i], i == 0);
    csv_end_row(&b);
    char *text = buf_detach(&b);
    buf_cleanup(&b);
    return text;
}

static void check(const char *const *fields, int n, const char *want)
{
    char *got = row(fields, n);
    assert_string_equal(got, want);
    free(got);
}

static void test_plain_and_empty(void **state)
{
    (void)state;
    const char *f[] = {"a@example.test", "", NULL, "2026-01-01T00:00:00Z"};
    check(f, 4, "a@example.test,,,2026-01-01T00:00:00Z\r\n");
}

static void test_quoting(void **state)
{
    (void)state;
    const char *f[] = {"a,b", "say \"hi\"", "two\nlines", "cr\rhere", "ünïcode"};
    check(f, 5, "\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\"cr\rhere\",ünïcode\r\n");
}

static void test_formula_guard(void **state)
{
    (void)state;
    const char *f[] = {"=1+2", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "a=b"};
    check(f, 7, "'=1+2,'+1,'-1,'@SUM(A1),'\tx,\"'\rx\",a=b\r\n");
    /* The guard and the quoting together: the apostrophe goes inside the quotes. */
    const char *g[] = {"=HYPERLINK(\"http://x\",\"y\")"};
    check(g, 1, "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"\r\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_and_empty),
        cmocka_unit_test(test_quoting),
        cmocka_unit_test(test_formula_guard),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
