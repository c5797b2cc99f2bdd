/*
 * metrics.c — the registry behind metrics.h.
 *
 * Series live in one hash table under one mutex: a request touches it twice (counter and
 * histogram), far below the cost of the request itself. Families keep first-seen help text
 * and are rendered sorted by name so scrapes are stable.
 */
#include "core/metrics.h"

#include "core/mem.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TABLE_SIZE 1024
#define MAX_BUCKETS 16

const double metrics_latency_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                          0.05,   0.1,   0.25,   0.5,   1.0,  2.5};
const int metrics_latency_bucket_count =
    (int)(sizeof metrics_latency_buckets / sizeof metrics_latency_buckets[0]);

struct series {
    struct series *next;
    char *family;
    char *help;
    char *labels;
    enum metric_type type;
    double value; /* counter/gauge value, histogram sum */
    unsigned long long count;
    int bucket_count;
    double bounds[MAX_BUCKETS];
    unsigned long long buckets[MAX_BUCKETS];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct series *table[TABLE_SIZE];
static size_t series_count;

static unsigned hash2(const char *a, const char *b)
{
    unsigned h = 2166136261u;
    for (; *a; a++)
        h = (h ^ (unsigned char)*a) * 16777619u;
    h = (h ^ 0xff) * 16777619u;
    for (; *b; b++)
        h = (h ^ (unsigned char)*b) * 16777619u;
    return h;
}

/* Caller holds lock. */
static struct series *find_or_add(const char *family, const char *help, const char *labels,
                                  enum metric_type type)
{
    labels = labels ? labels : "";
    unsigned slot = hash2(family, labels) % TABLE_SIZE;
    for (struct series *s = table[slot]; s; s = s->next)
        if (!strcmp(s->family, family) && !strcmp(s->labels, labels))
            return s;
    struct series *s = xcalloc(1, sizeof *s);
    s->family = xstrdup(family);
    s->help = xstrdup(help);
    s->labels = xstrdup(labels);
    s->type = type;
    s->next = table[slot];
    table[slot] = s;
    series_count++;
    return s;
}

void metrics_counter_add(const char *family, const char *help, const char *labels, double v)
{
    pthread_mutex_lock(&lock);
    find_or_add(family, help, labels, METRIC_COUNTER)->value += v;
    pthread_mutex_unlock(&lock);
}

void metrics_counter_set(const char *family, const char *help, const char *labels, double v)
{
    pthread_mutex_lock(&lock);
    find_or_add(family, help, labels, METRIC_COUNTER)->value = v;
    pthread_mutex_unlock(&lock);
}

void metrics_gauge_set(const char *family, const char *help, const char *labels, double v)
{
    pthread_mutex_lock(&lock);
    find_or_add(family, help, labels, METRIC_GAUGE)->value = v;
    pthread_mutex_unlock(&lock);
}

void metrics_observe(const char *family, const char *help, const char *labels, double v,
                     const double *bounds, int bucket_count)
{
    if (bucket_count > MAX_BUCKETS)
        bucket_count = MAX_BUCKETS;
    pthread_mutex_lock(&lock);
    struct series *s = find_or_add(family, help, labels, METRIC_HISTOGRAM);
    if (s->bucket_count == 0) {
        s->bucket_count = bucket_count;
        memcpy(s->bounds, bounds, (size_t)bucket_count * sizeof *bounds);
    }
    for (int i = 0; i < s->bucket_count; i++)
        if (v <= s->bounds[i])
            s->buckets[i]++;
    s->count++;
    s->value += v;
    pthread_mutex_unlock(&lock);
}

void metrics_labels(struct buf *out, int pair_count, ...)
{
    va_list ap;
    va_start(ap, pair_count);
    for (int i = 0; i < pair_count; i++) {
        const char *name = va_arg(ap, const char *);
        const char *value = va_arg(ap, const char *);
        buf_printf(out, "%s%s=\"", i ? "," : "", name);
        for (const char *p = value ? value : ""; *p; p++) {
            if (*p == '\\' || *p == '"')
                buf_putc(out, '\\');
            if (*p == '\n')
                buf_puts(out, "\\n");
            else
                buf_putc(out, *p);
        }
        buf_putc(out, '"');
    }
    va_end(ap);
}

static int compare_series(const void *a, const void *b)
{
    const struct series *x = *(const struct series *const *)a;
    const struct series *y = *(const struct series *const *)b;
    int c = strcmp(x->family, y->family);
    return c ? c : strcmp(x->labels, y->labels);
}

static void render_sample(struct buf *out, const char *name, const char *suffix, const char *labels,
                          const char *extra, double v)
{
    bool has = labels && *labels;
    bool has_extra = extra && *extra;
    buf_printf(out, "%s%s", name, suffix);
    if (has || has_extra)
        buf_printf(out, "{%s%s%s}", has ? labels : "", has && has_extra ? "," : "",
                   has_extra ? extra : "");
    buf_printf(out, " %.17g\n", v);
}

static void render_histogram(struct buf *out, const struct series *s)
{
    char le[64];
    for (int i = 0; i < s->bucket_count; i++) {
        snprintf(le, sizeof le, "le=\"%g\"", s->bounds[i]);
        render_sample(out, s->family, "_bucket", s->labels, le, (double)s->buckets[i]);
    }
    render_sample(out, s->family, "_bucket", s->labels, "le=\"+Inf\"", (double)s->count);
    render_sample(out, s->family, "_sum", s->labels, NULL, s->value);
    render_sample(out, s->family, "_count", s->labels, NULL, (double)s->count);
}

void metrics_render(struct buf *out)
{
    static const char *type_names[] = {"counter", "gauge", "histogram"};
    pthread_mutex_lock(&lock);
    struct series **all = xmalloc((series_count ? series_count : 1) * sizeof *all);
    size_t n = 0;
    for (size_t i = 0; i < TABLE_SIZE; i++)
        for (struct series *s = table[i]; s; s = s->next)
            all[n++] = s;
    qsort(all, n, sizeof *all, compare_series);
    const char *family = NULL;
    for (size_t i = 0; i < n; i++) {
        struct series *s = all[i];
        if (!family || strcmp(family, s->family)) {
            family = s->family;
            buf_printf(out, "# HELP %s %s\n", family, s->help);
            buf_printf(out, "# TYPE %s %s\n", family, type_names[s->type]);
        }
        if (s->type == METRIC_HISTOGRAM)
            render_histogram(out, s);
        else
            render_sample(out, s->family, "", s->labels, NULL, s->value);
    }
    free(all);
    pthread_mutex_unlock(&lock);
}

void metrics_reset(void)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < TABLE_SIZE; i++) {
        struct series *s = table[i];
        while (s) {
            struct series *next = s->next;
            free(s->family);
            free(s->help);
            free(s->labels);
            free(s);
            s = next;
        }
        table[i] = NULL;
    }
    series_count = 0;
    pthread_mutex_unlock(&lock);
}
