/*
 * mustache_internal.h — the compiled form of a Mustache template, shared by the parser
 * (mustache_parse.c), the renderer (mustache_render.c) and the set (mustache.c). Not an API
 * for other modules: include core/mustache.h instead.
 *
 * A template compiles to a tree of nodes. Text is stored already stripped of standalone tag
 * lines, and indentation is an attribute of nodes rather than text: a node with `bol` begins a
 * line of its template, so the renderer writes the current indentation (that of the standalone
 * partial, parent or block being expanded) before it, and after every inner newline of a text
 * node. The root template renders with no indentation, which makes all of that free.
 */
#ifndef USHER_CORE_MUSTACHE_INTERNAL_H
#define USHER_CORE_MUSTACHE_INTERNAL_H

#include "core/mustache.h"

#include <stdbool.h>
#include <stddef.h>

enum mnode_kind {
    MNODE_TEXT, /* literal bytes */
    MNODE_VAR, /* {{x}}: escaped */
    MNODE_RAW, /* {{{x}}} and {{&x}} */
    MNODE_SECTION, /* {{#x}}…{{/x}} */
    MNODE_INVERTED, /* {{^x}}…{{/x}} */
    MNODE_PARTIAL, /* {{>x}} */
    MNODE_PARENT, /* {{<x}}…{{/x}}: body holds the argument blocks */
    MNODE_BLOCK, /* {{$x}}…{{/x}}: a parameter with default body, or an argument */
};

struct mnode;

struct mnode_list {
    struct mnode *v;
    size_t n, cap;
};

struct mnode {
    enum mnode_kind kind;
    bool bol; /* write the current indentation before this node */
    bool standalone; /* blocks: the tag pair stood alone, so an argument gets indented */
    bool dynamic; /* partials/parents: the name is looked up in the data ({{>*x}}) */
    char *str; /* text bytes, or the tag name as written (NUL-terminated) */
    size_t len, cap; /* of str; cap only grows text while parsing */
    char *path; /* the name split at dots: nparts NUL-terminated parts; NULL for text */
    size_t nparts; /* 0 means "." (the top of the context stack) */
    char *indent; /* partials/parents/blocks: indentation the tag carries */
    size_t indent_len;
    struct mnode_list body;
};

struct mtemplate {
    char *name;
    struct mnode_list root;
};

/*
 * Compiles src into *out (the caller frees it with mustache_template_free). On a syntax error
 * returns USHER_EINVAL and sets *error (if error != NULL) to a heap message naming the
 * template and line.
 */
int mustache_parse(const char *name, const char *src, size_t len, struct mtemplate **out,
                   char **error);

/* Frees a compiled template. NULL is a no-op. */
void mustache_template_free(struct mtemplate *t);

/* Looks a template up by name; NULL when the set has none. */
const struct mtemplate *mustache_set_find(const struct mustache_set *set, const char *name);

#endif
