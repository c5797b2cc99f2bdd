/* test_http_client.c — the HTTP core's pure parts: excerpts, backoff, retry rules, request
 * checks, and a refused connection. Behaviour against live servers (keep-alive, limits,
 * timeouts, TLS verification, retries) is in tests/integration/test_clients_http.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/metrics.h"
#include "integrations/http_client.h"

#include <stdlib.h>
#include <string.h>

static void test_excerpt_sanitizes(void **state)
{
    (void)state;
    char out[HTTP_EXCERPT_MAX + 1];
    const char body[] = "{\"error\":\n\t\"bad\x01thing\"}  \r\n";
    http_excerpt(out, sizeof out, body, strlen(body));
    assert_string_equal(out, "{\"error\": \"bad?thing\"}");
    const char utf8[] = "caf\xc3\xa9";
    http_excerpt(out, sizeof out, utf8, strlen(utf8));
    assert_string_equal(out, "caf??");
    char small[8];
    http_excerpt(small, sizeof small, "abcdefghijkl", 12);
    assert_string_equal(small, "abcdefg");
    http_excerpt(out, sizeof out, "", 0);
    assert_string_equal(out, "");
}

static void test_excerpt_redacts_secrets(void **state)
{
    (void)state;
    char out[HTTP_EXCERPT_MAX + 1];
    const char body[] = "Invalid API Key provided: sk_test_abc123XYZ; secret whsec_0k and "
                        "Bearer abc.def-ghi, token eyJhbGciOi.eyJzdWIi.sig rk_live_9";
    http_excerpt(out, sizeof out, body, strlen(body));
    assert_null(strstr(out, "abc123"));
    assert_null(strstr(out, "0k"));
    assert_null(strstr(out, "abc.def"));
    assert_null(strstr(out, "hbGci"));
    assert_null(strstr(out, "rk_live_9"));
    assert_non_null(strstr(out, "Invalid API Key provided: [redacted];"));
    const char cut[] = "a\0b";
    http_excerpt(out, sizeof out, cut, 3);
    assert_string_equal(out, "a?b");
}

static void test_backoff_is_exponential_capped_and_jittered(void **state)
{
    (void)state;
    struct http_retry p = {.max_attempts = 5, .base_delay_ms = 100, .max_delay_ms = 1000};
    for (int round = 0; round < 200; round++) {
        long d1 = http_backoff_ms(&p, 1), d2 = http_backoff_ms(&p, 2);
        long d3 = http_backoff_ms(&p, 3), d9 = http_backoff_ms(&p, 9);
        assert_true(d1 >= 50 && d1 <= 100);
        assert_true(d2 >= 100 && d2 <= 200);
        assert_true(d3 >= 200 && d3 <= 400);
        assert_true(d9 >= 500 && d9 <= 1000);
    }
    struct http_retry zero = {.max_attempts = 2};
    assert_int_equal(http_backoff_ms(&zero, 1), 0);
}

static void test_retry_rules(void **state)
{
    (void)state;
    struct http_response r;
    http_response_init(&r);
    struct http_error e = {0};
    r.status = 503;
    assert_true(http_retry_idempotent(0, &e, &r, NULL));
    r.status = 429;
    assert_true(http_retry_idempotent(0, &e, &r, NULL));
    r.status = 404;
    assert_false(http_retry_idempotent(0, &e, &r, NULL));
    r.status = 409;
    assert_false(http_retry_idempotent(0, &e, &r, NULL));
    e.kind = HTTP_ERR_CONNECT;
    assert_true(http_retry_idempotent(USHER_EUPSTREAM, &e, &r, NULL));
    assert_true(http_retry_unsent(USHER_EUPSTREAM, &e, &r, NULL));
    e.kind = HTTP_ERR_TIMEOUT;
    assert_true(http_retry_idempotent(USHER_EUPSTREAM, &e, &r, NULL));
    assert_false(http_retry_unsent(USHER_EUPSTREAM, &e, &r, NULL));
    e.kind = HTTP_ERR_TLS;
    assert_false(http_retry_idempotent(USHER_EUPSTREAM, &e, &r, NULL));
    e.kind = HTTP_ERR_TOO_LARGE;
    assert_false(http_retry_idempotent(USHER_ELIMIT, &e, &r, NULL));
    r.status = 500;
    assert_false(http_retry_unsent(0, &e, &r, NULL));
}

static void test_unusable_requests_are_refused(void **state)
{
    (void)state;
    struct http_response r;
    struct http_error e;
    http_response_init(&r);
    const char *bad[] = {"ftp://x.test/",
                         "file:///etc/passwd",
                         "http://x.test/a b",
                         "http://x.test/\r\nX: y",
                         "",
                         NULL};
    for (int i = 0; bad[i]; i++) {
        struct http_request req = {.url = bad[i], .upstream = "test"};
        assert_int_equal(http_send(&req, &r, &e), USHER_EINVAL);
        assert_int_equal(e.kind, HTTP_ERR_INVALID);
    }
    struct http_request req = {.url = "http://127.0.0.1:1/", .method = "TRACE"};
    assert_int_equal(http_send(&req, &r, &e), USHER_EINVAL);
    http_response_cleanup(&r);
}

static void test_refused_connection_is_upstream_connect(void **state)
{
    (void)state;
    metrics_reset();
    struct http_response r;
    struct http_error e;
    http_response_init(&r);
    /* Port 1 on loopback: nothing listens there on a test machine. */
    struct http_request req = {
        .url = "http://127.0.0.1:1/x?secret=s3cr3t", .upstream = "test", .connect_timeout_ms = 500};
    struct http_retry once = {.max_attempts = 2,
                              .base_delay_ms = 1,
                              .max_delay_ms = 1,
                              .should_retry = http_retry_unsent};
    assert_int_equal(http_send_retry(&req, &r, &e, &once), USHER_EUPSTREAM);
    assert_int_equal(e.kind, HTTP_ERR_CONNECT);
    assert_int_equal(e.status, 0);
    assert_int_equal(r.attempts, 2);
    assert_null(strstr(e.excerpt, "s3cr3t"));
    struct buf m;
    buf_init(&m);
    metrics_render(&m);
    assert_non_null(
        strstr(m.data, "usher_upstream_errors_total{upstream=\"test\",kind=\"connect\"} 2"));
    assert_non_null(
        strstr(m.data, "usher_upstream_request_duration_seconds_count{upstream=\"test\"} 2"));
    buf_cleanup(&m);
    http_response_cleanup(&r);
    http_thread_cleanup();
}

