/*
 * test_mustache.c — the Mustache engine (core/mustache.h): every test of the official spec
 * files in $MUSTACHE_SPEC_DIR, then our own cases (escaping, truthiness, layouts, limits,
 * syntax errors, loading a directory, concurrent rendering).
 *
 * Required spec modules are the ones without '~' plus ~inheritance; other '~' modules are
 * optional: their counts are printed but failures do not fail the test.
 */
#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"
#include "core/mustache.h"

#include <dirent.h>
#include <jansson.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define SPEC_MAIN "spec-main"

/* ---- spec files ---- */

static int add_spec_partials(struct mustache_set *set, const json_t *partials, char **error)
{
    const char *name;
    json_t *src;
    json_object_foreach ((json_t *)partials, name, src) {
        int rc =
            mustache_set_add(set, name, json_string_value(src), json_string_length(src), error);
        if (rc)
            return rc;
    }
    return 0;
}

/* Runs one spec test; returns whether it passed, printing the details of a failure. */
static bool run_spec_case(const json_t *tc, bool verbose)
{
    const json_t *tpl = json_object_get(tc, "template");
    const char *expected = json_string_value(json_object_get(tc, "expected"));
    struct mustache_set *set = mustache_set_new();
    struct buf out;
    buf_init(&out);
    char *error = NULL;
    int rc =
        mustache_set_add(set, SPEC_MAIN, json_string_value(tpl), json_string_length(tpl), &error);
    if (rc == 0)
        rc = add_spec_partials(set, json_object_get(tc, "partials"), &error);
    if (rc == 0)
        rc = mustache_render(set, SPEC_MAIN, json_object_get(tc, "data"), &out);
    bool ok = rc == 0 && expected && strcmp(out.data, expected) == 0;
    if (!ok && verbose) {
        char *data = json_dumps(json_object_get(tc, "data"), JSON_ENCODE_ANY);
        printf("  FAIL %s\n    template: %s\n    data: %s\n    expected: [%s]\n"
               "    got: [%s] rc=%d %s\n",
               json_string_value(json_object_get(tc, "name")), json_string_value(tpl), data,
               expected, out.data, rc, error ? error : "");
        free(data);
    }
    free(error);
    buf_cleanup(&out);
    mustache_set_free(set);
    return ok;
}

/* Runs one spec file; returns the number of failed tests. */
static int run_spec_file(const char *dir, const char *file, bool required)
{
    char *path = xasprintf("%s/%s", dir, file);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root)
        fail_msg("%s: %s (line %d)", path, jerr.text, jerr.line);
    const json_t *tests = json_object_get(root, "tests");
    assert_true(json_is_array(tests));
    int passed = 0, total = (int)json_array_size(tests);
    for (size_t i = 0; i < json_array_size(tests); i++)
        passed += run_spec_case(json_array_get(tests, i), required);
    printf("mustache spec %.*s: %d/%d passed%s\n", (int)(strlen(file) - 5), file, passed, total,
           required ? "" : " (optional module)");
    json_decref(root);
    free(path);
    return total - passed;
}

static int is_json(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    return n > 5 && strcmp(e->d_name + n - 5, ".json") == 0;
}

static void test_spec_files(void **state)
{
    (void)state;
    const char *dir = getenv("MUSTACHE_SPEC_DIR");
    if (!dir) {
        printf("MUSTACHE_SPEC_DIR is not set: spec files skipped\n");
        skip();
    }
    struct dirent **files = NULL;
    int n = scandir(dir, &files, is_json, alphasort);
    if (n <= 0)
        fail_msg("no spec files in %s", dir);
    int failed_required = 0;
    for (int i = 0; i < n; i++) {
        const char *f = files[i]->d_name;
        bool required = f[0] != '~' || strcmp(f, "~inheritance.json") == 0;
        int failed = run_spec_file(dir, f, required);
        if (required)
            failed_required += failed;
        free(files[i]);
    }
    free(files);
    assert_int_equal(failed_required, 0);
}

/* ---- helpers for our own cases ---- */

static void add_ok(struct mustache_set *set, const char *name, const char *src)
{
    char *error = NULL;
    int rc = mustache_set_add(set, name, src, strlen(src), &error);
    if (rc)
        fail_msg("adding %s: %d %s", name, rc, error ? error : "");
}

