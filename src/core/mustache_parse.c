/*
 * mustache_parse.c — compiles Mustache source into the node tree of mustache_internal.h.
 *
 * The source is read one line at a time, because whether a tag is "standalone" (alone on its
 * line apart from whitespace, so that the whole line disappears) is a property of the line.
 * Parents and parameter blocks are judged as pairs: {{<p}}…{{/p}} and {{$b}}…{{/b}} stand
 * alone when the text before the opening tag and the text after the matching closing tag are
 * blank, even if the two tags share a line.
 *
 * Blocks are reindented (spec ~inheritance "Block reindentation"): every line inside a block
 * loses the block's indentation here, and the renderer adds back whatever indentation applies
 * where the block is expanded. A block's indentation is the whitespace before a standalone
 * tag or, when the tag ends its line, that of the line after it.
 */
#include "core/err.h"
#include "core/mem.h"
#include "core/mustache_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPOS ((size_t)-1)
#define MAX_DELIM 16

struct delims {
    char open[MAX_DELIM + 1], close[MAX_DELIM + 1];
    size_t olen, clen;
};

struct tag {
    char sigil; /* 0 variable, or one of & ! = # ^ / > < $ */
    bool dynamic; /* the name started with '*' */
    const char *key; /* the name, trimmed, without sigil or '*' */
    size_t key_len;
    size_t start, end; /* the whole tag, delimiters included */
};

struct scope {
    struct mnode *node; /* the open section/block/parent; NULL at the root */
    struct mnode_list *list; /* where this scope's nodes go */
    int line; /* where node was opened */
    bool pending_bol; /* the next node begins a line */
    bool standalone; /* parents: the pair stands alone, so the close eats its line */
};

struct parser {
    const char *name;
    const char *src;
    size_t len;
    int line;
    struct delims d;
    struct scope stack[MUSTACHE_MAX_NESTING + 1];
    size_t top;
    char **error;
};

/* The line being parsed: [ls, eol) after dedenting, prev = end of what is consumed. */
struct line {
    size_t ls, prev, eol;
};

