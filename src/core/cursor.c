/*
 * cursor.c — signed keyset-pagination cursors (see cursor.h).
 *
 * Payload: "<id>" or "<id>:<key>" (the id is digits only, so the first ':' ends it). The tag
 * is the first 16 bytes of HMAC-SHA256(SECRET_KEY, "usher-cursor-v1\n<list>\n<payload>"):
 * the prefix keeps these MACs apart from every other use of the key.
 */
#include "core/cursor.h"

#include "core/buf.h"
#include "core/crypto.h"
#include "core/err.h"
#include "core/mem.h"

#include <stdio.h>
#include <string.h>

#define TAG_BYTES 16

static int tag_hex(const char *secret, const char *list, const char *payload, size_t len,
                   char out[2 * TAG_BYTES + 1])
{
    struct buf msg;
    buf_init(&msg);
    buf_puts(&msg, "usher-cursor-v1\n");
    buf_puts(&msg, list);
    buf_putc(&msg, '\n');
    buf_append(&msg, payload, len);
    unsigned char mac[CRYPTO_SHA256_LEN];
    int rc = crypto_hmac_sha256(secret, strlen(secret), msg.data, msg.len, mac);
    buf_cleanup(&msg);
    if (rc != 0)
        return USHER_EINVAL;
    crypto_hex(mac, TAG_BYTES, out);
    return 0;
}

char *cursor_encode(const char *secret, const char *list, const struct cursor *c)
{
    if (!secret || !*secret || !list || !*list || !c || c->id <= 0)
        return NULL;
    size_t key_len = c->has_key ? strnlen(c->key, sizeof c->key) : 0;
    if (key_len > CURSOR_KEY_MAX)
        return NULL;
    char payload[32 + CURSOR_KEY_MAX];
    int n = snprintf(payload, sizeof payload, "%lld%s%.*s", (long long)c->id, c->has_key ? ":" : "",
                     (int)key_len, c->has_key ? c->key : "");
    if (n < 0 || (size_t)n >= sizeof payload)
        return NULL;
    char tag[2 * TAG_BYTES + 1];
    if (tag_hex(secret, list, payload, (size_t)n, tag) != 0)
        return NULL;
    char *out = xmalloc(2 * (size_t)n + 1 + sizeof tag);
    crypto_hex((const unsigned char *)payload, (size_t)n, out);
    out[2 * n] = '.';
    memcpy(out + 2 * n + 1, tag, sizeof tag);
    return out;
}

/* The id at the start of p (len bytes): 1..19 digits, no leading zero, > 0, no overflow. */
static int parse_id(const char *p, size_t len, int64_t *id)
{
    if (len == 0 || len > 19 || p[0] == '0')
        return USHER_EINVAL;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return USHER_EINVAL;
        int d = p[i] - '0';
        if (v > (INT64_MAX - d) / 10)
            return USHER_EINVAL;
        v = v * 10 + d;
    }
    *id = v;
    return 0;
}

int cursor_decode(const char *secret, const char *list, const char *text, struct cursor *out)
{
    memset(out, 0, sizeof *out);
    if (!secret || !*secret || !list || !*list || !text)
        return USHER_EINVAL;
    size_t len = strnlen(text, CURSOR_TEXT_MAX + 1);
    const char *dot = memchr(text, '.', len);
    if (len > CURSOR_TEXT_MAX || !dot)
        return USHER_EINVAL;
    size_t hex_len = (size_t)(dot - text);
    if (hex_len == 0 || hex_len % 2 || strlen(dot + 1) != 2 * TAG_BYTES)
        return USHER_EINVAL;
    char payload[CURSOR_TEXT_MAX / 2 + 1];
    size_t n = hex_len / 2;
    for (size_t i = 0; i < n; i++) {
        int hi = crypto_hex_value(text[2 * i]), lo = crypto_hex_value(text[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return USHER_EINVAL;
        payload[i] = (char)(hi << 4 | lo);
        if (payload[i] == '\0')
            return USHER_EINVAL;
    }
    payload[n] = '\0';
    char tag[2 * TAG_BYTES + 1];
    if (tag_hex(secret, list, payload, n, tag) != 0 || !crypto_equal_str(tag, dot + 1))
        return USHER_EINVAL;
    const char *colon = memchr(payload, ':', n);
    size_t id_len = colon ? (size_t)(colon - payload) : n;
    if (parse_id(payload, id_len, &out->id) != 0)
        return USHER_EINVAL;
    if (colon) {
        size_t key_len = n - id_len - 1;
        if (key_len > CURSOR_KEY_MAX)
            return USHER_EINVAL;
        out->has_key = true;
        memcpy(out->key, colon + 1, key_len);
        out->key[key_len] = '\0';
    }
    return 0;
}
