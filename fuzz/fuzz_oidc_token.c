/*
 * fuzz_oidc_token.c — feeds hostile ID tokens, claims and JWKS documents to the OIDC
 * verification (integrations/oidc.c: oidc_verify_id_token and its claim checks, on rhonabwy's
 * JWT/JWK parsers), as the login callback receives them from the token endpoint.
 *
 * Input: one mode byte, then
 *   0: raw token 0x1e JWKS JSON — the token and the key set as an attacker would send them;
 *   1: claims JSON — signed RS256 with this harness's key (generated once), verified against
 *      its JWKS, so the claim checks (iss, aud/azp, exp/iat/nbf, nonce, lengths, groups) see
 *      every shape of claims behind a valid signature;
 *   2: JWKS JSON — a validly signed token with good claims, checked against a fuzzed key set.
 * Properties: an accepted token has a sub, and only mode 1 (our signature) or a JWKS that
 * holds our key can accept; a refusal always says why.
 */
#include "core/err.h"
#include "integrations/oidc.h"
#include "fuzz_util.h"

#include <rhonabwy.h>
#include <stdio.h>

#define ISSUER "https://kc.test/realms/usher"
#define CLIENT "usher"
#define NONCE "n0nce"
#define NOW 1700000000

static jwk_t *priv;
static json_t *jwks;
static char *good_token;

static char *sign(json_t *claims)
{
    jwt_t *jwt = NULL;
    char *token = NULL;
    if (r_jwt_init(&jwt) == RHN_OK && r_jwt_set_full_claims_json_t(jwt, claims) == RHN_OK &&
        r_jwt_set_sign_alg(jwt, R_JWA_ALG_RS256) == RHN_OK &&
        r_jwt_set_header_str_value(jwt, "kid", "k1") == RHN_OK)
        token = r_jwt_serialize_signed(jwt, priv, 0);
    r_jwt_free(jwt);
    return token;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    jwk_t *pub = NULL;
    if (r_jwk_init(&priv) != RHN_OK || r_jwk_init(&pub) != RHN_OK ||
        r_jwk_generate_key_pair(priv, pub, R_KEY_TYPE_RSA, 2048, "k1") != RHN_OK)
        abort();
    json_t *key = r_jwk_export_to_json_t(pub);
    json_object_set_new(key, "alg", json_string("RS256"));
    json_object_set_new(key, "use", json_string("sig"));
    jwks = json_pack("{s:[o]}", "keys", key);
    r_jwk_free(pub);
    json_t *claims = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s}", "iss", ISSUER, "aud", CLIENT,
                               "sub", "user-1", "nonce", NONCE, "iat", (json_int_t)NOW, "exp",
                               (json_int_t)NOW + 300, "email", "a@b.test");
    good_token = sign(claims);
    json_decref(claims);
    if (!jwks || !good_token)
        abort();
    return 0;
}

static int verify(const char *token, const json_t *keys)
{
    struct oidc_expect e = {ISSUER, CLIENT, NONCE, NOW, OIDC_LEEWAY_SECONDS};
    struct oidc_claims c;
    memset(&c, 0, sizeof c);
    const char *why = NULL;
    int rc = oidc_verify_id_token(token, keys, &e, &c, &why);
    if (rc == 0) {
        FUZZ_ASSERT(c.sub != NULL);
        oidc_claims_in_group(&c, "admins");
    } else {
        FUZZ_ASSERT(rc == USHER_ENOTFOUND || why != NULL);
    }
    oidc_claims_cleanup(&c);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct fuzz_parts in;
    uint8_t mode = data[0] % 3;
    fuzz_split(data + 1, size - 1, mode == 0 ? 2 : 1, &in);
    if (mode == 0) {
        json_t *keys = json_loadb(in.part[1], in.len[1], 0, NULL);
        int rc = verify(in.part[0], keys ? keys : jwks);
        FUZZ_ASSERT(rc != 0 || !keys || json_dumpb(keys, NULL, 0, 0) > 0);
        json_decref(keys);
    } else if (mode == 1) {
        json_t *claims = json_loadb(in.part[0], in.len[0], 0, NULL);
        if (json_is_object(claims)) {
            char *token = sign(claims);
            if (token)
                verify(token, jwks);
            r_free(token);
        }
        json_decref(claims);
    } else {
        json_t *keys = json_loadb(in.part[0], in.len[0], 0, NULL);
        verify(good_token, keys);
        json_decref(keys);
    }
    fuzz_parts_free(&in);
    return 0;
}
