/*
 * admin_users.h — what the users pages of the admin console share between their two files
 * (admin_users.c: list and user page; admin_users_bulk.c: bulk actions and their result).
 */
#ifndef USHER_WEB_ADMIN_USERS_H
#define USHER_WEB_ADMIN_USERS_H

#include "web/request.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* "2026-12-04 21:33 UTC", or "—" for 0 / NULL. */
void web_admin_time(int64_t t, char *out, size_t size);
/* For each key of obj in keys (NULL-terminated) holding Unix seconds (integer or text), sets
 * "<key>_text" to web_admin_time's text. */
void web_admin_times(json_t *obj, const char *const *keys);
/* The id in a path remainder "<digits>/", or 0 when it is anything else. */
int64_t web_admin_path_id(const char *s);
/* GET /admin/users/bulk/<job>/ (job 0: no such job → 404 page). */
int web_admin_users_bulk_result(struct web_request *r, int64_t job_id);

#endif
