/*
 * test_messages.c — the message table (core/messages.h): templates/messages/en.json holds
 * exactly the ids the code uses, every msg("…")/msg_format("…")/MSG_ID("…") id in src/ is in
 * the table and every table id is named by one of them in src/, placeholders are filled, and
 * a broken file is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/mem.h"
#include "core/messages.h"

static bool in_table(const char *id)
{
    for (size_t i = 0; i < messages_id_count(); i++)
        if (!strcmp(messages_id(i), id))
            return true;
    return false;
}

/* The output of a shell command, one line per entry; NULL-terminated, caller frees. */
static char **lines_of(const char *cmd, size_t *n)
{
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char **out = NULL;
    char line[512];
    *n = 0;
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = '\0';
        out = realloc(out, (*n + 2) * sizeof *out);
        assert_non_null(out);
        out[(*n)++] = xstrdup(line);
        out[*n] = NULL;
    }
    assert_int_equal(pclose(p), 0);
    return out;
}

static void free_lines(char **lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
}

static void test_file_matches_table(void **state)
{
    (void)state;
    char *error = NULL;
    int rc = messages_load(getenv("USHER_DATA_DIR"), &error);
    if (rc != 0)
        fail_msg("%s", error);
    assert_string_equal(msg("code.incorrect"), "Incorrect code");
    assert_string_equal(msg("no.such.id"), "no.such.id");
}

/* The ids src/ names in msg("…"), msg_format("…") and MSG_ID("…"), sorted and unique. */
static char **ids_named_in_src(size_t *n)
{
    char *cmd = xasprintf("grep -rhoE --include='*.c' --include='*.h' "
                          "'(msg|msg_format|MSG_ID)\\(\"[a-z0-9_.]+\"' '%s/src' | "
                          "sed -E 's/.*\\(\"//; s/\"$//' | sort -u",
                          getenv("USHER_DATA_DIR"));
    char **ids = lines_of(cmd, n);
    free(cmd);
    return ids;
}

static bool named_in(char **ids, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(ids[i], id))
            return true;
    return false;
}

/* Every id src/ names is in the table: a customer-facing sentence chosen in C can never be
 * missing from en.json (nor from a translation, which messages_load checks against the same
 * list). */
static void test_calls_are_in_table(void **state)
{
    (void)state;
    size_t n = 0;
    char **ids = ids_named_in_src(&n);
    assert_true(n > 100);
    for (size_t i = 0; i < n; i++)
        if (!in_table(ids[i]))
            fail_msg("\"%s\" named in src/ is not in the message table", ids[i]);
    /* The ids chosen away from their msg() call are found too. */
    assert_true(named_in(ids, n, "refusal.token_expired"));
    assert_true(named_in(ids, n, "date.january"));
    assert_true(named_in(ids, n, "email.recovery_code_subject"));
    free_lines(ids, n);
}

/* Every table id is named by a msg()/msg_format()/MSG_ID() in src/: no dead ids, and no id
 * that only appears as a bare literal (which the check above could not see). */
static void test_no_dead_ids(void **state)
{
    (void)state;
    size_t n = 0;
    char **ids = ids_named_in_src(&n);
    for (size_t i = 0; i < messages_id_count(); i++)
        if (!named_in(ids, n, messages_id(i)))
            fail_msg("message id \"%s\" is named by no msg/msg_format/MSG_ID in src/",
                     messages_id(i));
    free_lines(ids, n);
}

/* What the customer reads when a login is refused: a sentence of the table, never the
 * reason id that the log line carries. */
static void test_refusal_reasons_are_sentences(void **state)
{
    (void)state;
    size_t refusals = 0;
    for (size_t i = 0; i < messages_id_count(); i++) {
        const char *id = messages_id(i);
        if (strncmp(id, "refusal.", 8))
            continue;
        refusals++;
        char *text = msg_format("login.refused", json_pack("{s:s}", "reason", msg(id)));
        if (strstr(text, "refusal.") || strlen(msg(id)) < 10)
            fail_msg("%s reads \"%s\"", id, text);
        free(text);
    }
    assert_true(refusals >= 18);
    char *text =
        msg_format("login.refused", json_pack("{s:s}", "reason", msg("refusal.token_expired")));
    assert_string_equal(text,
                        "We couldn't log you in: the ID token has expired. Please start the login "
                        "again.");
    free(text);
}

static void test_format(void **state)
{
    (void)state;
    char *text = msg_format("recovery.wait", json_pack("{s:I}", "seconds", (json_int_t)42));
    assert_string_equal(text,
                        "A code was just requested. Please wait 42 seconds before asking again.");
    free(text);
    text = msg_format("login.provider_error", json_pack("{s:s}", "error", "<b>"));
    assert_string_equal(text, "The identity provider answered \"<b>\". Please start the login "
                              "again.");
    free(text);
    text = msg_format("http.missing_fields", NULL);
    assert_string_equal(text, "Missing required fields: ");
    free(text);
}

static void check_refused(const char *json, const char *expect)
{
    char path[] = "/tmp/usher-messages-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(json, f);
    fclose(f);
    char *error = NULL;
    assert_int_equal(messages_load_file(path, &error), USHER_EINVAL);
    unlink(path);
    assert_non_null(error);
    if (!strstr(error, expect))
        fail_msg("error \"%s\" does not mention \"%s\"", error, expect);
    free(error);
    assert_string_equal(msg("code.incorrect"), "Incorrect code"); /* the old table stays */
}

static void test_broken_files_refused(void **state)
{
    (void)state;
    check_refused("[]", "not a JSON object");
    check_refused("{}", "missing id \"");
    /* The real file plus one unknown id, or with a placeholder left open. */
    char *path = xasprintf("%s/%s", getenv("USHER_DATA_DIR"), MESSAGES_FILE);
    json_t *all = json_load_file(path, 0, NULL);
    free(path);
    assert_non_null(all);
    json_object_set_new(all, "nobody.uses.this", json_string("x"));
    char *text = json_dumps(all, 0);
    check_refused(text, "unknown id \"nobody.uses.this\"");
    free(text);
    json_object_del(all, "nobody.uses.this");
    json_object_set_new(all, "recovery.wait", json_string("wait {{seconds"));
    text = json_dumps(all, 0);
    check_refused(text, "\"recovery.wait\"");
    free(text);
    json_decref(all);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_matches_table),
        cmocka_unit_test(test_calls_are_in_table),
        cmocka_unit_test(test_no_dead_ids),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_broken_files_refused),
        cmocka_unit_test(test_refusal_reasons_are_sentences),
    };
    int failed = cmocka_run_group_tests_name("messages", tests, NULL, NULL);
    messages_unload();
    return failed;
}
