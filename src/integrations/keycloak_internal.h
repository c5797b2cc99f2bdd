/*
 * keycloak_internal.h — what keycloak_admin.c shares with keycloak_groups.c and
 * keycloak_attrs.c. Not for use outside src/integrations/keycloak_*.c.
 */
#ifndef USHER_INTEGRATIONS_KEYCLOAK_INTERNAL_H
#define USHER_INTEGRATIONS_KEYCLOAK_INTERNAL_H

#include "core/buf.h"
#include "integrations/http_client.h"
#include "integrations/keycloak_admin.h"

#include <jansson.h>
#include <pthread.h>

struct kc_admin {
    char *server; /* KEYCLOAK_SERVER_URL, no trailing slash */
    char *realm;
    char *client_id;
    char *client_secret;
    char *admin_base; /* server/admin/realms/{realm} */
    char *token_url; /* server/realms/{realm}/protocol/openid-connect/token */
    long connect_timeout_ms;
    long timeout_ms;
    pthread_mutex_t lock; /* guards the fields below */
    char *token;
    int64_t token_until_ns; /* clock_mono_ns() after which the token is replaced */
    unsigned fetches;
};

/* Starts an Admin API URL: admin_base, then the caller adds segments and queries. */
void kc_url_start(const struct kc_admin *kc, struct buf *url);
bool kc_id_valid(const char *id);
void kc_fail(struct kc_error *err, enum http_error_kind kind, const char *why);

/* One authorised call (token cached; one refresh and retry on 401). Returns 0 with resp
 * holding any status, or the transport error. body (may be NULL) is sent as JSON. */
int kc_request(struct kc_admin *kc, const char *method, const char *url, const json_t *body,
               const struct http_retry *policy, struct http_response *resp, struct kc_error *err);
/* 2xx → 0; otherwise err filled and the status mapped to an usher_err. */
int kc_status_rc(const struct http_response *resp, struct kc_error *err);
/* GET url expecting JSON of the given type (JSON_OBJECT / JSON_ARRAY) → *out. */
int kc_get_json(struct kc_admin *kc, const char *url, json_type type, json_t **out,
                struct kc_error *err);
/* What a kc_user_put changes besides the profile. */
#define KC_PUT_ENABLED 1u
#define KC_PUT_EMAIL_VERIFIED 2u
#define KC_PUT_REQUIRED_ACTIONS 4u
/* PUTs a user read with GET back: the whole profile (username, email, names, attributes),
 * plus enabled / emailVerified / requiredActions only when flagged in changed; never
 * credentials. */
int kc_user_put(struct kc_admin *kc, const char *id, const json_t *rep, unsigned changed,
                struct kc_error *err);
/* PUT or DELETE /users/{user_id}/groups/{group_id}. */
int kc_user_group_call(struct kc_admin *kc, const char *method, const char *user_id,
                       const char *group_id, struct kc_error *err);
/* A value as Keycloak's attribute list: string → [string], array of scalars → strings,
 * number/bool → its text. NULL for anything else. New reference. */
json_t *kc_attr_values(const json_t *v);

#endif