/* Renders name with data given as JSON text and compares with expected. */
static void expect_render(const struct mustache_set *set, const char *name, const char *json,
                          const char *expected)
{
    json_error_t jerr;
    json_t *data = json ? json_loads(json, JSON_DECODE_ANY, &jerr) : NULL;
    if (json && !data)
        fail_msg("bad test JSON: %s", jerr.text);
    struct buf out;
    buf_init(&out);
    assert_int_equal(mustache_render(set, name, data, &out), 0);
    assert_string_equal(out.data, expected);
    buf_cleanup(&out);
    json_decref(data);
}

static void expect_syntax_error(const char *src, const char *want1, const char *want2)
{
    struct mustache_set *set = mustache_set_new();
    char *error = NULL;
    assert_int_equal(mustache_set_add(set, "bad", src, strlen(src), &error), USHER_EINVAL);
    assert_non_null(error);
    if (!strstr(error, "\"bad\"") || !strstr(error, want1) || !strstr(error, want2))
        fail_msg("message \"%s\" lacks \"%s\" or \"%s\"", error, want1, want2);
    free(error);
    /* error may be NULL */
    assert_int_equal(mustache_set_add(set, "bad", src, strlen(src), NULL), USHER_EINVAL);
    assert_false(mustache_set_has(set, "bad"));
    mustache_set_free(set);
}

/* ---- own cases ---- */

static void test_escaping(void **state)
{
    (void)state;
    struct mustache_set *set = mustache_set_new();
    add_ok(set, "t", "{{x}}|{{{x}}}|{{&x}}");
    expect_render(set, "t", "{\"x\": \"<a href=\\\"/?a=1&b='2'\\\">\"}",
                  "&lt;a href=&quot;/?a=1&amp;b=&#39;2&#39;&quot;&gt;|"
                  "<a href=\"/?a=1&b='2'\">|<a href=\"/?a=1&b='2'\">");
    /* Escapes at both ends, bytes above 0x7f (UTF-8) untouched. */
    add_ok(set, "edges", "[{{x}}]");
    expect_render(set, "edges", "{\"x\": \"&caf\u00e9 \u2014 <\"}", "[&amp;caf\u00e9 \u2014 &lt;]");
    /* Integers at the ends of their range, and zero. */
    add_ok(set, "ints", "{{a}} {{b}} {{c}} {{d}}");
    expect_render(set, "ints",
                  "{\"a\": -9223372036854775808, \"b\": 9223372036854775807, \"c\": 0, \"d\": -7}",
                  "-9223372036854775808 9223372036854775807 0 -7");
    mustache_set_free(set);
}

static void test_values_and_truthiness(void **state)
{
    (void)state;
    struct mustache_set *set = mustache_set_new();
    add_ok(set, "t",
           "{{#e}}E{{/e}}{{^e}}no-e{{/e}},{{#z}}z={{z}}{{/z}},{{#o}}O{{/o}},{{#n}}N{{/n}},"
           "{{f}},{{i}},{{t}}/{{b}},{{a}}{{o}}{{missing.x}}");
    expect_render(set, "t",
                  "{\"e\": \"\", \"z\": 0, \"o\": {}, \"n\": null, \"f\": 0.1, "
                  "\"i\": -9007199254740993, \"t\": true, \"b\": false, \"a\": [1]}",
                  "no-e,z=0,O,,0.1,-9007199254740993,true/false,");
    expect_render(set, "t", NULL, "no-e,,,,,,/,");
    mustache_set_free(set);
}

static void test_unknown_template(void **state)
{
    (void)state;
    struct mustache_set *set = mustache_set_new();
    struct buf out;
    buf_init(&out);
    assert_int_equal(mustache_render(set, "nope", NULL, &out), USHER_ENOTFOUND);
    assert_false(mustache_set_has(set, "nope"));
    add_ok(set, "t", "old");
    add_ok(set, "t", "new"); /* replaces */
    expect_render(set, "t", NULL, "new");
    buf_cleanup(&out);
    mustache_set_free(set);
    mustache_set_free(NULL);
}

