/*
 * http_error.c — mapping usher_err to HTTP replies (see http_error.h).
 *
 * USHER_EDBDOWN (the database out of reach for now) is 503 with Retry-After and counted in
 * usher_db_unavailable_total, so a database restart under load reads as a short, announced
 * pause to clients and operators rather than as a burst of internal errors.
 */
#include "web/http_error.h"

#include "core/err.h"
#include "core/log.h"
#include "core/messages.h"
#include "core/metrics.h"
#include "web/response.h"

int web_status_for_error(int err)
{
    switch (err) {
    case USHER_EINVAL: return 400;
    case USHER_EFORBIDDEN: return 403;
    case USHER_ENOTFOUND: return 404;
    case USHER_ECONFLICT: return 409;
    case USHER_ELIMIT: return 429;
    case USHER_EUPSTREAM: return 502;
    case USHER_EDBDOWN: return 503;
    default: return 500;
    }
}

static const char *message_for(int status)
{
    switch (status) {
    case 400: return msg("http.invalid_request");
    case 403: return msg("http.forbidden");
    case 404: return msg("http.not_found");
    case 409: return msg("http.conflict");
    case 429: return msg("http.too_many_requests");
    case 502: return msg("http.upstream_failed");
    case 503: return msg("http.db_unavailable");
    default: return msg("http.internal_error");
    }
}

void web_count_db_unavailable(double n)
{
    metrics_counter_add("usher_db_unavailable_total",
                        "Requests answered 503 because the database was out of reach.", "", n);
}

void web_fail(struct web_request *r, int err)
{
    int status = web_status_for_error(err);
    if (err == USHER_EDBDOWN) {
        log_warn("request_id=%s msg=\"database unavailable: answered 503\"", r->request_id);
        web_count_db_unavailable(1);
        web_set_header(r, "Retry-After", WEB_DB_RETRY_AFTER);
        web_reply_error(r, status, message_for(status));
        return;
    }
    if (status >= 500)
        log_error("request_id=%s msg=\"request failed\" path=\"%s\" error=\"%s\"", r->request_id,
                  r->path, usher_strerror(err));
    web_reply_error(r, status, message_for(status));
}
