/*
 * fuzz_validate.c — feeds arbitrary bytes to the input rules of SPEC §3 (domain/validate.c:
 * validate_email, validate_username, validate_name), which every onboarding, recovery and
 * waitlist form and JSON body goes through.
 *
 * Properties: an accepted value is normalized (email: ≤ EMAIL_MAX_LEN bytes, one '@',
 * lowercase; username: 3–64 bytes of [a-z0-9._-] starting with a letter or digit; name: no
 * control characters), normalizing is idempotent, and a refusal always carries a message.
 */
#include "domain/validate.h"
#include "fuzz_util.h"

#include <ctype.h>
#include <stdio.h>

static void check_email(const char *in)
{
    char *norm = NULL;
    const char *error = NULL;
    if (validate_email(in, &norm, &error) != 0) {
        FUZZ_ASSERT(error && !norm);
        return;
    }
    size_t len = strlen(norm), at = 0;
    FUZZ_ASSERT(len > 0 && len <= EMAIL_MAX_LEN);
    for (size_t i = 0; i < len; i++) {
        at += norm[i] == '@';
        FUZZ_ASSERT(!isupper((unsigned char)norm[i]));
    }
    FUZZ_ASSERT(at == 1);
    char *again = NULL;
    FUZZ_ASSERT(validate_email(norm, &again, &error) == 0 && !strcmp(again, norm));
    free(again);
    free(norm);
}

static void check_username(const char *in)
{
    char *norm = NULL;
    const char *error = NULL;
    if (validate_username(in, &norm, &error) != 0) {
        FUZZ_ASSERT(error && !norm);
        return;
    }
    size_t len = strlen(norm);
    FUZZ_ASSERT(len >= USERNAME_MIN_LEN && len <= USERNAME_MAX_LEN);
    FUZZ_ASSERT(isalnum((unsigned char)norm[0]));
    for (size_t i = 0; i < len; i++)
        FUZZ_ASSERT((norm[i] >= 'a' && norm[i] <= 'z') || (norm[i] >= '0' && norm[i] <= '9') ||
                    norm[i] == '.' || norm[i] == '_' || norm[i] == '-');
    char *again = NULL;
    FUZZ_ASSERT(validate_username(norm, &again, &error) == 0 && !strcmp(again, norm));
    free(again);
    free(norm);
}

static void check_name(const char *in)
{
    char *norm = NULL;
    const char *error = NULL;
    if (validate_name(in, FIRST_NAME_MAX_LEN, &norm, &error) != 0) {
        FUZZ_ASSERT(error && !norm);
        return;
    }
    for (const unsigned char *p = (const unsigned char *)norm; *p; p++)
        FUZZ_ASSERT(*p >= 0x20 && *p != 0x7f);
    char *again = NULL;
    FUZZ_ASSERT(validate_name(norm, FIRST_NAME_MAX_LEN, &again, &error) == 0 &&
                !strcmp(again, norm));
    free(again);
    free(norm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = fuzz_cstr(data, size);
    check_email(in);
    check_username(in);
    check_name(in);
    free(in);
    return 0;
}
