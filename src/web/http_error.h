/*
 * http_error.h — the one place where usher_err codes become HTTP statuses.
 */
#ifndef USHER_WEB_HTTP_ERROR_H
#define USHER_WEB_HTTP_ERROR_H

#include "web/request.h"

/* Seconds a client is asked to wait (Retry-After) while the database is out of reach; a
 * PostgreSQL restart or failover usually takes a few. */
#define WEB_DB_RETRY_AFTER "5"

int web_status_for_error(int err);
/* Adds n to usher_db_unavailable_total (0 makes the series show before the first outage). */
void web_count_db_unavailable(double n);
/* Replies with the status and message for err, logging server-side failures once with the
 * request id. */
void web_fail(struct web_request *r, int err);

#endif
