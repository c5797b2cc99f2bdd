/*
 * stripe_webhook.c — Stripe-Signature verification (see stripe_webhook.h).
 */
#include "integrations/stripe_webhook.h"

#include "core/buf.h"
#include "core/crypto.h"

#include <stdbool.h>
#include <string.h>

struct parsed_header {
    bool t_seen;
    bool has_t;
    int64_t t;
    int v1_count;
    const char *v1[16]; /* pointers into a private copy of the header */
    size_t v1_len[16];
};

static bool parse_timestamp(const char *s, size_t len, int64_t *out)
{
    if (len == 0 || len > 18)
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static void parse_item(struct parsed_header *h, const char *item, size_t len)
{
    const char *eq = memchr(item, '=', len);
    if (!eq)
        return;
    size_t key_len = (size_t)(eq - item);
    const char *value = eq + 1;
    size_t value_len = len - key_len - 1;
    /* Like the SDKs, a value ends at a second '=' ("v1=abc=x" carries "abc"). */
    const char *second = memchr(value, '=', value_len);
    if (second)
        value_len = (size_t)(second - value);
    if (key_len == 1 && item[0] == 't') {
        if (!h->t_seen) /* the first t counts, as in the SDKs */
            h->has_t = parse_timestamp(value, value_len, &h->t);
        h->t_seen = true;
    } else if (key_len == 2 && !memcmp(item, "v1", 2) && h->v1_count < 16) {
        h->v1[h->v1_count] = value;
        h->v1_len[h->v1_count] = value_len;
        h->v1_count++;
    }
    /* v0 and unknown schemes are ignored on purpose: no downgrade. */
}

static void parse_header(const char *header, struct parsed_header *h)
{
    memset(h, 0, sizeof *h);
    const char *p = header;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        parse_item(h, p, len);
        if (!comma)
            break;
        p = comma + 1;
    }
}

enum stripe_sig_result stripe_webhook_verify(const char *header, const void *payload,
                                             size_t payload_len, const char *secret, int64_t now,
                                             int64_t tolerance)
{
    if (!header || !secret || !*secret || strlen(header) > STRIPE_SIGNATURE_HEADER_MAX)
        return STRIPE_SIG_MALFORMED;
    struct parsed_header h;
    parse_header(header, &h);
    if (!h.has_t || h.v1_count == 0)
        return STRIPE_SIG_MALFORMED;

    struct buf signed_payload;
    buf_init(&signed_payload);
    buf_printf(&signed_payload, "%lld.", (long long)h.t);
    buf_append(&signed_payload, payload, payload_len);
    char expected[CRYPTO_SHA256_HEX_LEN + 1];
    int rc = crypto_hmac_sha256_hex(secret, signed_payload.data, signed_payload.len, expected);
    buf_cleanup(&signed_payload);
    if (rc != 0)
        return STRIPE_SIG_MISMATCH;

    bool matched = false;
    for (int i = 0; i < h.v1_count; i++)
        matched |= crypto_equal(expected, CRYPTO_SHA256_HEX_LEN, h.v1[i], h.v1_len[i]);
    if (!matched)
        return STRIPE_SIG_MISMATCH;
    if (h.t < now - tolerance)
        return STRIPE_SIG_STALE;
    if (h.t > now + tolerance)
        return STRIPE_SIG_FUTURE;
    return STRIPE_SIG_OK;
}

const char *stripe_sig_result_name(enum stripe_sig_result r)
{
    switch (r) {
    case STRIPE_SIG_OK: return "ok";
    case STRIPE_SIG_MALFORMED: return "malformed header";
    case STRIPE_SIG_MISMATCH: return "no matching signature";
    case STRIPE_SIG_STALE: return "timestamp outside the tolerance";
    case STRIPE_SIG_FUTURE: return "timestamp in the future";
    }
    return "unknown";
}
