/*
 * oidc.c — the OpenID Connect relying party (see oidc.h).
 *
 * Division of labour: iddawc validates the discovery metadata, builds the authorization URL
 * (including the PKCE S256 challenge), parses the token response and builds the end-session
 * URL; rhonabwy parses the ID token and checks its RS256 signature with a key from the JWKS.
 * This file does the transport (the shared http_client), the per-process caches,
 * and the claim checks that iddawc's i_verify_id_token does not do the way Usher needs
 * (it only checks that `aud` exists, has no leeway and reads the real clock).
 */
#include "integrations/oidc.h"

#include "core/buf.h"
#include "core/config.h"
#include "core/crypto.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/messages.h"
#include "integrations/form.h"
#include "integrations/http_client.h"

#include <iddawc.h>
#include <pthread.h>
#include <rhonabwy.h>
#include <stdlib.h>
#include <string.h>

#define OIDC_RESPONSE_MAX ((size_t)512 * 1024)

/* --- settings ----------------------------------------------------------------------------- */

static bool realm_name_ok(const char *realm)
{
    if (!realm || !*realm || strlen(realm) > 255)
        return false;
    for (const char *p = realm; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

int oidc_settings_init(struct oidc_settings *s, const struct usher_config *cfg)
{
    memset(s, 0, sizeof *s);
    if (!cfg->keycloak_server_url || !*cfg->keycloak_server_url ||
        !realm_name_ok(cfg->keycloak_realm) || !cfg->oidc_rp_client_id ||
        !*cfg->oidc_rp_client_id || !cfg->oidc_rp_client_secret || !*cfg->oidc_rp_client_secret)
        return USHER_ECONFIG;
    s->issuer = xasprintf("%s/realms/%s", cfg->keycloak_server_url, cfg->keycloak_realm);
    s->client_id = xstrdup(cfg->oidc_rp_client_id);
    s->client_secret = xstrdup(cfg->oidc_rp_client_secret);
    s->redirect_uri = xasprintf("%s%s", cfg->public_base_url, OIDC_CALLBACK_PATH);
    return 0;
}

void oidc_settings_cleanup(struct oidc_settings *s)
{
    free(s->issuer);
    free(s->client_id);
    free(s->client_secret);
    free(s->redirect_uri);
    memset(s, 0, sizeof *s);
}

/* --- transport ---------------------------------------------------------------------------- */

static const char *const accept_json[] = {"Accept: application/json", NULL};

/*
 * GET url (form NULL) or POST the form (application/x-www-form-urlencoded), optionally with
 * HTTP Basic credentials, through the shared libcurl core. Retried only when the connection
 * failed (nothing was sent, so even a single-use code is safe), and bounded by the core's
 * timeouts: a login waits for Keycloak at most that long. 0 with *status and *json (NULL
 * when the body is not JSON), or USHER_EUPSTREAM when no complete answer came back.
 */
static int http_call(const char *url, const char *form, const char *user, const char *password,
                     long *status, json_t **json)
{
    *status = 0;
    *json = NULL;
    const struct http_request req = {
        .method = form ? "POST" : "GET",
        .url = url,
        .headers = accept_json,
        .body = form,
        .body_len = form ? strlen(form) : 0,
        .content_type = form ? "application/x-www-form-urlencoded" : NULL,
        .basic_user = user,
        .basic_password = password,
        .upstream = "keycloak",
        .max_response_bytes = OIDC_RESPONSE_MAX,
    };
    struct http_response resp;
    struct http_error err;
    http_response_init(&resp);
    int rc = http_send_retry(&req, &resp, &err, &http_retry_once_sent);
    if (rc != 0) {
        char quoted[256];
        log_quote(quoted, sizeof quoted, url);
        log_warn("msg=\"oidc request failed\" url=\"%s\" reason=\"%s\"", quoted, err.excerpt);
        rc = USHER_EUPSTREAM;
    } else {
        *status = resp.status;
        *json = json_loadb(resp.body, resp.body_len, JSON_REJECT_DUPLICATES, NULL);
    }
    http_response_cleanup(&resp);
    return rc;
}

static char *url_escape(const char *s)
{
    struct buf b;
    buf_init(&b);
    form_escape(&b, s, NULL);
    char *out = buf_detach(&b);
    buf_cleanup(&b);
    return out;
}

/* --- discovery and JWKS caches ------------------------------------------------------------ */

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char *issuer; /* whose documents these are */
    json_t *discovery;
    int64_t discovery_at;
    json_t *jwks;
    int64_t jwks_at;
    int64_t kid_refetch_at;
    bool kid_refetched;
} cache;

/* Under cache_lock: forget everything cached for another issuer. */
static void cache_select(const char *issuer)
{
    if (cache.issuer && !strcmp(cache.issuer, issuer))
        return;
    free(cache.issuer);
    json_decref(cache.discovery);
    json_decref(cache.jwks);
    memset(&cache, 0, sizeof cache);
    cache.issuer = xstrdup(issuer);
}

static bool is_http_url(const json_t *v)
{
    const char *s = json_string_value(v);
    return s && (!strncmp(s, "https://", 8) || !strncmp(s, "http://", 7));
}

static bool array_has_string(const json_t *array, const char *want)
{
    size_t i;
    json_t *v;
    json_array_foreach (array, i, v) {
        if (json_is_string(v) && !strcmp(json_string_value(v), want))
            return true;
    }
    return false;
}

/* Whether doc is a usable discovery document for issuer. */
static bool discovery_ok(const json_t *doc, const char *issuer)
{
    const char *iss = json_string_value(json_object_get(doc, "issuer"));
    if (!iss || strcmp(iss, issuer)) {
        char quoted[256];
        log_quote(quoted, sizeof quoted, iss ? iss : "(none)");
        log_warn("msg=\"oidc discovery issuer mismatch\" issuer=\"%s\"", quoted);
        return false;
    }
    if (!is_http_url(json_object_get(doc, "authorization_endpoint")) ||
        !is_http_url(json_object_get(doc, "token_endpoint")) ||
        !is_http_url(json_object_get(doc, "jwks_uri")))
        return false;
    const json_t *end = json_object_get(doc, "end_session_endpoint");
    if (end && !is_http_url(end))
        return false;
    /* Without S256 the provider would ignore the challenge and PKCE would protect nothing. */
    const json_t *methods = json_object_get(doc, "code_challenge_methods_supported");
    if (json_is_array(methods) && !array_has_string(methods, "S256"))
        return false;
    /* iddawc's own check of the required metadata. */
    struct _i_session is;
    if (i_init_session(&is) != I_OK)
        return false;
    bool ok = i_set_server_configuration(&is, (json_t *)doc) == I_OK;
    i_clean_session(&is);
    return ok;
}

/* A new reference to the discovery document (fetched when missing or older than the TTL; a
 * stale copy is kept while refreshing fails). */
static int get_discovery(const struct oidc_settings *s, int64_t now, json_t **out)
{
    *out = NULL;
    pthread_mutex_lock(&cache_lock);
    cache_select(s->issuer);
    if (cache.discovery && now - cache.discovery_at < OIDC_DISCOVERY_TTL_SECONDS)
        *out = json_deep_copy(cache.discovery);
    pthread_mutex_unlock(&cache_lock);
    if (*out)
        return 0;

    char *url = xasprintf("%s/.well-known/openid-configuration", s->issuer);
    long status = 0;
    json_t *doc = NULL;
    int rc = http_call(url, NULL, NULL, NULL, &status, &doc);
    if (rc == 0 && (status != 200 || !json_is_object(doc) || !discovery_ok(doc, s->issuer))) {
        char quoted[256];
        log_quote(quoted, sizeof quoted, url);
        log_warn("msg=\"oidc discovery unusable\" url=\"%s\" status=%ld", quoted, status);
        rc = USHER_EUPSTREAM;
    }
    free(url);

    pthread_mutex_lock(&cache_lock);
    cache_select(s->issuer);
    if (rc == 0) {
        json_decref(cache.discovery);
        cache.discovery = json_incref(doc);
        cache.discovery_at = now;
    } else if (cache.discovery) {
        /* keep serving the stale copy, and try again in a while, not on every request */
        cache.discovery_at = now - OIDC_DISCOVERY_TTL_SECONDS + OIDC_RETRY_SECONDS;
    }
    if (cache.discovery) {
        *out = json_deep_copy(cache.discovery);
        rc = 0; /* a fresh copy, or the stale one while the refresh failed */
    }
    pthread_mutex_unlock(&cache_lock);
    json_decref(doc);
    return *out ? 0 : (rc ? rc : USHER_EUPSTREAM);
}

/* A new reference to the JWKS: the cached one unless missing, past its TTL, or force. */
static int get_jwks(const struct oidc_settings *s, const json_t *discovery, int64_t now, bool force,
                    json_t **out)
{
    *out = NULL;
    pthread_mutex_lock(&cache_lock);
    cache_select(s->issuer);
    if (!force && cache.jwks && now - cache.jwks_at < OIDC_JWKS_TTL_SECONDS)
        *out = json_deep_copy(cache.jwks);
    pthread_mutex_unlock(&cache_lock);
    if (*out)
        return 0;

    const char *url = json_string_value(json_object_get(discovery, "jwks_uri"));
    long status = 0;
    json_t *doc = NULL;
    int rc = http_call(url, NULL, NULL, NULL, &status, &doc);
    if (rc == 0 && (status != 200 || !json_is_array(json_object_get(doc, "keys")))) {
        log_warn("msg=\"oidc jwks unusable\" status=%ld", status);
        rc = USHER_EUPSTREAM;
    }
    pthread_mutex_lock(&cache_lock);
    cache_select(s->issuer);
    if (rc == 0) {
        json_decref(cache.jwks);
        cache.jwks = json_incref(doc);
        cache.jwks_at = now;
    } else if (cache.jwks && !force) {
        cache.jwks_at = now - OIDC_JWKS_TTL_SECONDS + OIDC_RETRY_SECONDS;
    }
    if (cache.jwks)
        *out = json_deep_copy(cache.jwks);
    pthread_mutex_unlock(&cache_lock);
    json_decref(doc);
    return *out ? 0 : (rc ? rc : USHER_EUPSTREAM);
}

/* An unknown kid may refetch the JWKS, but not more often than OIDC_JWKS_REFETCH_SECONDS. */
static bool kid_refetch_allowed(const char *issuer, int64_t now)
{
    pthread_mutex_lock(&cache_lock);
    cache_select(issuer);
    bool ok = !cache.kid_refetched || now - cache.kid_refetch_at >= OIDC_JWKS_REFETCH_SECONDS ||
              now < cache.kid_refetch_at;
    if (ok) {
        cache.kid_refetched = true;
        cache.kid_refetch_at = now;
    }
    pthread_mutex_unlock(&cache_lock);
    return ok;
}

/* --- authorization request ---------------------------------------------------------------- */

int oidc_build_auth_url(const json_t *discovery, const char *client_id, const char *redirect_uri,
                        const char *state, const char *nonce, const char *verifier, char **url)
{
    *url = NULL;
    if (!json_is_object(discovery) || !client_id || !redirect_uri || !state || !nonce || !verifier)
        return USHER_EINVAL;
    struct _i_session is;
    if (i_init_session(&is) != I_OK)
        return USHER_EINVAL;
    int rc = USHER_EINVAL;
    if (i_set_server_configuration(&is, (json_t *)discovery) != I_OK)
        goto out;
    if (i_set_parameter_list(&is, I_OPT_RESPONSE_TYPE, I_RESPONSE_TYPE_CODE, I_OPT_SCOPE,
                             OIDC_SCOPE, I_OPT_CLIENT_ID, client_id, I_OPT_REDIRECT_URI,
                             redirect_uri, I_OPT_STATE, state, I_OPT_NONCE, nonce,
                             I_OPT_PKCE_CODE_VERIFIER, verifier, I_OPT_PKCE_METHOD,
                             I_PKCE_METHOD_S256, I_OPT_NONE) != I_OK)
        goto out;
    if (i_build_auth_url_get(&is) != I_OK)
        goto out;
    const char *built = i_get_str_parameter(&is, I_OPT_REDIRECT_TO);
    /* iddawc leaves the challenge out silently if hashing fails: never send a request
     * without it. */
    if (!built || !strstr(built, "&code_challenge_method=S256&code_challenge="))
        goto out;
    *url = xstrdup(built);
    rc = 0;
out:
    i_clean_session(&is);
    return rc;
}

int oidc_login_start(const struct oidc_settings *s, int64_t now, struct oidc_login_request *out)
{
    memset(out, 0, sizeof *out);
    unsigned char raw[OIDC_VERIFIER_HEX_LEN / 2];
    crypto_random(raw, OIDC_STATE_HEX_LEN / 2);
    crypto_hex(raw, OIDC_STATE_HEX_LEN / 2, out->state);
    crypto_random(raw, OIDC_NONCE_HEX_LEN / 2);
    crypto_hex(raw, OIDC_NONCE_HEX_LEN / 2, out->nonce);
    crypto_random(raw, OIDC_VERIFIER_HEX_LEN / 2);
    crypto_hex(raw, OIDC_VERIFIER_HEX_LEN / 2, out->verifier);

    json_t *discovery = NULL;
    int rc = get_discovery(s, now, &discovery);
    if (rc == 0)
        rc = oidc_build_auth_url(discovery, s->client_id, s->redirect_uri, out->state, out->nonce,
                                 out->verifier, &out->url);
    json_decref(discovery);
    if (rc == USHER_EINVAL) {
        log_error("msg=\"oidc cannot build the authorization request\"");
        rc = USHER_EUPSTREAM;
    }
    return rc;
}

void oidc_login_request_cleanup(struct oidc_login_request *req)
{
    free(req->url);
    memset(req, 0, sizeof *req);
}

/* --- ID token ----------------------------------------------------------------------------- */

void oidc_claims_cleanup(struct oidc_claims *c)
{
    free(c->sub);
    free(c->preferred_username);
    free(c->email);
    free(c->given_name);
    free(c->family_name);
    for (size_t i = 0; i < c->group_count; i++)
        free(c->groups[i]);
    free(c->groups);
    memset(c, 0, sizeof *c);
}

bool oidc_claims_in_group(const struct oidc_claims *c, const char *group)
{
    for (size_t i = 0; group && i < c->group_count; i++)
        if (!strcmp(c->groups[i], group))
            return true;
    return false;
}

/* The RS256 signing key for kid (or the only one when the token names none), borrowed. */
static json_t *find_key(const json_t *jwks, const char *kid)
{
    json_t *found = NULL, *key;
    size_t i, candidates = 0;
    json_array_foreach (json_object_get(jwks, "keys"), i, key) {
        const char *kty = json_string_value(json_object_get(key, "kty"));
        const char *use = json_string_value(json_object_get(key, "use"));
        const char *alg = json_string_value(json_object_get(key, "alg"));
        const char *id = json_string_value(json_object_get(key, "kid"));
        if (!kty || strcmp(kty, "RSA") || (use && strcmp(use, "sig")) ||
            (alg && strcmp(alg, "RS256")))
            continue;
        candidates++;
        if (kid && id && !strcmp(kid, id))
            return key;
        if (!kid)
            found = key;
    }
    return candidates == 1 ? found : NULL;
}

/* A string without embedded NUL or control characters, at most max bytes. */
static bool clean_string(const json_t *v, size_t max)
{
    const char *s = json_string_value(v);
    if (!s || json_string_length(v) != strlen(s) || strlen(s) > max)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

/* Optional string claim: absent/null → NULL; otherwise it must be clean. */
static bool take_string(const json_t *claims, const char *name, size_t max, char **out)
{
    const json_t *v = json_object_get(claims, name);
    if (!v || json_is_null(v))
        return true;
    if (!clean_string(v, max))
        return false;
    *out = xstrdup(json_string_value(v));
    return true;
}

/* "groups": missing → none; an array of names (a lone string counts as one). */
static bool take_groups(const json_t *claims, struct oidc_claims *c)
{
    const json_t *v = json_object_get(claims, "groups");
    if (!v || json_is_null(v))
        return true;
    if (json_is_string(v)) {
        if (!clean_string(v, OIDC_CLAIM_MAX))
            return false;
        c->groups = xcalloc(1, sizeof *c->groups);
        c->groups[c->group_count++] = xstrdup(json_string_value(v));
        return true;
    }
    if (!json_is_array(v) || json_array_size(v) > OIDC_GROUPS_MAX)
        return false;
    c->groups = xcalloc(json_array_size(v) + 1, sizeof *c->groups);
    size_t i;
    json_t *g;
    json_array_foreach (v, i, g) {
        if (clean_string(g, OIDC_CLAIM_MAX) && *json_string_value(g))
            c->groups[c->group_count++] = xstrdup(json_string_value(g));
    }
    return true;
}

static bool audience_ok(const json_t *claims, const char *client_id, const char **why)
{
    const json_t *aud = json_object_get(claims, "aud");
    const char *azp = json_string_value(json_object_get(claims, "azp"));
    size_t audiences = 0;
    bool ours = false;
    if (json_is_string(aud)) {
        audiences = 1;
        ours = !strcmp(json_string_value(aud), client_id);
    } else if (json_is_array(aud)) {
        size_t i;
        json_t *a;
        json_array_foreach (aud, i, a) {
            audiences++;
            if (json_is_string(a) && !strcmp(json_string_value(a), client_id))
                ours = true;
        }
    }
    if (!ours) {
        *why = MSG_ID("refusal.token_audience");
        return false;
    }
    /* OIDC Core 3.1.3.7 items 4 and 5. */
    if ((audiences > 1 && !azp) ||
        (json_object_get(claims, "azp") && (!azp || strcmp(azp, client_id)))) {
        *why = MSG_ID("refusal.token_azp");
        return false;
    }
    return true;
}

static bool times_ok(const json_t *claims, int64_t now, int64_t leeway, const char **why)
{
    const json_t *exp = json_object_get(claims, "exp");
    const json_t *iat = json_object_get(claims, "iat");
    const json_t *nbf = json_object_get(claims, "nbf");
    if (!json_is_number(exp) || !json_is_number(iat) || (nbf && !json_is_number(nbf))) {
        *why = MSG_ID("refusal.token_times");
        return false;
    }
    if ((double)now >= json_number_value(exp) + (double)leeway) {
        *why = MSG_ID("refusal.token_expired");
        return false;
    }
    if (json_number_value(iat) > (double)(now + leeway) ||
        (nbf && json_number_value(nbf) > (double)(now + leeway))) {
        *why = MSG_ID("refusal.token_future");
        return false;
    }
    return true;
}

static bool claims_ok(const json_t *claims, const struct oidc_expect *e, const char **why)
{
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    if (!iss || strcmp(iss, e->issuer)) {
        *why = MSG_ID("refusal.token_issuer");
        return false;
    }
    if (!audience_ok(claims, e->client_id, why) || !times_ok(claims, e->now, e->leeway, why))
        return false;
    const char *nonce = json_string_value(json_object_get(claims, "nonce"));
    if (!e->nonce || !nonce || !crypto_equal_str(nonce, e->nonce)) {
        *why = MSG_ID("refusal.token_nonce");
        return false;
    }
    const json_t *sub = json_object_get(claims, "sub");
    if (!clean_string(sub, OIDC_CLAIM_MAX) || !*json_string_value(sub)) {
        *why = MSG_ID("refusal.token_subject");
        return false;
    }
    return true;
}

static bool extract(const json_t *claims, struct oidc_claims *c)
{
    return take_string(claims, "sub", OIDC_CLAIM_MAX, &c->sub) &&
           take_string(claims, "preferred_username", OIDC_CLAIM_MAX, &c->preferred_username) &&
           take_string(claims, "email", OIDC_EMAIL_MAX, &c->email) &&
           take_string(claims, "given_name", OIDC_CLAIM_MAX, &c->given_name) &&
           take_string(claims, "family_name", OIDC_CLAIM_MAX, &c->family_name) &&
           take_groups(claims, c);
}

int oidc_verify_id_token(const char *id_token, const json_t *jwks, const struct oidc_expect *e,
                         struct oidc_claims *claims, const char **why)
{
    memset(claims, 0, sizeof *claims);
    *why = MSG_ID("refusal.token_malformed");
    if (!id_token || !*id_token || strlen(id_token) > OIDC_ID_TOKEN_MAX)
        return USHER_EINVAL;
    int rc = USHER_EINVAL;
    jwt_t *jwt = NULL;
    jwk_t *key = NULL;
    json_t *payload = NULL;
    if (r_jwt_init(&jwt) != RHN_OK)
        goto out;
    /* R_PARSE_NONE: keys named inside the token (jwk, jku, x5c, x5u) are never used, and an
     * unsigned token does not parse. */
    if (r_jwt_advanced_parse(jwt, id_token, R_PARSE_NONE, 0) != RHN_OK ||
        r_jwt_get_type(jwt) != R_JWT_TYPE_SIGN)
        goto out;
    if (r_jwt_get_sign_alg(jwt) != R_JWA_ALG_RS256) {
        *why = MSG_ID("refusal.token_algorithm");
        goto out;
    }
    json_t *jwk_json = find_key(jwks, r_jwt_get_header_str_value(jwt, "kid"));
    if (!jwk_json) {
        *why = MSG_ID("refusal.token_unknown_key");
        rc = USHER_ENOTFOUND;
        goto out;
    }
    if (r_jwk_init(&key) != RHN_OK || r_jwk_import_from_json_t(key, jwk_json) != RHN_OK) {
        *why = MSG_ID("refusal.provider_key_unusable");
        goto out;
    }
    if (r_jwt_verify_signature(jwt, key, 0) != RHN_OK) {
        *why = MSG_ID("refusal.token_signature");
        goto out;
    }
    payload = r_jwt_get_full_claims_json_t(jwt);
    if (!json_is_object(payload) || !claims_ok(payload, e, why))
        goto out;
    if (!extract(payload, claims)) {
        *why = MSG_ID("refusal.token_claims");
        oidc_claims_cleanup(claims);
        goto out;
    }
    *why = NULL;
    rc = 0;
out:
    json_decref(payload);
    r_jwk_free(key);
    r_jwt_free(jwt);
    return rc;
}

/* --- code exchange ------------------------------------------------------------------------ */

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

/* client_secret_basic unless the provider says it only takes client_secret_post. */
static bool use_basic_auth(const json_t *discovery)
{
    const json_t *methods = json_object_get(discovery, "token_endpoint_auth_methods_supported");
    if (!json_is_array(methods) || array_has_string(methods, "client_secret_basic"))
        return true;
    return !array_has_string(methods, "client_secret_post");
}

/* POSTs the code; on success *id_token (caller frees). */
static int exchange_code(const struct oidc_settings *s, const json_t *discovery, const char *code,
                         const char *verifier, char **id_token, const char **why)
{
    *id_token = NULL;
    bool basic = use_basic_auth(discovery);
    struct form form;
    form_init(&form);
    form_add(&form, "grant_type", "authorization_code");
    form_add(&form, "code", code);
    form_add(&form, "redirect_uri", s->redirect_uri);
    form_add(&form, "code_verifier", verifier);
    /* RFC 6749 §2.3.1: Basic credentials are form-encoded before base64. */
    char *user = url_escape(s->client_id), *password = url_escape(s->client_secret);
    if (!basic) {
        form_add(&form, "client_id", s->client_id);
        form_add(&form, "client_secret", s->client_secret);
    }
    const char *endpoint = json_string_value(json_object_get(discovery, "token_endpoint"));
    long status = 0;
    json_t *reply = NULL;
    int rc = http_call(endpoint, form_data(&form), basic ? user : NULL, basic ? password : NULL,
                       &status, &reply);
    free(user);
    free(password);
    form_cleanup(&form);
    if (rc != 0) {
        *why = "provider_unreachable";
        return rc;
    }

    struct _i_session is;
    if (i_init_session(&is) != I_OK) {
        json_decref(reply);
        *why = "iddawc_init_failed";
        return USHER_EUPSTREAM;
    }
    /* No server metadata or keys in this iddawc session: it only parses the reply. The ID
     * token is verified below, by oidc_verify_id_token. */
    i_set_int_parameter(&is, I_OPT_OPENID_CONFIG_STRICT, I_STRICT_NO);
    int parsed = json_is_object(reply) ? i_parse_token_response(&is, (int)status, reply) : I_ERROR;
    const char *token = i_get_str_parameter(&is, I_OPT_ID_TOKEN);
    if (status == 200 && parsed == I_OK && token && *token) {
        *id_token = xstrdup(token);
    } else if (status == 400 || status == 401 || status == 403) {
        char error[64], description[256];
        log_quote(error, sizeof error, or_empty(i_get_str_parameter(&is, I_OPT_ERROR)));
        log_quote(description, sizeof description,
                  or_empty(i_get_str_parameter(&is, I_OPT_ERROR_DESCRIPTION)));
        log_warn("msg=\"oidc token endpoint refused the code\" status=%ld error=\"%s\" "
                 "description=\"%s\"",
                 status, error, description);
        *why = MSG_ID("refusal.code_refused");
        rc = USHER_EINVAL;
    } else {
        log_warn("msg=\"oidc token endpoint answered badly\" status=%ld", status);
        *why = "provider_bad_answer";
        rc = USHER_EUPSTREAM;
    }
    i_clean_session(&is);
    json_decref(reply);
    return rc;
}

int oidc_login_finish(const struct oidc_settings *s, const char *code, const char *verifier,
                      const char *nonce, int64_t now, struct oidc_claims *claims, char **id_token,
                      const char **why)
{
    memset(claims, 0, sizeof *claims);
    *id_token = NULL;
    *why = "provider_unreachable";
    json_t *discovery = NULL, *jwks = NULL;
    char *token = NULL;
    int rc = get_discovery(s, now, &discovery);
    if (rc == 0)
        rc = exchange_code(s, discovery, code, verifier, &token, why);
    if (rc == 0)
        rc = get_jwks(s, discovery, now, false, &jwks);
    const struct oidc_expect expect = {.issuer = s->issuer,
                                       .client_id = s->client_id,
                                       .nonce = nonce,
                                       .now = now,
                                       .leeway = OIDC_LEEWAY_SECONDS};
    if (rc == 0)
        rc = oidc_verify_id_token(token, jwks, &expect, claims, why);
    if (rc == USHER_ENOTFOUND && kid_refetch_allowed(s->issuer, now)) {
        /* Keycloak rotated its keys since the JWKS was cached. */
        json_decref(jwks);
        jwks = NULL;
        log_info("msg=\"oidc unknown signing key, refetching the jwks\"");
        rc = get_jwks(s, discovery, now, true, &jwks);
        if (rc == 0)
            rc = oidc_verify_id_token(token, jwks, &expect, claims, why);
    }
    if (rc == USHER_ENOTFOUND)
        rc = USHER_EINVAL;
    if (rc == 0) {
        *id_token = token;
        token = NULL;
    }
    free(token);
    json_decref(jwks);
    json_decref(discovery);
    return rc;
}

/* --- logout ------------------------------------------------------------------------------- */

int oidc_logout_url(const struct oidc_settings *s, const char *id_token_hint,
                    const char *post_logout_redirect_uri, int64_t now, char **url)
{
    *url = NULL;
    json_t *discovery = NULL;
    int rc = get_discovery(s, now, &discovery);
    if (rc != 0)
        return rc;
    const char *endpoint = json_string_value(json_object_get(discovery, "end_session_endpoint"));
    struct buf out;
    buf_init(&out);
    char *client = url_escape(s->client_id);
    if (!endpoint) {
        rc = USHER_ENOTFOUND;
    } else if (id_token_hint && *id_token_hint) {
        struct _i_session is;
        char *built = NULL;
        if (i_init_session(&is) == I_OK &&
            i_set_parameter_list(&is, I_OPT_END_SESSION_ENDPOINT, endpoint, I_OPT_ID_TOKEN,
                                 id_token_hint, I_OPT_POST_LOGOUT_REDIRECT_URI,
                                 post_logout_redirect_uri, I_OPT_NONE) == I_OK)
            built = i_build_end_session_url(&is);
        i_clean_session(&is);
        if (built)
            buf_printf(&out, "%s&client_id=%s", built, client);
        else
            rc = USHER_EUPSTREAM;
        i_free(built);
    } else {
        char *redirect = url_escape(post_logout_redirect_uri ? post_logout_redirect_uri : "");
        buf_printf(&out, "%s%cclient_id=%s&post_logout_redirect_uri=%s", endpoint,
                   strchr(endpoint, '?') ? '&' : '?', client, redirect);
        free(redirect);
    }
    free(client);
    json_decref(discovery);
    if (rc == 0)
        *url = buf_detach(&out);
    buf_cleanup(&out);
    return rc;
}

/* --- pending logins in the session -------------------------------------------------------- */

#define PENDING_KEY "oidc_pending"

static bool pending_expired(const json_t *entry, int64_t now)
{
    const json_t *at = json_object_get(entry, "at");
    if (!json_is_integer(at))
        return true;
    int64_t t = json_integer_value(at);
    return now - t > OIDC_PENDING_TTL_SECONDS || t - now > OIDC_PENDING_TTL_SECONDS;
}

void oidc_pending_put(json_t *session_data, const struct oidc_login_request *req, const char *next,
                      int64_t now)
{
    json_t *pending = json_object_get(session_data, PENDING_KEY);
    if (!json_is_object(pending)) {
        pending = json_object();
        json_object_set_new(session_data, PENDING_KEY, pending);
    }
    const char *key;
    json_t *entry;
    void *iter;
    json_object_foreach_safe (pending, iter, key, entry) {
        if (pending_expired(entry, now))
            json_object_del(pending, key);
    }
    while (json_object_size(pending) >= OIDC_PENDING_MAX) {
        const char *oldest = NULL;
        json_int_t oldest_at = 0;
        json_object_foreach (pending, key, entry) {
            json_int_t at = json_integer_value(json_object_get(entry, "at"));
            if (!oldest || at < oldest_at) {
                oldest = key;
                oldest_at = at;
            }
        }
        json_object_del(pending, oldest);
    }
    json_object_set_new(pending, req->state,
                        json_pack("{s:s, s:s, s:s, s:I}", "nonce", req->nonce, "verifier",
                                  req->verifier, "next", oidc_safe_next(next), "at",
                                  (json_int_t)now));
}

static bool state_format_ok(const char *state)
{
    if (!state || strlen(state) != OIDC_STATE_HEX_LEN)
        return false;
    for (const char *p = state; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

int oidc_pending_take(json_t *session_data, const char *state, int64_t now,
                      struct oidc_pending *out)
{
    memset(out, 0, sizeof *out);
    json_t *pending = json_object_get(session_data, PENDING_KEY);
    if (!state_format_ok(state) || !json_is_object(pending))
        return USHER_ENOTFOUND;
    json_t *entry = json_object_get(pending, state);
    if (!entry)
        return USHER_ENOTFOUND;
    const char *nonce = json_string_value(json_object_get(entry, "nonce"));
    const char *verifier = json_string_value(json_object_get(entry, "verifier"));
    const char *next = json_string_value(json_object_get(entry, "next"));
    int rc = USHER_ENOTFOUND;
    if (nonce && verifier && !pending_expired(entry, now)) {
        out->nonce = xstrdup(nonce);
        out->verifier = xstrdup(verifier);
        out->next = xstrdup(oidc_safe_next(next));
        rc = 0;
    }
    json_object_del(pending, state); /* one use, whatever happens next */
    return rc;
}

void oidc_pending_clear(json_t *session_data)
{
    json_object_del(session_data, PENDING_KEY);
}

void oidc_pending_cleanup(struct oidc_pending *p)
{
    free(p->nonce);
    free(p->verifier);
    free(p->next);
    memset(p, 0, sizeof *p);
}

/* --- next --------------------------------------------------------------------------------- */

bool oidc_next_is_local(const char *next)
{
    if (!next || next[0] != '/' || next[1] == '/' || next[1] == '\\')
        return false;
    size_t len = strlen(next);
    if (len > OIDC_NEXT_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)next[i];
        /* Printable ASCII without space; a backslash anywhere is refused too, since browsers
         * read it as '/' in http(s) URLs. */
        if (c <= 0x20 || c >= 0x7f || c == '\\')
            return false;
    }
    return true;
}

const char *oidc_safe_next(const char *next)
{
    return oidc_next_is_local(next) ? next : OIDC_DEFAULT_NEXT;
}
