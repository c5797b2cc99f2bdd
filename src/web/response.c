/*
 * response.c — building replies (see response.h).
 */
#include "web/response.h"

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/mustache.h"
#include "web/app.h"
#include "web/pages.h"
#include "web/routes.h"

#include <stdio.h>
#include <string.h>
#include <ulfius.h>

void web_set_header(struct web_request *r, const char *name, const char *value)
{
    u_map_put(r->u_resp->map_header, name, value);
}

int web_add_cookie(struct web_request *r, const char *name, const char *value)
{
    int rc = ulfius_add_same_site_cookie_to_response(
        r->u_resp, name, value, NULL, 0, NULL, "/", !r->app->cfg->debug, 1, U_COOKIE_SAME_SITE_LAX);
    return rc == U_OK ? 0 : USHER_EIO;
}

void web_reply_bytes(struct web_request *r, int status, const char *content_type, const void *body,
                     size_t len)
{
    if (content_type)
        web_set_header(r, "Content-Type", content_type);
    ulfius_set_binary_body_response(r->u_resp, (unsigned)status, body, len);
    r->status = status;
    r->replied = true;
}

void web_reply_empty(struct web_request *r, int status)
{
    ulfius_set_empty_body_response(r->u_resp, (unsigned)status);
    r->status = status;
    r->replied = true;
}

void web_reply_json(struct web_request *r, int status, const json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    if (!text) {
        static const char fallback[] = "{\"error\":\"Internal error\"}";
        web_reply_bytes(r, 500, "application/json", fallback, sizeof fallback - 1);
        return;
    }
    web_reply_bytes(r, status, "application/json", text, strlen(text));
    free(text);
}

void web_reply_json_error(struct web_request *r, int status, const char *message)
{
    json_t *body = json_pack("{s:s}", "error", message);
    if (status >= 500)
        json_object_set_new(body, "request_id", json_string(r->request_id));
    web_reply_json(r, status, body);
    json_decref(body);
}

void web_redirect(struct web_request *r, const char *location)
{
    web_set_header(r, "Location", location);
    web_reply_empty(r, 303);
}

void web_reply_page(struct web_request *r, int status, const char *page, json_t *ctx)
{
    struct buf out;
    buf_init(&out);
    /* Most pages are a few kilobytes: grown once here, not doubled up from 64 bytes. */
    buf_reserve(&out, 16 * 1024);
    char *name = xasprintf("pages/%s", page);
    int rc = mustache_render(r->app->templates, name, ctx, &out);
    free(name);
    if (rc != 0) {
        log_error("request_id=%s msg=\"template failed\" page=%s", r->request_id, page);
        static const char fallback[] = "<!doctype html><title>Error</title><h1>Internal error</h1>";
        web_reply_bytes(r, 500, "text/html; charset=utf-8", fallback, sizeof fallback - 1);
    } else {
        web_reply_bytes(r, status, "text/html; charset=utf-8", out.data, out.len);
    }
    buf_cleanup(&out);
}

void web_reply_error(struct web_request *r, int status, const char *message)
{
    web_reply_error_kind(r, status, NULL, message);
}

/* templates/pages/error.mustache words the heading and the way on by status_<code>; the
 * message is the paragraph under the heading. */
void web_reply_error_kind(struct web_request *r, int status, const char *kind, const char *message)
{
    if (web_wants_json(r) || (r->route && web_route_is_json(r->route))) {
        web_reply_json_error(r, status, message);
        return;
    }
    json_t *ctx = web_page_context(r, message);
    char flag[32];
    snprintf(flag, sizeof flag, "status_%d", status);
    json_object_set_new(ctx, flag, json_true());
    json_object_set_new(ctx, status >= 500 ? "status_5xx" : "status_4xx", json_true());
    if (kind)
        json_object_set_new(ctx, kind, json_true());
    json_object_set_new(ctx, "status", json_integer(status));
    json_object_set_new(ctx, "message", json_string(message));
    if (status >= 500)
        json_object_set_new(ctx, "request_id", json_string(r->request_id));
    web_reply_page(r, status, "error", ctx);
    json_decref(ctx);
}
