/*
 * testdb.h — a fresh, migrated database for one unit test.
 *
 * On SQLite, a file in a new temporary directory; on PostgreSQL (USHER_TEST_PG_URL), a schema
 * of the test's own, dropped and created again, reached through search_path so parallel
 * suites never meet. Both keep the temporary directory for files the test writes.
 * Failures stop the test (cmocka assertions).
 */
#ifndef USHER_TESTS_TESTDB_H
#define USHER_TESTS_TESTDB_H

#include "db/db.h"

#include <stdbool.h>
#include <stdint.h>

struct testdb {
    struct db_pool *pool;
    char *url;
    char dir[64];
    const char *schema; /* PostgreSQL only */
    int migrations_applied;
};

/* USHER_TEST_PG_URL, or NULL when the PostgreSQL halves are to be skipped. */
const char *testdb_pg_url(void);
/* The data directory (migrations, devstack): USHER_DATA_DIR or the build's default. */
const char *testdb_data_dir(void);
/* name labels the temporary directory; schema is the PostgreSQL schema (used when pg). */
void testdb_open(struct testdb *t, const char *name, bool pg, const char *schema, int pool_size);
void testdb_close(struct testdb *t);
/* One statement on a pooled connection; a failure fails the test. */
void testdb_exec(struct db_pool *pool, const char *sql, const struct db_param *p, int n);
/* The first column of the first row as an integer; -1 for no row or NULL. */
int64_t testdb_scalar(struct db_pool *pool, const char *sql);

#endif
