/*
 * metrics.h — a small in-process Prometheus registry.
 *
 * Counters and histograms are keyed by family name and a preformatted label set
 * (`route="health",method="GET"`; build it with metrics_labels so values are escaped).
 * Gauges are set just before a scrape by whoever owns the figure. metrics_render writes the
 * text exposition format (version 0.0.4). All calls are thread-safe.
 */
#ifndef USHER_CORE_METRICS_H
#define USHER_CORE_METRICS_H

#include "core/buf.h"

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

/* Default latency buckets, in seconds. */
extern const double metrics_latency_buckets[];
extern const int metrics_latency_bucket_count;

void metrics_counter_add(const char *family, const char *help, const char *labels, double v);
/* For cumulative counts kept elsewhere (e.g. the pool's), copied in before a scrape. */
void metrics_counter_set(const char *family, const char *help, const char *labels, double v);
void metrics_gauge_set(const char *family, const char *help, const char *labels, double v);
void metrics_observe(const char *family, const char *help, const char *labels, double v,
                     const double *buckets, int bucket_count);
/* Appends `name="escaped value"` pairs to out, comma-separated; pairs are (name, value). */
void metrics_labels(struct buf *out, int pair_count, ...);
void metrics_render(struct buf *out);
/* Drops every series (tests). */
void metrics_reset(void);

#endif
