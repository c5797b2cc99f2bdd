/* test_oidc.c — the pure parts of the OIDC relying party: where `next` may point, the
 * authorization URL (PKCE S256 from RFC 7636 appendix B), the pending-login state in the
 * session (one use, expiry, cap) and ID-token verification against a JWKS (keys made here
 * with rhonabwy). The protocol end to end is tested in tests/integration/test_oidc.py
 * (Keycloak double) and tests/conformance/test_oidc_real_keycloak.py (real Keycloak). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "core/mem.h"
#include "integrations/oidc.h"

#include <rhonabwy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1790000000LL
#define ISSUER "http://127.0.0.1:8180/realms/usher"
#define CLIENT "usher-web"
#define NONCE "0123456789abcdef0123456789abcdef"

/* --- next ------------------------------------------------------------------------------- */

static void test_next_local_paths(void **state)
{
    (void)state;
    const char *ok[] = {"/", "/dashboard/", "/dashboard/account/?tab=billing#top", "/a:b/c",
                        "/%2F%2Fevil.test"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_true(oidc_next_is_local(ok[i]));
        assert_string_equal(oidc_safe_next(ok[i]), ok[i]);
    }
}

static void test_next_open_redirects_refused(void **state)
{
    (void)state;
    char long_path[OIDC_NEXT_MAX + 2];
    memset(long_path, 'a', sizeof long_path - 1);
    long_path[0] = '/';
    long_path[sizeof long_path - 1] = '\0';
    const char *bad[] = {"",
                         "dashboard/",
                         "//evil.test",
                         "//evil.test/dashboard/",
                         "/\\evil.test",
                         "/\\/evil.test",
                         "\\\\evil.test",
                         "https://evil.test",
                         "http:/evil.test",
                         "javascript:alert(1)",
                         "/ok/../\\evil.test",
                         "/a b",
                         "/a\tb",
                         "/a\r\nLocation: https://evil.test",
                         "/\x7f",
                         "/caf\xc3\xa9",
                         " /dashboard/",
                         long_path};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(oidc_next_is_local(bad[i]));
        assert_string_equal(oidc_safe_next(bad[i]), OIDC_DEFAULT_NEXT);
    }
    assert_false(oidc_next_is_local(NULL));
    assert_string_equal(oidc_safe_next(NULL), "/dashboard/");
}

/* --- authorization URL ------------------------------------------------------------------ */

static json_t *discovery_doc(void)
{
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:[s], s:[s], s:[s], s:[s,s,s], s:[s,s], s:[s]}", "issuer",
        ISSUER, "authorization_endpoint", ISSUER "/protocol/openid-connect/auth", "token_endpoint",
        ISSUER "/protocol/openid-connect/token", "jwks_uri",
        ISSUER "/protocol/openid-connect/certs", "end_session_endpoint",
        ISSUER "/protocol/openid-connect/logout", "response_types_supported", "code",
        "subject_types_supported", "public", "id_token_signing_alg_values_supported", "RS256",
        "scopes_supported", "openid", "email", "profile", "code_challenge_methods_supported",
        "plain", "S256", "grant_types_supported", "authorization_code");
}

