/*
 * buf.h — a growable byte buffer, always NUL-terminated.
 *
 * The caller owns the struct (buf_init/buf_cleanup); buf_detach hands the bytes over.
 */
#ifndef USHER_CORE_BUF_H
#define USHER_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *data; /* NUL-terminated; never NULL after buf_init */
    size_t len;
    size_t cap;
};

void buf_init(struct buf *b);
void buf_cleanup(struct buf *b);
void buf_reset(struct buf *b);
/* Room for extra more bytes (and the NUL) without growing again. */
void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *data, size_t len);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Returns the heap string (caller frees) and leaves b empty but usable. */
char *buf_detach(struct buf *b);

#endif
