/*
 * fuzz_mustache.c — feeds hostile templates and data to the Mustache engine
 * (core/mustache_parse.c compiles, core/mustache_render.c renders, via core/mustache.h).
 *
 * Input: main template 0x1e partial template 0x1e JSON data. The partial is added as "p" and
 * as "parent", so {{>p}}, {{<parent}} and dynamic names resolve to fuzzed text too; "main" is
 * then rendered with the data (jansson-parsed; anything that is not JSON renders with NULL).
 * Properties: a failed compile leaves an error message and no template; a failed render
 * leaves the output untouched (mustache.h's contract).
 */
#include "core/buf.h"
#include "core/mustache.h"
#include "fuzz_util.h"

#include <stdio.h>

static void add(struct mustache_set *set, const char *name, const char *src, size_t len)
{
    char *error = NULL;
    int rc = mustache_set_add(set, name, src, len, &error);
    if (rc != 0)
        FUZZ_ASSERT(error != NULL && !mustache_set_has(set, name));
    free(error);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_parts in;
    fuzz_split(data, size, 3, &in);
    struct mustache_set *set = mustache_set_new();
    add(set, "main", in.part[0], in.len[0]);
    add(set, "p", in.part[1], in.len[1]);
    add(set, "parent", in.part[1], in.len[1]);
    json_t *ctx = json_loadb(in.part[2], in.len[2], JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);

    struct buf out;
    buf_init(&out);
    buf_puts(&out, "x");
    if (mustache_set_has(set, "main") && mustache_render(set, "main", ctx, &out) != 0)
        FUZZ_ASSERT(out.len == 1);
    mustache_render(set, "p", ctx, &out);
    buf_cleanup(&out);

    json_decref(ctx);
    mustache_set_free(set);
    fuzz_parts_free(&in);
    return 0;
}
