/*
 * test_log.c — log lines: their shape, the timestamp each thread keeps for a second and then
 * renews, the level filter, and log_quote's escaping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/clock.h"
#include "core/log.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Runs log_msg(level, "msg=%s", text) with stderr sent to a file; returns what was written
 * (freed by the caller) and the seconds before and after the call. */
static char *logged(enum log_level level, const char *text, time_t *before, time_t *after)
{
    char path[] = "/tmp/usher-test-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    *before = time(NULL);
    log_msg(level, "msg=%s", text);
    *after = time(NULL);
    assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
    char *out = calloc(1, 4096);
    assert_non_null(out);
    assert_true(pread(fd, out, 4095, 0) >= 0);
    close(fd);
    unlink(path);
    return out;
}

/* Whether line starts with the RFC 3339 form of one of the seconds from..to. */
static bool stamped_between(const char *line, time_t from, time_t to)
{
    for (time_t t = from; t <= to; t++) {
        char ts[32];
        clock_format_rfc3339((int64_t)t, ts, sizeof ts);
        if (strncmp(line, ts, strlen(ts)) == 0 && line[strlen(ts)] == ' ')
            return true;
    }
    return false;
}

static void test_line_shape_and_fresh_timestamps(void **state)
{
    (void)state;
    time_t b1, a1, b2, a2;
    char *first = logged(LOG_INFO, "first", &b1, &a1);
    assert_true(stamped_between(first, b1, a1));
    assert_non_null(strstr(first, " level=info msg=first\n"));
    /* The next second's line carries the next second, not the one kept from before. */
    while (time(NULL) <= a1)
        usleep(20 * 1000);
    char *second = logged(LOG_WARN, "second", &b2, &a2);
    assert_true(stamped_between(second, b2, a2));
    assert_true(b2 > a1);
    assert_non_null(strstr(second, " level=warn msg=second\n"));
    free(first);
    free(second);
}

static void test_below_the_level_writes_nothing(void **state)
{
    (void)state;
    time_t b, a;
    log_set_level(LOG_WARN);
    char *out = logged(LOG_INFO, "hidden", &b, &a);
    log_set_level(LOG_INFO);
    assert_string_equal(out, "");
    free(out);
}

static void test_quote_escapes_what_could_forge_a_line(void **state)
{
    (void)state;
    char out[64];
    log_quote(out, sizeof out, "a\"b\\c\nd");
    assert_string_equal(out, "a\\\"b\\\\c\\x0ad");
    log_quote(out, sizeof out, NULL);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_shape_and_fresh_timestamps),
        cmocka_unit_test(test_below_the_level_writes_nothing),
        cmocka_unit_test(test_quote_escapes_what_could_forge_a_line),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
