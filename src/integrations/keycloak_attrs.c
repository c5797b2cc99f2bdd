/*
 * keycloak_attrs.c — replacing the user attributes Usher owns (entitlements) while keeping
 * every other attribute, and noticing when Keycloak silently drops some (see
 * keycloak_admin.h).
 *
 * Keycloak 24+ keeps only attributes its realm user profile declares, unless the realm's
 * unmanagedAttributePolicy is ENABLED or ADMIN_EDIT; the PUT answers 204 either way. So the
 * user is read back after the write and compared with what was meant.
 */
#include "integrations/keycloak_admin.h"

#include "core/err.h"
#include "core/mem.h"
#include "integrations/keycloak_internal.h"

#include <stdlib.h>
#include <string.h>

#define ATTR_KEY_MAX 255

static const char *const usher_prefixes[] = {"has_", NULL};
static const char *const usher_suffixes[] = {"_instance", NULL};

struct kc_owned_attrs kc_owned_attrs_usher(const char *const *entitlement_keys)
{
    return (struct kc_owned_attrs){
        .keys = entitlement_keys,
        .prefixes = usher_prefixes,
        .suffixes = usher_suffixes,
    };
}

bool kc_attr_owned(const struct kc_owned_attrs *owned, const char *key)
{
    size_t len = strlen(key);
    for (const char *const *k = owned->keys; k && *k; k++)
        if (!strcmp(key, *k))
            return true;
    for (const char *const *p = owned->prefixes; p && *p; p++) {
        size_t n = strlen(*p);
        if (len > n && !strncmp(key, *p, n))
            return true;
    }
    for (const char *const *s = owned->suffixes; s && *s; s++) {
        size_t n = strlen(*s);
        if (len > n && !strcmp(key + len - n, *s))
            return true;
    }
    return false;
}

void kc_attr_report_cleanup(struct kc_attr_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->count; i++)
        free(r->names[i]);
    free(r->names);
    r->names = NULL;
    r->count = 0;
}

static void report_add(struct kc_attr_report *r, const char *name)
{
    if (!r)
        return;
    r->names = xrealloc(r->names, (r->count + 1) * sizeof *r->names);
    r->names[r->count++] = xstrdup(name);
}

int kc_attrs_merge(const json_t *current, const struct kc_owned_attrs *owned, const json_t *desired,
                   json_t **merged)
{
    *merged = NULL;
    if ((current && !json_is_object(current)) || (desired && !json_is_object(desired)))
        return USHER_EINVAL;
    json_t *out = json_object();
    const char *k;
    const json_t *v;
    json_object_foreach ((json_t *)current, k, v) {
        if (!kc_attr_owned(owned, k))
            json_object_set_new(out, k, json_deep_copy(v));
    }
    json_object_foreach ((json_t *)desired, k, v) {
        json_t *vals = NULL;
        if (!*k || strlen(k) > ATTR_KEY_MAX || !kc_attr_owned(owned, k) ||
            !(vals = kc_attr_values(v))) {
            json_decref(out);
            return USHER_EINVAL; /* Usher writes only what it owns, as strings */
        }
        json_object_set_new(out, k, vals);
    }
    *merged = out;
    return 0;
}

/* Same values, in any order. */
static bool same_values(const json_t *want, const json_t *have)
{
    if (!json_is_array(have) || json_array_size(want) != json_array_size(have))
        return false;
    size_t i, j;
    const json_t *w, *h;
    json_array_foreach (want, i, w) {
        bool found = false;
        json_array_foreach (have, j, h) {
            if (json_equal((json_t *)w, (json_t *)h)) {
                found = true;
                break;
            }
        }
        if (!found)
            return false;
    }
    return true;
}

void kc_attrs_missing(const json_t *desired, const json_t *actual, struct kc_attr_report *r)
{
    const char *k;
    const json_t *v;
    json_object_foreach ((json_t *)desired, k, v) {
        json_t *want = kc_attr_values(v);
        if (!want || !same_values(want, json_object_get(actual, k)))
            report_add(r, k);
        json_decref(want);
    }
}

int kc_user_replace_attributes(struct kc_admin *kc, const char *id,
                               const struct kc_owned_attrs *owned, const json_t *desired,
                               struct kc_attr_report *report, struct kc_error *err)
{
    if (report)
        memset(report, 0, sizeof *report);
    json_t *empty = desired ? NULL : json_object();
    if (!desired)
        desired = empty;
    json_t *rep = NULL, *merged = NULL, *after = NULL;
    int rc = kc_user_get(kc, id, &rep, err);
    if (rc != 0)
        goto out;
    rc = kc_attrs_merge(json_object_get(rep, "attributes"), owned, desired, &merged);
    if (rc != 0) {
        kc_fail(err, HTTP_ERR_INVALID, "desired attributes must be Usher-owned strings");
        goto out;
    }
    json_object_set(rep, "attributes", merged);
    rc = kc_user_put(kc, id, rep, 0, err);
    if (rc != 0)
        goto out;
    rc = kc_user_get(kc, id, &after, err);
    if (rc != 0)
        goto out;
    const json_t *now = json_object_get(after, "attributes");
    struct kc_attr_report local = {0};
    struct kc_attr_report *r = report ? report : &local;
    kc_attrs_missing(desired, now, r);
    /* An owned attribute that should be gone but stayed (the realm let the admin view but
     * not edit it) is as wrong as a dropped one. */
    const char *k;
    const json_t *v;
    json_object_foreach ((json_t *)now, k, v) {
        (void)v;
        if (kc_attr_owned(owned, k) && !json_object_get(desired, k))
            report_add(r, k);
    }
    rc = r->count ? KC_ATTRS_DROPPED : 0;
    kc_attr_report_cleanup(&local);
out:
    json_decref(empty);
    json_decref(rep);
    json_decref(merged);
    json_decref(after);
    return rc;
}

static bool declared(const json_t *profile, const char *name)
{
    size_t i;
    const json_t *a;
    json_array_foreach (json_object_get(profile, "attributes"), i, a) {
        const char *n = json_string_value(json_object_get(a, "name"));
        if (n && !strcmp(n, name))
            return true;
    }
    return false;
}

int kc_profile_check(struct kc_admin *kc, const char *const *names, char **policy,
                     struct kc_attr_report *report, struct kc_error *err)
{
    if (policy)
        *policy = NULL;
    if (report)
        memset(report, 0, sizeof *report);
    struct buf url;
    buf_init(&url);
    kc_url_start(kc, &url);
    buf_puts(&url, "/users/profile");
    json_t *profile = NULL;
    int rc = kc_get_json(kc, url.data, JSON_OBJECT, &profile, err);
    buf_cleanup(&url);
    if (rc != 0)
        return rc;
    const char *p = json_string_value(json_object_get(profile, "unmanagedAttributePolicy"));
    if (!p)
        p = "DISABLED";
    if (policy)
        *policy = xstrdup(p);
    /* ADMIN_VIEW shows unmanaged attributes but refuses the admin's changes to them. */
    bool kept = !strcmp(p, "ENABLED") || !strcmp(p, "ADMIN_EDIT");
    size_t dropped = 0;
    for (const char *const *n = names; !kept && n && *n; n++) {
        if (!declared(profile, *n)) {
            report_add(report, *n);
            dropped++;
        }
    }
    json_decref(profile);
    return dropped ? KC_ATTRS_DROPPED : 0;
}