static void test_layout(void **state)
{
    (void)state;
    struct mustache_set *set = mustache_set_new();
    add_ok(set, "page", "{{<layout}}{{$content}}Hi {{name}}{{/content}}{{/layout}}");
    add_ok(set, "layout", "<main>{{$content}}default{{/content}}</main>");
    expect_render(set, "page", "{\"name\": \"<Bob>\"}", "<main>Hi &lt;Bob&gt;</main>");
    expect_render(set, "layout", "{\"name\": \"Bob\"}", "<main>default</main>");
    /* ~dynamic-names: the layout can be chosen by the data */
    add_ok(set, "dyn", "{{<*frame}}{{$content}}Hi{{/content}}{{/*frame}}");
    expect_render(set, "dyn", "{\"frame\": \"layout\"}", "<main>Hi</main>");
    expect_render(set, "dyn", "{\"frame\": \"missing\"}", "");
    mustache_set_free(set);
}

static const char page_layout[] = "<html>\n"
                                  "  <head><title>{{$title}}Usher{{/title}}</title></head>\n"
                                  "  <body>\n"
                                  "    {{> partials/nav}}\n"
                                  "    {{$content}}\n"
                                  "    <p>Nothing here.</p>\n"
                                  "    {{/content}}\n"
                                  "  </body>\n"
                                  "</html>\n";

static const char page_health[] = "{{<layout}}\n"
                                  "{{$title}}Health{{/title}}\n"
                                  "{{$content}}\n"
                                  "<h1>{{name}}</h1>\n"
                                  "<ul>\n"
                                  "  {{#items}}\n"
                                  "  <li>{{.}}</li>\n"
                                  "  {{/items}}\n"
                                  "</ul>\n"
                                  "{{/content}}\n"
                                  "{{/layout}}\n";

/* Multi-line blocks land at the indentation of the layout's block, partials at theirs. */
static void test_layout_indentation(void **state)
{
    (void)state;
    struct mustache_set *set = mustache_set_new();
    add_ok(set, "layout", page_layout);
    add_ok(set, "page", page_health);
    add_ok(set, "partials/nav", "<nav>\n  <a href=\"/\">home</a>\n</nav>\n");
    expect_render(set, "page", "{\"name\": \"Bob\", \"items\": [\"a\", \"b\"]}",
                  "<html>\n"
                  "  <head><title>Health</title></head>\n"
                  "  <body>\n"
                  "    <nav>\n"
                  "      <a href=\"/\">home</a>\n"
                  "    </nav>\n"
                  "    <h1>Bob</h1>\n"
                  "    <ul>\n"
                  "      <li>a</li>\n"
                  "      <li>b</li>\n"
                  "    </ul>\n"
                  "  </body>\n"
                  "</html>\n");
    expect_render(set, "layout", NULL,
                  "<html>\n"
                  "  <head><title>Usher</title></head>\n"
                  "  <body>\n"
                  "    <nav>\n"
                  "      <a href=\"/\">home</a>\n"
                  "    </nav>\n"
                  "    <p>Nothing here.</p>\n"
                  "  </body>\n"
                  "</html>\n");
    mustache_set_free(set);
}

static void test_recursion_limit(void **state)
{
    (void)state;
    struct mustache_set *set = mustache_set_new();
    add_ok(set, "loop", "x{{>loop}}");
    add_ok(set, "self", "{{<self}}{{/self}}");
    struct buf out;
    buf_init(&out);
    buf_puts(&out, "keep");
    assert_int_equal(mustache_render(set, "loop", NULL, &out), USHER_ELIMIT);
    assert_string_equal(out.data, "keep"); /* partial output is rolled back */
    assert_int_equal(mustache_render(set, "self", NULL, &out), USHER_ELIMIT);
    assert_string_equal(out.data, "keep");
    /* exactly MUSTACHE_MAX_DEPTH nested partials are fine, one more is not */
    for (int i = 0; i <= MUSTACHE_MAX_DEPTH + 1; i++) {
        char name[16], src[32];
        snprintf(name, sizeof(name), "p%d", i);
        snprintf(src, sizeof(src), "{{>p%d}}", i + 1);
        add_ok(set, name, src);
    }
    char last[16];
    snprintf(last, sizeof(last), "p%d", MUSTACHE_MAX_DEPTH);
    add_ok(set, last, "end");
    expect_render(set, "p0", NULL, "end");
    add_ok(set, last, "{{>p33}}");
    add_ok(set, "p33", "end");
    assert_int_equal(mustache_render(set, "p0", NULL, &out), USHER_ELIMIT);
    buf_cleanup(&out);
    mustache_set_free(set);
}

