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

/* Keycloak answers GET /users/{id}/groups a page at a time when asked to; a page this long is
 * one request for nearly everyone, since only groups whose name contains ADMIN_GROUP's come. */
#define GROUPS_PAGE 100
/* More pages than this (100,000 groups whose name contains ADMIN_GROUP's) is a Keycloak that
 * ignores `first`: stop rather than loop (fails closed). */
#define GROUPS_PAGES_MAX 1000

/* *member: whether keycloak_id's direct groups hold group. Asks only for the groups whose name
 * contains group's name (Keycloak's `search`: case-insensitive substring), so the answer stays
 * small however many groups the user is in, and reads every page of that: a membership past
 * the first page is still found. The exact name (or path) is checked here. */
static int find_membership(struct kc_admin *kc, const char *keycloak_id, const char *group,
                           bool *member, struct kc_error *err)
{
    const char *slash = group ? strrchr(group, '/') : NULL;
    const char *name = group && group[0] == '/' && slash ? slash + 1 : group;
    for (int page = 0; page < GROUPS_PAGES_MAX; page++) {
        json_t *groups = NULL;
        int rc = kc_user_groups_page(kc, keycloak_id, name ? name : "", page * GROUPS_PAGE,
                                     GROUPS_PAGE, &groups, err);
        if (rc != 0)
            return rc;
        *member = admin_access_in_groups(groups, group);
        /* A short page is the last: the admin API account sees every group (view-users), so
         * Keycloak filters none out of a page after cutting it. */
        bool last = json_array_size(groups) < GROUPS_PAGE;
        json_decref(groups);
        if (*member || last)
            return 0;
    }
    return USHER_EUPSTREAM;
}

int admin_access_confirm(struct db_pool *pool, struct kc_admin *kc, int64_t user_id,
                         const char *keycloak_id, const char *group, bool *member)
{
    *member = false;
    if (!kc)
        return USHER_ECONFIG;
    int rc = 0;
    if (keycloak_id && *keycloak_id) {
        struct kc_error err = {0};
        rc = find_membership(kc, keycloak_id, group, member, &err);
        if (rc == USHER_ENOTFOUND || rc == USHER_EINVAL) /* gone, or an id Keycloak never had */
            rc = 0;
        if (rc != 0) {
            *member = false;
            log_warn("msg=\"admin membership check failed\" user_id=%lld error=\"%s\" "
                     "status=%ld",
                     (long long)user_id, usher_strerror(rc), err.http.status);
            return rc;
        }
    }
    return *member ? 0 : clear_admin(pool, user_id);
}
