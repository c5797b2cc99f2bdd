/* test_metrics.c — the Prometheus registry's text output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/metrics.h"

#include <string.h>

static void test_counter_and_labels(void **state)
{
    (void)state;
    metrics_reset();
    struct buf labels, out;
    buf_init(&labels);
    buf_init(&out);
    metrics_labels(&labels, 2, "route", "a\"b\\c", "method", "GET");
    metrics_counter_add("x_requests_total", "Requests.", labels.data, 1);
    metrics_counter_add("x_requests_total", "Requests.", labels.data, 2);
    metrics_render(&out);
    assert_non_null(strstr(out.data, "# TYPE x_requests_total counter\n"));
    assert_non_null(strstr(out.data, "x_requests_total{route=\"a\\\"b\\\\c\",method=\"GET\"} 3\n"));
    buf_cleanup(&labels);
    buf_cleanup(&out);
}

static void test_histogram_buckets_are_cumulative(void **state)
{
    (void)state;
    metrics_reset();
    const double bounds[] = {0.1, 1.0};
    metrics_observe("x_seconds", "Latency.", "route=\"r\"", 0.05, bounds, 2);
    metrics_observe("x_seconds", "Latency.", "route=\"r\"", 0.5, bounds, 2);
    metrics_observe("x_seconds", "Latency.", "route=\"r\"", 5, bounds, 2);
    struct buf out;
    buf_init(&out);
    metrics_render(&out);
    assert_non_null(strstr(out.data, "# TYPE x_seconds histogram\n"));
    assert_non_null(strstr(out.data, "x_seconds_bucket{route=\"r\",le=\"0.1\"} 1\n"));
    assert_non_null(strstr(out.data, "x_seconds_bucket{route=\"r\",le=\"1\"} 2\n"));
    assert_non_null(strstr(out.data, "x_seconds_bucket{route=\"r\",le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(out.data, "x_seconds_count{route=\"r\"} 3\n"));
    buf_cleanup(&out);
    metrics_reset();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_and_labels),
        cmocka_unit_test(test_histogram_buckets_are_cumulative),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
