/*
 * fuzz_util.h — helpers shared by the libFuzzer harnesses in fuzz/ (see fuzz/README.md).
 *
 * Several harnesses feed more than one input to the code under test (a template and its data,
 * a header and a body). Their input is then split into parts at FUZZ_SEP bytes (ASCII record
 * separator, 0x1e), which the seed corpora and dictionaries use; a missing part is empty.
 * Every part is a fresh heap copy, NUL-terminated, so ASan sees reads past its end.
 */
#ifndef USHER_FUZZ_UTIL_H
#define USHER_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_SEP 0x1e
#define FUZZ_MAX_PARTS 8

/* libFuzzer's entry points (no header declares them). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

struct fuzz_parts {
    size_t count;
    char *part[FUZZ_MAX_PARTS]; /* heap, NUL-terminated (embedded NULs kept in len) */
    size_t len[FUZZ_MAX_PARTS];
};

/* Splits data into at most want parts (the last one takes the rest, separators and all). */
static inline void fuzz_split(const uint8_t *data, size_t size, size_t want, struct fuzz_parts *p)
{
    size_t start = 0;
    memset(p, 0, sizeof *p);
    if (want > FUZZ_MAX_PARTS)
        want = FUZZ_MAX_PARTS;
    for (size_t i = 0; i < want; i++) {
        size_t end = start;
        if (i + 1 < want)
            while (end < size && data[end] != FUZZ_SEP)
                end++;
        else
            end = size;
        if (start > size)
            end = start = size;
        p->len[i] = end - start;
        p->part[i] = malloc(p->len[i] + 1);
        if (!p->part[i])
            abort();
        if (p->len[i])
            memcpy(p->part[i], data + start, p->len[i]);
        p->part[i][p->len[i]] = '\0';
        start = end + 1;
    }
    p->count = want;
}

static inline void fuzz_parts_free(struct fuzz_parts *p)
{
    for (size_t i = 0; i < p->count; i++)
        free(p->part[i]);
    p->count = 0;
}

/* A NUL-terminated heap copy of data (the caller frees). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Stops the run with a message: a property the code promises did not hold. */
#define FUZZ_ASSERT(cond)                                                                      \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "fuzz: property failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

#endif
