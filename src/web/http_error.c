/*
 * http_error.c — mapping usher_err to HTTP replies (see http_error.h).
 */
#include "web/http_error.h"

#include "core/err.h"
#include "core/log.h"
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
    default: return 500;
    }
}

static const char *message_for(int status)
{
    switch (status) {
    case 400: return "Invalid request";
    case 403: return "Forbidden";
    case 404: return "Not found";
    case 409: return "Conflict";
    case 429: return "Too many requests. Please try again later.";
    case 502: return "An upstream service failed. Please try again later.";
    default: return "Internal error";
    }
}

void web_fail(struct web_request *r, int err)
{
    int status = web_status_for_error(err);
    if (status >= 500)
        log_error("request_id=%s msg=\"request failed\" path=\"%s\" error=\"%s\"", r->request_id,
                  r->path, usher_strerror(err));
    web_reply_error(r, status, message_for(status));
}
