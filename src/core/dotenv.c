/*
 * dotenv.c — `.env` parsing (see dotenv.h for the accepted format).
 */
#include "core/dotenv.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/fileio.h"
#include "core/mem.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define DOTENV_MAX_BYTES (1024 * 1024)

static void add(struct dotenv *env, char *key, char *value)
{
    env->keys = xrealloc(env->keys, (env->count + 1) * sizeof *env->keys);
    env->values = xrealloc(env->values, (env->count + 1) * sizeof *env->values);
    env->keys[env->count] = key;
    env->values[env->count] = value;
    env->count++;
}

static const char *skip_space(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

static int valid_key(const char *p, size_t len)
{
    if (len == 0 || !(isalpha((unsigned char)p[0]) || p[0] == '_'))
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!(isalnum((unsigned char)p[i]) || p[i] == '_'))
            return 0;
    return 1;
}

/* Parses a double-quoted value starting after the quote; returns 0 or USHER_EINVAL. */
static int parse_double_quoted(const char *p, const char *end, struct buf *out)
{
    while (p < end && *p != '"') {
        if (*p == '\\' && p + 1 < end) {
            p++;
            buf_putc(out, *p == 'n' ? '\n' : *p == 't' ? '\t' : *p);
        } else {
            buf_putc(out, *p);
        }
        p++;
    }
    if (p >= end)
        return USHER_EINVAL;
    p = skip_space(p + 1, end);
    return (p == end || *p == '#') ? 0 : USHER_EINVAL;
}

static int parse_value(const char *p, const char *end, struct buf *out)
{
    p = skip_space(p, end);
    if (p < end && *p == '"')
        return parse_double_quoted(p + 1, end, out);
    if (p < end && *p == '\'') {
        const char *close = memchr(p + 1, '\'', (size_t)(end - p - 1));
        if (!close)
            return USHER_EINVAL;
        buf_append(out, p + 1, (size_t)(close - p - 1));
        const char *rest = skip_space(close + 1, end);
        return (rest == end || *rest == '#') ? 0 : USHER_EINVAL;
    }
    const char *stop = end;
    for (const char *q = p; q < end; q++) {
        if (*q == '#' && (q == p || q[-1] == ' ' || q[-1] == '\t')) {
            stop = q;
            break;
        }
    }
    while (stop > p && (stop[-1] == ' ' || stop[-1] == '\t' || stop[-1] == '\r'))
        stop--;
    buf_append(out, p, (size_t)(stop - p));
    return 0;
}

static int parse_line(struct dotenv *env, const char *line, const char *end)
{
    while (end > line && (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    const char *p = skip_space(line, end);
    if (p == end || *p == '#')
        return 0;
    if ((size_t)(end - p) > 7 && strncmp(p, "export ", 7) == 0)
        p = skip_space(p + 7, end);
    const char *eq = memchr(p, '=', (size_t)(end - p));
    if (!eq)
        return USHER_EINVAL;
    const char *key_end = eq;
    while (key_end > p && (key_end[-1] == ' ' || key_end[-1] == '\t'))
        key_end--;
    if (!valid_key(p, (size_t)(key_end - p)))
        return USHER_EINVAL;
    struct buf value;
    buf_init(&value);
    if (parse_value(eq + 1, end, &value) != 0) {
        buf_cleanup(&value);
        return USHER_EINVAL;
    }
    add(env, xstrndup(p, (size_t)(key_end - p)), buf_detach(&value));
    buf_cleanup(&value);
    return 0;
}

int dotenv_parse(struct dotenv *env, const char *text, int *bad_line)
{
    int line_no = 0;
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        const char *end = nl ? nl : p + strlen(p);
        line_no++;
        if (parse_line(env, p, end) != 0) {
            if (bad_line)
                *bad_line = line_no;
            return USHER_EINVAL;
        }
        p = nl ? nl + 1 : end;
    }
    return 0;
}

int dotenv_load(struct dotenv *env, const char *path, int *bad_line)
{
    struct buf text;
    buf_init(&text);
    int rc = file_read_all(path, DOTENV_MAX_BYTES, &text);
    if (rc == USHER_ENOTFOUND)
        rc = 0; /* no .env file: nothing to add */
    else if (rc == 0)
        rc = dotenv_parse(env, text.data, bad_line);
    buf_cleanup(&text);
    return rc;
}

const char *dotenv_get(const struct dotenv *env, const char *key)
{
    for (size_t i = env->count; i > 0; i--)
        if (strcmp(env->keys[i - 1], key) == 0)
            return env->values[i - 1];
    return NULL;
}

void dotenv_cleanup(struct dotenv *env)
{
    for (size_t i = 0; i < env->count; i++) {
        free(env->keys[i]);
        free(env->values[i]);
    }
    free(env->keys);
    free(env->values);
    env->keys = env->values = NULL;
    env->count = 0;
}
