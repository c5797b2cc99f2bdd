/*
 * oidc.h — the OpenID Connect relying party for the Keycloak login (SPEC §6, INTEGRATIONS.md).
 *
 * Authorization code flow with state, nonce and PKCE (S256), scope `openid email profile`,
 * a confidential client (client_secret_basic, or client_secret_post when the provider only
 * offers that). The pieces:
 *
 *   - discovery: `<KEYCLOAK_SERVER_URL>/realms/<realm>/.well-known/openid-configuration`,
 *     cached per process for OIDC_DISCOVERY_TTL_SECONDS; its `issuer` must be exactly that
 *     URL's prefix (OpenID Connect Discovery §4.3). A stale copy is used while a refresh fails
 *     (retried every OIDC_RETRY_SECONDS).
 *   - the JWKS, cached for OIDC_JWKS_TTL_SECONDS; an ID token whose `kid` is unknown triggers
 *     one refetch (Keycloak rotated its keys), at most once per OIDC_JWKS_REFETCH_SECONDS.
 *   - ID-token verification (rhonabwy): RS256 only, the key chosen by `kid` from the JWKS,
 *     never from the token's own headers; then iss, aud (and azp when there are several
 *     audiences, or whenever azp is present), exp/iat/nbf with OIDC_LEEWAY_SECONDS, nonce.
 *   - iddawc builds the authorization URL (PKCE challenge included), validates the discovery
 *     metadata, parses the token response and builds the end-session URL.
 *
 * HTTP goes through the shared libcurl core (integrations/http_client.h: timeouts, a size
 * limit, metrics labelled upstream="keycloak") rather than iddawc's own requests, which have
 * no timeout: a hung Keycloak would hold web threads forever.
 * Times are passed in (`now`, from clock_now()), so tests can move them.
 *
 * The login issue builds on `struct oidc_claims`: what a verified login tells Usher about the
 * person. Nothing here touches the database.
 */
#ifndef USHER_INTEGRATIONS_OIDC_H
#define USHER_INTEGRATIONS_OIDC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct usher_config;

#define OIDC_SCOPE "openid email profile"
#define OIDC_CALLBACK_PATH "/oidc/callback/"
#define OIDC_DEFAULT_NEXT "/dashboard/"
#define OIDC_NEXT_MAX 1024

#define OIDC_DISCOVERY_TTL_SECONDS 3600
#define OIDC_JWKS_TTL_SECONDS 900
#define OIDC_JWKS_REFETCH_SECONDS 10
/* After a failed refresh, a stale document is used this long before the next attempt. */
#define OIDC_RETRY_SECONDS 60
#define OIDC_LEEWAY_SECONDS 60
/* A pending login (state, nonce, verifier) lives this long in the session; a session keeps
 * at most OIDC_PENDING_MAX of them (several tabs), the oldest dropped first. */
#define OIDC_PENDING_TTL_SECONDS 600
#define OIDC_PENDING_MAX 4

#define OIDC_STATE_HEX_LEN 32 /* 128 bits */
#define OIDC_NONCE_HEX_LEN 32 /* 128 bits */
#define OIDC_VERIFIER_HEX_LEN 64 /* 256 bits; RFC 7636 allows 43..128 unreserved characters */

/* Limits on what a token may carry; longer values make the token invalid. */
#define OIDC_ID_TOKEN_MAX 16384
#define OIDC_CLAIM_MAX 255
#define OIDC_EMAIL_MAX 320
#define OIDC_GROUPS_MAX 256

/* Who the relying party is. All strings owned (oidc_settings_cleanup). */
struct oidc_settings {
    char *issuer; /* <KEYCLOAK_SERVER_URL>/realms/<KEYCLOAK_REALM> */
    char *client_id; /* OIDC_RP_CLIENT_ID */
    char *client_secret; /* OIDC_RP_CLIENT_SECRET */
    char *redirect_uri; /* <PUBLIC_BASE_URL>/oidc/callback/ */
};

/* USHER_ECONFIG (s left empty) when KEYCLOAK_SERVER_URL, KEYCLOAK_REALM, OIDC_RP_CLIENT_ID or
 * OIDC_RP_CLIENT_SECRET is missing, or the realm name has characters outside [A-Za-z0-9._-]. */
int oidc_settings_init(struct oidc_settings *s, const struct usher_config *cfg);
void oidc_settings_cleanup(struct oidc_settings *s);

/* --- starting a login ------------------------------------------------------------------- */

struct oidc_login_request {
    char state[OIDC_STATE_HEX_LEN + 1];
    char nonce[OIDC_NONCE_HEX_LEN + 1];
    char verifier[OIDC_VERIFIER_HEX_LEN + 1];
    char *url; /* the authorization endpoint URL to send the browser to; owned */
};

