/*
 * fuzz_form.c — feeds hostile keys, values and JSON to the form encoder
 * (integrations/form.c: form_add, form_add_json, form_escape, form_url_segment,
 * form_url_query), which builds every body and URL Usher sends to Stripe, Keycloak and
 * Mailgun from data that came from users and webhooks.
 *
 * Input: key 0x1e value 0x1e JSON. Properties: one pair encodes to `k=v` in which neither
 * side holds a raw '&', '=' or byte outside printable ASCII, and percent-decoding gives back
 * exactly the key and value (no injection of extra parameters); a URL path segment never
 * contains a raw '/', '?' or '#'; form_add_json refuses only nesting deeper than
 * FORM_MAX_DEPTH.
 */
#include "integrations/form.h"
#include "fuzz_util.h"

#include <stdio.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..len) into a heap string; NULL for a malformed escape. */
static char *decode(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    size_t o = 0;
    FUZZ_ASSERT(out);
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        if (i + 2 >= len) {
            free(out);
            return NULL;
        }
        int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
        if (hi < 0 || lo < 0) {
            free(out);
            return NULL;
        }
        out[o++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[o] = '\0';
    return out;
}

static void check_pair(const char *key, const char *value)
{
    struct form f;
    form_init(&f);
    form_add(&f, key, value);
    const char *d = form_data(&f);
    size_t len = form_len(&f);
    FUZZ_ASSERT(strlen(d) == len);
    const char *eq = strchr(d, '=');
    FUZZ_ASSERT(eq && !strchr(eq + 1, '=') && !strchr(d, '&'));
    for (size_t i = 0; i < len; i++)
        FUZZ_ASSERT((unsigned char)d[i] > 0x20 && (unsigned char)d[i] < 0x7f);
    char *k = decode(d, (size_t)(eq - d));
    char *v = decode(eq + 1, len - (size_t)(eq - d) - 1);
    FUZZ_ASSERT(k && v && !strcmp(k, key) && !strcmp(v, value));
    free(k);
    free(v);
    form_cleanup(&f);
}

static int depth(const json_t *v)
{
    int max = 0;
    size_t i;
    const char *k;
    json_t *item;
    if (json_is_object(v)) {
        json_object_foreach ((json_t *)v, k, item) {
            int d = depth(item);
            max = d > max ? d : max;
        }
        return max + 1;
    }
    if (json_is_array(v)) {
        json_array_foreach (v, i, item) {
            int d = depth(item);
            max = d > max ? d : max;
        }
        return max + 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_parts in;
    fuzz_split(data, size, 3, &in);
    check_pair(in.part[0], in.part[1]);

    json_t *doc = json_loadb(in.part[2], in.len[2], JSON_DECODE_ANY, NULL);
    if (doc) {
        struct form f;
        form_init(&f);
        int rc = form_add_json(&f, in.part[0], doc);
        if (rc != 0)
            FUZZ_ASSERT(depth(doc) > FORM_MAX_DEPTH - 1);
        form_add_long(&f, "n", (long)in.len[2]);
        form_cleanup(&f);
        json_decref(doc);
    }

    struct buf url;
    buf_init(&url);
    buf_puts(&url, "https://api.test/v1");
    size_t base = url.len;
    form_url_segment(&url, in.part[0]);
    FUZZ_ASSERT(!strchr(url.data + base + 1, '/') && !strchr(url.data + base, '?') &&
                !strchr(url.data + base, '#'));
    form_url_query(&url, in.part[1], in.part[0]);
    form_url_query(&url, "expand[]", in.part[1]);
    buf_cleanup(&url);

    struct buf esc;
    buf_init(&esc);
    form_escape(&esc, in.part[1], "[]");
    buf_cleanup(&esc);
    fuzz_parts_free(&in);
    return 0;
}