static void test_size_limit(void **state)
{
    (void)state;
    struct mustache_set *set = mustache_set_new();
    size_t len = MUSTACHE_MAX_SOURCE + 1;
    char *big = xmalloc(len);
    memset(big, 'a', len);
    char *error = NULL;
    assert_int_equal(mustache_set_add(set, "big", big, len, &error), USHER_ELIMIT);
    assert_non_null(strstr(error, "big"));
    free(error);
    assert_int_equal(mustache_set_add(set, "big", big, len - 1, NULL), 0);
    free(big);
    mustache_set_free(set);
}

static void test_syntax_errors(void **state)
{
    (void)state;
    expect_syntax_error("a\n{{#items}}\nx", "line 2", "unclosed section \"items\"");
    expect_syntax_error("{{#a}}\n{{/b}}", "line 2", "does not match section \"a\"");
    expect_syntax_error("{{<p}}{{$x}}{{/p}}", "line 1", "does not match block \"x\"");
    expect_syntax_error("x\n\n{{/a}}", "line 3", "without an open section");
    expect_syntax_error("{{a\n}}", "line 1", "unclosed tag");
    expect_syntax_error("{{! never closed", "line 1", "unclosed comment");
    expect_syntax_error("{{a b}}", "line 1", "whitespace");
    expect_syntax_error("{{#}}{{/}}", "line 1", "empty tag name");
    expect_syntax_error("{{=<% %>}}", "line 1", "must end with '='");
    expect_syntax_error("{{!\n\n}}\n{{=x=}}", "line 4", "two delimiters");
    /* a failed add leaves the older template in place */
    struct mustache_set *set = mustache_set_new();
    add_ok(set, "t", "old");
    assert_int_equal(mustache_set_add(set, "t", "{{#x}}", 6, NULL), USHER_EINVAL);
    expect_render(set, "t", NULL, "old");
    mustache_set_free(set);
}

/* Found by fuzz/fuzz_mustache (fuzz/corpus/fuzz_mustache/regression-nul-in-section-name): a
 * section name with a NUL byte was stored shorter than its length, and closing it read past
 * the stored copy. Such names are now a syntax error, wherever the NUL sits. */
static void test_nul_in_tag_name(void **state)
{
    (void)state;
    static const char src[] = "{{#\x13\0st}}{{.}}{{/\x13\0st}}";
    static const char var[] = "{{a\0b}}";
    struct mustache_set *set = mustache_set_new();
    char *error = NULL;
    assert_int_equal(mustache_set_add(set, "t", src, sizeof src - 1, &error), USHER_EINVAL);
    assert_non_null(strstr(error, "NUL"));
    free(error);
    assert_int_equal(mustache_set_add(set, "v", var, sizeof var - 1, NULL), USHER_EINVAL);
    assert_false(mustache_set_has(set, "t"));
    mustache_set_free(set);
}

/* ---- load_dir ---- */

