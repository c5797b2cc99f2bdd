/*
 * crypto.c — CSPRNG, SHA-256, HMAC-SHA256 and constant-time comparison over Nettle and
 * GnuTLS's random generator.
 *
 * Why not OpenSSL's libcrypto (which libpq still loads, for its own TLS): its first
 * use initialises the library context and the default provider, about 2.3 MB of resident
 * memory in every process (code pages and heap) for three primitives; Nettle's SHA-256 and
 * HMAC are plain functions over a stack context, already mapped (GnuTLS is built on it), and
 * faster on short inputs. See docs/design-notes.md.
 */
#include "core/crypto.h"

#include "core/err.h"
#include "core/mem.h"

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <nettle/hmac.h>
#include <nettle/memops.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void crypto_random(void *out, size_t n)
{
    /* GNUTLS_RND_KEY: the level for secrets (session ids, codes, keys); a CSPRNG seeded from
     * the kernel's getrandom, reseeded and fork-safe. */
    if (gnutls_rnd(GNUTLS_RND_KEY, out, n) != 0) {
        fprintf(stderr, "usher: the random number generator failed\n");
        abort();
    }
}

void crypto_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int crypto_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

char *crypto_random_hex(size_t n)
{
    unsigned char *raw = xmalloc(n);
    char *hex = xmalloc(2 * n + 1);
    crypto_random(raw, n);
    crypto_hex(raw, n, hex);
    explicit_bzero(raw, n);
    free(raw);
    return hex;
}

unsigned crypto_random_below(unsigned bound)
{
    /* Rejection sampling: drop values from the incomplete last block so every result is
     * equally likely. */
    unsigned limit = 0xffffffffu - (0xffffffffu % bound);
    unsigned v;
    do {
        crypto_random(&v, sizeof v);
    } while (v >= limit);
    return v % bound;
}

void crypto_sha256(const void *data, size_t len, unsigned char out[CRYPTO_SHA256_LEN])
{
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, len, data);
    sha256_digest(&ctx, CRYPTO_SHA256_LEN, out);
}

void crypto_sha256_hex(const char *s, char out[CRYPTO_SHA256_HEX_LEN + 1])
{
    unsigned char digest[CRYPTO_SHA256_LEN];
    crypto_sha256(s, strlen(s), digest);
    crypto_hex(digest, sizeof digest, out);
}

int crypto_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                       unsigned char out[CRYPTO_SHA256_LEN])
{
    if (key_len > 0x7fffffff || (!key && key_len > 0))
        return USHER_EINVAL;
    /* The context holds the key's inner and outer pads: wiped before returning. */
    struct hmac_sha256_ctx ctx;
    hmac_sha256_set_key(&ctx, key_len, key);
    hmac_sha256_update(&ctx, len, data);
    hmac_sha256_digest(&ctx, CRYPTO_SHA256_LEN, out);
    explicit_bzero(&ctx, sizeof ctx);
    return 0;
}

int crypto_hmac_sha256_hex(const char *key, const void *data, size_t len,
                           char out[CRYPTO_SHA256_HEX_LEN + 1])
{
    unsigned char mac[CRYPTO_SHA256_LEN];
    int rc = crypto_hmac_sha256(key, strlen(key), data, len, mac);
    if (rc == 0)
        crypto_hex(mac, sizeof mac, out);
    return rc;
}

bool crypto_equal(const void *a, size_t a_len, const void *b, size_t b_len)
{
    if (a_len != b_len)
        return false;
    return memeql_sec(a, b, a_len) != 0;
}

bool crypto_equal_str(const char *a, const char *b)
{
    if (!a || !b)
        return false;
    return crypto_equal(a, strlen(a), b, strlen(b));
}
