/*
 * keycloak_admin.h — the Keycloak Admin REST API calls Usher makes, as a service account
 * (INTEGRATIONS.md, Keycloak section; every quirk listed there is handled here).
 *
 * A struct kc_admin holds the realm's coordinates (KEYCLOAK_SERVER_URL, KEYCLOAK_REALM,
 * KEYCLOAK_ADMIN_CLIENT_ID/SECRET, copied at kc_admin_new) and a token cache: the
 * client_credentials token is reused until 30 s before its expires_in, shared by every
 * thread (mutex), and on a 401 refreshed once and the call retried once. One kc_admin per
 * process is enough; all calls are thread-safe.
 *
 * Users: searches use exact=true and the exactness is checked here again (case-insensitive,
 * as Keycloak stores usernames and emails in lowercase). Updates GET the user, change the
 * representation and PUT it back: the whole profile (username, email, firstName, lastName,
 * every attribute) always, because a PUT carrying `attributes` replaces the profile and
 * clears what it leaves out (Keycloak 26.7.3 clears email too); never `credentials`;
 * `requiredActions`, `enabled` and `emailVerified` only when they are the change, so an
 * unrelated update cannot undo a concurrent disable. (Keycloak has no ETag: two concurrent
 * updates of the same profile still race; the last one wins.)
 *
 * Results: user and group representations are jansson objects owned by the caller. Errors:
 * USHER_ECONFIG (not configured, or the client credentials were refused), USHER_EINVAL
 * (bad argument, or Keycloak's 400), USHER_ENOTFOUND (404 / no such user or group),
 * USHER_ECONFLICT (409: err->field says which: "username", "email" or "username or email"),
 * USHER_EFORBIDDEN (403: the service account lacks a role), USHER_EUPSTREAM (the rest).
 * struct kc_error (may be NULL everywhere) carries the status, Keycloak's message and an
 * excerpt.
 */
#ifndef USHER_INTEGRATIONS_KEYCLOAK_ADMIN_H
#define USHER_INTEGRATIONS_KEYCLOAK_ADMIN_H

#include "core/config.h"
#include "integrations/http_client.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define KC_TOKEN_MARGIN_SECONDS 30
#define KC_ID_MAX 255
#define KC_USERNAME_MAX 255

/* Returned (positive, not an error) by kc_user_replace_attributes when the PUT succeeded but
 * Keycloak dropped some of the attributes (the realm's unmanaged-attribute policy). */
#define KC_ATTRS_DROPPED 1

struct kc_admin;

struct kc_error {
    struct http_error http; /* status, kind, sanitized excerpt */
    char message[256]; /* errorMessage / error / the first errors[] entry */
    char field[64]; /* 409: username | email | username or email; 400: the field */
};

/* Reads the coordinates from cfg. USHER_ECONFIG when any is missing. Free with
 * kc_admin_free (NULL is a no-op). */
int kc_admin_new(const struct usher_config *cfg, struct kc_admin **out);
void kc_admin_free(struct kc_admin *kc);

/* Fetches a token now if none is cached (for `usher check`). */
int kc_admin_token_check(struct kc_admin *kc, struct kc_error *err);
/* Drops the cached token (tests). */
void kc_admin_forget_token(struct kc_admin *kc);
/* How many tokens were fetched so far (tests, metrics). */
unsigned kc_admin_token_fetches(struct kc_admin *kc);

/* ------------------------------------------------------------ users */

/* Exactly one user with that email / username → *user; none → USHER_ENOTFOUND; several
 * (a realm allowing duplicate emails) → USHER_ECONFLICT. */
int kc_user_find_by_email(struct kc_admin *kc, const char *email, json_t **user,
                          struct kc_error *err);
int kc_user_find_by_username(struct kc_admin *kc, const char *username, json_t **user,
                             struct kc_error *err);

struct kc_new_user {
    const char *username;
    const char *email; /* may be NULL */
    const char *first_name; /* set both names: Keycloak's default profile asks for them */
    const char *last_name;
    bool enabled;
    bool email_verified;
    const json_t *attributes; /* object of string or string-array values, or NULL */
};

/* POST /users; *id (heap) is the last segment of the Location header. */
int kc_user_create(struct kc_admin *kc, const struct kc_new_user *u, char **id,
                   struct kc_error *err);
int kc_user_get(struct kc_admin *kc, const char *id, json_t **user, struct kc_error *err);

/* What to change; NULL / -1 leaves a field as it is. */
struct kc_user_changes {
    const char *email;
    const char *first_name;
    const char *last_name;
    int enabled; /* -1, 0, 1 */
    int email_verified; /* -1, 0, 1 */
    const char *const *required_actions; /* NULL-terminated; NULL: left alone, not sent */
};
#define KC_USER_CHANGES_NONE ((struct kc_user_changes){.enabled = -1, .email_verified = -1})

int kc_user_update(struct kc_admin *kc, const char *id, const struct kc_user_changes *ch,
                   struct kc_error *err);
int kc_user_set_enabled(struct kc_admin *kc, const char *id, bool enabled, struct kc_error *err);
/* POST /users/{id}/logout: ends every session of the user. */
int kc_user_logout(struct kc_admin *kc, const char *id, struct kc_error *err);
/* PUT /users/{id}/execute-actions-email?client_id&redirect_uri&lifespan with
 * ["UPDATE_PASSWORD"]: Keycloak's own password-setup email. client_id and redirect_uri may be
 * NULL (redirect_uri needs client_id); lifespan_s <= 0 keeps Keycloak's default. 400 (no
 * email, disabled user, unknown client, bad redirect) → USHER_EINVAL; 500 (mail could not be
 * sent) → USHER_EUPSTREAM. Not retried once sent. */