static void write_file(const char *dir, const char *rel, const char *text)
{
    char *path = xasprintf("%s/%s", dir, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    free(path);
}

static void remove_path(const char *dir, const char *rel)
{
    char *path = xasprintf("%s/%s", dir, rel);
    assert_int_equal(remove(path), 0);
    free(path);
}

static void test_load_dir(void **state)
{
    (void)state;
    char dir[] = "/tmp/usher-mustache-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *pages = xasprintf("%s/pages", dir), *partials = xasprintf("%s/partials", dir);
    assert_int_equal(mkdir(pages, 0700), 0);
    assert_int_equal(mkdir(partials, 0700), 0);
    write_file(dir, "pages/health.mustache", "{{>partials/header}}ok {{status}}\n");
    write_file(dir, "partials/header.mustache", "<h1>{{title}}</h1>\n");
    write_file(dir, "notes.txt", "{{#not a template");
    write_file(dir, ".hidden.mustache", "{{#hidden");

    struct mustache_set *set = mustache_set_new();
    char *error = NULL;
    assert_int_equal(mustache_set_load_dir(set, dir, &error), 0);
    assert_true(mustache_set_has(set, "pages/health"));
    assert_true(mustache_set_has(set, "partials/header"));
    assert_false(mustache_set_has(set, "notes"));
    assert_false(mustache_set_has(set, ".hidden"));
    expect_render(set, "pages/health", "{\"title\": \"T\", \"status\": \"up\"}",
                  "<h1>T</h1>\nok up\n");

    write_file(dir, "partials/broken.mustache", "fine\n{{/oops}}");
    assert_int_equal(mustache_set_load_dir(set, dir, &error), USHER_EINVAL);
    assert_non_null(strstr(error, "\"partials/broken\" line 2"));
    free(error);
    error = NULL;
    assert_int_equal(mustache_set_load_dir(set, "/nonexistent/usher", &error), USHER_EIO);
    assert_non_null(strstr(error, "/nonexistent/usher"));
    free(error);
    error = NULL;
    mustache_set_free(set);

    /* One subdirectory: its templates under the same names, nothing else. */
    set = mustache_set_new();
    assert_int_equal(mustache_set_load_subdir(set, dir, "pages", &error), 0);
    assert_true(mustache_set_has(set, "pages/health"));
    assert_false(mustache_set_has(set, "partials/header"));
    assert_false(mustache_set_has(set, "health"));
    assert_int_equal(mustache_set_load_subdir(set, dir, "../pages", &error), USHER_EINVAL);
    free(error);
    error = NULL;
    assert_int_equal(mustache_set_load_subdir(set, dir, "nothing", &error), USHER_EIO);
    free(error);
    mustache_set_free(set);

    remove_path(dir, "partials/broken.mustache");
    remove_path(dir, "pages/health.mustache");
    remove_path(dir, "partials/header.mustache");
    remove_path(dir, "notes.txt");
    remove_path(dir, ".hidden.mustache");
    assert_int_equal(rmdir(pages), 0);
    assert_int_equal(rmdir(partials), 0);
    assert_int_equal(rmdir(dir), 0);
    free(pages);
    free(partials);
}

/* ---- concurrency ---- */

#define THREADS 8
#define RENDERS 300

struct worker {
    const struct mustache_set *set;
    const json_t *data;
    const char *expected;
    int mismatches;
};

static void *render_worker(void *arg)
{
    struct worker *w = arg;
    struct buf out;
    buf_init(&out);
    for (int i = 0; i < RENDERS; i++) {
        buf_reset(&out);
        if (mustache_render(w->set, "page", w->data, &out) != 0 ||
            strcmp(out.data, w->expected) != 0)
            w->mismatches++;
    }
    buf_cleanup(&out);
    return NULL;
}

static json_t *thread_data(void)
{
    json_t *items = json_array();
    for (int i = 0; i < 100; i++)
        json_array_append_new(items, json_sprintf("item <%d> & 'more'", i));
    return json_pack("{s:s, s:o}", "name", "Bob \"B\"", "items", items);
}

static void test_concurrent_render(void **state)
{
    (void)state;
    struct mustache_set *set = mustache_set_new();
    add_ok(set, "layout", page_layout);
    add_ok(set, "page", page_health);
    add_ok(set, "partials/nav", "<nav>\n  {{#items}}{{.}}{{/items}}\n</nav>\n");
    json_t *data = thread_data();
    struct buf first;
    buf_init(&first);
    assert_int_equal(mustache_render(set, "page", data, &first), 0);
    assert_non_null(strstr(first.data, "      <li>item &lt;99&gt; &amp; &#39;more&#39;</li>\n"));

    pthread_t tid[THREADS];
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){set, data, first.data, 0};
        assert_int_equal(pthread_create(&tid[i], NULL, render_worker, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(tid[i], NULL), 0);
        assert_int_equal(w[i].mismatches, 0);
    }
    buf_cleanup(&first);
    json_decref(data);
    mustache_set_free(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_files),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_values_and_truthiness),
        cmocka_unit_test(test_unknown_template),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_layout_indentation),
        cmocka_unit_test(test_recursion_limit),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_nul_in_tag_name),
        cmocka_unit_test(test_load_dir),
        cmocka_unit_test(test_concurrent_render),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