static void test_auth_url_pkce_rfc7636_vector(void **state)
{
    (void)state;
    json_t *doc = discovery_doc();
    char *url = NULL;
    /* RFC 7636 appendix B */
    assert_int_equal(oidc_build_auth_url(doc, CLIENT, "http://127.0.0.1:8000/oidc/callback/",
                                         "st4te", NONCE,
                                         "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", &url),
                     0);
    assert_non_null(url);
    assert_true(strncmp(url, ISSUER "/protocol/openid-connect/auth?", strlen(ISSUER) + 30) == 0);
    assert_non_null(strstr(url, "code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
    assert_non_null(strstr(url, "code_challenge_method=S256"));
    assert_non_null(strstr(url, "response_type=code"));
    assert_non_null(strstr(url, "client_id=usher-web"));
    assert_non_null(strstr(url, "state=st4te"));
    assert_non_null(strstr(url, "nonce=" NONCE));
    /* ulfius_url_encode writes a space as '+'; both are form encoding */
    assert_true(strstr(url, "scope=openid+email+profile") ||
                strstr(url, "scope=openid%20email%20profile"));
    assert_non_null(strstr(url, "redirect_uri=http%3A%2F%2F127.0.0.1%3A8000%2Foidc%2Fcallback%2F"));
    /* the verifier itself never leaves in the URL */
    assert_null(strstr(url, "dBjftJeZ4CVP"));
    free(url);
    json_decref(doc);
}

static void test_auth_url_refuses_bad_input(void **state)
{
    (void)state;
    json_t *doc = discovery_doc();
    char *url = NULL;
    /* RFC 7636: a verifier has at least 43 characters */
    assert_int_equal(
        oidc_build_auth_url(doc, CLIENT, "http://x/oidc/callback/", "s", NONCE, "too-short", &url),
        USHER_EINVAL);
    assert_null(url);
    json_t *broken = json_pack("{s:s}", "issuer", ISSUER);
    assert_int_equal(oidc_build_auth_url(broken, CLIENT, "http://x/oidc/callback/", "s", NONCE,
                                         "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", &url),
                     USHER_EINVAL);
    assert_null(url);
    json_decref(broken);
    json_decref(doc);
}

/* --- pending logins --------------------------------------------------------------------- */

static void fill_request(struct oidc_login_request *req, char c)
{
    memset(req, 0, sizeof *req);
    memset(req->state, c, OIDC_STATE_HEX_LEN);
    memset(req->nonce, 'b', OIDC_NONCE_HEX_LEN);
    memset(req->verifier, 'c', OIDC_VERIFIER_HEX_LEN);
}

static void test_pending_one_use(void **state)
{
    (void)state;
    json_t *data = json_object();
    struct oidc_login_request req;
    fill_request(&req, 'a');
    oidc_pending_put(data, &req, "/dashboard/account/", NOW);
    struct oidc_pending p;
    assert_int_equal(oidc_pending_take(data, req.state, NOW + 5, &p), 0);
    assert_string_equal(p.nonce, req.nonce);
    assert_string_equal(p.verifier, req.verifier);
    assert_string_equal(p.next, "/dashboard/account/");
    oidc_pending_cleanup(&p);
    /* replay: the state is gone */
    assert_int_equal(oidc_pending_take(data, req.state, NOW + 6, &p), USHER_ENOTFOUND);
    assert_null(p.nonce);
    json_decref(data);
}

static void test_pending_unknown_malformed_expired(void **state)
{
    (void)state;
    json_t *data = json_object();
    struct oidc_pending p;
    struct oidc_login_request req;
    fill_request(&req, 'a');
    assert_int_equal(oidc_pending_take(data, req.state, NOW, &p), USHER_ENOTFOUND);
    oidc_pending_put(data, &req, "//evil.test", NOW);
    assert_int_equal(oidc_pending_take(data, NULL, NOW, &p), USHER_ENOTFOUND);
    assert_int_equal(oidc_pending_take(data, "", NOW, &p), USHER_ENOTFOUND);
    assert_int_equal(oidc_pending_take(data, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NOW, &p),
                     USHER_ENOTFOUND);
    assert_int_equal(oidc_pending_take(data, "dddddddddddddddddddddddddddddddd", NOW, &p),
                     USHER_ENOTFOUND);
    /* an unsafe next was stored as the default */
    assert_int_equal(oidc_pending_take(data, req.state, NOW, &p), 0);
    assert_string_equal(p.next, OIDC_DEFAULT_NEXT);
    oidc_pending_cleanup(&p);

    oidc_pending_put(data, &req, "/x/", NOW);
    assert_int_equal(oidc_pending_take(data, req.state, NOW + OIDC_PENDING_TTL_SECONDS + 1, &p),
                     USHER_ENOTFOUND);
    /* an expired one is removed too */
    assert_int_equal(oidc_pending_take(data, req.state, NOW, &p), USHER_ENOTFOUND);
    json_decref(data);
}

static void test_pending_cap_drops_oldest(void **state)
{
    (void)state;
    json_t *data = json_object();
    struct oidc_login_request req[OIDC_PENDING_MAX + 1];
    for (int i = 0; i <= OIDC_PENDING_MAX; i++) {
        fill_request(&req[i], (char)('0' + i));
        oidc_pending_put(data, &req[i], "/", NOW + i);
    }
    assert_int_equal(json_object_size(json_object_get(data, "oidc_pending")), OIDC_PENDING_MAX);
    struct oidc_pending p;
    assert_int_equal(oidc_pending_take(data, req[0].state, NOW + 10, &p), USHER_ENOTFOUND);
    for (int i = 1; i <= OIDC_PENDING_MAX; i++) {
        assert_int_equal(oidc_pending_take(data, req[i].state, NOW + 10, &p), 0);
        oidc_pending_cleanup(&p);
    }
    oidc_pending_put(data, &req[0], "/", NOW);
    oidc_pending_clear(data);
    assert_null(json_object_get(data, "oidc_pending"));
    json_decref(data);
}

/* --- ID token verification -------------------------------------------------------------- */

struct keys {
    jwk_t *priv, *pub, *other_priv, *other_pub;
    json_t *jwks;
};

static int keys_setup(void **state)
{
    struct keys *k = xcalloc(1, sizeof *k);
    r_jwk_init(&k->priv);
    r_jwk_init(&k->pub);
    r_jwk_init(&k->other_priv);
    r_jwk_init(&k->other_pub);
    if (r_jwk_generate_key_pair(k->priv, k->pub, R_KEY_TYPE_RSA, 2048, "k1") != RHN_OK ||
        r_jwk_generate_key_pair(k->other_priv, k->other_pub, R_KEY_TYPE_RSA, 2048, "k1") != RHN_OK)
        return -1;
    json_t *pub = r_jwk_export_to_json_t(k->pub);
    json_object_set_new(pub, "use", json_string("sig"));
    json_object_set_new(pub, "alg", json_string("RS256"));
    /* Keycloak also lists an encryption key; it must never be picked for signatures. */
    json_t *enc = json_deep_copy(pub);
    json_object_set_new(enc, "kid", json_string("enc1"));
    json_object_set_new(enc, "use", json_string("enc"));
    json_object_set_new(enc, "alg", json_string("RSA-OAEP"));
    k->jwks = json_pack("{s:[o,o]}", "keys", enc, pub);
    *state = k;
    return 0;
}

static int keys_teardown(void **state)
{
    struct keys *k = *state;
    r_jwk_free(k->priv);
    r_jwk_free(k->pub);
    r_jwk_free(k->other_priv);
    r_jwk_free(k->other_pub);
    json_decref(k->jwks);
    free(k);
    return 0;
}

static json_t *good_claims(void)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:[s,s]}", "iss",
                     ISSUER, "aud", CLIENT, "azp", CLIENT, "sub", "f6c1-uuid", "exp",
                     (json_int_t)(NOW + 300), "iat", (json_int_t)NOW, "nonce", NONCE,
                     "preferred_username", "bob", "email", "bob@usher.test", "given_name", "Bob",
                     "family_name", "Builder", "groups", "usher-admins", "nextcloud-foggy");
}

