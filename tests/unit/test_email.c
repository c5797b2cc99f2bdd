/*
 * test_email.c — the tasks' emails (tasks/email.h): the shipped template pairs render with
 * the links, the final date and the brand from the settings, escape in HTML but not in text,
 * fall back when there is no date; bad and unknown names are refused; dates are readable
 * UTC; sent-markers are found only for their own task. The markers run over SQLite and over
 * PostgreSQL when USHER_TEST_PG_URL names a database (schema usher_test_email).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/config.h"
#include "core/err.h"
#include "core/mem.h"
#include "core/mustache.h"
#include "tasks/email.h"
#include "testdb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG_SCHEMA "usher_test_email"

static struct mustache_set *set;
static bool use_pg;
static struct testdb db;

static int load_templates(void **state)
{
    (void)state;
    char *dir = xasprintf("%s/templates", testdb_data_dir());
    set = mustache_set_new();
    char *error = NULL;
    int rc = mustache_set_load_dir(set, dir, &error);
    if (rc != 0)
        fprintf(stderr, "templates: %s\n", error ? error : "?");
    free(error);
    free(dir);
    assert_int_equal(rc, 0);
    return 0;
}

static int free_templates(void **state)
{
    (void)state;
    mustache_set_free(set);
    set = NULL;
    return 0;
}

static json_t *context(const char *first_name, const char *final_date)
{
    struct usher_config cfg = {0};
    cfg.site_name = "Harbor & Co";
    cfg.support_email = "help@harbor.example.test";
    cfg.brand_color = "#123456";
    cfg.logo_url = "/static/logo.svg";
    cfg.public_base_url = "https://portal.example.test";
    json_t *ctx = json_pack("{s:s, s:s, s:s, s:s}", "first_name", first_name, "username", "ada",
                            "recovery_url", "https://portal.example.test/recovery/", "billing_url",
                            "https://portal.example.test/dashboard/");
    if (final_date)
        json_object_set_new(ctx, "final_date", json_string(final_date));
    json_object_set_new(ctx, "site", email_site_context(&cfg));
    return ctx;
}

static void render(const char *name, const json_t *ctx, char **text, char **html)
{
    *text = *html = NULL;
    assert_int_equal(email_render(set, name, ctx, text, html), 0);
    assert_non_null(*text);
    assert_non_null(*html);
}

static void test_canceled_pair(void **state)
{
    (void)state;
    json_t *ctx = context("<Ada>", "2 January 2027");
    char *text, *html;
    render("subscription_canceled", ctx, &text, &html);
    assert_non_null(strstr(text, "https://portal.example.test/recovery/"));
    assert_non_null(strstr(html, "href=\"https://portal.example.test/recovery/\""));
    assert_non_null(strstr(text, "until 2 January 2027 (UTC)"));
    assert_non_null(strstr(html, "2 January 2027"));
    /* Text is sent as text/plain: no escaping there; HTML escapes the user's own name. */
    assert_non_null(strstr(text, "Hello <Ada>,"));
    assert_non_null(strstr(html, "Hello &lt;Ada&gt;,"));
    assert_null(strstr(html, "<Ada>"));
    assert_non_null(strstr(text, "Harbor & Co"));
    assert_non_null(strstr(html, "Harbor &amp; Co"));
    assert_non_null(strstr(html, "#123456"));
    assert_non_null(strstr(text, "help@harbor.example.test"));
    free(text);
    free(html);
    json_decref(ctx);
}

static void test_canceled_without_date(void **state)
{
    (void)state;
    json_t *ctx = context("", NULL);
    char *text, *html;
    render("subscription_canceled", ctx, &text, &html);
    assert_non_null(strstr(text, "for a limited time"));
    assert_null(strstr(text, "until"));
    assert_non_null(strstr(text, "Hello,"));
    assert_non_null(strstr(html, "Hello,"));
    free(text);
    free(html);
    json_decref(ctx);
}

static void test_payment_failed_pair(void **state)
{
    (void)state;
    json_t *ctx = context("Bea", "2 January 2027");
    char *text, *html;
    render("payment_failed", ctx, &text, &html);
    for (int i = 0; i < 2; i++) {
        const char *body = i ? html : text;
        assert_non_null(strstr(body, "https://portal.example.test/dashboard/"));
        assert_non_null(strstr(body, "https://portal.example.test/recovery/"));
        assert_non_null(strstr(body, "Hello Bea,"));
        assert_non_null(strstr(body, "2 January 2027"));
    }
    /* The brand: colour and logo, the logo made absolute (a mail has no base URL). */
    assert_non_null(strstr(html, "#123456"));
    assert_non_null(strstr(html, "src=\"https://portal.example.test/static/logo.svg\""));
    assert_null(strstr(text, "logo.svg"));
    free(text);
    free(html);
    json_decref(ctx);
}