static int fail(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct parser *p, const char *fmt, ...)
{
    if (!p->error)
        return USHER_EINVAL;
    struct buf b;
    buf_init(&b);
    buf_printf(&b, "template \"%s\" line %d: ", p->name, p->line);
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    *p->error = buf_detach(&b);
    buf_cleanup(&b);
    return USHER_EINVAL;
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static bool all_ws(const struct parser *p, size_t a, size_t b)
{
    for (; a < b; a++)
        if (!is_ws(p->src[a]))
            return false;
    return true;
}

/* Index just past the '\n' ending the line that holds at, or the end of the source. */
static size_t next_line(const struct parser *p, size_t at)
{
    const char *nl = memchr(p->src + at, '\n', p->len - at);
    return nl ? (size_t)(nl - p->src) + 1 : p->len;
}

/* First occurrence of needle starting in [from, to), or NPOS. */
static size_t find(const struct parser *p, size_t from, size_t to, const char *needle, size_t n)
{
    if (to > p->len)
        to = p->len;
    if (from >= to || n > p->len - from)
        return NPOS;
    size_t span = to - from + n - 1;
    if (span > p->len - from)
        span = p->len - from;
    const char *hit = memmem(p->src + from, span, needle, n);
    return hit ? (size_t)(hit - p->src) : NPOS;
}

static void trim(const char **s, size_t *n)
{
    while (*n > 0 && is_ws(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && is_ws((*s)[*n - 1]))
        (*n)--;
}

static bool has_ws(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (is_ws(s[i]))
            return true;
    return false;
}

/* Skips the indentation of every enclosing block at a line start (see the file comment). */
static size_t dedent(const struct parser *p, size_t at)
{
    for (size_t i = 1; i <= p->top; i++) {
        const struct mnode *n = p->stack[i].node;
        if (n->kind != MNODE_BLOCK)
            continue;
        if (p->len - at < n->indent_len || memcmp(p->src + at, n->indent, n->indent_len) != 0)
            break;
        at += n->indent_len;
    }
    return at;
}

static size_t line_indent_end(const struct parser *p, size_t at)
{
    while (at < p->len && (p->src[at] == ' ' || p->src[at] == '\t'))
        at++;
    return at;
}

/* Fills the name fields of t; returns a static message when the name is malformed. */
static const char *cut_name(struct tag *t, const char *s, size_t n)
{
    trim(&s, &n);
    t->dynamic = n > 0 && s[0] == '*' && t->sigil && memchr("></", t->sigil, 3);
    if (t->dynamic) {
        s++;
        n--;
        trim(&s, &n);
    }
    t->key = s;
    t->key_len = n;
    if (t->sigil == '!' || t->sigil == '=')
        return NULL;
    if (n == 0)
        return "empty tag name";
    /* Names are kept as C strings: an embedded NUL would make the stored name shorter than
     * key_len (found by fuzz/fuzz_mustache: a heap over-read closing such a section). */
    if (memchr(s, '\0', n))
        return "tag name contains a NUL byte";
    return has_ws(s, n) ? "tag name contains whitespace" : NULL;
}

/* {{{x}}}: closes with '}' followed by the closing delimiter, on the same line. */
static const char *cut_triple(const struct parser *p, const struct delims *d, size_t in,
                              struct tag *t)
{
    char needle[MAX_DELIM + 2];
    needle[0] = '}';
    memcpy(needle + 1, d->close, d->clen);
    size_t close = find(p, in, next_line(p, in), needle, d->clen + 1);
    if (close == NPOS)
        return "unclosed tag";
    t->sigil = '&';
    t->end = close + d->clen + 1;
    return cut_name(t, p->src + in, close - in);
}

/* Parses the tag whose opening delimiter is at `at`; returns a static message on error. */
static const char *cut_tag(const struct parser *p, const struct delims *d, size_t at, struct tag *t)
{
    size_t in = at + d->olen;
    t->start = at;
    if (in < p->len && p->src[in] == '{')
        return cut_triple(p, d, in + 1, t);
    size_t k = line_indent_end(p, in);
    bool comment = k < p->len && p->src[k] == '!';
    size_t close = find(p, in, comment ? p->len : next_line(p, in), d->close, d->clen);
    if (close == NPOS)
        return comment ? "unclosed comment" : "unclosed tag";
    t->end = close + d->clen;
    const char *s = p->src + k;
    size_t n = close > k ? close - k : 0;
    t->sigil = 0;
    if (n > 0 && s[0] != '\0' && memchr("&!=#^/><$", s[0], 9)) {
        t->sigil = s[0];
        s++;
        n--;
    }
    if (t->sigil == '=') {
        if (n == 0 || s[n - 1] != '=')
            return "set-delimiter tag must end with '='";
        n--;
    }
    return cut_name(t, s, n);
}

/* Reads "<open> <close>" from a set-delimiter tag into d. */
static const char *parse_delims(const struct tag *t, struct delims *d)
{
    const char *s = t->key;
    size_t n = t->key_len, o = 0;
    while (o < n && !is_ws(s[o]))
        o++;
    size_t c = o;
    while (c < n && is_ws(s[c]))
        c++;
    if (o == 0 || c == n || has_ws(s + c, n - c))
        return "set-delimiter tag needs exactly two delimiters";
    if (o > MAX_DELIM || n - c > MAX_DELIM)
        return "delimiter longer than 16 bytes";
    memcpy(d->open, s, o);
    d->open[o] = '\0';
    d->olen = o;
    memcpy(d->close, s + c, n - c);
    d->close[n - c] = '\0';
    d->clen = n - c;
    return NULL;
}

static bool same_name(const struct tag *a, const struct tag *b)
{
    return a->dynamic == b->dynamic && a->key_len == b->key_len &&
           memcmp(a->key, b->key, a->key_len) == 0;
}

/*
 * Index just past the tag closing `open`, or NPOS if there is none or a tag on the way is
 * malformed; the main pass reports such errors with the right line number.
 */
static size_t element_end(const struct parser *p, const struct tag *open)
{
    struct delims d = p->d;
    unsigned level = 1;
    size_t at = open->end;
    while (level > 0) {
        struct tag t;
        size_t s = find(p, at, p->len, d.open, d.olen);
        if (s == NPOS || cut_tag(p, &d, s, &t))
            return NPOS;
        at = t.end;
        if (t.sigil == '=' && parse_delims(&t, &d))
            return NPOS;
        if (same_name(&t, open) && t.sigil && memchr("#^$<", t.sigil, 4))
            level++;
        else if (same_name(&t, open) && t.sigil == '/')
            level--;
    }
    return at;
}

static struct scope *top_scope(struct parser *p)
{
    return &p->stack[p->top];
}

static bool in_parent(const struct parser *p)
{
    const struct mnode *n = p->stack[p->top].node;
    return n && n->kind == MNODE_PARENT;
}

static struct mnode *append_node(struct parser *p, enum mnode_kind kind)
{
    struct scope *s = top_scope(p);
    struct mnode_list *l = s->list;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    struct mnode *n = &l->v[l->n++];
    memset(n, 0, sizeof(*n));
    n->kind = kind;
    n->bol = s->pending_bol;
    s->pending_bol = false;
    return n;
}

static void grow_text(struct mnode *n, const char *s, size_t len)
{
    if (n->len + len + 1 > n->cap) {
        size_t cap = n->cap ? n->cap : 64;
        while (cap < n->len + len + 1)
            cap *= 2;
        n->str = xrealloc(n->str, cap);
        n->cap = cap;
    }
    memcpy(n->str + n->len, s, len);
    n->len += len;
    n->str[n->len] = '\0';
}

/*
 * Adds source bytes [a, b) as text. It joins the previous text node when that keeps the
 * meaning of bol: the renderer indents after every inner newline, so a newline may only
 * become inner when the next line begins right after it.
 */
static void append_text(struct parser *p, size_t a, size_t b)
{
    if (a >= b || in_parent(p))
        return; /* text directly inside {{<parent}} is ignored (spec) */
    struct scope *s = top_scope(p);
    struct mnode *last = s->list->n ? &s->list->v[s->list->n - 1] : NULL;
    if (last && last->kind == MNODE_TEXT) {
        bool nl = last->len > 0 && last->str[last->len - 1] == '\n';
        if (nl == s->pending_bol) {
            s->pending_bol = false;
            grow_text(last, p->src + a, b - a);
            return;
        }
    }
    grow_text(append_node(p, MNODE_TEXT), p->src + a, b - a);
}

static void set_name(struct mnode *n, const struct tag *t)
{
    n->str = xstrndup(t->key, t->key_len);
    n->len = t->key_len;
    n->dynamic = t->dynamic;
    bool lookup = n->dynamic ||
                  (n->kind != MNODE_PARTIAL && n->kind != MNODE_PARENT && n->kind != MNODE_BLOCK);
    if (!lookup || strcmp(n->str, ".") == 0)
        return; /* static names and "." need no path */
    n->path = xstrndup(t->key, t->key_len);
    n->nparts = 1;
    for (char *c = n->path; *c; c++) {
        if (*c == '.') {
            *c = '\0';
            n->nparts++;
        }
    }
}

static void set_indent(struct mnode *n, const struct parser *p, size_t a, size_t b)
{
    n->indent = xstrndup(p->src + a, b - a);
    n->indent_len = b - a;
}

static const char *kind_word(enum mnode_kind k)
{
    switch (k) {
    case MNODE_SECTION: return "section";
    case MNODE_INVERTED: return "inverted section";
    case MNODE_PARENT: return "parent";
    case MNODE_BLOCK: return "block";
    default: return "tag";
    }
}

/* What the line-level analysis decided about one tag. */
struct verdict {
    bool standalone; /* the tag (or pair) is alone on its line(s) */
    bool rest_blank; /* nothing but whitespace follows the tag on its line */
    bool ignore; /* drop the rest of the line */
    size_t ind_a, ind_b; /* indentation the tag carries: source range */
};

static int open_scope(struct parser *p, const struct tag *t, const struct verdict *v)
{
    static const char sig[] = "#^$<";
    static const enum mnode_kind kinds[] = {MNODE_SECTION, MNODE_INVERTED, MNODE_BLOCK,
                                            MNODE_PARENT};
    if (p->top == MUSTACHE_MAX_NESTING)
        return fail(p, "sections nested deeper than %d", MUSTACHE_MAX_NESTING);
    bool arg = t->sigil == '$' && in_parent(p);
    struct mnode *n = append_node(p, kinds[strchr(sig, t->sigil) - sig]);
    set_name(n, t);
    set_indent(n, p, v->ind_a, v->ind_b);
    n->standalone = v->standalone && !arg;
    struct scope *s = &p->stack[++p->top];
    *s = (struct scope){.node = n, .list = &n->body, .line = p->line};
    s->standalone = v->standalone;
    /* Content on the tag's own line begins a line of the block where it is expanded. */
    if (t->sigil == '$' && !v->ignore && (arg || v->standalone))
        s->pending_bol = true;
    return 0;
}

static int close_scope(struct parser *p, const struct tag *t, struct verdict *v)
{
    if (p->top == 0)
        return fail(p, "closing tag \"%.*s\" without an open section", (int)t->key_len, t->key);
    struct scope *s = top_scope(p);
    const struct mnode *n = s->node;
    if (n->dynamic != t->dynamic || n->len != t->key_len || memcmp(n->str, t->key, n->len)) {
        return fail(p, "closing tag \"%.*s\" does not match %s \"%s\" opened on line %d",
                    (int)t->key_len, t->key, kind_word(n->kind), n->str, s->line);
    }
    if (n->kind == MNODE_PARENT)
        v->ignore = s->standalone;
    p->top--;
    return 0;
}

static int add_leaf(struct parser *p, const struct tag *t, const struct verdict *v)
{
    const char *msg;
    struct mnode *n;
    switch (t->sigil) {
    case '!': return 0;
    case '=': msg = parse_delims(t, &p->d); return msg ? fail(p, "%s", msg) : 0;
    case '>':
        n = append_node(p, MNODE_PARTIAL);
        set_indent(n, p, v->ind_a, v->ind_b);
        break;
    case '&': n = append_node(p, MNODE_RAW); break;
    default: n = append_node(p, MNODE_VAR); break;
    }
    set_name(n, t);
    return 0;
}

/* Decides standalone-ness and indentation of tag t on line ln. */
static void judge(struct parser *p, const struct line *ln, const struct tag *t, struct verdict *v)
{
    bool block = t->sigil == '$', arg = block && in_parent(p);
    bool pair = t->sigil == '<' || (block && !arg); /* judged with their closing tag */
    size_t trail = t->end;
    if (pair)
        trail = element_end(p, t);
    v->rest_blank = all_ws(p, t->end, ln->eol);
    v->standalone = ln->prev == ln->ls && t->sigil != 0 && t->sigil != '&' &&
                    all_ws(p, ln->prev, t->start) && trail != NPOS &&
                    all_ws(p, trail, pair ? next_line(p, trail) : ln->eol);
    v->ignore = v->standalone && !pair;
    v->ind_a = v->ind_b = 0;
    if ((arg || (block && v->standalone)) && v->rest_blank) {
        v->ind_a = dedent(p, ln->eol);
        v->ind_b = line_indent_end(p, v->ind_a);
        v->ignore = true;
    } else if (v->standalone) {
        v->ind_a = ln->prev;
        v->ind_b = t->start;
    }
}

static int parse_tag(struct parser *p, struct line *ln, size_t at)
{
    struct tag t;
    const char *msg = cut_tag(p, &p->d, at, &t);
    if (msg)
        return fail(p, "%s", msg);
    struct verdict v;
    judge(p, ln, &t, &v);
    /* Indentation before an inline tag at a line start: the next node begins the line; for a
     * closing tag that node comes after the close. */
    bool bol = !v.standalone && ln->prev == ln->ls;
    bool bol_after = bol && t.start == ln->prev && t.sigil == '/';
    if (bol && !bol_after)
        top_scope(p)->pending_bol = true;
    if (!v.standalone)
        append_text(p, ln->prev, t.start);
    for (const char *c = p->src + at; c < p->src + t.end; c++)
        p->line += *c == '\n'; /* multi-line comments */
    if (t.end > ln->eol)
        ln->eol = next_line(p, t.end);
    int rc;
    if (t.sigil && memchr("#^$<", t.sigil, 4))
        rc = open_scope(p, &t, &v);
    else if (t.sigil == '/')
        rc = close_scope(p, &t, &v);
    else
        rc = add_leaf(p, &t, &v);
    if (bol_after)
        top_scope(p)->pending_bol = true;
    ln->prev = v.ignore ? ln->eol : t.end;
    return rc ? rc : (v.ignore ? 1 : 0);
}

static int parse_line(struct parser *p, size_t *pos)
{
    struct line ln;
    ln.ls = ln.prev = dedent(p, *pos);
    ln.eol = next_line(p, ln.ls);
    size_t at = find(p, ln.ls, ln.eol, p->d.open, p->d.olen);
    if (at == NPOS)
        top_scope(p)->pending_bol = true;
    while (at != NPOS) {
        int rc = parse_tag(p, &ln, at);
        if (rc < 0)
            return rc;
        if (rc > 0)
            break; /* the rest of the line is dropped */
        at = find(p, ln.prev, ln.eol, p->d.open, p->d.olen);
    }
    append_text(p, ln.prev, ln.eol);
    *pos = ln.eol;
    p->line++;
    return 0;
}

static void list_free(struct mnode_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        struct mnode *n = &l->v[i];
        free(n->str);
        free(n->path);
        free(n->indent);
        list_free(&n->body);
    }
    free(l->v);
}

void mustache_template_free(struct mtemplate *t)
{
    if (!t)
        return;
    list_free(&t->root);
    free(t->name);
    free(t);
}

int mustache_parse(const char *name, const char *src, size_t len, struct mtemplate **out,
                   char **error)
{
    struct mtemplate *t = xcalloc(1, sizeof(*t));
    t->name = xstrdup(name);
    struct parser p = {.name = name, .src = src, .len = len, .line = 1, .error = error};
    p.d = (struct delims){.open = "{{", .close = "}}", .olen = 2, .clen = 2};
    p.stack[0].list = &t->root;
    int rc = 0;
    for (size_t pos = 0; pos < len && rc == 0;)
        rc = parse_line(&p, &pos);
    if (rc == 0 && p.top > 0) {
        const struct scope *s = top_scope(&p);
        p.line = s->line;
        rc = fail(&p, "unclosed %s \"%s\"", kind_word(s->node->kind), s->node->str);
    }
    if (rc != 0) {
        mustache_template_free(t);
        return rc;
    }
    *out = t;
    return 0;
}
