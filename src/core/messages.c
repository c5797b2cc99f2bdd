/*
 * messages.c — the message table (messages.h): the ids the code uses, the loaded texts and
 * the {{name}} substitution.
 */
#include "core/messages.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Every id the code passes to msg or msg_format, sorted; tests/unit/test_messages.c checks
 * this list against the calls in src/ and against the file. */
static const char *const ids[] = {
#include "core/message_ids.inc"
};

#define ID_COUNT (sizeof ids / sizeof ids[0])

static json_t *table; /* id -> text; NULL before a load */

size_t messages_id_count(void)
{
    return ID_COUNT;
}

const char *messages_id(size_t i)
{
    return i < ID_COUNT ? ids[i] : NULL;
}

static int fail(char **error, int rc, const char *fmt, const char *path, const char *detail)
{
    if (error)
        *error = xasprintf(fmt, path, detail);
    return rc;
}

/* Whether every "{{" in text is closed by "}}" around a plain name. */
static int placeholders_ok(const char *text)
{
    for (const char *p = strstr(text, "{{"); p; p = strstr(p, "{{")) {
        const char *end = strstr(p + 2, "}}");
        if (!end || end == p + 2)
            return 0;
        for (const char *c = p + 2; c < end; c++)
            if (!(*c == '_' || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9')))
                return 0;
        p = end + 2;
    }
    return 1;
}

int messages_load_file(const char *path, char **error)
{
    if (error)
        *error = NULL;
    struct stat st;
    if (stat(path, &st) != 0)
        return fail(error, USHER_EIO, "message table %s: %s", path, "cannot be read");
    if (st.st_size > MESSAGES_MAX_BYTES)
        return fail(error, USHER_ELIMIT, "message table %s: %s", path, "too large");
    json_error_t jerr;
    json_t *loaded = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!loaded)
        return fail(error, USHER_EINVAL, "message table %s: not valid JSON: %s", path, jerr.text);
    int rc = 0;
    if (!json_is_object(loaded)) {
        rc = fail(error, USHER_EINVAL, "message table %s: %s", path, "not a JSON object");
        goto out;
    }
    for (size_t i = 0; i < ID_COUNT; i++) {
        json_t *text = json_object_get(loaded, ids[i]);
        if (!text) {
            rc = fail(error, USHER_EINVAL, "message table %s: missing id \"%s\"", path, ids[i]);
            goto out;
        }
        if (!json_is_string(text) || !placeholders_ok(json_string_value(text))) {
            rc = fail(error, USHER_EINVAL,
                      "message table %s: \"%s\" is not a string with {{name}} placeholders", path,
                      ids[i]);
            goto out;
        }
    }
    const char *key;
    json_t *value;
    json_object_foreach (loaded, key, value) {
        size_t i = 0;
        while (i < ID_COUNT && strcmp(ids[i], key))
            i++;
        if (i == ID_COUNT) {
            rc = fail(error, USHER_EINVAL, "message table %s: unknown id \"%s\" (no code uses it)",
                      path, key);
            goto out;
        }
    }
    json_decref(table);
    table = loaded;
    return 0;
out:
    json_decref(loaded);
    return rc;
}

int messages_load(const char *data_dir, char **error)
{
    char *path = xasprintf("%s/%s", data_dir, MESSAGES_FILE);
    int rc = messages_load_file(path, error);
    free(path);
    return rc;
}

void messages_unload(void)
{
    json_decref(table);
    table = NULL;
}

const char *msg(const char *id)
{
    const char *text = table ? json_string_value(json_object_get(table, id)) : NULL;
    return text ? text : id;
}

char *msg_format(const char *id, json_t *vars)
{
    const char *text = msg(id);
    struct buf out;
    buf_init(&out);
    for (const char *p = text;;) {
        const char *open = strstr(p, "{{");
        const char *close = open ? strstr(open + 2, "}}") : NULL;
        if (!close) {
            buf_puts(&out, p);
            break;
        }
        buf_append(&out, p, (size_t)(open - p));
        char name[64];
        size_t len = (size_t)(close - open - 2);
        if (len < sizeof name) {
            memcpy(name, open + 2, len);
            name[len] = '\0';
            json_t *v = json_object_get(vars, name);
            if (json_is_string(v))
                buf_puts(&out, json_string_value(v));
            else if (json_is_integer(v))
                buf_printf(&out, "%lld", (long long)json_integer_value(v));
        }
        p = close + 2;
    }
    json_decref(vars);
    char *formatted = buf_detach(&out);
    buf_cleanup(&out); /* buf_detach leaves a fresh empty buffer behind */
    return formatted;
}
