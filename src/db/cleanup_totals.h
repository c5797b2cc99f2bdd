/*
 * cleanup_totals.h — how many rows the periodic cleanup has deleted, by kind.
 *
 * Owns the cleanup_totals table (migration 0004). The cleanup runs in `usher worker` and
 * `/metrics` is served by `usher serve`, so the figure is kept in the database, like
 * task_outcomes, and copied into the metrics registry just before a scrape.
 */
#ifndef USHER_DB_CLEANUP_TOTALS_H
#define USHER_DB_CLEANUP_TOTALS_H

#include <stdint.h>

struct db_conn;

/* Adds n (>= 0; 0 is a no-op) to kind's total. */
int cleanup_totals_add(struct db_conn *conn, const char *kind, int64_t n);
/* Sets usher_cleanup_deleted_total{kind} from the table. */
int cleanup_totals_metrics(struct db_conn *conn);

#endif
