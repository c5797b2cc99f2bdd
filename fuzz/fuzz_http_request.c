/*
 * fuzz_http_request.c — feeds raw HTTP request heads (and form bodies) to the web layer's
 * request handling: routing (web/routes.c: web_route_find, web_route_allows,
 * web_route_allow_header), header, cookie, query and form accessors (web/request.c), the
 * CSRF/origin check (web/csrf.c), the static file lookup (web/static_files.c: web_static), the
 * `next` redirect guard on the query, error replies rendered with the real templates
 * (web/response.c, web/pages.c) and log quoting of the path (core/log.c: log_quote).
 *
 * libmicrohttpd parses the wire format in `usher serve` and exposes no pure parsing entry
 * point, so this harness splits the request the way MHD and Ulfius hand it over (request
 * line, percent-decoded path, query and x-www-form-urlencoded pairs, `Cookie:` split at ';',
 * every repeated header and cookie) into a real `struct _u_request` and calls Usher's code on
 * it. MHD's own parser is exercised by tests/integration/test_hostile_http.py.
 *
 * Properties: an error reply is always a 4xx with a body; the logged path never holds a raw
 * control character or an unescaped quote.
 */
#include "core/config.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/messages.h"
#include "core/mustache.h"
#include "integrations/oidc.h"
#include "web/app.h"
#include "web/csrf.h"
#include "web/handlers.h"
#include "web/request.h"
#include "web/response.h"
#include "web/routes.h"
#include "web/session.h"
#include "web/static_files.h"
#include "fuzz_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <ulfius.h>

static struct usher_config cfg;
static struct web_app app;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    log_set_level(LOG_ERROR + 1);
    cfg.public_base_url = "https://usher.test";
    cfg.public_https = true;
    cfg.public_origin = "https://usher.test";
    cfg.max_body_bytes = 1048576;
    cfg.site_name = "Usher";
    cfg.support_email = "support@usher.test";
    cfg.brand_color = "#123456";
    cfg.logo_url = "";
    app.cfg = &cfg;
    app.csp = "default-src 'self'";
    app.templates = mustache_set_new();
    char *error = NULL;
    /* The source tree's data when run from the build directory (config_default_data_dir). */
    const char *data = config_default_data_dir();
    char *templates = xasprintf("%s/templates", data);
    char *statics = xasprintf("%s/static", data);
    if (mustache_set_load_dir(app.templates, templates, &error) != 0 ||
        static_files_load(statics, &app.static_files) != 0 || messages_load(data, &error) != 0) {
        fprintf(stderr, "fuzz_http_request: cannot load the data of %s: %s\n", data,
                error ? error : "?");
        abort();
    }
    free(templates);
    free(statics);
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..len) into a heap string ('+' as space when plus); a decoded NUL ends
 * the C string, as it does for Ulfius' maps. */
static char *decode(const char *s, size_t len, bool plus)
{
    char *out = malloc(len + 1);
    size_t o = 0;
    FUZZ_ASSERT(out);
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < len && (hi = hexval(s[i + 1])) >= 0 &&
            (lo = hexval(s[i + 2])) >= 0) {
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = plus && s[i] == '+' ? ' ' : s[i];
        }
    }
    out[o] = '\0';
    return out;
}

/* a=b&c=d into map (decoded); a key without '=' gets "". */
static void parse_pairs(struct _u_map *map, const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && s[end] != '&')
            end++;
        const char *eq = memchr(s + i, '=', end - i);
        size_t klen = eq ? (size_t)(eq - (s + i)) : end - i;
        char *k = decode(s + i, klen, true);
        char *v = eq ? decode(eq + 1, (size_t)(s + end - eq - 1), true) : strdup("");
        if (*k)
            u_map_put(map, k, v);
        free(k);
        free(v);
        i = end + 1;
    }
}

/* Cookie: a=b; c="d" — as MHD splits it (trimmed, quotes removed). */
static void parse_cookies(struct _u_map *map, const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && s[end] != ';')
            end++;
        size_t a = i, b = end;
        while (a < b && s[a] == ' ')
            a++;
        while (b > a && s[b - 1] == ' ')
            b--;
        const char *eq = memchr(s + a, '=', b - a);
        if (eq && eq > s + a) {
            char *k = strndup(s + a, (size_t)(eq - (s + a)));
            const char *v = eq + 1;
            size_t vlen = (size_t)(s + b - v);
            if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"')
                v++, vlen -= 2;
            char *val = strndup(v, vlen);
            u_map_put(map, k, val);
            free(k);
            free(val);
        }
        i = end + 1;
    }
}

/* Next line of s[*pos..size) without its CR LF / LF; false at the end. */
static bool next_line(const char *s, size_t size, size_t *pos, const char **line, size_t *len)
{
    if (*pos >= size)
        return false;
    const char *nl = memchr(s + *pos, '\n', size - *pos);
    size_t end = nl ? (size_t)(nl - s) : size;
    *line = s + *pos;
    *len = end - *pos;
    if (*len && (*line)[*len - 1] == '\r')
        (*len)--;
    *pos = nl ? end + 1 : size;
    return true;
}

