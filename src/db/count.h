/*
 * count.h — row counts that stay cheap on big tables (the admin console's list headers).
 *
 * `SELECT count(*)` over a million rows is most of a list page's time, and an operator only
 * needs "about 1.2 million". So: on PostgreSQL a whole table's count comes from the planner's
 * statistics (pg_class.reltuples, kept by autovacuum/ANALYZE) once they say the table holds at
 * least `threshold` rows, and is exact below that; everywhere else (SQLite, filtered lists)
 * the count is exact but stops at `cap` ("more than cap").
 */
#ifndef USHER_DB_COUNT_H
#define USHER_DB_COUNT_H

#include "db/db.h"

#include <stdbool.h>
#include <stdint.h>

/* The defaults the admin console uses. */
#define DB_COUNT_THRESHOLD 10000
#define DB_COUNT_CAP 10000

struct db_count {
    int64_t n;
    bool estimated; /* n is the planner's estimate */
    bool more; /* there are more than n (= cap) rows */
};

/* All rows of table (an identifier from Usher's own code: [a-z_]+, else USHER_EINVAL). */
int db_count_table(struct db_conn *conn, const char *table, int64_t threshold, int64_t cap,
                   struct db_count *out);
/* Rows that select_sql (a SELECT without LIMIT; params as for db_query) returns, exact up to
 * cap: it runs as SELECT count(*) FROM (<select_sql> LIMIT cap + 1). */
int db_count_capped(struct db_conn *conn, const char *select_sql, const struct db_param *params,
                    int nparams, int64_t cap, struct db_count *out);

#endif
