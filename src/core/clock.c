/*
 * clock.c — wall time with an optional test offset, and monotonic time.
 */
#include "core/clock.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static pthread_mutex_t offset_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t offset_read_at = -1;
static int64_t offset_seconds;

static int64_t read_offset(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char text[32] = {0};
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    return end == text ? 0 : (int64_t)v;
}

int64_t clock_now(void)
{
    int64_t real = (int64_t)time(NULL);
    static const char *path;
    static int path_checked;
    pthread_mutex_lock(&offset_lock);
    if (!path_checked) {
        path = getenv("USHER_TEST_CLOCK_FILE");
        path_checked = 1;
    }
    if (path && offset_read_at != real) {
        offset_seconds = read_offset(path);
        offset_read_at = real;
    }
    int64_t now = real + offset_seconds;
    pthread_mutex_unlock(&offset_lock);
    return now;
}

int64_t clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void clock_format_rfc3339(int64_t t, char *out, unsigned long size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        if (size)
            out[0] = '\0';
    }
}
