/*
 * keycloak_groups.c — finding a group by its exact name or path, and group membership
 * (see keycloak_admin.h).
 *
 * `GET /groups?search=NAME&exact=true` answers with top-level groups whose tree holds a
 * match, the matching branches in `subGroups`; a top-level group may be there only because a
 * descendant matched. So the answer is walked and the exact name (or path) picked here.
 */
#include "integrations/keycloak_admin.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"
#include "integrations/form.h"
#include "integrations/keycloak_internal.h"

#include <string.h>

#define GROUP_DEPTH_MAX 32
#define GROUP_REF_MAX 1024

struct pick {
    const char *ref;
    bool by_path;
    const json_t *top; /* a top-level match */
    const json_t *deep; /* the first deeper match */
    size_t deep_count;
};

static void walk(const json_t *groups, int depth, struct pick *p)
{
    if (depth > GROUP_DEPTH_MAX || !json_is_array(groups))
        return;
    size_t i;
    const json_t *g;
    json_array_foreach (groups, i, g) {
        const char *v = json_string_value(json_object_get(g, p->by_path ? "path" : "name"));
        if (v && !strcmp(v, p->ref)) {
            if (depth == 0 && !p->top)
                p->top = g;
            else if (depth > 0 && p->deep_count++ == 0)
                p->deep = g;
        }
        walk(json_object_get(g, "subGroups"), depth + 1, p);
    }
}

const json_t *kc_group_pick(const json_t *groups, const char *ref, bool *ambiguous)
{
    struct pick p = {.ref = ref, .by_path = ref[0] == '/'};
    walk(groups, 0, &p);
    if (ambiguous)
        *ambiguous = false;
    if (p.top)
        return p.top;
    if (p.by_path || p.deep_count == 1)
        return p.deep;
    if (p.deep_count > 1 && ambiguous)
        *ambiguous = true;
    return NULL;
}

int kc_group_find(struct kc_admin *kc, const char *ref, char **id, struct kc_error *err)
{
    *id = NULL;
    if (!ref || !*ref || strlen(ref) > GROUP_REF_MAX || !strcmp(ref, "/")) {
        kc_fail(err, HTTP_ERR_INVALID, "empty or overlong group name");
        return USHER_EINVAL;
    }
    const char *name = strrchr(ref, '/');
    name = ref[0] == '/' && name ? name + 1 : ref;
    struct buf url;
    buf_init(&url);
    kc_url_start(kc, &url);
    buf_puts(&url, "/groups");
    form_url_query(&url, "search", name);
    form_url_query(&url, "exact", "true");
    form_url_query(&url, "max", "1000");
    json_t *groups = NULL;
    int rc = kc_get_json(kc, url.data, JSON_ARRAY, &groups, err);
    buf_cleanup(&url);
    if (rc != 0)
        return rc;
    bool ambiguous = false;
    const json_t *g = kc_group_pick(groups, ref, &ambiguous);
    const char *gid = json_string_value(json_object_get(g, "id"));
    if (gid && kc_id_valid(gid)) {
        *id = xstrdup(gid);
    } else if (ambiguous) {
        kc_fail(err, HTTP_ERR_NONE, "several subgroups have that name; use the path");
        rc = USHER_ECONFLICT;
    } else {
        kc_fail(err, HTTP_ERR_NONE, "no such group");
        rc = USHER_ENOTFOUND;
    }
    json_decref(groups);
    return rc;
}

int kc_user_group_add(struct kc_admin *kc, const char *user_id, const char *group_id,
                      struct kc_error *err)
{
    return kc_user_group_call(kc, "PUT", user_id, group_id, err);
}

int kc_user_group_remove(struct kc_admin *kc, const char *user_id, const char *group_id,
                         struct kc_error *err)
{
    return kc_user_group_call(kc, "DELETE", user_id, group_id, err);
}
