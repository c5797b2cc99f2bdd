/*
 * admin_access.c — the per-request ADMIN_GROUP check against Keycloak (see admin_access.h).
 */
#include "domain/admin_access.h"

#include "core/err.h"
#include "core/log.h"
#include "integrations/keycloak_admin.h"

#include <string.h>

bool admin_access_in_groups(const json_t *groups, const char *group)
{
    if (!group || !*group || !json_is_array(groups))
        return false;
    const char *field = group[0] == '/' ? "path" : "name";
    size_t i;
    const json_t *g;
    json_array_foreach (groups, i, g) {
        const char *v = json_string_value(json_object_get(g, field));
        if (v && !strcmp(v, group))
            return true;
    }
    return false;
}

static int clear_admin(struct db_pool *pool, int64_t user_id)
{
    struct db_conn *conn = NULL;
    int rc = db_acquire(pool, DB_WAIT_MS, &conn);
    if (rc != 0)
        return rc;
    const struct db_param p[] = {DB_INT(user_id)};
    rc = db_exec(conn, "UPDATE users SET is_admin = false WHERE id = $1 AND is_admin", p, 1, NULL);
    db_release(conn);
    return rc;
}

int admin_access_confirm(struct db_pool *pool, struct kc_admin *kc, int64_t user_id,
                         const char *keycloak_id, const char *group, bool *member)
{
    *member = false;
    if (!kc)
        return USHER_ECONFIG;
    int rc = 0;
    if (keycloak_id && *keycloak_id) {
        json_t *groups = NULL;
        struct kc_error err = {0};
        rc = kc_user_groups(kc, keycloak_id, &groups, &err);
        if (rc == 0)
            *member = admin_access_in_groups(groups, group);
        json_decref(groups);
        if (rc == USHER_ENOTFOUND || rc == USHER_EINVAL) /* gone, or an id Keycloak never had */
            rc = 0;
        if (rc != 0) {
            log_warn("msg=\"admin membership check failed\" user_id=%lld error=\"%s\" "
                     "status=%ld",
                     (long long)user_id, usher_strerror(rc), err.http.status);
            return rc;
        }
    }
    return *member ? 0 : clear_admin(pool, user_id);
}
