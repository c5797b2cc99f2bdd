/*
 * log.c — one line per event on stderr, written with a single write() so lines from
 * several threads never interleave.
 */
#include "core/log.h"

#include "core/clock.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int min_level = LOG_INFO;

static const char *level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level level)
{
    atomic_store(&min_level, (int)level);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if ((int)level < atomic_load(&min_level))
        return;
    /* The timestamp is formatted once a second per thread: gmtime_r takes glibc's time zone
     * lock, which every web thread met on every access line. */
    static _Thread_local int64_t ts_second = -1;
    static _Thread_local char ts[32];
    int64_t now = (int64_t)time(NULL);
    if (now != ts_second) {
        clock_format_rfc3339(now, ts, sizeof ts);
        ts_second = now;
    }
    char line[2048];
    int n = snprintf(line, sizeof line, "%s level=%s ", ts, level_names[level]);
    if (n < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2; /* truncated: long lines are cut, never split */
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w; /* nowhere left to report a failed log write */
}

void log_quote(char *out, size_t size, const char *in)
{
    size_t o = 0;
    if (size == 0)
        return;
    for (const unsigned char *p = (const unsigned char *)(in ? in : ""); *p; p++) {
        char esc[5];
        size_t n;
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            n = 2;
        } else if (*p < 0x20 || *p == 0x7f) {
            snprintf(esc, sizeof esc, "\\x%02x", *p);
            n = 4;
        } else {
            esc[0] = (char)*p;
            n = 1;
        }
        if (o + n + 1 > size)
            break;
        memcpy(out + o, esc, n);
        o += n;
    }
    out[o] = '\0';
}
