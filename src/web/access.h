/*
 * access.h — who may use a route: login and admin checks (SPEC §6, §9).
 *
 * A login route with no logged-in user sends a page request to the login (with the path as
 * `next`) and answers a JSON call 401. An admin route for someone outside ADMIN_GROUP
 * answers 403 "Access denied. You must be a member of the <ADMIN_GROUP> group."
 */
#ifndef USHER_WEB_ACCESS_H
#define USHER_WEB_ACCESS_H

#include "web/request.h"

/* 0 when the handler may run (r->user set for login/admin routes); otherwise the reply has
 * been sent and USHER_EFORBIDDEN is returned. Other errors (database) are returned as is. */
int web_access_check(struct web_request *r);
/* Frees r->user. */
void web_access_finish(struct web_request *r);

#endif
