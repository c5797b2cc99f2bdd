/*
 * mustache.h — Mustache templates: a set of named templates compiled once, rendered many times.
 *
 * This module owns the template language used for every HTML page Usher sends. It implements
 * the Mustache spec (interpolation with HTML escaping, sections, inverted sections, comments,
 * set delimiters, partials with standalone indentation) plus the optional ~inheritance module
 * ({{<parent}}{{$block}}…{{/block}}{{/parent}}, used for page layouts) and ~dynamic-names
 * ({{>*name}}, {{<*name}}). Lambdas are not supported: the data is JSON.
 *
 * Data is a jansson value. Falsey for sections: missing, null, false, an empty array and the
 * empty string "". Everything else is truthy, including 0 and {} (the spec leaves "" and 0 to
 * the host language; "" being falsey lets handlers leave an optional message empty).
 * {{x}} escapes & < > " ' ; {{{x}}} and {{&x}} do not. Numbers print in their shortest exact
 * form, true/false as words; null, objects and arrays print nothing.
 *
 * Threads: build the set (mustache_set_add, mustache_set_load_dir) from one thread before any
 * render starts; after that the set is never modified and any number of threads may call
 * mustache_render on it at once. Rendering never re-parses and takes no locks.
 */
#ifndef USHER_CORE_MUSTACHE_H
#define USHER_CORE_MUSTACHE_H

#include "core/buf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Limits. Templates are our own files, but every input still has a bound. */
#define MUSTACHE_MAX_SOURCE (1024 * 1024) /* bytes of one template's source */
#define MUSTACHE_MAX_NAME 255 /* bytes of a template name */
#define MUSTACHE_MAX_TEMPLATES 4096 /* templates in one set */
#define MUSTACHE_MAX_NESTING 64 /* open sections/blocks inside one template */
#define MUSTACHE_MAX_DEPTH 32 /* partials/parents active in one render */
#define MUSTACHE_MAX_OUTPUT (16 * 1024 * 1024) /* bytes one render may append */
#define MUSTACHE_MAX_STEPS 50000000UL /* template nodes one render may visit */
#define MUSTACHE_MAX_DIR_DEPTH 16 /* directory levels under load_dir's root */

struct mustache_set; /* named, compiled templates */

/* Returns an empty set; free it with mustache_set_free. */
struct mustache_set *mustache_set_new(void);

/* Frees the set and every template in it. NULL is a no-op. */
void mustache_set_free(struct mustache_set *set);

/*
 * Compiles len bytes of source under name, replacing an older template of that name. name and
 * source are borrowed (copied as needed). On a syntax error returns USHER_EINVAL, on a limit
 * USHER_ELIMIT; then the set is unchanged and, if error != NULL, *error is set to a heap
 * message naming the template and line, which the caller frees.
 */
int mustache_set_add(struct mustache_set *set, const char *name, const char *source, size_t len,
                     char **error);

/*
 * Loads every *.mustache file under dir recursively (entries starting with '.' are skipped);
 * a template's name is its path relative to dir without the extension, e.g. "pages/health"
 * or "partials/header". Stops at the first failure: USHER_EIO for a file system error, else
 * as mustache_set_add; *error as there. Templates loaded before the failure stay in the set.
 */
int mustache_set_load_dir(struct mustache_set *set, const char *dir, char **error);
/* The same for the one subdirectory dir/sub, named as the whole directory would name them
 * ("email/recovery_code.txt"): a process that renders only those keeps only those. sub is a
 * single name, without '/' and not starting with '.' (else USHER_EINVAL). */
int mustache_set_load_subdir(struct mustache_set *set, const char *dir, const char *sub,
                             char **error);

/* Whether the set holds a template called name. */
bool mustache_set_has(const struct mustache_set *set, const char *name);

/*
 * Renders template name with ctx (borrowed; may be NULL) appending to out. Partials and
 * parents resolve by name in the same set; a missing one renders as empty (spec). Returns
 * USHER_ENOTFOUND for an unknown template and USHER_ELIMIT when a render limit above is hit
 * (e.g. a partial including itself forever); on any failure out is restored to its length
 * before the call.
 */
int mustache_render(const struct mustache_set *set, const char *name, const json_t *ctx,
                    struct buf *out);

#endif
