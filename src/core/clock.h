/*
 * clock.h — wall and monotonic time.
 *
 * clock_now() is the only source of "now" for business rules (session expiry, code expiry,
 * rate limits), so tests can move time: when USHER_TEST_CLOCK_FILE names a file, its content
 * (an integer) is added, as seconds, to the real time. The offset is re-read at most once per
 * real second.
 */
#ifndef USHER_CORE_CLOCK_H
#define USHER_CORE_CLOCK_H

#include <stdint.h>

/* Unix time in seconds, UTC, plus the test offset if any. */
int64_t clock_now(void);
/* Monotonic nanoseconds, for durations only. */
int64_t clock_mono_ns(void);
/* Formats t as RFC 3339 UTC ("2026-11-26T07:00:00Z") into out (at least 21 bytes). */
void clock_format_rfc3339(int64_t t, char *out, unsigned long size);

#endif
