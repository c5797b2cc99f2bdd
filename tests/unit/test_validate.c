/* test_validate.c — email and name rules of SPEC §3. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "core/messages.h"
#include "domain/validate.h"

#include <stdlib.h>
#include <string.h>

static void test_email_normalized(void **state)
{
    (void)state;
    char *out = NULL;
    const char *error = NULL;
    assert_int_equal(validate_email("  Ada.Lovelace@Example.TEST \n", &out, &error), 0);
    assert_string_equal(out, "ada.lovelace@example.test");
    free(out);
}

static void test_email_rejects(void **state)
{
    (void)state;
    const char *bad[] = {"",
                         "   ",
                         "no-at-sign",
                         "@example.test",
                         "a@b@example.test",
                         "a@nodot",
                         "a@.test",
                         "a@example.",
                         "a b@example.test",
                         "a@example..test",
                         "<a>@example.test"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *out = NULL;
        const char *error = NULL;
        assert_int_equal(validate_email(bad[i], &out, &error), USHER_EINVAL);
        assert_null(out);
        assert_non_null(error);
    }
    char long_email[300];
    memset(long_email, 'a', sizeof long_email);
    memcpy(long_email + 250, "@x.te", 6);
    char *out = NULL;
    const char *error = NULL;
    assert_int_equal(validate_email(long_email, &out, &error), USHER_EINVAL);
    assert_string_equal(error, "Email is too long.");
}

static void test_name_rules(void **state)
{
    (void)state;
    char *out = NULL;
    const char *error = NULL;
    assert_int_equal(validate_name("  Zoë  ", 150, &out, &error), 0);
    assert_string_equal(out, "Zoë");
    free(out);
    out = NULL;
    assert_int_equal(validate_name("   ", 150, &out, &error), USHER_EINVAL);
    assert_int_equal(validate_name("a\x01"
                                   "b",
                                   150, &out, &error),
                     USHER_EINVAL);
    char name[152];
    memset(name, 'x', 151);
    name[151] = '\0';
    assert_int_equal(validate_name(name, 150, &out, &error), USHER_EINVAL);
    name[150] = '\0';
    assert_int_equal(validate_name(name, 150, &out, &error), 0);
    free(out);
}

int main(void)
{
    if (messages_load(getenv("USHER_DATA_DIR"), NULL) != 0) /* the texts asserted below */
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_email_normalized),
        cmocka_unit_test(test_email_rejects),
        cmocka_unit_test(test_name_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
