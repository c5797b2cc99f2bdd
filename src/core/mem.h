/*
 * mem.h — allocation that cannot fail.
 *
 * Usher's own allocations abort the process on out-of-memory: there is no sane recovery in a
 * request handler, and checking every small allocation hides real error paths. NULLs returned
 * by libraries are still checked where they are returned.
 */
#ifndef USHER_CORE_MEM_H
#define USHER_CORE_MEM_H

#include <stdarg.h>
#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *ptr, size_t size);
/* Returned strings belong to the caller (free()). xstrdup(NULL) returns NULL. */
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* How often the long-running processes call mem_trim: `usher serve` from its main thread,
 * `usher worker` from its housekeeping thread. */
#define MEM_TRIM_INTERVAL_MS 1000

/* Hands the whole free pages malloc keeps back to the kernel. glibc returns freed memory of a
 * thread's arena only from its top: after a burst (each connection's buffers, a request's
 * JSON), the free chunks left in the middle stay resident — 1–2 MB per web thread after a
 * load test. A few tens of microseconds when there is nothing to give back. No-op without
 * glibc. */
void mem_trim(void);

#endif
