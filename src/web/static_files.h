/*
 * static_files.h — /static/… served from memory.
 *
 * Every file under the static directory is read once at start, with its ETag (a SHA-256
 * prefix of the content) and, for text types, a gzip copy. Only names found at start can be
 * served, so no request path ever reaches the filesystem.
 */
#ifndef USHER_WEB_STATIC_FILES_H
#define USHER_WEB_STATIC_FILES_H

#include <stddef.h>

struct static_files;

struct static_file {
    const char *name; /* relative path, e.g. "usher.css" */
    const char *content_type;
    const char *etag; /* quoted */
    const char *gz_etag; /* the gzip representation's own ETag */
    const unsigned char *data;
    size_t len;
    const unsigned char *gz; /* NULL when not worth compressing */
    size_t gz_len;
};

int static_files_load(const char *dir, struct static_files **out);
void static_files_free(struct static_files *files);
/* The file for a relative name, or NULL. */
const struct static_file *static_files_get(const struct static_files *files, const char *name);

#endif
