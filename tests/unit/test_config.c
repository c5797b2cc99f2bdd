/* test_config.c — .env parsing, aliases, validation messages naming the variable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/config.h"
#include "core/dotenv.h"
#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const managed[] = {"SECRET_KEY",
                                      "DJANGO_SECRET_KEY",
                                      "USHER_DEMO",
                                      "DEBUG",
                                      "BIND",
                                      "TAILSCALE_IP",
                                      "DATABASE_URL",
                                      "POSTGRES_DB",
                                      "POSTGRES_USER",
                                      "POSTGRES_PASSWORD",
                                      "POSTGRES_HOST",
                                      "POSTGRES_PORT",
                                      "WEB_THREADS",
                                      "PUBLIC_BASE_URL",
                                      "TASK_BROKER_URL",
                                      "CELERY_BROKER_URL",
                                      "STRIPE_CHECKOUT_UI",
                                      "USHER_ENV_FILE",
                                      "BRAND_COLOR",
                                      "SITE_NAME",
                                      "TRUSTED_PROXIES",
                                      NULL};

static char env_path[64];

static int clear_env(void **state)
{
    (void)state;
    for (const char *const *n = managed; *n; n++)
        unsetenv(*n);
    snprintf(env_path, sizeof env_path, "/tmp/usher-test-env-%d", (int)getpid());
    unlink(env_path);
    setenv("USHER_ENV_FILE", env_path, 1);
    return 0;
}

static void write_env(const char *text)
{
    FILE *f = fopen(env_path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int has_problem(const struct config_problems *p, const char *needle)
{
    for (size_t i = 0; i < p->count; i++)
        if (strstr(p->items[i], needle))
            return 1;
    return 0;
}

static void test_dotenv_formats(void **state)
{
    (void)state;
    struct dotenv env = {0};
    int bad = 0;
    assert_int_equal(dotenv_parse(&env,
                                  "# comment\n"
                                  "A=plain # trailing comment\n"
                                  "export B = 'single #kept'\n"
                                  "C=\"dq \\\"x\\\" \\n\"\n"
                                  "\n"
                                  "D=\n"
                                  "A=second\r\n",
                                  &bad),
                     0);
    assert_string_equal(dotenv_get(&env, "A"), "second");
    assert_string_equal(dotenv_get(&env, "B"), "single #kept");
    assert_string_equal(dotenv_get(&env, "C"), "dq \"x\" \n");
    assert_string_equal(dotenv_get(&env, "D"), "");
    assert_null(dotenv_get(&env, "E"));
    dotenv_cleanup(&env);
}

static void test_dotenv_reports_line_not_content(void **state)
{
    (void)state;
    struct dotenv env = {0};
    int bad = 0;
    assert_int_equal(dotenv_parse(&env, "A=1\nthis is not valid\n", &bad), USHER_EINVAL);
    assert_int_equal(bad, 2);
    dotenv_cleanup(&env);
    assert_int_equal(dotenv_parse(&env, "A=\"unterminated\n", &bad), USHER_EINVAL);
    dotenv_cleanup(&env);
}

static void test_secret_required_outside_demo(void **state)
{
    (void)state;
    struct usher_config cfg;
    struct config_problems p;
    assert_int_equal(config_load(&cfg, &p), USHER_ECONFIG);
    assert_true(has_problem(&p, "SECRET_KEY"));
    config_problems_cleanup(&p);
    config_cleanup(&cfg);

    setenv("USHER_DEMO", "1", 1);
    assert_int_equal(config_load(&cfg, &p), 0);
    assert_true(cfg.demo);
    config_problems_cleanup(&p);
    config_cleanup(&cfg);
}

static void test_dotenv_file_and_env_precedence(void **state)
{
    (void)state;
    write_env("DJANGO_SECRET_KEY=0123456789abcdef0123456789abcdef-from-file\n"
              "SITE_NAME=From File\nWEB_THREADS=3\n");
    setenv("SITE_NAME", "From Env", 1);
    struct usher_config cfg;
    struct config_problems p;
    assert_int_equal(config_load(&cfg, &p), 0);
    assert_string_equal(cfg.secret_key, "0123456789abcdef0123456789abcdef-from-file");
    assert_string_equal(cfg.site_name, "From Env");
    assert_int_equal(cfg.web_threads, 3);
    assert_int_equal(cfg.db_pool_size, 5);
    assert_string_equal(cfg.database_url, "sqlite:///var/usher.sqlite3");
    assert_string_equal(cfg.bind_host, "127.0.0.1");
    assert_int_equal(cfg.bind_port, 8000);
    assert_string_equal(cfg.task_broker_url, "database");
    config_problems_cleanup(&p);
    config_cleanup(&cfg);
}

static void test_aliases(void **state)
{
    (void)state;
    setenv("USHER_DEMO", "1", 1);
    setenv("TAILSCALE_IP", "100.64.0.7", 1);
    setenv("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0", 1);
    setenv("POSTGRES_DB", "usher", 1);
    setenv("POSTGRES_USER", "app", 1);
    setenv("POSTGRES_PASSWORD", "p@ss word", 1);
    setenv("POSTGRES_HOST", "db.internal", 1);
    setenv("POSTGRES_PORT", "5433", 1);
    struct usher_config cfg;
    struct config_problems p;
    assert_int_equal(config_load(&cfg, &p), 0);
    assert_string_equal(cfg.bind_host, "100.64.0.7");
    assert_string_equal(cfg.task_broker_url, "redis://127.0.0.1:6379/0");
    assert_string_equal(cfg.database_url, "postgresql://app:p%40ss%20word@db.internal:5433/usher");
    config_problems_cleanup(&p);
    config_cleanup(&cfg);
}

static void test_malformed_values_are_named(void **state)
{
    (void)state;
    setenv("USHER_DEMO", "1", 1);
    setenv("BIND", "nonsense", 1);
    setenv("WEB_THREADS", "0", 1);
    setenv("DATABASE_URL", "mysql://x", 1);
    setenv("PUBLIC_BASE_URL", "ftp://x", 1);
    setenv("DEBUG", "maybe", 1);
    setenv("STRIPE_CHECKOUT_UI", "popup", 1);
    setenv("BRAND_COLOR", "red;}", 1);
    struct usher_config cfg;
    struct config_problems p;
    assert_int_equal(config_load(&cfg, &p), USHER_ECONFIG);
    const char *names[] = {"BIND",  "WEB_THREADS",        "DATABASE_URL", "PUBLIC_BASE_URL",
                           "DEBUG", "STRIPE_CHECKOUT_UI", "BRAND_COLOR"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        assert_true(has_problem(&p, names[i]));
    config_problems_cleanup(&p);
    config_cleanup(&cfg);
}

static void test_public_origin(void **state)
{
    (void)state;
    setenv("USHER_DEMO", "1", 1);
    setenv("PUBLIC_BASE_URL", "https://signup.example.test:8443/base/", 1);
    struct usher_config cfg;
    struct config_problems p;
    assert_int_equal(config_load(&cfg, &p), 0);
    assert_string_equal(cfg.public_base_url, "https://signup.example.test:8443/base");
    assert_string_equal(cfg.public_origin, "https://signup.example.test:8443");
    assert_true(cfg.public_https);
    config_problems_cleanup(&p);
    config_cleanup(&cfg);
}

/* TRUSTED_PROXIES: empty trusts nobody; a list is parsed; a bad item is named. */
static void test_trusted_proxies(void **state)
{
    (void)state;
    setenv("USHER_DEMO", "1", 1);
    struct usher_config cfg;
    struct config_problems p;
    assert_int_equal(config_load(&cfg, &p), 0);
    assert_int_equal(cfg.trusted_proxies.count, 0);
    config_problems_cleanup(&p);
    config_cleanup(&cfg);

    setenv("TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8, fd00::/8", 1);
    assert_int_equal(config_load(&cfg, &p), 0);
    assert_int_equal(cfg.trusted_proxies.count, 3);
    struct config_problems none;
    config_warnings(&cfg, &none);
    assert_false(has_problem(&none, "TRUSTED_PROXIES"));
    config_problems_cleanup(&none);
    config_problems_cleanup(&p);
    config_cleanup(&cfg);
    assert_null(cfg.trusted_proxies.items);

    setenv("TRUSTED_PROXIES", "10.0.0.0/8, ::/0", 1);
    assert_int_equal(config_load(&cfg, &p), 0);
    struct config_problems warnings;
    config_warnings(&cfg, &warnings);
    assert_true(has_problem(&warnings, "TRUSTED_PROXIES: a /0 block trusts every address"));
    config_problems_cleanup(&warnings);
    config_problems_cleanup(&p);
    config_cleanup(&cfg);

    setenv("TRUSTED_PROXIES", "127.0.0.1, proxy.internal", 1);
    assert_int_equal(config_load(&cfg, &p), USHER_ECONFIG);
    assert_true(has_problem(&p, "TRUSTED_PROXIES: \"proxy.internal\" is not an IP address"));
    config_problems_cleanup(&p);
    config_cleanup(&cfg);

    setenv("TRUSTED_PROXIES", "10.0.0.0/8,", 1);
    assert_int_equal(config_load(&cfg, &p), USHER_ECONFIG);
    assert_true(has_problem(&p, "TRUSTED_PROXIES: an empty item"));
    config_problems_cleanup(&p);
    config_cleanup(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dotenv_formats),
        cmocka_unit_test(test_dotenv_reports_line_not_content),
        cmocka_unit_test_setup(test_secret_required_outside_demo, clear_env),
        cmocka_unit_test_setup(test_dotenv_file_and_env_precedence, clear_env),
        cmocka_unit_test_setup(test_aliases, clear_env),
        cmocka_unit_test_setup(test_malformed_values_are_named, clear_env),
        cmocka_unit_test_setup(test_public_origin, clear_env),
        cmocka_unit_test_setup(test_trusted_proxies, clear_env),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(env_path);
    return rc;
}