/* Signs claims (stolen reference) with key under alg, kid "k1". */
static char *sign(json_t *claims, jwk_t *key, jwa_alg alg)
{
    jwt_t *jwt = NULL;
    r_jwt_init(&jwt);
    r_jwt_set_full_claims_json_t(jwt, claims);
    json_decref(claims);
    r_jwt_set_sign_alg(jwt, alg);
    r_jwt_set_header_str_value(jwt, "kid", "k1");
    char *raw = alg == R_JWA_ALG_NONE ? r_jwt_serialize_signed_unsecure(jwt, NULL, 0)
                                      : r_jwt_serialize_signed(jwt, key, 0);
    r_jwt_free(jwt);
    assert_non_null(raw);
    char *out = xstrdup(raw);
    r_free(raw);
    return out;
}

static const struct oidc_expect expect = {
    .issuer = ISSUER, .client_id = CLIENT, .nonce = NONCE, .now = NOW, .leeway = 60};

static int verify(struct keys *k, char *token, const char **why)
{
    struct oidc_claims c;
    int rc = oidc_verify_id_token(token, k->jwks, &expect, &c, why);
    oidc_claims_cleanup(&c);
    free(token);
    return rc;
}

/* Verification of good_claims() changed by one member (value NULL removes it). */
static int verify_with(struct keys *k, const char *name, json_t *value, const char **why)
{
    json_t *claims = good_claims();
    if (value)
        json_object_set_new(claims, name, value);
    else
        json_object_del(claims, name);
    return verify(k, sign(claims, k->priv, R_JWA_ALG_RS256), why);
}

