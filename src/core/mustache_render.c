/*
 * mustache_render.c — renders compiled templates (mustache_internal.h) against jansson data.
 *
 * Rendering only reads the set and the data: all state lives on the caller's stack, so any
 * number of threads may render from one set at once. The context stack, the block overrides
 * in effect and the current indentation are linked frames in the C stack of the recursion;
 * recursion is bounded by MUSTACHE_MAX_NESTING per template times MUSTACHE_MAX_DEPTH.
 *
 * Inheritance: {{<parent}} renders the parent template with an environment of overrides
 * (the parent tag's argument blocks). A {{$block}} looks its name up in the environment,
 * outermost first, so the top-level template wins in multi-level inheritance (spec); an
 * argument renders with the environment of the template that wrote it but with the context
 * stack of the place it is expanded (spec "Block scope").
 */
#include "core/err.h"
#include "core/mem.h"
#include "core/mustache_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct render {
    const struct mustache_set *set;
    struct buf *out;
    size_t start; /* out->len before the render, to enforce the output limit */
    unsigned depth;
    unsigned long steps;
};

struct frame { /* one entry of the context stack */
    const json_t *v;
    const struct frame *up;
};

struct env { /* block overrides visible inside a parent template */
    const struct env *outer; /* where the {{<parent}} tag stood; its overrides win */
    const struct mnode *parent; /* the tag; its body holds the argument blocks */
};

struct where { /* everything a node renders against */
    const struct frame *ctx;
    const struct env *env;
    const char *indent;
    size_t indent_len;
};

static int render_list(struct render *r, const struct mnode_list *l, const struct where *w);

/* Name resolution (spec): the first part up the context stack, the rest strictly inside. */
static const json_t *lookup(const struct frame *f, const struct mnode *n)
{
    if (n->nparts == 0)
        return f ? f->v : NULL;
    const char *part = n->path;
    const json_t *v = NULL;
    for (; f && !v; f = f->up)
        v = json_is_object(f->v) ? json_object_get(f->v, part) : NULL;
    for (size_t i = 1; i < n->nparts && v; i++) {
        part += strlen(part) + 1;
        v = json_is_object(v) ? json_object_get(v, part) : NULL;
    }
    return v;
}

static bool truthy(const json_t *v)
{
    if (!v || json_is_null(v) || json_is_false(v))
        return false;
    if (json_is_array(v))
        return json_array_size(v) > 0;
    if (json_is_string(v))
        return json_string_length(v) > 0;
    return true;
}

/* The HTML entity of each character escaping replaces; NULL for the rest. A table, because
 * escaping every value byte by byte was a tenth of a page's render. */
static const char *const html_entities[256] = {
    ['&'] = "&amp;", ['<'] = "&lt;", ['>'] = "&gt;", ['"'] = "&quot;", ['\''] = "&#39;",
};

static void put_escaped(struct buf *out, const char *s, size_t len)
{
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        const char *rep = html_entities[(unsigned char)s[i]];
        if (!rep)
            continue;
        buf_append(out, s + run, i - run);
        buf_puts(out, rep);
        run = i + 1;
    }
    buf_append(out, s + run, len - run);
}

/* Decimal digits without printf's format parsing (prices and counts fill the pages). */
static void put_integer(struct buf *out, json_int_t value)
{
    char digits[24];
    size_t at = sizeof digits;
    /* Negated as unsigned so that the most negative value has a magnitude too. */
    unsigned long long magnitude =
        value < 0 ? 0ULL - (unsigned long long)value : (unsigned long long)value;
    do {
        digits[--at] = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude);
    if (value < 0)
        digits[--at] = '-';
    buf_append(out, digits + at, sizeof digits - at);
}

