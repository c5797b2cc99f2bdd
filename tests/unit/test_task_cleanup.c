/*
 * test_task_cleanup.c — the hourly cleanup job (tasks/builtin.h) deletes exactly what has
 * outlived its purpose and keeps the rest.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "core/mem.h"
#include "db/db.h"
#include "db/migrate.h"
#include "tasks/builtin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOW 1790000000LL
#define DAY 86400LL

static struct db_pool *pool;
static struct db_conn *conn;
static char path[128];

static void unlink_db(void)
{
    char extra[160];
    unlink(path);
    snprintf(extra, sizeof extra, "%s-wal", path);
    unlink(extra);
    snprintf(extra, sizeof extra, "%s-shm", path);
    unlink(extra);
}

static int setup(void **state)
{
    (void)state;
    snprintf(path, sizeof path, "/tmp/usher-test-task-cleanup-%d.sqlite3", (int)getpid());
    unlink_db();
    char *url = xasprintf("sqlite:///%s", path);
    assert_int_equal(db_pool_new(url, 2, &pool), 0);
    free(url);
    char *dir = xasprintf("%s/migrations", getenv("USHER_DATA_DIR"));
    assert_int_equal(db_migrate(pool, dir, NULL), 0);
    free(dir);
    assert_int_equal(db_acquire(pool, 1000, &conn), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    db_release(conn);
    db_pool_free(pool);
    unlink_db();
    return 0;
}

static void exec2(const char *sql, const char *text, int64_t a, int64_t b)
{
    const struct db_param p[] = {DB_TEXT(text), DB_INT(a), DB_INT(b)};
    assert_int_equal(db_exec(conn, sql, p, strstr(sql, "$3") ? 3 : 2, NULL), 0);
}

static int64_t count(const char *sql)
{
    struct db_result *res = NULL;
    assert_int_equal(db_query(conn, sql, NULL, 0, &res), 0);
    int64_t v = db_result_int(res, 0, 0);
    db_result_free(res);
    return v;
}

static void session(const char *hash, int64_t created, int64_t seen)
{
    exec2("INSERT INTO sessions (id_hash, csrf_token, created_at, last_seen_at) "
          "VALUES ($1, 't', $2, $3)",
          hash, created, seen);
}

static void code(const char *email, int64_t expires, int64_t consumed)
{
    exec2("INSERT INTO verification_codes (purpose, email, code_hmac, created_at, expires_at, "
          "consumed_at) VALUES ('signup', $1, 'h', $2 - 600, $2, NULLIF($3, 0))",
          email, expires, consumed);
}

static void event(const char *id, const char *status, int64_t received)
{
    exec2("INSERT INTO stripe_events (event_id, type, created, payload, status, received_at) "
          "VALUES ($1, 'x', $2, '{}', 'pending', $2)",
          id, received, 0);
    const struct db_param p[] = {DB_TEXT(status), DB_TEXT(id)};
    assert_int_equal(
        db_exec(conn, "UPDATE stripe_events SET status = $1 WHERE event_id = $2", p, 2, NULL), 0);
}

static void task(const char *state, int64_t updated)
{
    exec2("INSERT INTO tasks (name, args, state, max_attempts, run_at, created_at, updated_at) "
          "VALUES ('job', '{}', $1, 4, $2, $2, $3)",
          state, updated, updated);
}

static void test_cleanup_deletes_only_what_expired(void **state)
{
    (void)state;
    session("live", NOW - 3600, NOW - 60);
    session("idle", NOW - 3600, NOW - 3600);
    session("old", NOW - 9 * 3600, NOW - 10);

    code("fresh@x.test", NOW + 300, 0);
    code("expired-recently@x.test", NOW - 3600, 0);
    code("expired-long-ago@x.test", NOW - 2 * DAY, 0);
    code("consumed-long-ago@x.test", NOW - 2 * DAY + 300, NOW - 2 * DAY);

    exec2("INSERT INTO rate_limits (bucket, window_start, count) VALUES ($1, $2, 1)", "now",
          NOW - 60, 0);
    exec2("INSERT INTO rate_limits (bucket, window_start, count) VALUES ($1, $2, 1)", "stale",
          NOW - 2 * DAY, 0);

    event("evt_new", "processed", NOW - 29 * DAY);
    event("evt_old", "processed", NOW - 31 * DAY);
    event("evt_old_ignored", "ignored", NOW - 31 * DAY);
    event("evt_old_failed", "failed", NOW - 90 * DAY);
    event("evt_old_pending", "pending", NOW - 90 * DAY);

    task("done", NOW - 31 * DAY);
    task("done", NOW - DAY);
    task("failed", NOW - 365 * DAY);
    task("queued", NOW - 40 * DAY);

    struct cleanup_counts c;
    assert_int_equal(task_cleanup_run(conn, NOW, &c), 0);
    assert_int_equal(c.sessions, 2);
    assert_int_equal(c.codes, 2);
    assert_int_equal(c.rate_limits, 1);
    assert_int_equal(c.stripe_events, 2);
    assert_int_equal(c.tasks, 1);

    assert_int_equal(count("SELECT count(*) FROM sessions WHERE id_hash = 'live'"), 1);
    assert_int_equal(count("SELECT count(*) FROM verification_codes"), 2);
    assert_int_equal(count("SELECT count(*) FROM verification_codes "
                           "WHERE email = 'expired-recently@x.test'"),
                     1);
    assert_int_equal(count("SELECT count(*) FROM rate_limits WHERE bucket = 'now'"), 1);
    assert_int_equal(count("SELECT count(*) FROM stripe_events"), 3);
    assert_int_equal(count("SELECT count(*) FROM stripe_events WHERE event_id IN "
                           "('evt_new', 'evt_old_failed', 'evt_old_pending')"),
                     3);
    assert_int_equal(count("SELECT count(*) FROM tasks"), 3);
    assert_int_equal(count("SELECT count(*) FROM tasks WHERE state = 'failed'"), 1);

    /* What /metrics reports as usher_cleanup_deleted_total{kind}. */
    assert_int_equal(count("SELECT total FROM cleanup_totals WHERE kind = 'sessions'"), 2);
    assert_int_equal(count("SELECT total FROM cleanup_totals WHERE kind = 'stripe_events'"), 2);

    /* Idempotent: a second run finds nothing, and the totals stay. */
    assert_int_equal(task_cleanup_run(conn, NOW, &c), 0);
    assert_int_equal(c.sessions + c.codes + c.rate_limits + c.stripe_events + c.tasks, 0);
    assert_int_equal(count("SELECT total FROM cleanup_totals WHERE kind = 'sessions'"), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cleanup_deletes_only_what_expired, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