static void test_id_token_valid(void **state)
{
    struct keys *k = *state;
    char *token = sign(good_claims(), k->priv, R_JWA_ALG_RS256);
    struct oidc_claims c;
    const char *why = "unset";
    assert_int_equal(oidc_verify_id_token(token, k->jwks, &expect, &c, &why), 0);
    assert_null(why);
    assert_string_equal(c.sub, "f6c1-uuid");
    assert_string_equal(c.preferred_username, "bob");
    assert_string_equal(c.email, "bob@usher.test");
    assert_string_equal(c.given_name, "Bob");
    assert_string_equal(c.family_name, "Builder");
    assert_int_equal(c.group_count, 2);
    assert_true(oidc_claims_in_group(&c, "usher-admins"));
    assert_false(oidc_claims_in_group(&c, "usher"));
    assert_false(oidc_claims_in_group(&c, "USHER-ADMINS"));
    oidc_claims_cleanup(&c);
    free(token);
}

static void test_id_token_groups_missing_is_empty(void **state)
{
    struct keys *k = *state;
    json_t *claims = good_claims();
    json_object_del(claims, "groups");
    json_object_del(claims, "given_name");
    char *token = sign(claims, k->priv, R_JWA_ALG_RS256);
    struct oidc_claims c;
    const char *why;
    assert_int_equal(oidc_verify_id_token(token, k->jwks, &expect, &c, &why), 0);
    assert_int_equal(c.group_count, 0);
    assert_null(c.given_name);
    assert_false(oidc_claims_in_group(&c, "usher-admins"));
    oidc_claims_cleanup(&c);
    free(token);
}

static void test_id_token_audience(void **state)
{
    struct keys *k = *state;
    const char *why;
    assert_int_equal(verify_with(k, "aud", json_string("someone-else"), &why), USHER_EINVAL);
    assert_string_equal(why, "refusal.token_audience");
    assert_int_equal(verify_with(k, "aud", NULL, &why), USHER_EINVAL);
    /* several audiences: ours among them and azp = us */
    assert_int_equal(verify_with(k, "aud", json_pack("[s,s]", "account", CLIENT), &why), 0);
    /* several audiences without azp */
    json_t *claims = good_claims();
    json_object_set_new(claims, "aud", json_pack("[s,s]", "account", CLIENT));
    json_object_del(claims, "azp");
    assert_int_equal(verify(k, sign(claims, k->priv, R_JWA_ALG_RS256), &why), USHER_EINVAL);
    assert_string_equal(why, "refusal.token_azp");
    /* azp naming another client */
    assert_int_equal(verify_with(k, "azp", json_string("other-client"), &why), USHER_EINVAL);
    assert_string_equal(why, "refusal.token_azp");
    /* one audience and no azp is fine */
    assert_int_equal(verify_with(k, "azp", NULL, &why), 0);
}

static void test_id_token_issuer_nonce_sub(void **state)
{
    struct keys *k = *state;
    const char *why;
    assert_int_equal(verify_with(k, "iss", json_string("http://evil.test/realms/usher"), &why),
                     USHER_EINVAL);
    assert_string_equal(why, "refusal.token_issuer");
    assert_int_equal(verify_with(k, "nonce", json_string("ffffffffffffffffffffffffffffffff"), &why),
                     USHER_EINVAL);
    assert_string_equal(why, "refusal.token_nonce");
    assert_int_equal(verify_with(k, "nonce", NULL, &why), USHER_EINVAL);
    assert_int_equal(verify_with(k, "sub", NULL, &why), USHER_EINVAL);
    assert_int_equal(verify_with(k, "sub", json_string(""), &why), USHER_EINVAL);
    assert_int_equal(verify_with(k, "email", json_string("a\nb@x.test"), &why), USHER_EINVAL);
    assert_int_equal(verify_with(k, "email", json_integer(5), &why), USHER_EINVAL);
}

static void test_id_token_times_with_leeway(void **state)
{
    struct keys *k = *state;
    const char *why;
    assert_int_equal(verify_with(k, "exp", json_integer(NOW - 30), &why), 0);
    assert_int_equal(verify_with(k, "exp", json_integer(NOW - 60), &why), USHER_EINVAL);
    assert_string_equal(why, "refusal.token_expired");
    assert_int_equal(verify_with(k, "exp", NULL, &why), USHER_EINVAL);
    assert_int_equal(verify_with(k, "iat", json_integer(NOW + 30), &why), 0);
    assert_int_equal(verify_with(k, "iat", json_integer(NOW + 61), &why), USHER_EINVAL);
    assert_string_equal(why, "refusal.token_future");
    assert_int_equal(verify_with(k, "nbf", json_integer(NOW + 120), &why), USHER_EINVAL);
    assert_int_equal(verify_with(k, "iat", NULL, &why), USHER_EINVAL);
}

