/*
 * static_files.c — loading and serving static assets (see static_files.h).
 */
#include "web/static_files.h"

#include "core/buf.h"
#include "core/crypto.h"
#include "core/err.h"
#include "core/fileio.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/messages.h"
#include "web/app.h"
#include "web/handlers.h"
#include "web/response.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define STATIC_MAX_FILES 512
#define STATIC_MAX_FILE_BYTES (8 * 1024 * 1024)
#define STATIC_MAX_DEPTH 4

struct entry {
    struct static_file file;
    char *name;
    char *etag;
    char *gz_etag;
    unsigned char *data;
    unsigned char *gz;
};

struct static_files {
    struct entry *entries;
    size_t count;
};

static const struct {
    const char *ext;
    const char *type;
    int compress;
} types[] = {
    {".css", "text/css; charset=utf-8", 1},
    {".js", "text/javascript; charset=utf-8", 1},
    {".svg", "image/svg+xml", 1},
    {".json", "application/json", 1},
    {".txt", "text/plain; charset=utf-8", 1},
    {".png", "image/png", 0},
    {".ico", "image/x-icon", 0},
    {".woff2", "font/woff2", 0},
};

static int type_index(const char *name)
{
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(dot, types[i].ext))
            return (int)i;
    return -1;
}

static int read_file(const char *path, unsigned char **data, size_t *len)
{
    struct buf b;
    buf_init(&b);
    int rc = file_read_all(path, STATIC_MAX_FILE_BYTES, &b);
    *len = b.len;
    *data = (unsigned char *)buf_detach(&b);
    buf_cleanup(&b);
    return rc;
}

static void compress_entry(struct entry *e)
{
    uLongf cap = compressBound((uLong)e->file.len) + 32;
    unsigned char *out = xmalloc(cap);
    z_stream z = {0};
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
        free(out);
        return;
    }
    z.next_in = (unsigned char *)e->data;
    z.avail_in = (uInt)e->file.len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int ok = deflate(&z, Z_FINISH) == Z_STREAM_END && z.total_out < e->file.len;
    size_t out_len = z.total_out;
    deflateEnd(&z);
    if (!ok) {
        free(out);
        return;
    }
    e->gz = out;
    e->file.gz = out;
    e->file.gz_len = out_len;
}

static int add_file(struct static_files *files, const char *path, const char *name)
{
    int t = type_index(name);
    if (t < 0)
        return 0; /* unknown types are not served */
    if (files->count >= STATIC_MAX_FILES)
        return USHER_ELIMIT;
    struct entry *e = &files->entries[files->count];
    memset(e, 0, sizeof *e);
    int rc = read_file(path, &e->data, &e->file.len);
    if (rc != 0) {
        free(e->data);
        return rc;
    }
    unsigned char digest[CRYPTO_SHA256_LEN];
    char hex[CRYPTO_SHA256_HEX_LEN + 1];
    crypto_sha256(e->data, e->file.len, digest);
    crypto_hex(digest, 12, hex);
    e->etag = xasprintf("\"%s\"", hex);
    e->gz_etag = xasprintf("\"%s-gz\"", hex);
    e->name = xstrdup(name);
    e->file.name = e->name;
    e->file.etag = e->etag;
    e->file.gz_etag = e->gz_etag;
    e->file.data = e->data;
    e->file.content_type = types[t].type;
    if (types[t].compress && e->file.len > 256)
        compress_entry(e);
    files->count++;
    return 0;
}

static int scan(struct static_files *files, const char *dir, const char *prefix, int depth)
{
    if (depth > STATIC_MAX_DEPTH)
        return 0;
    DIR *d = opendir(dir);
    if (!d)
        return USHER_EIO;
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char *path = xasprintf("%s/%s", dir, de->d_name);
        char *name = xasprintf("%s%s", prefix, de->d_name);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            char *sub = xasprintf("%s/", name);
            rc = scan(files, path, sub, depth + 1);
            free(sub);
        } else if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            rc = add_file(files, path, name);
        }
        free(path);
        free(name);
    }
    closedir(d);
    return rc;
}

int static_files_load(const char *dir, struct static_files **out)
{
    struct static_files *files = xcalloc(1, sizeof *files);
    files->entries = xcalloc(STATIC_MAX_FILES, sizeof *files->entries);
    int rc = scan(files, dir, "", 0);
    if (rc != 0) {
        log_error("msg=\"static files failed to load\" error=\"%s\"", usher_strerror(rc));
        static_files_free(files);
        return rc;
    }
    *out = files;
    return 0;
}

void static_files_free(struct static_files *files)
{
    if (!files)
        return;
    for (size_t i = 0; i < files->count; i++) {
        free(files->entries[i].name);
        free(files->entries[i].etag);
        free(files->entries[i].gz_etag);
        free(files->entries[i].data);
        free(files->entries[i].gz);
    }
    free(files->entries);
    free(files);
}

const struct static_file *static_files_get(const struct static_files *files, const char *name)
{
    for (size_t i = 0; i < files->count; i++)
        if (!strcmp(files->entries[i].name, name))
            return &files->entries[i].file;
    return NULL;
}

static bool accepts_gzip(const struct web_request *r)
{
    const char *ae = web_header(r, "Accept-Encoding");
    return ae && strstr(ae, "gzip") != NULL;
}

int web_static(struct web_request *r)
{
    const struct static_file *f =
        static_files_get(r->app->static_files, r->path + strlen("/static/"));
    if (!f) {
        web_reply_error(r, 404, msg("http.not_found"));
        return 0;
    }
    bool gzip = f->gz && accepts_gzip(r);
    const char *etag = gzip ? f->gz_etag : f->etag;
    web_set_header(r, "ETag", etag);
    web_set_header(r, "Cache-Control", "public, max-age=3600");
    web_set_header(r, "Vary", "Accept-Encoding");
    const char *inm = web_header(r, "If-None-Match");
    if (inm && strstr(inm, etag)) {
        web_reply_empty(r, 304);
        return 0;
    }
    if (gzip) {
        web_set_header(r, "Content-Encoding", "gzip");
        web_reply_bytes(r, 200, f->content_type, f->gz, f->gz_len);
    } else {
        web_reply_bytes(r, 200, f->content_type, f->data, f->len);
    }
    return 0;
}
