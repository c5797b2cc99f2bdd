/*
 * crypto.c — CSPRNG, SHA-256, HMAC-SHA256 and constant-time comparison over libcrypto.
 */
#include "core/crypto.h"

#include "core/err.h"
#include "core/mem.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void crypto_random(void *out, size_t n)
{
    if (n > (size_t)0x7fffffff || RAND_bytes(out, (int)n) != 1) {
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
    OPENSSL_cleanse(raw, n);
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

/* SHA-256 fetched from the provider once: EVP_sha256() makes every digest look the algorithm
 * up again (a locked provider-cache query), which showed in the profile of each request's
 * session lookup. Kept for the life of the process. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *sha256(void)
{
    if (pthread_once(&sha256_once, fetch_sha256) != 0 || !sha256_md) {
        fprintf(stderr, "usher: SHA-256 is not available from libcrypto\n");
        abort();
    }
    return sha256_md;
}

void crypto_sha256(const void *data, size_t len, unsigned char out[CRYPTO_SHA256_LEN])
{
    unsigned int out_len = 0;
    if (EVP_Digest(data, len, out, &out_len, sha256(), NULL) != 1) {
        fprintf(stderr, "usher: SHA-256 failed\n");
        abort();
    }
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
    unsigned int out_len = 0;
    if (key_len > 0x7fffffff)
        return USHER_EINVAL;
    if (!HMAC(sha256(), key, (int)key_len, data, len, out, &out_len) ||
        out_len != CRYPTO_SHA256_LEN)
        return USHER_EINVAL;
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
    return CRYPTO_memcmp(a, b, a_len) == 0;
}

bool crypto_equal_str(const char *a, const char *b)
{
    if (!a || !b)
        return false;
    return crypto_equal(a, strlen(a), b, strlen(b));
}
