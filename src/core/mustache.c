/*
 * mustache.c — the template set: named compiled templates, and loading them from a directory.
 *
 * The set is an open-addressing hash table of templates keyed by name. It is only written
 * while loading (one thread, before rendering starts) and only read afterwards, so lookups
 * during concurrent renders need no lock. Parsing lives in mustache_parse.c and rendering in
 * mustache_render.c.
 */
#include "core/err.h"
#include "core/fileio.h"
#include "core/mem.h"
#include "core/mustache_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXT ".mustache"
#define EXT_LEN (sizeof(EXT) - 1)

struct mustache_set {
    struct mtemplate **slots; /* cap entries, NULL when free */
    size_t cap; /* a power of two, kept at least twice count */
    size_t count;
};

static void set_error(char **error, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_error(char **error, const char *fmt, ...)
{
    if (!error)
        return;
    va_list ap;
    va_start(ap, fmt);
    *error = xvasprintf(fmt, ap);
    va_end(ap);
}

static uint64_t hash_name(const char *s)
{
    uint64_t h = 14695981039346656037ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

/* The slot holding name, or the free slot where it would go. */
static struct mtemplate **slot_for(const struct mustache_set *set, const char *name)
{
    size_t mask = set->cap - 1;
    for (size_t i = hash_name(name) & mask;; i = (i + 1) & mask) {
        struct mtemplate **s = &set->slots[i];
        if (!*s || strcmp((*s)->name, name) == 0)
            return s;
    }
}

static void grow(struct mustache_set *set)
{
    struct mtemplate **old = set->slots;
    size_t old_cap = set->cap;
    set->cap *= 2;
    set->slots = xcalloc(set->cap, sizeof(*set->slots));
    for (size_t i = 0; i < old_cap; i++)
        if (old[i])
            *slot_for(set, old[i]->name) = old[i];
    free(old);
}

struct mustache_set *mustache_set_new(void)
{
    struct mustache_set *set = xcalloc(1, sizeof(*set));
    set->cap = 64;
    set->slots = xcalloc(set->cap, sizeof(*set->slots));
    return set;
}

void mustache_set_free(struct mustache_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->cap; i++)
        mustache_template_free(set->slots[i]);
    free(set->slots);
    free(set);
}

const struct mtemplate *mustache_set_find(const struct mustache_set *set, const char *name)
{
    return *slot_for(set, name);
}

bool mustache_set_has(const struct mustache_set *set, const char *name)
{
    return set && name && mustache_set_find(set, name);
}

static int check_add(const struct mustache_set *set, const char *name, const char *source,
                     size_t len, char **error)
{
    size_t name_len = name ? strlen(name) : 0;
    if (!set || !source || name_len == 0 || name_len > MUSTACHE_MAX_NAME) {
        set_error(error, "template name must be 1..%d bytes", MUSTACHE_MAX_NAME);
        return USHER_EINVAL;
    }
    if (len > MUSTACHE_MAX_SOURCE) {
        set_error(error, "template \"%s\": %zu bytes, more than the limit of %d", name, len,
                  MUSTACHE_MAX_SOURCE);
        return USHER_ELIMIT;
    }
    if (!*slot_for(set, name) && set->count >= MUSTACHE_MAX_TEMPLATES) {
        set_error(error, "template \"%s\": the set already holds %d templates", name,
                  MUSTACHE_MAX_TEMPLATES);
        return USHER_ELIMIT;
    }
    return 0;
}

int mustache_set_add(struct mustache_set *set, const char *name, const char *source, size_t len,
                     char **error)
{
    int rc = check_add(set, name, source, len, error);
    if (rc)
        return rc;
    struct mtemplate *t = NULL;
    rc = mustache_parse(name, source, len, &t, error);
    if (rc)
        return rc;
    struct mtemplate **slot = slot_for(set, name);
    if (*slot) {
        mustache_template_free(*slot); /* replacing: count stays */
    } else if ((set->count + 1) * 2 > set->cap) {
        grow(set);
        slot = slot_for(set, name);
    }
    if (!*slot)
        set->count++;
    *slot = t;
    return 0;
}

/* Reads the whole file at path (at most MUSTACHE_MAX_SOURCE bytes) into *data. */
static int read_file(const char *path, char **data, size_t *len, char **error)
{
    struct buf text;
    buf_init(&text);
    int rc = file_read_all(path, MUSTACHE_MAX_SOURCE, &text);
    if (rc == USHER_ELIMIT)
        set_error(error, "%s: larger than the limit of %d bytes", path, MUSTACHE_MAX_SOURCE);
    else if (rc < 0)
        set_error(error, "%s: %s", path, strerror(errno));
    if (rc < 0) {
        buf_cleanup(&text);
        return rc == USHER_ELIMIT ? rc : USHER_EIO;
    }
    *len = text.len;
    *data = buf_detach(&text);
    buf_cleanup(&text);
    return 0;
}

static int load_tree(struct mustache_set *set, const char *dir, const char *prefix, int depth,
                     char **error);

/* One directory entry: recurse into directories, load *.mustache files, skip the rest. */
static int load_entry(struct mustache_set *set, const char *dir, const char *prefix,
                      const char *entry, int depth, char **error)
{
    char *path = xasprintf("%s/%s", dir, entry);
    char *name = xasprintf("%s%s", prefix, entry);
    char *data = NULL;
    size_t len = 0, name_len = strlen(name);
    struct stat st;
    int rc = 0;
    if (stat(path, &st) != 0) {
        set_error(error, "%s: %s", path, strerror(errno));
        rc = USHER_EIO;
    } else if (S_ISDIR(st.st_mode)) {
        char *sub = xasprintf("%s/", name);
        rc = load_tree(set, path, sub, depth + 1, error);
        free(sub);
    } else if (S_ISREG(st.st_mode) && name_len > EXT_LEN &&
               strcmp(name + name_len - EXT_LEN, EXT) == 0) {
        name[name_len - EXT_LEN] = '\0';
        rc = read_file(path, &data, &len, error);
        if (rc == 0)
            rc = mustache_set_add(set, name, data, len, error);
    }
    free(data);
    free(name);
    free(path);
    return rc;
}

static int load_tree(struct mustache_set *set, const char *dir, const char *prefix, int depth,
                     char **error)
{
    if (depth > MUSTACHE_MAX_DIR_DEPTH) {
        set_error(error, "%s: more than %d directory levels", dir, MUSTACHE_MAX_DIR_DEPTH);
        return USHER_ELIMIT;
    }
    DIR *d = opendir(dir);
    if (!d) {
        set_error(error, "%s: %s", dir, strerror(errno));
        return USHER_EIO;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') /* ".", "..", and hidden files such as editor swap files */
            rc = load_entry(set, dir, prefix, e->d_name, depth, error);
    }
    closedir(d);
    return rc;
}

int mustache_set_load_dir(struct mustache_set *set, const char *dir, char **error)
{
    if (!set || !dir) {
        set_error(error, "mustache_set_load_dir: no set or directory");
        return USHER_EINVAL;
    }
    return load_tree(set, dir, "", 0, error);
}

int mustache_set_load_subdir(struct mustache_set *set, const char *dir, const char *sub,
                             char **error)
{
    if (!set || !dir || !sub || !*sub || *sub == '.' || strchr(sub, '/')) {
        set_error(error, "mustache_set_load_subdir: no set, directory or subdirectory name");
        return USHER_EINVAL;
    }
    char *path = xasprintf("%s/%s", dir, sub);
    char *prefix = xasprintf("%s/", sub);
    int rc = load_tree(set, path, prefix, 1, error);
    free(prefix);
    free(path);
    return rc;
}