/* The shortest of %.15g..%.17g that reads back exactly, so 1.21 prints as "1.21". */
static void put_real(struct buf *out, double d)
{
    char tmp[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    buf_puts(out, tmp);
}

static void put_value(struct buf *out, const json_t *v, bool escape)
{
    if (!v)
        return; /* missing: json_typeof would dereference it */
    switch (json_typeof(v)) {
    case JSON_STRING:
        if (escape)
            put_escaped(out, json_string_value(v), json_string_length(v));
        else
            buf_append(out, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER: put_integer(out, json_integer_value(v)); break;
    case JSON_REAL: put_real(out, json_real_value(v)); break;
    case JSON_TRUE: buf_puts(out, "true"); break;
    case JSON_FALSE: buf_puts(out, "false"); break;
    default: break; /* null, objects and arrays have no text form */
    }
}

/* Text with the indentation written after every inner newline (see mustache_internal.h). */
static void render_text(struct render *r, const struct mnode *n, const struct where *w)
{
    if (w->indent_len == 0) {
        buf_append(r->out, n->str, n->len);
        return;
    }
    const char *s = n->str, *end = n->str + n->len;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *stop = nl ? nl + 1 : end;
        buf_append(r->out, s, (size_t)(stop - s));
        s = stop;
        if (s < end)
            buf_append(r->out, w->indent, w->indent_len);
    }
}

static int render_item(struct render *r, const struct mnode *n, const struct where *w,
                       const json_t *item)
{
    struct frame f = {item, w->ctx};
    struct where inner = *w;
    inner.ctx = &f;
    return render_list(r, &n->body, &inner);
}

static int render_section(struct render *r, const struct mnode *n, const struct where *w)
{
    const json_t *v = lookup(w->ctx, n);
    if (!truthy(v))
        return 0;
    if (!json_is_array(v))
        return render_item(r, n, w, v);
    for (size_t i = 0; i < json_array_size(v); i++) {
        int rc = render_item(r, n, w, json_array_get(v, i));
        if (rc)
            return rc;
    }
    return 0;
}

/*
 * Sets inner's indentation to w's followed by add; returns the heap string to free once the
 * nested render ends, or NULL when no concatenation was needed.
 */
static char *join_indent(const struct where *w, const char *add, size_t add_len,
                         struct where *inner)
{
    inner->indent = w->indent;
    inner->indent_len = w->indent_len;
    if (add_len == 0)
        return NULL;
    if (w->indent_len == 0) {
        inner->indent = add;
        inner->indent_len = add_len;
        return NULL;
    }
    char *s = xmalloc(w->indent_len + add_len);
    memcpy(s, w->indent, w->indent_len);
    memcpy(s + w->indent_len, add, add_len);
    inner->indent = s;
    inner->indent_len = w->indent_len + add_len;
    return s;
}

static const struct mtemplate *resolve(const struct render *r, const struct mnode *n,
                                       const struct where *w)
{
    if (!n->dynamic)
        return mustache_set_find(r->set, n->str);
    const json_t *v = lookup(w->ctx, n);
    return json_is_string(v) ? mustache_set_find(r->set, json_string_value(v)) : NULL;
}

/* {{>partial}} and {{<parent}}…{{/parent}}: a missing template renders as nothing (spec). */
static int render_include(struct render *r, const struct mnode *n, const struct where *w)
{
    const struct mtemplate *t = resolve(r, n, w);
    if (!t)
        return 0;
    if (r->depth >= MUSTACHE_MAX_DEPTH)
        return USHER_ELIMIT;
    struct env env = {w->env, n};
    struct where inner = {w->ctx, n->kind == MNODE_PARENT ? &env : NULL, NULL, 0};
    char *owned = join_indent(w, n->indent, n->indent_len, &inner);
    r->depth++;
    int rc = render_list(r, &t->root, &inner);
    r->depth--;
    free(owned);
    return rc;
}

/* The argument overriding block `name`, outermost first; *def gets the env it was written in. */
static const struct mnode *find_arg(const struct env *e, const char *name, const struct env **def)
{
    if (!e)
        return NULL;
    const struct mnode *found = find_arg(e->outer, name, def);
    if (found)
        return found;
    const struct mnode_list *args = &e->parent->body;
    for (size_t i = 0; i < args->n; i++) {
        if (args->v[i].kind == MNODE_BLOCK && strcmp(args->v[i].str, name) == 0) {
            *def = e->outer;
            return &args->v[i];
        }
    }
    return NULL;
}

/*
 * {{$block}}: the argument if one overrides it, else the default body. The default's lines
 * lost the block's indentation when parsed, so it gets it back here; an argument takes the
 * indentation only where the block stood alone on its line (inline it continues the line).
 */
static int render_block(struct render *r, const struct mnode *n, const struct where *w)
{
    const struct env *def = NULL;
    const struct mnode *arg = find_arg(w->env, n->str, &def);
    struct where inner = *w;
    char *owned = NULL;
    if (!arg || n->standalone)
        owned = join_indent(w, n->indent, n->indent_len, &inner);
    else
        inner.indent_len = 0;
    if (arg)
        inner.env = def;
    int rc = render_list(r, arg ? &arg->body : &n->body, &inner);
    free(owned);
    return rc;
}

static int render_node(struct render *r, const struct mnode *n, const struct where *w)
{
    if (++r->steps > MUSTACHE_MAX_STEPS || r->out->len - r->start > MUSTACHE_MAX_OUTPUT)
        return USHER_ELIMIT;
    if (n->bol)
        buf_append(r->out, w->indent, w->indent_len);
    switch (n->kind) {
    case MNODE_TEXT: render_text(r, n, w); return 0;
    case MNODE_VAR:
    case MNODE_RAW: put_value(r->out, lookup(w->ctx, n), n->kind == MNODE_VAR); return 0;
    case MNODE_SECTION: return render_section(r, n, w);
    case MNODE_INVERTED: return truthy(lookup(w->ctx, n)) ? 0 : render_list(r, &n->body, w);
    case MNODE_PARTIAL:
    case MNODE_PARENT: return render_include(r, n, w);
    case MNODE_BLOCK: return render_block(r, n, w);
    }
    return 0;
}

static int render_list(struct render *r, const struct mnode_list *l, const struct where *w)
{
    for (size_t i = 0; i < l->n; i++) {
        int rc = render_node(r, &l->v[i], w);
        if (rc)
            return rc;
    }
    return 0;
}

int mustache_render(const struct mustache_set *set, const char *name, const json_t *ctx,
                    struct buf *out)
{
    const struct mtemplate *t = set && name ? mustache_set_find(set, name) : NULL;
    if (!t)
        return USHER_ENOTFOUND;
    struct render r = {.set = set, .out = out, .start = out->len};
    struct frame root = {ctx, NULL};
    struct where w = {&root, NULL, NULL, 0};
    int rc = render_list(&r, &t->root, &w);
    if (rc) {
        out->len = r.start;
        out->data[out->len] = '\0';
    }
    return rc;
}
