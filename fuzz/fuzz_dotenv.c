/*
 * fuzz_dotenv.c — feeds arbitrary text to the `.env` parser (core/dotenv.c: dotenv_parse,
 * dotenv_get, dotenv_cleanup), as `usher` reads ./.env or USHER_ENV_FILE at start.
 *
 * Properties: a parse either succeeds or names a line within the text; after a success every
 * key parsed is found again by dotenv_get; nothing leaks on either path.
 */
#include "core/dotenv.h"
#include "fuzz_util.h"

#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    struct dotenv env;
    memset(&env, 0, sizeof env);
    int bad_line = 0;
    int rc = dotenv_parse(&env, text, &bad_line);
    if (rc == 0) {
        for (size_t i = 0; i < env.count; i++)
            FUZZ_ASSERT(dotenv_get(&env, env.keys[i]) != NULL);
    } else {
        size_t lines = 1;
        for (size_t i = 0; i < size; i++)
            lines += data[i] == '\n';
        FUZZ_ASSERT(bad_line >= 1 && (size_t)bad_line <= lines);
    }
    dotenv_cleanup(&env);
    free(text);
    return 0;
}
