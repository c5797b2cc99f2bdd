/*
 * keycloak_admin.c — the service-account token cache, the shared request path and the user
 * calls of the Admin REST API (see keycloak_admin.h). Groups are in keycloak_groups.c,
 * Usher-owned attributes in keycloak_attrs.c.
 */
#include "integrations/keycloak_admin.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/mem.h"
#include "integrations/form.h"
#include "integrations/keycloak_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define UPSTREAM "keycloak"

/* ------------------------------------------------------------ small helpers */

void kc_fail(struct kc_error *err, enum http_error_kind kind, const char *why)
{
    if (!err)
        return;
    memset(err, 0, sizeof *err);
    err->http.kind = kind;
    snprintf(err->http.excerpt, sizeof err->http.excerpt, "%s", why);
}

bool kc_id_valid(const char *id)
{
    if (!id || !*id || strlen(id) > KC_ID_MAX)
        return false;
    for (; *id; id++) {
        char c = *id;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

int kc_id_from_location(const char *location, char *out, size_t size)
{
    if (!location || size == 0)
        return USHER_EINVAL;
    size_t len = strcspn(location, "?#");
    while (len > 0 && location[len - 1] == '/')
        len--;
    size_t start = len;
    while (start > 0 && location[start - 1] != '/')
        start--;
    size_t n = len - start;
    if (n == 0 || n >= size || start == 0)
        return USHER_EINVAL;
    memcpy(out, location + start, n);
    out[n] = '\0';
    return kc_id_valid(out) && strcmp(out, "users") ? 0 : USHER_EINVAL;
}

int64_t kc_token_lifetime(int64_t expires_in)
{
    if (expires_in <= 0)
        return 0;
    if (expires_in > 2 * KC_TOKEN_MARGIN_SECONDS)
        return expires_in - KC_TOKEN_MARGIN_SECONDS;
    return expires_in / 2; /* very short tokens: renew half-way */
}

static void copy_text(char *out, size_t size, const char *s)
{
    if (s)
        http_excerpt(out, size, s, strlen(s));
    else
        out[0] = '\0';
}

void kc_error_parse(long status, const char *body, size_t len, struct kc_error *err)
{
    if (!err)
        return;
    memset(err, 0, sizeof *err);
    err->http.status = status;
    err->http.kind = HTTP_ERR_STATUS;
    http_excerpt(err->http.excerpt, sizeof err->http.excerpt, body ? body : "", len);
    json_t *root = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *e = root;
    json_t *errors = json_object_get(root, "errors");
    if (json_is_array(errors) && json_array_size(errors) > 0)
        e = json_array_get(errors, 0);
    const char *msg = json_string_value(json_object_get(e, "errorMessage"));
    if (!msg)
        msg = json_string_value(json_object_get(e, "error_description"));
    if (!msg)
        msg = json_string_value(json_object_get(e, "error"));
    copy_text(err->message, sizeof err->message, msg);
    copy_text(err->field, sizeof err->field, json_string_value(json_object_get(e, "field")));
    if (status == 409 && msg) {
        /* "User exists with same username" / "… same email" / "… same username or email" */
        const char *same = strstr(msg, "with same ");
        if (same)
            copy_text(err->field, sizeof err->field, same + strlen("with same "));
    }
    json_decref(root);
}

int kc_status_rc(const struct http_response *resp, struct kc_error *err)
{
    long s = resp->status;
    if (s >= 200 && s < 300)
        return 0;
    kc_error_parse(s, resp->body, resp->body_len, err);
    switch (s) {
    case 400: return USHER_EINVAL;
    case 401: return USHER_ECONFIG;
    case 403: return USHER_EFORBIDDEN;
    case 404: return USHER_ENOTFOUND;
    case 409: return USHER_ECONFLICT;
    default: return USHER_EUPSTREAM;
    }
}

/* ------------------------------------------------------------ client */

int kc_admin_new(const struct usher_config *cfg, struct kc_admin **out)
{
    *out = NULL;
    if (!cfg->keycloak_server_url || !*cfg->keycloak_server_url || !cfg->keycloak_realm ||
        !*cfg->keycloak_realm || !cfg->keycloak_admin_client_id ||
        !*cfg->keycloak_admin_client_id || !cfg->keycloak_admin_client_secret ||
        !*cfg->keycloak_admin_client_secret)
        return USHER_ECONFIG;
    struct kc_admin *kc = xcalloc(1, sizeof *kc);
    kc->server = xstrdup(cfg->keycloak_server_url);
    size_t n = strlen(kc->server);
    while (n > 0 && kc->server[n - 1] == '/')
        kc->server[--n] = '\0';
    kc->realm = xstrdup(cfg->keycloak_realm);
    kc->client_id = xstrdup(cfg->keycloak_admin_client_id);
    kc->client_secret = xstrdup(cfg->keycloak_admin_client_secret);
    kc->connect_timeout_ms = cfg->http_connect_timeout_ms;
    kc->timeout_ms = cfg->http_timeout_ms;
    struct buf b;
    buf_init(&b);
    buf_puts(&b, kc->server);
    buf_puts(&b, "/admin/realms");
    form_url_segment(&b, kc->realm);
    kc->admin_base = buf_detach(&b);
    buf_puts(&b, kc->server);
    buf_puts(&b, "/realms");
    form_url_segment(&b, kc->realm);
    buf_puts(&b, "/protocol/openid-connect/token");
    kc->token_url = buf_detach(&b);
    buf_cleanup(&b);
    pthread_mutex_init(&kc->lock, NULL);
    *out = kc;
    return 0;
}

static void wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

void kc_admin_free(struct kc_admin *kc)
{
    if (!kc)
        return;
    pthread_mutex_destroy(&kc->lock);
    free(kc->server);
    free(kc->realm);
    free(kc->client_id);
    wipe_free(kc->client_secret);
    free(kc->admin_base);
    free(kc->token_url);
    wipe_free(kc->token);
    free(kc);
}

void kc_url_start(const struct kc_admin *kc, struct buf *url)
{
    buf_reset(url);
    buf_puts(url, kc->admin_base);
}

/* POST client_credentials; on success *token (heap) and *expires_in. Called under kc->lock. */
static int fetch_token(struct kc_admin *kc, char **token, int64_t *expires_in, struct kc_error *err)
{
    struct form f;
    form_init(&f);
    form_add(&f, "grant_type", "client_credentials");
    form_add(&f, "client_id", kc->client_id);
    form_add(&f, "client_secret", kc->client_secret);
    struct http_request req = {
        .method = "POST",
        .url = kc->token_url,
        .body = form_data(&f),
        .body_len = form_len(&f),
        .content_type = "application/x-www-form-urlencoded",
        .upstream = UPSTREAM,
        .connect_timeout_ms = kc->connect_timeout_ms,
        .timeout_ms = kc->timeout_ms,
    };
    struct http_response resp;
    http_response_init(&resp);
    struct kc_error local;
    struct kc_error *e = err ? err : &local;
    int rc = http_send_retry(&req, &resp, &e->http, &http_retry_default);
    explicit_bzero(f.b.data, f.b.len);
    form_cleanup(&f);
    if (rc != 0)
        goto out;
    kc->fetches++;
    if (resp.status != 200) {
        kc_error_parse(resp.status, resp.body, resp.body_len, e);
        /* invalid_client / unauthorized_client: the credentials are wrong */
        rc = resp.status == 400 || resp.status == 401 ? USHER_ECONFIG : USHER_EUPSTREAM;
        goto out;
    }
    json_t *root = json_loadb(resp.body, resp.body_len, 0, NULL);
    const char *at = json_string_value(json_object_get(root, "access_token"));
    json_t *exp = json_object_get(root, "expires_in");
    if (!at || !*at) {
        kc_fail(e, HTTP_ERR_STATUS, "token answer without access_token");
        rc = USHER_EUPSTREAM;
    } else {
        *token = xstrdup(at);
        *expires_in = json_is_integer(exp) ? (int64_t)json_integer_value(exp) : 60;
    }
    json_decref(root);
    explicit_bzero(resp.body, resp.body_len);
out:
    http_response_cleanup(&resp);
    return rc;
}

/* A copy of a valid token (heap), fetching one if needed. */
static int get_token(struct kc_admin *kc, char **out, struct kc_error *err)
{
    int rc = 0;
    pthread_mutex_lock(&kc->lock);
    int64_t now = clock_mono_ns();
    if (!kc->token || now >= kc->token_until_ns) {
        wipe_free(kc->token);
        kc->token = NULL;
        char *token = NULL;
        int64_t expires_in = 0;
        rc = fetch_token(kc, &token, &expires_in, err);
        if (rc == 0) {
            kc->token = token;
            kc->token_until_ns = now + kc_token_lifetime(expires_in) * 1000000000LL;
        }
    }
    if (rc == 0)
        *out = xstrdup(kc->token);
    pthread_mutex_unlock(&kc->lock);
    return rc;
}

/* Forgets the cached token if it is still the one that was refused. */
static void drop_token(struct kc_admin *kc, const char *refused)
{
    pthread_mutex_lock(&kc->lock);
    if (kc->token && !strcmp(kc->token, refused)) {
        wipe_free(kc->token);
        kc->token = NULL;
    }
    pthread_mutex_unlock(&kc->lock);
}

int kc_admin_token_check(struct kc_admin *kc, struct kc_error *err)
{
    char *t = NULL;
    int rc = get_token(kc, &t, err);
    wipe_free(t);
    return rc;
}

void kc_admin_forget_token(struct kc_admin *kc)
{
    pthread_mutex_lock(&kc->lock);
    wipe_free(kc->token);
    kc->token = NULL;
    pthread_mutex_unlock(&kc->lock);
}

unsigned kc_admin_token_fetches(struct kc_admin *kc)
{
    pthread_mutex_lock(&kc->lock);
    unsigned n = kc->fetches;
    pthread_mutex_unlock(&kc->lock);
    return n;
}

int kc_request(struct kc_admin *kc, const char *method, const char *url, const json_t *body,
               const struct http_retry *policy, struct http_response *resp, struct kc_error *err)
{
    if (err)
        memset(err, 0, sizeof *err);
    char *json = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (body && !json) {
        kc_fail(err, HTTP_ERR_INVALID, "cannot serialise the request body");
        return USHER_EINVAL;
    }
    struct kc_error local;
    struct kc_error *e = err ? err : &local;
    int rc = 0;
    for (int round = 0; round < 2; round++) {
        char *token = NULL;
        rc = get_token(kc, &token, e);
        if (rc != 0)
            break;
        struct http_request req = {
            .method = method,
            .url = url,
            .body = json,
            .body_len = json ? strlen(json) : 0,
            .content_type = json ? "application/json" : NULL,
            .bearer_token = token,
            .upstream = UPSTREAM,
            .connect_timeout_ms = kc->connect_timeout_ms,
            .timeout_ms = kc->timeout_ms,
        };
        rc = http_send_retry(&req, resp, &e->http, policy ? policy : &http_retry_default);
        bool refused = rc == 0 && resp->status == 401;
        if (refused && round == 0)
            drop_token(kc, token); /* expired or revoked early: one fresh token, one retry */
        wipe_free(token);
        if (!refused)
            break;
    }
    free(json);
    return rc;
}

int kc_get_json(struct kc_admin *kc, const char *url, json_type type, json_t **out,
                struct kc_error *err)
{
    *out = NULL;
    struct http_response resp;
    http_response_init(&resp);
    int rc = kc_request(kc, "GET", url, NULL, &http_retry_default, &resp, err);
    if (rc == 0)
        rc = kc_status_rc(&resp, err);
    if (rc == 0) {
        *out = json_loadb(resp.body, resp.body_len, 0, NULL);
        if (!*out || json_typeof(*out) != type) {
            json_decref(*out);
            *out = NULL;
            if (err)
                http_error_from_response(&err->http, &resp);
            rc = USHER_EUPSTREAM;
        }
    }
    http_response_cleanup(&resp);
    return rc;
}

/* A call whose answer has no body worth keeping: 0 on 2xx, else the mapped error. */
static int kc_simple(struct kc_admin *kc, const char *method, const char *url, const json_t *body,
                     const struct http_retry *policy, struct kc_error *err)
{
    struct http_response resp;
    http_response_init(&resp);
    int rc = kc_request(kc, method, url, body, policy, &resp, err);
    if (rc == 0)
        rc = kc_status_rc(&resp, err);
    http_response_cleanup(&resp);
    return rc;
}

/* ------------------------------------------------------------ users */

const json_t *kc_user_pick(const json_t *users, const char *field, const char *value, size_t *count)
{
    const json_t *found = NULL;
    size_t n = 0, i;
    const json_t *u;
    json_array_foreach (users, i, u) {
        const char *v = json_string_value(json_object_get(u, field));
        if (v && !strcasecmp(v, value)) {
            if (!found)
                found = u;
            n++;
        }
    }
    if (count)
        *count = n;
    return found;
}

static int find_by(struct kc_admin *kc, const char *field, const char *value, json_t **user,
                   struct kc_error *err)
{
    *user = NULL;
    if (!value || !*value || strlen(value) > 320) {
        kc_fail(err, HTTP_ERR_INVALID, "empty or overlong search value");
        return USHER_EINVAL;
    }
    struct buf url;
    buf_init(&url);
    kc_url_start(kc, &url);
    buf_puts(&url, "/users");
    form_url_query(&url, field, value);
    form_url_query(&url, "exact", "true");
    json_t *list = NULL;
    int rc = kc_get_json(kc, url.data, JSON_ARRAY, &list, err);
    buf_cleanup(&url);
    if (rc != 0)
        return rc;
    size_t count = 0;
    const json_t *u = kc_user_pick(list, field, value, &count);
    if (count == 0) {
        kc_fail(err, HTTP_ERR_NONE, "no such user");
        rc = USHER_ENOTFOUND;
    } else if (count > 1) {
        kc_fail(err, HTTP_ERR_NONE, "several users match");
        rc = USHER_ECONFLICT;
    } else {
        *user = json_incref((json_t *)u);
    }
    json_decref(list);
    return rc;
}

int kc_user_find_by_email(struct kc_admin *kc, const char *email, json_t **user,
                          struct kc_error *err)
{
    return find_by(kc, "email", email, user, err);
}

int kc_user_find_by_username(struct kc_admin *kc, const char *username, json_t **user,
                             struct kc_error *err)
{
    return find_by(kc, "username", username, user, err);
}

json_t *kc_attr_values(const json_t *v)
{
    char num[64];
    switch (json_typeof(v)) {
    case JSON_STRING: return json_pack("[O]", v);
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return json_pack("[s]", num);
    case JSON_REAL:
        snprintf(num, sizeof num, "%.15g", json_real_value(v));
        return json_pack("[s]", num);
    case JSON_TRUE: return json_pack("[s]", "true");
    case JSON_FALSE: return json_pack("[s]", "false");
    case JSON_ARRAY: {
        json_t *out = json_array();
        size_t i;
        const json_t *item;
        json_array_foreach (v, i, item) {
            json_t *one = json_is_array(item) ? NULL : kc_attr_values(item);
            if (!one) {
                json_decref(out);
                return NULL;
            }
            json_array_extend(out, one);
            json_decref(one);
        }
        return out;
    }
    default: return NULL;
    }
}

static void set_string(json_t *obj, const char *key, const char *v)
{
    if (v)
        json_object_set_new(obj, key, json_string(v));
}

int kc_user_create(struct kc_admin *kc, const struct kc_new_user *u, char **id,
                   struct kc_error *err)
{
    *id = NULL;
    if (!u->username || !*u->username || strlen(u->username) > KC_USERNAME_MAX ||
        (u->attributes && !json_is_object(u->attributes))) {
        kc_fail(err, HTTP_ERR_INVALID, "username missing or attributes not an object");
        return USHER_EINVAL;
    }
    json_t *rep = json_object();
    set_string(rep, "username", u->username);
    set_string(rep, "email", u->email);
    set_string(rep, "firstName", u->first_name);
    set_string(rep, "lastName", u->last_name);
    json_object_set_new(rep, "enabled", json_boolean(u->enabled));
    json_object_set_new(rep, "emailVerified", json_boolean(u->email_verified));
    int rc = 0;
    if (u->attributes) {
        json_t *attrs = json_object();
        const char *k;
        const json_t *v;
        json_object_foreach ((json_t *)u->attributes, k, v) {
            json_t *vals = kc_attr_values(v);
            if (!vals) {
                rc = USHER_EINVAL;
                break;
            }
            json_object_set_new(attrs, k, vals);
        }
        json_object_set_new(rep, "attributes", attrs);
    }
    if (rc != 0) {
        kc_fail(err, HTTP_ERR_INVALID, "attribute values must be strings");
        json_decref(rep);
        return rc;
    }
    struct buf url;
    buf_init(&url);
    kc_url_start(kc, &url);
    buf_puts(&url, "/users");
    struct http_response resp;
    http_response_init(&resp);
    /* Not repeated once sent: a second POST would answer 409 for our own user. */
    rc = kc_request(kc, "POST", url.data, rep, &http_retry_once_sent, &resp, err);
    if (rc == 0)
        rc = kc_status_rc(&resp, err);
    if (rc == 0) {
        char buf[KC_ID_MAX + 1];
        if (kc_id_from_location(resp.location, buf, sizeof buf) == 0) {
            *id = xstrdup(buf);
        } else {
            kc_fail(err, HTTP_ERR_STATUS, "created, but no usable Location header");
            rc = USHER_EUPSTREAM;
        }
    }
    http_response_cleanup(&resp);
    buf_cleanup(&url);
    json_decref(rep);
    return rc;
}

static int user_url(struct kc_admin *kc, const char *id, const char *tail, struct buf *url,
                    struct kc_error *err)
{
    if (!kc_id_valid(id)) {
        kc_fail(err, HTTP_ERR_INVALID, "malformed Keycloak id");
        return USHER_EINVAL;
    }
    kc_url_start(kc, url);
    buf_puts(url, "/users");
    form_url_segment(url, id);
    if (tail)
        buf_puts(url, tail);
    return 0;
}

int kc_user_get(struct kc_admin *kc, const char *id, json_t **user, struct kc_error *err)
{
    *user = NULL;
    struct buf url;
    buf_init(&url);
    int rc = user_url(kc, id, NULL, &url, err);
    if (rc == 0)
        rc = kc_get_json(kc, url.data, JSON_OBJECT, user, err);
    buf_cleanup(&url);
    return rc;
}

int kc_user_put(struct kc_admin *kc, const char *id, const json_t *rep, unsigned changed,
                struct kc_error *err)
{
    /* The profile (username, email, names, every attribute) always goes back whole: with an
     * `attributes` map Keycloak replaces the profile and clears what is left out. The rest
     * only when it is the change: credentials never (side effects), requiredActions would
     * replace the list, and echoing a stale `enabled` could undo a concurrent disable. */
    static const char *const profile[] = {"id",       "username",   "email", "firstName",
                                          "lastName", "attributes", NULL};
    json_t *body = json_object();
    for (const char *const *k = profile; *k; k++) {
        json_t *v = json_object_get(rep, *k);
        if (v && !json_is_null(v))
            json_object_set(body, *k, v);
    }
    if (changed & KC_PUT_ENABLED)
        json_object_set(body, "enabled", json_object_get(rep, "enabled"));
    if (changed & KC_PUT_EMAIL_VERIFIED)
        json_object_set(body, "emailVerified", json_object_get(rep, "emailVerified"));
    if (changed & KC_PUT_REQUIRED_ACTIONS)
        json_object_set(body, "requiredActions", json_object_get(rep, "requiredActions"));
    struct buf url;
    buf_init(&url);
    int rc = user_url(kc, id, NULL, &url, err);
    if (rc == 0)
        rc = kc_simple(kc, "PUT", url.data, body, &http_retry_default, err);
    buf_cleanup(&url);
    json_decref(body);
    return rc;
}

int kc_user_update(struct kc_admin *kc, const char *id, const struct kc_user_changes *ch,
                   struct kc_error *err)
{
    json_t *rep = NULL;
    int rc = kc_user_get(kc, id, &rep, err);
    if (rc != 0)
        return rc;
    set_string(rep, "email", ch->email);
    set_string(rep, "firstName", ch->first_name);
    set_string(rep, "lastName", ch->last_name);
    unsigned changed = 0;
    if (ch->enabled >= 0) {
        json_object_set_new(rep, "enabled", json_boolean(ch->enabled));
        changed |= KC_PUT_ENABLED;
    }
    if (ch->email_verified >= 0) {
        json_object_set_new(rep, "emailVerified", json_boolean(ch->email_verified));
        changed |= KC_PUT_EMAIL_VERIFIED;
    }
    if (ch->required_actions) {
        json_t *list = json_array();
        for (const char *const *a = ch->required_actions; *a; a++)
            json_array_append_new(list, json_string(*a));
        json_object_set_new(rep, "requiredActions", list);
        changed |= KC_PUT_REQUIRED_ACTIONS;
    }
    rc = kc_user_put(kc, id, rep, changed, err);
    json_decref(rep);
    return rc;
}

int kc_user_set_enabled(struct kc_admin *kc, const char *id, bool enabled, struct kc_error *err)
{
    struct kc_user_changes ch = KC_USER_CHANGES_NONE;
    ch.enabled = enabled;
    return kc_user_update(kc, id, &ch, err);
}

int kc_user_logout(struct kc_admin *kc, const char *id, struct kc_error *err)
{
    struct buf url;
    buf_init(&url);
    int rc = user_url(kc, id, "/logout", &url, err);
    if (rc == 0)
        rc = kc_simple(kc, "POST", url.data, NULL, &http_retry_default, err);
    buf_cleanup(&url);
    return rc;
}

int kc_user_send_update_password(struct kc_admin *kc, const char *id, const char *client_id,
                                 const char *redirect_uri, long lifespan_s, struct kc_error *err)
{
    if (redirect_uri && !client_id) {
        kc_fail(err, HTTP_ERR_INVALID, "redirect_uri needs client_id");
        return USHER_EINVAL;
    }
    struct buf url;
    buf_init(&url);
    int rc = user_url(kc, id, "/execute-actions-email", &url, err);
    if (rc == 0) {
        if (client_id)
            form_url_query(&url, "client_id", client_id);
        if (redirect_uri)
            form_url_query(&url, "redirect_uri", redirect_uri);
        if (lifespan_s > 0) {
            char num[24];
            snprintf(num, sizeof num, "%ld", lifespan_s);
            form_url_query(&url, "lifespan", num);
        }
        json_t *actions = json_pack("[s]", "UPDATE_PASSWORD");
        rc = kc_simple(kc, "PUT", url.data, actions, &http_retry_once_sent, err);
        json_decref(actions);
    }
    buf_cleanup(&url);
    return rc;
}

int kc_user_delete(struct kc_admin *kc, const char *id, struct kc_error *err)
{
    struct buf url;
    buf_init(&url);
    int rc = user_url(kc, id, NULL, &url, err);
    if (rc == 0)
        rc = kc_simple(kc, "DELETE", url.data, NULL, &http_retry_default, err);
    buf_cleanup(&url);
    return rc;
}

int kc_user_group_call(struct kc_admin *kc, const char *method, const char *user_id,
                       const char *group_id, struct kc_error *err)
{
    if (!kc_id_valid(group_id)) {
        kc_fail(err, HTTP_ERR_INVALID, "malformed group id");
        return USHER_EINVAL;
    }
    struct buf url;
    buf_init(&url);
    int rc = user_url(kc, user_id, "/groups", &url, err);
    if (rc == 0) {
        form_url_segment(&url, group_id);
        rc = kc_simple(kc, method, url.data, NULL, &http_retry_default, err);
    }
    buf_cleanup(&url);
    return rc;
}

int kc_user_groups(struct kc_admin *kc, const char *user_id, json_t **groups, struct kc_error *err)
{
    return kc_user_groups_page(kc, user_id, NULL, 0, -1, groups, err);
}

int kc_user_groups_page(struct kc_admin *kc, const char *user_id, const char *search, int first,
                        int max, json_t **groups, struct kc_error *err)
{
    *groups = NULL;
    struct buf url;
    buf_init(&url);
    int rc = user_url(kc, user_id, "/groups", &url, err);
    if (rc == 0 && search)
        form_url_query(&url, "search", search);
    if (rc == 0 && max >= 0) {
        char n[24];
        snprintf(n, sizeof n, "%d", first > 0 ? first : 0);
        form_url_query(&url, "first", n);
        snprintf(n, sizeof n, "%d", max);
        form_url_query(&url, "max", n);
    }
    if (rc == 0)
        rc = kc_get_json(kc, url.data, JSON_ARRAY, groups, err);
    buf_cleanup(&url);
    return rc;
}
