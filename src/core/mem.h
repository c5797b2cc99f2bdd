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

/* Called first in main(). Fixes malloc's thresholds: left dynamic, glibc raises its trim
 * threshold to twice the largest block it ever handed back to the kernel, and one large
 * temporary (SQLite's checkpoint of a long WAL allocates MBs) then keeps every thread arena
 * from shrinking below that — 2–3 MB of free memory per thread after a sustained write load.
 * Fixed: an arena's top is trimmed once more than 1 MB of it is free, and blocks of 512 kB and
 * more get their own mapping, given back when freed. Not glibc's 128 kB default for either:
 * with it, each SQLite dashboard request shrank and regrew the arenas (p50 2.4 -> 4.5 ms in
 * bench/cost_growth.sh). And the main arena plus one per online core, not glibc's 8 per
 * core: no more threads than cores run malloc at once, and each arena beyond keeps its own
 * free pages — about 1 MB less for `usher serve` with WORKER_IN_SERVE (9 threads) after the
 * webhook load, with no change in the plan page's throughput that stood out of the noise.
 * MALLOC_ARENA_MAX or GLIBC_TUNABLES' arena_max, when set, win. No-op without glibc. */
void mem_init(void);

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