static void parse_request(struct _u_request *req, const char *s, size_t size)
{
    size_t pos = 0, len = 0;
    const char *line = NULL;
    if (!next_line(s, size, &pos, &line, &len))
        return;
    const char *sp1 = memchr(line, ' ', len);
    if (!sp1)
        return;
    o_free(req->http_verb);
    req->http_verb = strndup(line, (size_t)(sp1 - line));
    const char *target = sp1 + 1;
    const char *sp2 = memchr(target, ' ', (size_t)(line + len - target));
    size_t tlen = sp2 ? (size_t)(sp2 - target) : (size_t)(line + len - target);
    const char *q = memchr(target, '?', tlen);
    o_free(req->url_path);
    req->url_path = decode(target, q ? (size_t)(q - target) : tlen, false);
    if (q)
        parse_pairs(req->map_url, q + 1, (size_t)(target + tlen - q - 1));
    bool form = false;
    while (next_line(s, size, &pos, &line, &len) && len) {
        const char *colon = memchr(line, ':', len);
        if (!colon || colon == line)
            continue;
        char *name = strndup(line, (size_t)(colon - line));
        const char *v = colon + 1;
        while (v < line + len && (*v == ' ' || *v == '\t'))
            v++;
        char *value = strndup(v, (size_t)(line + len - v));
        if (!strcasecmp(name, "Cookie"))
            parse_cookies(req->map_cookie, value, strlen(value));
        if (!strcasecmp(name, "Content-Type") &&
            !strncasecmp(value, "application/x-www-form-urlencoded", 33))
            form = true;
        /* A repeated header: Ulfius keeps the last value of a name. */
        u_map_put(req->map_header, name, value);
        free(name);
        free(value);
    }
    size_t body_len = size - pos;
    if (body_len) {
        req->binary_body = o_malloc(body_len);
        memcpy(req->binary_body, s + pos, body_len);
        req->binary_body_length = body_len;
        if (form)
            parse_pairs(req->map_post_body, s + pos, body_len);
    }
}

static const char *known_method(const char *m)
{
    static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"};
    for (size_t i = 0; m && i < sizeof methods / sizeof methods[0]; i++)
        if (!strcmp(m, methods[i]))
            return methods[i];
    return "OTHER";
}

static void check_error_reply(struct web_request *r, struct _u_response *resp)
{
    FUZZ_ASSERT(r->replied && r->status >= 400 && r->status < 500);
    FUZZ_ASSERT(resp->binary_body_length > 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct _u_request req;
    struct _u_response resp;
    ulfius_init_request(&req);
    ulfius_init_response(&resp);
    parse_request(&req, (const char *)data, size);

    struct web_request r = {.u_req = &req, .u_resp = &resp, .app = &app};
    snprintf(r.request_id, sizeof r.request_id, "fuzz");
    r.method = known_method(req.http_verb);
    r.path = req.url_path ? req.url_path : "/";
    r.now = 1700000000;

    char quoted[256];
    log_quote(quoted, sizeof quoted, r.path);
    for (const char *p = quoted; *p; p++)
        FUZZ_ASSERT((unsigned char)*p >= 0x20 && *p != 0x7f &&
                    (*p != '"' || (p > quoted && p[-1] == '\\')));

    web_wants_json(&r);
    /* What web_session_load looks at before the database: the cookie's exact length. */
    const char *cookie = web_cookie(&r, web_session_cookie_name(&r));
    FUZZ_ASSERT(!cookie || strnlen(cookie, 128) <= 128);
    json_decref(web_form_list(&r, "addons", 8));
    oidc_safe_next(web_query(&r, "next"));
    web_header(&r, "X-Request-Id");

    r.route = web_route_find(r.path);
    if (!r.route) {
        web_reply_error(&r, 404, "Not found");
        check_error_reply(&r, &resp);
    } else if (!web_route_allows(r.route, r.method)) {
        char allow[64];
        web_route_allow_header(r.route, allow, sizeof allow);
        FUZZ_ASSERT(allow[0] != '\0');
        web_reply_error(&r, 405, "Method not allowed");
        check_error_reply(&r, &resp);
    } else if (r.route->handler == web_static) {
        FUZZ_ASSERT(web_static(&r) == 0 && r.replied);
        FUZZ_ASSERT(r.status == 200 || r.status == 304 || r.status == 404);
    } else if (strcmp(r.method, "GET") && strcmp(r.method, "HEAD")) {
        /* No session here, so the check must refuse whatever the headers say. */
        FUZZ_ASSERT(web_csrf_check(&r) != 0);
    }

    ulfius_clean_response(&resp);
    ulfius_clean_request(&req);
    return 0;
}
