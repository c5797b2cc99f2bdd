/*
 * mem.c — allocation that aborts on out-of-memory (see mem.h for why).
 */
#include "core/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __GLIBC__ /* defined by the libc headers above */
#include <malloc.h>
#endif

static void out_of_memory(size_t size)
{
    fprintf(stderr, "usher: out of memory allocating %zu bytes\n", size);
    abort();
}

void *xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        out_of_memory(size);
    return p;
}

void *xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        out_of_memory(count * size);
    return p;
}

void *xrealloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (!p)
        out_of_memory(size);
    return p;
}

char *xstrdup(const char *s)
{
    return s ? xstrndup(s, strlen(s)) : NULL;
}

char *xstrndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = xmalloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *xvasprintf(const char *fmt, va_list ap)
{
    char *p = NULL;
    if (vasprintf(&p, fmt, ap) < 0)
        out_of_memory(0);
    return p;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = xvasprintf(fmt, ap);
    va_end(ap);
    return p;
}

void mem_init(void)
{
#ifdef __GLIBC__
    /* A tuning, not a requirement: where malloc is not glibc's (a sanitizer's allocator
     * answers mallopt with 0) the thresholds stay dynamic, and nothing is worth a line on
     * stderr at every command. */
    (void)mallopt(M_TRIM_THRESHOLD, 1024 * 1024);
    (void)mallopt(M_MMAP_THRESHOLD, 512 * 1024);
    const char *tunables = getenv("GLIBC_TUNABLES");
    if (!getenv("MALLOC_ARENA_MAX") && !(tunables && strstr(tunables, "arena_max"))) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        if (cores < 1)
            cores = 1;
        (void)mallopt(M_ARENA_MAX, (int)(cores < 64 ? cores : 64) + 1);
    }
#endif
}

void mem_trim(void)
{
#ifdef __GLIBC__
    (void)malloc_trim(0); /* returns whether anything was released: either is fine */
#endif
}
