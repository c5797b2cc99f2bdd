/*
 * form.c — form bodies and URL pieces, percent-encoded (see form.h).
 */
#include "integrations/form.h"

#include "core/err.h"
#include "core/mem.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

void form_escape(struct buf *out, const char *s, const char *keep)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (unreserved(*p) || (keep && strchr(keep, *p))) {
            buf_putc(out, (char)*p);
        } else {
            char enc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            buf_append(out, enc, 3);
        }
    }
}

void form_init(struct form *f)
{
    buf_init(&f->b);
    f->count = 0;
}

void form_cleanup(struct form *f)
{
    buf_cleanup(&f->b);
    f->count = 0;
}

void form_add(struct form *f, const char *key, const char *value)
{
    if (f->count++)
        buf_putc(&f->b, '&');
    form_escape(&f->b, key, "[]");
    buf_putc(&f->b, '=');
    if (value)
        form_escape(&f->b, value, NULL);
}

void form_add_keyf(struct form *f, const char *value, const char *key_fmt, ...)
{
    struct buf key;
    buf_init(&key);
    va_list ap;
    va_start(ap, key_fmt);
    buf_vprintf(&key, key_fmt, ap);
    va_end(ap);
    form_add(f, key.data, value);
    buf_cleanup(&key);
}

void form_add_long(struct form *f, const char *key, long value)
{
    char num[32];
    snprintf(num, sizeof num, "%ld", value);
    form_add(f, key, num);
}

static void add_scalar(struct form *f, const char *key, const json_t *v)
{
    char num[64];
    switch (json_typeof(v)) {
    case JSON_STRING: form_add(f, key, json_string_value(v)); break;
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        form_add(f, key, num);
        break;
    case JSON_REAL:
        snprintf(num, sizeof num, "%.15g", json_real_value(v));
        form_add(f, key, num);
        break;
    case JSON_TRUE: form_add(f, key, "true"); break;
    case JSON_FALSE: form_add(f, key, "false"); break;
    default: form_add(f, key, ""); break;
    }
}

static int add_json(struct form *f, const char *key, const json_t *v, int depth)
{
    if (depth > FORM_MAX_DEPTH)
        return USHER_EINVAL;
    int rc = 0;
    if (json_is_object(v)) {
        const char *k;
        const json_t *child;
        json_object_foreach ((json_t *)v, k, child) {
            char *sub = xasprintf("%s[%s]", key, k);
            rc = add_json(f, sub, child, depth + 1);
            free(sub);
            if (rc)
                return rc;
        }
    } else if (json_is_array(v)) {
        size_t i;
        const json_t *child;
        json_array_foreach (v, i, child) {
            char *sub = json_is_object(child) || json_is_array(child) ? xasprintf("%s[%zu]", key, i)
                                                                      : xasprintf("%s[]", key);
            rc = add_json(f, sub, child, depth + 1);
            free(sub);
            if (rc)
                return rc;
        }
    } else {
        add_scalar(f, key, v);
    }
    return 0;
}

int form_add_json(struct form *f, const char *key, const json_t *value)
{
    if (!key || !value)
        return USHER_EINVAL;
    return add_json(f, key, value, 0);
}

const char *form_data(const struct form *f)
{
    return f->b.data;
}

size_t form_len(const struct form *f)
{
    return f->b.len;
}

void form_url_segment(struct buf *url, const char *s)
{
    buf_putc(url, '/');
    form_escape(url, s, "@:");
}

void form_url_query(struct buf *url, const char *key, const char *value)
{
    buf_putc(url, memchr(url->data, '?', url->len) ? '&' : '?');
    form_escape(url, key, NULL);
    buf_putc(url, '=');
    form_escape(url, value ? value : "", NULL);
}