static void test_id_token_signature_and_keys(void **state)
{
    struct keys *k = *state;
    const char *why;
    /* same kid, another key: a forged token */
    assert_int_equal(verify(k, sign(good_claims(), k->other_priv, R_JWA_ALG_RS256), &why),
                     USHER_EINVAL);
    assert_string_equal(why, "refusal.token_signature");
    /* a payload changed after signing */
    char *token = sign(good_claims(), k->priv, R_JWA_ALG_RS256);
    char *dot = strchr(token, '.');
    dot[3] = dot[3] == 'A' ? 'B' : 'A';
    assert_int_equal(verify(k, token, &why), USHER_EINVAL);
    /* a signature changed */
    token = sign(good_claims(), k->priv, R_JWA_ALG_RS256);
    size_t len = strlen(token);
    token[len - 5] = token[len - 5] == 'A' ? 'B' : 'A';
    assert_int_equal(verify(k, token, &why), USHER_EINVAL);
    /* unsigned */
    assert_int_equal(verify(k, sign(good_claims(), NULL, R_JWA_ALG_NONE), &why), USHER_EINVAL);
    /* HS256 keyed with anything (the classic RSA/HMAC confusion) */
    jwk_t *hmac = NULL;
    r_jwk_init(&hmac);
    r_jwk_import_from_symmetric_key(hmac, (const unsigned char *)"secret-secret-secret-secret-32b",
                                    31);
    assert_int_equal(verify(k, sign(good_claims(), hmac, R_JWA_ALG_HS256), &why), USHER_EINVAL);
    assert_string_equal(why, "refusal.token_algorithm");
    r_jwk_free(hmac);
    /* garbage */
    assert_int_equal(verify(k, xstrdup("not.a.jwt"), &why), USHER_EINVAL);
    assert_int_equal(verify(k, xstrdup(""), &why), USHER_EINVAL);
}

static void test_id_token_unknown_kid(void **state)
{
    struct keys *k = *state;
    json_t *claims = good_claims();
    jwt_t *jwt = NULL;
    r_jwt_init(&jwt);
    r_jwt_set_full_claims_json_t(jwt, claims);
    json_decref(claims);
    r_jwt_set_sign_alg(jwt, R_JWA_ALG_RS256);
    r_jwt_set_header_str_value(jwt, "kid", "rotated-away");
    char *raw = r_jwt_serialize_signed(jwt, k->priv, 0);
    r_jwt_free(jwt);
    struct oidc_claims c;
    const char *why;
    /* ENOTFOUND tells the caller a JWKS refetch may help */
    assert_int_equal(oidc_verify_id_token(raw, k->jwks, &expect, &c, &why), USHER_ENOTFOUND);
    /* the encryption key's kid is not a signing key either */
    r_jwt_init(&jwt);
    claims = good_claims();
    r_jwt_set_full_claims_json_t(jwt, claims);
    json_decref(claims);
    r_jwt_set_sign_alg(jwt, R_JWA_ALG_RS256);
    r_jwt_set_header_str_value(jwt, "kid", "enc1");
    char *raw2 = r_jwt_serialize_signed(jwt, k->priv, 0);
    r_jwt_free(jwt);
    assert_int_equal(oidc_verify_id_token(raw2, k->jwks, &expect, &c, &why), USHER_ENOTFOUND);
    r_free(raw);
    r_free(raw2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_next_local_paths),
        cmocka_unit_test(test_next_open_redirects_refused),
        cmocka_unit_test(test_auth_url_pkce_rfc7636_vector),
        cmocka_unit_test(test_auth_url_refuses_bad_input),
        cmocka_unit_test(test_pending_one_use),
        cmocka_unit_test(test_pending_unknown_malformed_expired),
        cmocka_unit_test(test_pending_cap_drops_oldest),
    };
    const struct CMUnitTest token_tests[] = {
        cmocka_unit_test(test_id_token_valid),
        cmocka_unit_test(test_id_token_groups_missing_is_empty),
        cmocka_unit_test(test_id_token_audience),
        cmocka_unit_test(test_id_token_issuer_nonce_sub),
        cmocka_unit_test(test_id_token_times_with_leeway),
        cmocka_unit_test(test_id_token_signature_and_keys),
        cmocka_unit_test(test_id_token_unknown_kid),
    };
    int failed = cmocka_run_group_tests_name("oidc", tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("oidc id token", token_tests, keys_setup, keys_teardown);
    return failed;
}