static void test_logo_url_absolute_or_absent(void **state)
{
    (void)state;
    struct usher_config cfg = {0};
    cfg.site_name = "Harbor";
    cfg.brand_color = "#123456";
    cfg.public_base_url = "https://portal.example.test";
    cfg.logo_url = "https://cdn.example.test/harbor.png";
    json_t *site = email_site_context(&cfg);
    assert_string_equal(json_string_value(json_object_get(site, "logo_url")),
                        "https://cdn.example.test/harbor.png");
    json_decref(site);
    cfg.logo_url = "";
    site = email_site_context(&cfg);
    assert_string_equal(json_string_value(json_object_get(site, "logo_url")), "");
    json_decref(site);
}

static void test_bad_and_unknown_names(void **state)
{
    (void)state;
    json_t *ctx = context("Ada", NULL);
    char *text = NULL, *html = NULL;
    assert_int_equal(email_render(set, "../pages/dashboard", ctx, &text, &html), USHER_EINVAL);
    assert_int_equal(email_render(set, "", ctx, &text, &html), USHER_EINVAL);
    assert_int_equal(email_render(set, NULL, ctx, &text, &html), USHER_EINVAL);
    assert_int_equal(email_render(set, "no_such_email", ctx, &text, &html), USHER_ENOTFOUND);
    assert_null(text);
    assert_null(html);
    json_decref(ctx);
}

/* The worker's set holds the emails alone: the pages are the web server's (and, in one
 * process with the worker inside, would be held twice). */
static void test_worker_templates_are_the_emails(void **state)
{
    (void)state;
    char *data_dir = xstrdup(testdb_data_dir());
    struct usher_config cfg = {.data_dir = data_dir};
    const struct mustache_set *loaded = NULL;
    assert_int_equal(email_templates(&cfg, &loaded), 0);
    free(data_dir);
    assert_non_null(loaded);
    assert_true(mustache_set_has(loaded, "email/recovery_code.txt"));
    assert_true(mustache_set_has(loaded, "email/recovery_code.html"));
    assert_false(mustache_set_has(loaded, "pages/dashboard"));
    assert_false(mustache_set_has(loaded, "partials/header"));
    json_t *ctx = context("Ada", NULL);
    char *text = NULL, *html = NULL;
    assert_int_equal(email_render(loaded, "subscription_canceled", ctx, &text, &html), 0);
    free(text);
    free(html);
    json_decref(ctx);
}

static int open_db(void **state)
{
    (void)state;
    testdb_open(&db, "email", use_pg, PG_SCHEMA, 2);
    return 0;
}

static int close_db(void **state)
{
    (void)state;
    testdb_close(&db);
    return 0;
}

static void test_sent_markers(void **state)
{
    (void)state;
    bool sent = true;
    assert_int_equal(email_sent_find(db.pool, 7, &sent), 0);
    assert_false(sent);
    assert_int_equal(
        email_sent_record(db.pool, 7, "notify_payment_failed", 3, "<id@mg.test>", 1790000000), 0);
    assert_int_equal(email_sent_find(db.pool, 7, &sent), 0);
    assert_true(sent);
    assert_int_equal(email_sent_find(db.pool, 70, &sent), 0);
    assert_false(sent);
    assert_int_equal(email_sent_find(db.pool, 8, &sent), 0);
    assert_false(sent);
    assert_int_equal(
        email_sent_record(db.pool, 8, "send_keycloak_password_reset_email", 0, NULL, 1790000000),
        0);
    assert_int_equal(email_sent_find(db.pool, 8, &sent), 0);
    assert_true(sent);
}

static const struct CMUnitTest render_tests[] = {
    cmocka_unit_test(test_canceled_pair),
    cmocka_unit_test(test_canceled_without_date),
    cmocka_unit_test(test_payment_failed_pair),
    cmocka_unit_test(test_logo_url_absolute_or_absent),
    cmocka_unit_test(test_bad_and_unknown_names),
    cmocka_unit_test(test_worker_templates_are_the_emails),
};

static const struct CMUnitTest db_tests[] = {
    cmocka_unit_test_setup_teardown(test_sent_markers, open_db, close_db),
};

int main(void)
{
    int failed =
        cmocka_run_group_tests_name("email/render", render_tests, load_templates, free_templates);
    use_pg = false;
    failed += cmocka_run_group_tests_name("email/sqlite", db_tests, NULL, NULL);
    const char *pg = getenv("USHER_TEST_PG_URL");
    if (!pg || !*pg) {
        printf("skipped: USHER_TEST_PG_URL unset (PostgreSQL half of test_email)\n");
        return failed;
    }
    use_pg = true;
    failed += cmocka_run_group_tests_name("email/postgres", db_tests, NULL, NULL);
    return failed;
}
