/*
 * cursor.h — opaque, signed keyset-pagination cursors (the admin console's lists).
 *
 * A list page ends with "the row after which the next page starts": its id and, when the list
 * is ordered by something else first, that sort key as text. The cursor carries both, bound
 * to the list it came from, as `<hex payload>.<tag>`, the tag an HMAC under SECRET_KEY. So a
 * cursor is opaque to the browser, a forged or truncated one is refused (USHER_EINVAL) rather
 * than being fed to a query, and one list's cursor cannot be replayed on another. Nothing
 * here is secret: the signature only proves the cursor is one Usher handed out.
 */
#ifndef USHER_CORE_CURSOR_H
#define USHER_CORE_CURSOR_H

#include <stdbool.h>
#include <stdint.h>

#define CURSOR_KEY_MAX 1024 /* bytes of the sort key (a 255-character name in UTF-8 fits) */
#define CURSOR_TEXT_MAX 2200 /* characters of an encoded cursor */

struct cursor {
    int64_t id; /* > 0 */
    bool has_key;
    char key[CURSOR_KEY_MAX + 1]; /* NUL-free text, "" when !has_key */
};

/* The encoded cursor (heap, caller frees), or NULL when c is out of range (id <= 0, key too
 * long or containing NUL) or secret/list is empty. */
char *cursor_encode(const char *secret, const char *list, const struct cursor *c);
/* Decodes text into *out: USHER_EINVAL when it is overlong, malformed, truncated, signed for
 * another list or with another secret, or carries an id outside 1..INT64_MAX. */
int cursor_decode(const char *secret, const char *list, const char *text, struct cursor *out);

#endif