/* Fresh random state, nonce and PKCE verifier, and the authorization URL for them (needs the
 * discovery document: USHER_EUPSTREAM when Keycloak cannot be reached or answers badly). */
int oidc_login_start(const struct oidc_settings *s, int64_t now, struct oidc_login_request *out);
void oidc_login_request_cleanup(struct oidc_login_request *req);

/* The authorization URL from a discovery document (borrowed), without network: iddawc builds
 * it, with code_challenge = BASE64URL(SHA-256(verifier)) and method S256. *url is the
 * caller's. USHER_EINVAL when the document or an argument is unusable. */
int oidc_build_auth_url(const json_t *discovery, const char *client_id, const char *redirect_uri,
                        const char *state, const char *nonce, const char *verifier, char **url);

/* --- finishing a login ------------------------------------------------------------------ */

/* What a verified ID token says about the person. Strings owned; absent claims are NULL,
 * except groups, which is empty when the claim is missing (Keycloak omits it for a user in
 * no group). */
struct oidc_claims {
    char *sub;
    char *preferred_username;
    char *email;
    char *given_name;
    char *family_name;
    char **groups; /* plain names, as the "groups" mapper sends them with full.path=false */
    size_t group_count;
};

void oidc_claims_cleanup(struct oidc_claims *c);
/* Exact, case-sensitive membership (ADMIN_GROUP). */
bool oidc_claims_in_group(const struct oidc_claims *c, const char *group);

/*
 * Exchanges the code at the token endpoint (with the PKCE verifier and the client secret),
 * then verifies the ID token against the expected nonce. On success fills *claims and
 * *id_token (the raw token, kept for logout's id_token_hint; caller frees).
 * Errors: USHER_EINVAL — the provider refused the code, or the token is not acceptable;
 * USHER_EUPSTREAM — Keycloak unreachable or answering garbage. *why (static, never secret)
 * says which: for a refusal (USHER_EINVAL) a message id of the table (core/messages.h), e.g.
 * "refusal.token_expired", which is both the log's reason and, through msg(), the sentence
 * the customer reads; for USHER_EUPSTREAM a word for the log only ("provider_unreachable").
 */
int oidc_login_finish(const struct oidc_settings *s, const char *code, const char *verifier,
                      const char *nonce, int64_t now, struct oidc_claims *claims, char **id_token,
                      const char **why);

/* What an ID token must match. */
struct oidc_expect {
    const char *issuer;
    const char *client_id;
    const char *nonce;
    int64_t now;
    int64_t leeway;
};

/*
 * Verifies id_token against a JWKS document (borrowed), without network. 0 and *claims
 * filled; USHER_ENOTFOUND when no RS256 key of the JWKS has the token's kid (the caller may
 * refetch the JWKS); USHER_EINVAL for every other failure, with *why (a
 * "refusal.*" message id, as for oidc_login_finish).
 */
int oidc_verify_id_token(const char *id_token, const json_t *jwks, const struct oidc_expect *e,
                         struct oidc_claims *claims, const char **why);

/* --- logout ----------------------------------------------------------------------------- */

/* The end-session URL: id_token_hint (when given), post_logout_redirect_uri and client_id.
 * USHER_EUPSTREAM when discovery fails, USHER_ENOTFOUND when the provider has no
 * end_session_endpoint. *url is the caller's. */
int oidc_logout_url(const struct oidc_settings *s, const char *id_token_hint,
                    const char *post_logout_redirect_uri, int64_t now, char **url);

/* --- the relying party's state between the two legs, kept in the session ---------------- */

/*
 * The session's state object holds pending logins under "oidc_pending":
 * {"<state>": {"nonce", "verifier", "next", "at"}}. oidc_pending_put adds one (dropping
 * expired ones and the oldest beyond OIDC_PENDING_MAX); oidc_pending_take removes the one
 * for state and returns its parts (each state is good for one callback only):
 * USHER_ENOTFOUND when unknown, already used or older than OIDC_PENDING_TTL_SECONDS.
 */
struct oidc_pending {
    char *nonce;
    char *verifier;
    char *next;
};

void oidc_pending_put(json_t *session_data, const struct oidc_login_request *req, const char *next,
                      int64_t now);
int oidc_pending_take(json_t *session_data, const char *state, int64_t now,
                      struct oidc_pending *out);
void oidc_pending_clear(json_t *session_data);
void oidc_pending_cleanup(struct oidc_pending *p);

/* --- where to go after login ------------------------------------------------------------ */

/* Whether next is a path on this site: a single leading '/', not "//" or "/\", no scheme,
 * no backslash, only printable ASCII without spaces, at most OIDC_NEXT_MAX bytes. */
bool oidc_next_is_local(const char *next);
/* next when it is local, OIDC_DEFAULT_NEXT otherwise (a borrowed pointer to either). */
const char *oidc_safe_next(const char *next);

#endif
