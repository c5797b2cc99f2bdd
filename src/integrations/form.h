/*
 * form.h — percent-encoding for outgoing requests: application/x-www-form-urlencoded bodies
 * with Stripe-style nested keys, URL path segments and query strings.
 *
 * Bodies: keys keep their brackets literal (`line_items[0][price]`, `expand[]`), as Stripe's
 * own SDKs send them; every other byte outside RFC 3986's unreserved set is %XX-encoded in
 * keys and values alike (space as %20, never '+'). Stripe, Keycloak and Mailgun decode both.
 *
 * The caller owns a struct form (form_init / form_cleanup). Keys and values are borrowed and
 * copied in encoded form at once.
 */
#ifndef USHER_INTEGRATIONS_FORM_H
#define USHER_INTEGRATIONS_FORM_H

#include "core/buf.h"

#include <jansson.h>
#include <stddef.h>

/* Deepest nesting form_add_json encodes (Stripe nests at most a few levels). */
#define FORM_MAX_DEPTH 8

struct form {
    struct buf b; /* the encoded body so far: k=v&k=v */
    size_t count; /* pairs added */
};

void form_init(struct form *f);
void form_cleanup(struct form *f);

/* Appends key=value; value NULL sends an empty value (Stripe reads "" as "unset"). */
void form_add(struct form *f, const char *key, const char *value);
/* The same with a printf-built key: form_add_keyf(f, "price_x", "line_items[%zu][price]", i). */
void form_add_keyf(struct form *f, const char *value, const char *key_fmt, ...)
    __attribute__((format(printf, 3, 4)));
void form_add_long(struct form *f, const char *key, long value);

/*
 * Encodes a JSON value under key, Stripe's way: an object member k as key[k], an array of
 * objects or arrays as key[0], key[1], …, an array of scalars as key[] repeated; strings as
 * they are, integers and reals as numbers, true/false as "true"/"false", null as an empty
 * value. Returns 0, or USHER_EINVAL when nesting exceeds FORM_MAX_DEPTH.
 */
int form_add_json(struct form *f, const char *key, const json_t *value);

const char *form_data(const struct form *f);
size_t form_len(const struct form *f);

/*
 * Percent-encodes s onto out: RFC 3986 unreserved characters (A-Z a-z 0-9 - . _ ~) and any
 * character of keep (may be NULL) stay, everything else becomes %XX (uppercase hex).
 */
void form_escape(struct buf *out, const char *s, const char *keep);

/* Appends "/" and s as one URL path segment ('@' and ':' stay, '/' and '?' are encoded). */
void form_url_segment(struct buf *url, const char *s);

/* Appends "?key=value", or "&key=value" when url already has a query. Both are fully
 * percent-encoded (brackets too: `expand%5B%5D=customer`), as a URL requires. */
void form_url_query(struct buf *url, const char *key, const char *value);

#endif
