/*
 * fileio.c — whole-file reads with a size limit (see fileio.h).
 */
#include "core/fileio.h"

#include "core/err.h"

#include <errno.h>
#include <stdio.h>

int file_read_all(const char *path, size_t max_bytes, struct buf *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? USHER_ENOTFOUND : USHER_EIO;
    size_t start = out->len;
    char chunk[8192];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (out->len - start + n > max_bytes) {
            rc = USHER_ELIMIT;
            break;
        }
        buf_append(out, chunk, n);
    }
    if (rc == 0 && ferror(f))
        rc = USHER_EIO;
    int saved = errno;
    fclose(f);
    errno = saved;
    return rc;
}
