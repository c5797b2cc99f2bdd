/*
 * fuzz_next.c — feeds arbitrary `next` values to the redirect validation
 * (integrations/oidc.c: oidc_next_is_local, oidc_safe_next), which decides where the browser
 * goes after login (GET /oidc/authenticate/?next=…) and must never allow an open redirect.
 *
 * Properties: an accepted value is a path on this site — one leading '/', not "//" or "/\",
 * no backslash, only printable ASCII without spaces (so no scheme-relative or control-
 * character tricks a browser would normalize), at most OIDC_NEXT_MAX bytes; oidc_safe_next
 * returns either the value itself or OIDC_DEFAULT_NEXT.
 */
#include "integrations/oidc.h"
#include "fuzz_util.h"

#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *next = fuzz_cstr(data, size);
    bool local = oidc_next_is_local(next);
    const char *safe = oidc_safe_next(next);
    if (local) {
        size_t len = strlen(next);
        FUZZ_ASSERT(safe == next);
        FUZZ_ASSERT(len >= 1 && len <= OIDC_NEXT_MAX && next[0] == '/');
        FUZZ_ASSERT(next[1] != '/' && next[1] != '\\');
        for (size_t i = 0; i < len; i++)
            FUZZ_ASSERT((unsigned char)next[i] > 0x20 && (unsigned char)next[i] < 0x7f &&
                        next[i] != '\\');
    } else {
        FUZZ_ASSERT(!strcmp(safe, OIDC_DEFAULT_NEXT));
    }
    FUZZ_ASSERT(!oidc_next_is_local(NULL));
    free(next);
    return 0;
}
