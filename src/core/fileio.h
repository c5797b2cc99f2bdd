/*
 * fileio.h — reading a whole small file (configuration, templates, migrations, assets).
 */
#ifndef USHER_CORE_FILEIO_H
#define USHER_CORE_FILEIO_H

#include "core/buf.h"

#include <stddef.h>

/*
 * Appends the content of the file at path to out, refusing files larger than max_bytes
 * without reading past the limit. Returns 0; USHER_ENOTFOUND when the file does not exist;
 * USHER_ELIMIT when it is too large; USHER_EIO otherwise. errno is left as the failing call
 * set it, for the caller's message.
 */
int file_read_all(const char *path, size_t max_bytes, struct buf *out);

#endif