static int load(struct usher_config *cfg, struct config_problems *p)
{
    setenv("USHER_DEMO", "1", 1);
    setenv("USHER_ENV_FILE", "/dev/null", 1);
    return config_load(cfg, p);
}

static bool problem_names(const struct config_problems *p, const char *var)
{
    for (size_t i = 0; i < p->count; i++)
        if (!strncmp(p->items[i], var, strlen(var)))
            return true;
    return false;
}

/* The variables this module added to core/config: defaults, bounds, the version's shape. */
static void test_configuration(void **state)
{
    (void)state;
    struct usher_config cfg;
    struct config_problems p;
    unsetenv("HTTP_CONNECT_TIMEOUT_MS");
    unsetenv("HTTP_TIMEOUT_MS");
    unsetenv("STRIPE_API_VERSION");
    assert_int_equal(load(&cfg, &p), 0);
    assert_int_equal(cfg.http_connect_timeout_ms, HTTP_DEFAULT_CONNECT_TIMEOUT_MS);
    assert_int_equal(cfg.http_timeout_ms, HTTP_DEFAULT_TIMEOUT_MS);
    assert_string_equal(cfg.stripe_api_version, "");
    config_cleanup(&cfg);
    config_problems_cleanup(&p);

    setenv("HTTP_CONNECT_TIMEOUT_MS", "250", 1);
    setenv("HTTP_TIMEOUT_MS", "60000", 1);
    setenv("STRIPE_API_VERSION", "2025-03-31.basil", 1);
    assert_int_equal(load(&cfg, &p), 0);
    assert_int_equal(cfg.http_connect_timeout_ms, 250);
    assert_int_equal(cfg.http_timeout_ms, 60000);
    assert_string_equal(cfg.stripe_api_version, "2025-03-31.basil");
    config_cleanup(&cfg);
    config_problems_cleanup(&p);

    const char *bad_versions[] = {"dahlia",       "2026-6-24", "2026-06-24.", "2026-06-24.Dahlia",
                                  "2026-06-24 x", NULL};
    for (int i = 0; bad_versions[i]; i++) {
        setenv("STRIPE_API_VERSION", bad_versions[i], 1);
        assert_int_not_equal(load(&cfg, &p), 0);
        assert_true(problem_names(&p, "STRIPE_API_VERSION"));
        config_cleanup(&cfg);
        config_problems_cleanup(&p);
    }
    setenv("STRIPE_API_VERSION", "2026-06-24", 1);
    setenv("HTTP_TIMEOUT_MS", "5", 1);
    setenv("HTTP_CONNECT_TIMEOUT_MS", "soon", 1);
    assert_int_not_equal(load(&cfg, &p), 0);
    assert_false(problem_names(&p, "STRIPE_API_VERSION"));
    assert_true(problem_names(&p, "HTTP_TIMEOUT_MS"));
    assert_true(problem_names(&p, "HTTP_CONNECT_TIMEOUT_MS"));
    config_cleanup(&cfg);
    config_problems_cleanup(&p);
    unsetenv("HTTP_CONNECT_TIMEOUT_MS");
    unsetenv("HTTP_TIMEOUT_MS");
    unsetenv("STRIPE_API_VERSION");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_excerpt_sanitizes),
        cmocka_unit_test(test_excerpt_redacts_secrets),
        cmocka_unit_test(test_backoff_is_exponential_capped_and_jittered),
        cmocka_unit_test(test_retry_rules),
        cmocka_unit_test(test_unusable_requests_are_refused),
        cmocka_unit_test(test_refused_connection_is_upstream_connect),
        cmocka_unit_test(test_configuration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
