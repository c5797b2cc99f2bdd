/*
 * identity_keycloak.c — identity_ops over kc_admin (see identity_keycloak.h).
 */
#include "domain/identity_keycloak.h"

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "domain/expiry.h"
#include "integrations/keycloak_admin.h"

#include <pthread.h>
#include <stdlib.h>

static pthread_mutex_t client_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kc_admin *shared_client; /* lives as long as the process */

static int client_for(const struct usher_config *cfg, struct kc_admin **out)
{
    pthread_mutex_lock(&client_lock);
    int rc = shared_client ? 0 : kc_admin_new(cfg, &shared_client);
    *out = shared_client;
    pthread_mutex_unlock(&client_lock);
    return rc;
}

static int set_membership(void *ctx, const char *user_ref, const char *group, bool member)
{
    struct kc_admin *kc = ctx;
    struct kc_error err = {0};
    char *group_id = NULL;
    char quoted[128];
    log_quote(quoted, sizeof quoted, group);
    int rc = kc_group_find(kc, group, &group_id, &err);
    if (rc == USHER_ENOTFOUND) {
        /* Joining it fails (the caller names the instance); leaving it is already done. */
        if (member)
            log_warn("msg=\"keycloak group missing\" group=\"%s\"", quoted);
        else
            log_info("msg=\"keycloak group missing; nothing to leave\" group=\"%s\"", quoted);
        return rc;
    }
    if (rc == 0)
        rc = member ? kc_user_group_add(kc, user_ref, group_id, &err)
                    : kc_user_group_remove(kc, user_ref, group_id, &err);
    if (rc == USHER_ENOTFOUND) /* the group exists, so the user is the one missing */
        rc = USHER_EUPSTREAM;
    if (rc != 0)
        log_warn("msg=\"keycloak group change failed\" group=\"%s\" error=\"%s\"", quoted,
                 usher_strerror(rc));
    free(group_id);
    return rc;
}

static int add_to_group(void *ctx, const char *user_ref, const char *group)
{
    return set_membership(ctx, user_ref, group, true);
}

static int remove_from_group(void *ctx, const char *user_ref, const char *group)
{
    return set_membership(ctx, user_ref, group, false);
}

static int replace_attributes(void *ctx, const char *user_ref, const json_t *extra_keys,
                              const json_t *attributes, json_t **dropped)
{
    size_t n = json_array_size(extra_keys);
    const char **keys = xcalloc(n + 1, sizeof *keys);
    for (size_t i = 0; i < n; i++)
        keys[i] = json_string_value(json_array_get(extra_keys, i));
    struct kc_owned_attrs owned = kc_owned_attrs_usher(keys);
    struct kc_attr_report report = {0};
    struct kc_error err = {0};
    int rc = kc_user_replace_attributes(ctx, user_ref, &owned, attributes, &report, &err);
    if (dropped) {
        *dropped = json_array();
        for (size_t i = 0; i < report.count; i++)
            json_array_append_new(*dropped, json_string(report.names[i]));
    }
    kc_attr_report_cleanup(&report);
    free(keys);
    return rc == KC_ATTRS_DROPPED ? 0 : rc;
}

int identity_keycloak_admin(const struct usher_config *cfg, struct kc_admin **out)
{
    return client_for(cfg, out);
}

int identity_keycloak_ops(const struct usher_config *cfg, struct identity_ops *ops)
{
    struct kc_admin *kc = NULL;
    int rc = client_for(cfg, &kc);
    if (rc != 0)
        return rc;
    *ops = (struct identity_ops){kc, add_to_group, remove_from_group, replace_attributes};
    return 0;
}

static int delete_user(void *ctx, const char *user_ref)
{
    struct kc_error err = {0};
    return kc_user_delete(ctx, user_ref, &err);
}

static int user_exists(void *ctx, const char *user_ref, bool *exists)
{
    struct kc_error err = {0};
    json_t *user = NULL;
    int rc = kc_user_get(ctx, user_ref, &user, &err);
    json_decref(user);
    *exists = rc == 0;
    return rc == USHER_ENOTFOUND ? 0 : rc;
}

int identity_keycloak_expiry(const struct usher_config *cfg, struct expiry_identity *ops)
{
    struct kc_admin *kc = NULL;
    int rc = client_for(cfg, &kc);
    if (rc != 0)
        return rc;
    *ops = (struct expiry_identity){kc, delete_user, user_exists};
    return 0;
}
