/*
 * validate.c — input rules (see validate.h).
 */
#include "domain/validate.h"

#include "core/err.h"
#include "core/mem.h"
#include "core/messages.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static char *trimmed_copy(const char *in)
{
    while (*in && isspace((unsigned char)*in))
        in++;
    size_t len = strlen(in);
    while (len && isspace((unsigned char)in[len - 1]))
        len--;
    return xstrndup(in, len);
}

static bool email_chars_ok(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p == 0x7f || *p == '<' || *p == '>' || *p == '"' || *p == ',' ||
            *p == ';' || *p == '\\')
            return false;
    return true;
}

int validate_email(const char *in, char **normalized, const char **error)
{
    char *e = trimmed_copy(in ? in : "");
    for (char *p = e; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    const char *at = strchr(e, '@');
    const char *domain = at ? at + 1 : NULL;
    const char *dot = domain ? strrchr(domain, '.') : NULL;
    if (!*e) {
        *error = msg("validate.email_required");
    } else if (strlen(e) > EMAIL_MAX_LEN) {
        *error = msg("validate.email_too_long");
    } else if (!at || at == e || strchr(domain, '@') || !dot || dot == domain || !dot[1] ||
               strstr(domain, "..") || !email_chars_ok(e)) {
        *error = msg("validate.email_invalid");
    } else {
        *normalized = e;
        return 0;
    }
    free(e);
    return USHER_EINVAL;
}

static size_t utf8_length(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xc0) != 0x80)
            n++;
    return n;
}

int validate_name(const char *in, int max, char **normalized, const char **error)
{
    char *name = trimmed_copy(in ? in : "");
    bool controls = false;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            controls = true;
    if (!*name)
        *error = msg("validate.required");
    else if (utf8_length(name) > (size_t)max)
        *error = msg("validate.too_long");
    else if (controls)
        *error = msg("validate.bad_characters");
    else {
        *normalized = name;
        return 0;
    }
    free(name);
    return USHER_EINVAL;
}

int validate_username(const char *in, char **normalized, const char **error)
{
    *normalized = NULL;
    const char *s = in ? in : "";
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        n--;
    if (n == 0) {
        *error = msg("validate.username_required");
        return USHER_EINVAL;
    }
    if (n < USERNAME_MIN_LEN || n > USERNAME_MAX_LEN) {
        *error = msg("validate.username_length");
        return USHER_EINVAL;
    }
    char *out = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-'))) {
            free(out);
            *error = i == 0 ? msg("validate.username_start") : msg("validate.username_characters");
            return USHER_EINVAL;
        }
        out[i] = c;
    }
    out[n] = '\0';
    *normalized = out;
    return 0;
}
