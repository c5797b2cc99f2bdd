/*
 * http_error.h — the one place where usher_err codes become HTTP statuses.
 */
#ifndef USHER_WEB_HTTP_ERROR_H
#define USHER_WEB_HTTP_ERROR_H

#include "web/request.h"

int web_status_for_error(int err);
/* Replies with the status and message for err, logging server-side failures once with the
 * request id. */
void web_fail(struct web_request *r, int err);

#endif
