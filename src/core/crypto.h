/*
 * crypto.h — the few primitives Usher needs, on Nettle (SHA-256, HMAC) and GnuTLS (random).
 *
 * Randomness comes only from gnutls_rnd at the key level (a CSPRNG); comparisons of secrets only
 * through crypto_equal, which takes the same time whatever the content.
 */
#ifndef USHER_CORE_CRYPTO_H
#define USHER_CORE_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>

#define CRYPTO_SHA256_LEN 32
#define CRYPTO_SHA256_HEX_LEN 64

/* Fills out with n random bytes; aborts if the CSPRNG fails (never fall back to weak). */
void crypto_random(void *out, size_t n);
/* Returns a heap string of 2*n lowercase hex characters from n random bytes. */
char *crypto_random_hex(size_t n);
/* A uniformly random integer in [0, bound), bound > 0. */
unsigned crypto_random_below(unsigned bound);

void crypto_hex(const unsigned char *in, size_t n, char *out /* 2n+1 bytes */);
/* The value of one lowercase hex digit (as crypto_hex writes them), or -1. */
int crypto_hex_value(char c);
void crypto_sha256(const void *data, size_t len, unsigned char out[CRYPTO_SHA256_LEN]);
/* Lowercase hex SHA-256 of a string into out (65 bytes). */
void crypto_sha256_hex(const char *s, char out[CRYPTO_SHA256_HEX_LEN + 1]);
int crypto_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                       unsigned char out[CRYPTO_SHA256_LEN]);
/* Lowercase hex HMAC-SHA256 of data under key into out (65 bytes). */
int crypto_hmac_sha256_hex(const char *key, const void *data, size_t len,
                           char out[CRYPTO_SHA256_HEX_LEN + 1]);
/* Constant-time equality of two byte strings; different lengths are unequal (the length
 * itself is not secret for the values Usher compares: fixed-size hashes and tokens). */
bool crypto_equal(const void *a, size_t a_len, const void *b, size_t b_len);
bool crypto_equal_str(const char *a, const char *b);

#endif
