/*
 * dotenv.h — reads a `.env` file into a key/value list.
 *
 * Format: KEY=VALUE per line; blank lines and lines starting with # are ignored; an optional
 * leading `export `; values may be wrapped in single quotes (taken literally) or double quotes
 * (\n, \", \\ escapes); unquoted values end at ` #` comments and are trimmed. A malformed line
 * is reported by number, never by content (it may hold a secret).
 */
#ifndef USHER_CORE_DOTENV_H
#define USHER_CORE_DOTENV_H

#include <stddef.h>

struct dotenv {
    size_t count;
    char **keys;
    char **values;
};

/* Parses text. On a malformed line returns USHER_EINVAL and sets *bad_line (1-based). */
int dotenv_parse(struct dotenv *env, const char *text, int *bad_line);
/* Reads and parses path; a missing file is an empty list (returns 0). */
int dotenv_load(struct dotenv *env, const char *path, int *bad_line);
/* Borrowed value of the last definition of key, or NULL. */
const char *dotenv_get(const struct dotenv *env, const char *key);
void dotenv_cleanup(struct dotenv *env);

#endif
