/*
 * admin_users.h — the bulk-job result page, which the user pages route to
 * (admin_users.c: list and user page; admin_users_bulk.c: bulk actions and their result).
 */
#ifndef USHER_WEB_ADMIN_USERS_H
#define USHER_WEB_ADMIN_USERS_H

#include "web/request.h"

#include <stdint.h>

/* GET /admin/users/bulk/<job>/ (job 0: no such job → 404 page). */
int web_admin_users_bulk_result(struct web_request *r, int64_t job_id);

#endif
