/*
 * request.c — reading a request (see request.h).
 */
#include "web/request.h"

#include "core/err.h"
#include "core/mem.h"
#include "core/messages.h"
#include "domain/validate.h"
#include "web/response.h"

#include <string.h>
#include <strings.h>
#include <ulfius.h>

const char *web_header(const struct web_request *r, const char *name)
{
    return u_map_get_case(r->u_req->map_header, name);
}

const char *web_cookie(const struct web_request *r, const char *name)
{
    return u_map_get(r->u_req->map_cookie, name);
}

const char *web_query(const struct web_request *r, const char *name)
{
    return u_map_get(r->u_req->map_url, name);
}

const char *web_form(const struct web_request *r, const char *name)
{
    return u_map_get(r->u_req->map_post_body, name);
}

json_t *web_form_list(const struct web_request *r, const char *name, size_t max)
{
    json_t *list = json_array();
    const char *p = web_form(r, name);
    while (p && json_array_size(list) <= max) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        json_t *item = json_stringn(p, n);
        json_array_append_new(list, item ? item : json_string(""));
        p = end ? end + 1 : NULL;
    }
    return list;
}

const char *web_body(const struct web_request *r, size_t *len)
{
    *len = r->u_req->binary_body_length;
    return r->u_req->binary_body;
}

static bool starts_with_ci(const char *s, const char *prefix)
{
    return s && strncasecmp(s, prefix, strlen(prefix)) == 0;
}

bool web_wants_json(const struct web_request *r)
{
    const char *accept = web_header(r, "Accept");
    if (accept && strstr(accept, "application/json"))
        return true;
    if (starts_with_ci(web_header(r, "Content-Type"), "application/json"))
        return true;
    return false;
}

static void reply_missing(struct web_request *r, json_t *missing)
{
    size_t i;
    json_t *name;
    struct buf fields;
    buf_init(&fields);
    json_array_foreach (missing, i, name) {
        buf_printf(&fields, "%s%s", i ? ", " : "", json_string_value(name));
    }
    char *text = msg_format("http.missing_fields", json_pack("{s:s}", "fields", fields.data));
    buf_cleanup(&fields);
    json_t *body = json_pack("{s:s, s:O}", "error", text, "fields", missing);
    free(text);
    web_reply_json(r, 400, body);
    json_decref(body);
}

int web_json_body(struct web_request *r, const char *const *required, json_t **out)
{
    size_t len = 0;
    const char *body = web_body(r, &len);
    json_t *doc = body && len ? json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
    if (!json_is_object(doc)) {
        json_decref(doc);
        web_reply_json_error(r, 400, msg("http.invalid_request"));
        return USHER_EINVAL;
    }
    json_t *missing = json_array();
    for (; required && *required; required++) {
        const char *v = json_string_value(json_object_get(doc, *required));
        if (!v || !*v)
            json_array_append_new(missing, json_string(*required));
    }
    if (json_array_size(missing)) {
        reply_missing(r, missing);
        json_decref(missing);
        json_decref(doc);
        return USHER_EINVAL;
    }
    json_decref(missing);
    *out = doc;
    return 0;
}

int web_json_email(struct web_request *r, const json_t *body, char **email)
{
    *email = NULL;
    const char *error = NULL;
    if (validate_email(json_string_value(json_object_get(body, "email")), email, &error) == 0)
        return 0;
    json_t *reply = json_pack("{s:s, s:{s:s}}", "error", error, "errors", "email", error);
    web_reply_json(r, 400, reply);
    json_decref(reply);
    return USHER_EINVAL;
}
