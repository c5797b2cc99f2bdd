/* test_buf.c — the growable buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/buf.h"

#include <stdlib.h>
#include <string.h>

static void test_append_and_grow(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    for (int i = 0; i < 1000; i++)
        buf_printf(&b, "%d,", i % 10);
    assert_int_equal(b.len, 2000);
    assert_int_equal(strlen(b.data), 2000);
    assert_memory_equal(b.data, "0,1,2,", 6);
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    buf_cleanup(&b);
}

static void test_detach_leaves_usable_buffer(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "hello");
    buf_putc(&b, '!');
    char *s = buf_detach(&b);
    assert_string_equal(s, "hello!");
    free(s);
    buf_puts(&b, "again");
    assert_string_equal(b.data, "again");
    buf_cleanup(&b);
}

static void test_binary_append(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    buf_append(&b, "a\0b", 3);
    assert_int_equal(b.len, 3);
    assert_int_equal(b.data[3], '\0');
    buf_append(&b, NULL, 0);
    assert_int_equal(b.len, 3);
    buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_and_grow),
        cmocka_unit_test(test_detach_leaves_usable_buffer),
        cmocka_unit_test(test_binary_append),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
