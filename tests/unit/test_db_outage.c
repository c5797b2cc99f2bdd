/*
 * test_db_outage.c — "the database is out of reach for now" (USHER_EDBDOWN) versus a real
 * database error (USHER_EDB): SQLite still locked after its busy timeout is an outage, a
 * malformed statement is not, and the web layer answers the first 503 and the second 500.
 * (Lost and refused PostgreSQL connections are in test_db.c; a stopped server under a running
 * process in tests/integration/test_db_outage.py.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "db/db.h"
#include "testdb.h"
#include "web/http_error.h"

#include <string.h>

static void test_sqlite_busy_beyond_timeout_is_unavailable(void **state)
{
    (void)state;
    struct testdb t;
    testdb_open(&t, "db-outage", false, NULL, 2);
    struct db_conn *holder = NULL, *waiter = NULL;
    assert_int_equal(db_acquire(t.pool, 1000, &holder), 0);
    assert_int_equal(db_acquire(t.pool, 1000, &waiter), 0);
    assert_int_equal(db_begin(holder, DB_TX_WRITE), 0);
    /* The write lock stays taken past the 5 s busy timeout: try again later, not a bug. */
    assert_int_equal(db_begin(waiter, DB_TX_WRITE), USHER_EDBDOWN);
    assert_int_equal(db_rollback(holder), 0);
    /* The same connection works once the lock is free: nothing had to be reset. */
    assert_int_equal(db_begin(waiter, DB_TX_WRITE), 0);
    assert_int_equal(db_commit(waiter), 0);
    /* A real error stays a real error. */
    assert_int_equal(db_exec(waiter, "SELECT * FROM no_such_table", NULL, 0, NULL), USHER_EDB);
    db_release(waiter);
    db_release(holder);
    testdb_close(&t);
}

static void test_http_status_for_db_errors(void **state)
{
    (void)state;
    assert_int_equal(web_status_for_error(USHER_EDBDOWN), 503);
    assert_int_equal(web_status_for_error(USHER_EDB), 500);
    assert_string_equal(usher_strerror(USHER_EDBDOWN), "database unavailable");
    assert_true(USHER_IS_DB_ERROR(USHER_EDB));
    assert_true(USHER_IS_DB_ERROR(USHER_EDBDOWN));
    assert_false(USHER_IS_DB_ERROR(USHER_ECONFLICT));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sqlite_busy_beyond_timeout_is_unavailable),
        cmocka_unit_test(test_http_status_for_db_errors),
    };
    return cmocka_run_group_tests_name("db_outage", tests, NULL, NULL);
}
