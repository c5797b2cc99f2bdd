/*
 * admin_access.h — is this user still a member of ADMIN_GROUP? (SPEC §9)
 *
 * users.is_admin is set from the login's `groups` claim, which is only as fresh as the login.
 * The admin console asks Keycloak on every request instead (GET /users/{id}/groups, only the
 * groups whose name contains ADMIN_GROUP's, every page of them, so the number of groups a
 * user is in does not matter), so someone removed from the group loses the console at their
 * next request, and writes the answer back to users.is_admin (the dashboard's Admin card
 * follows). A group matches as at
 * login: by name (the claim's full.path=false names), or by full path when ADMIN_GROUP
 * starts with '/'.
 */
#ifndef USHER_DOMAIN_ADMIN_ACCESS_H
#define USHER_DOMAIN_ADMIN_ACCESS_H

#include "db/db.h"

#include <jansson.h>

#include <stdbool.h>
#include <stdint.h>

struct kc_admin;

/*
 * *member: whether the user whose Keycloak id is keycloak_id belongs to group; a user
 * Keycloak no longer knows (404), or one without a Keycloak id, is not a member. When not a
 * member, users.is_admin of user_id is cleared. Errors: USHER_ECONFIG (kc NULL: the Admin API
 * is not configured), USHER_EUPSTREAM / USHER_EFORBIDDEN (Keycloak unreachable, failing or
 * refusing), USHER_EDB. The caller fails closed on every error.
 */
int admin_access_confirm(struct db_pool *pool, struct kc_admin *kc, int64_t user_id,
                         const char *keycloak_id, const char *group, bool *member);

/* Whether groups (a GET /users/{id}/groups answer) holds group, as above. Pure. */
bool admin_access_in_groups(const json_t *groups, const char *group);

#endif