int kc_user_send_update_password(struct kc_admin *kc, const char *id, const char *client_id,
                                 const char *redirect_uri, long lifespan_s, struct kc_error *err);
/* DELETE /users/{id}; an unknown id is USHER_ENOTFOUND. */
int kc_user_delete(struct kc_admin *kc, const char *id, struct kc_error *err);

/* ------------------------------------------------------------ groups */

/* A group by exact name (or by full path when ref starts with '/'), anywhere in the tree:
 * *id (heap). Keycloak's search also returns partial and subgroup matches; the exact one is
 * picked here, a top-level group first. Several non-top-level groups of that name →
 * USHER_ECONFLICT (use the path). */
int kc_group_find(struct kc_admin *kc, const char *ref, char **id, struct kc_error *err);
/* PUT / DELETE /users/{id}/groups/{group_id}; both idempotent. */
int kc_user_group_add(struct kc_admin *kc, const char *user_id, const char *group_id,
                      struct kc_error *err);
int kc_user_group_remove(struct kc_admin *kc, const char *user_id, const char *group_id,
                         struct kc_error *err);
/* GET /users/{id}/groups → array of group representations (every direct membership). */
int kc_user_groups(struct kc_admin *kc, const char *user_id, json_t **groups, struct kc_error *err);
/* One page of the same: GET /users/{id}/groups?search=S&first=F&max=M. Keycloak keeps the
 * groups whose name contains search (case-insensitive substring; NULL: all) and answers at
 * most max of them from index first, in name order (max < 0: no first/max sent, every match). */
int kc_user_groups_page(struct kc_admin *kc, const char *user_id, const char *search, int first,
                        int max, json_t **groups, struct kc_error *err);

/* ------------------------------------------------------------ Usher-owned attributes */

/* Which attribute names Usher owns: exact keys, prefixes ("has_") and suffixes ("_instance").
 * Each list NULL-terminated, or NULL. */
struct kc_owned_attrs {
    const char *const *keys;
    const char *const *prefixes;
    const char *const *suffixes;
};
/* has_* and *_instance, plus the given entitlement keys (may be NULL). */
struct kc_owned_attrs kc_owned_attrs_usher(const char *const *entitlement_keys);
bool kc_attr_owned(const struct kc_owned_attrs *owned, const char *key);

/* Names Keycloak did not keep (heap strings). */
struct kc_attr_report {
    size_t count;
    char **names;
};
void kc_attr_report_cleanup(struct kc_attr_report *r);

/*
 * The new attribute map (heap, caller decrefs): every attribute of current that Usher does
 * not own, plus desired (values as string arrays). Owned attributes absent from desired are
 * gone. A desired key Usher does not own is USHER_EINVAL. Pure.
 */
int kc_attrs_merge(const json_t *current, const struct kc_owned_attrs *owned, const json_t *desired,
                   json_t **merged);
/* Adds to r each key of desired whose values actual lacks or differs in. Pure. */
void kc_attrs_missing(const json_t *desired, const json_t *actual, struct kc_attr_report *r);

/*
 * Replaces the user's Usher-owned attributes by desired (object: key → string or array of
 * strings; owned keys not in it are removed) and keeps all others; then reads the user back.
 * Returns 0 when Keycloak kept everything, KC_ATTRS_DROPPED with report filled when it
 * silently dropped some (the realm needs unmanagedAttributePolicy ADMIN_EDIT, or the
 * attributes declared in its user profile), or an error. report may be NULL.
 */
int kc_user_replace_attributes(struct kc_admin *kc, const char *id,
                               const struct kc_owned_attrs *owned, const json_t *desired,
                               struct kc_attr_report *report, struct kc_error *err);

/*
 * For `usher check`, without changing anything: reads the realm's user profile and reports
 * which of names (NULL-terminated) Keycloak would drop. *policy (may be NULL) gets the
 * unmanagedAttributePolicy ("DISABLED" when absent; heap). Returns 0 or KC_ATTRS_DROPPED.
 */
int kc_profile_check(struct kc_admin *kc, const char *const *names, char **policy,
                     struct kc_attr_report *report, struct kc_error *err);

/* ------------------------------------------------------------ pure helpers (tests) */

/* The user id from a create answer's Location (last path segment, query ignored) into out;
 * USHER_EINVAL when absent or malformed. */
int kc_id_from_location(const char *location, char *out, size_t size);
/* Fills err->message / err->field from a Keycloak error body ({"errorMessage"},
 * {"error"}, {"field","errorMessage"}, {"errors":[…]}); for 409 field is the conflict. */
void kc_error_parse(long status, const char *body, size_t len, struct kc_error *err);
/* Seconds from now until a token with expires_in should be replaced. */
int64_t kc_token_lifetime(int64_t expires_in);
/* The group matching ref in a search answer (array of groups with subGroups), or NULL;
 * *ambiguous set when several non-top-level groups match a plain name. */
const json_t *kc_group_pick(const json_t *groups, const char *ref, bool *ambiguous);
/* The user in a search answer whose field equals value exactly (case-insensitive); NULL
 * when none, *count gets how many matched. */
const json_t *kc_user_pick(const json_t *users, const char *field, const char *value,
                           size_t *count);

#endif
