/*
 * test_task_store.c — the tasks table as outbox and queue (db/task_store.h), on a migrated
 * SQLite file: transactional enqueue, claims and leases, conditional outcomes, the reaper,
 * the Redis relay's bookkeeping, periodic slots, operator retry and metrics. The rolled-back
 * enqueue also runs on PostgreSQL (testdb.h), whose transactions are the ones production uses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "db/db.h"
#include "db/migrate.h"
#include "db/task_store.h"
#include "testdb.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T0 1790000000LL
#define LEASE 30
#define PG_SCHEMA "usher_test_task_store"

struct fixture {
    struct db_pool *pool;
    struct db_conn *conn;
    char path[128];
    struct testdb tdb; /* PostgreSQL only */
};

static void unlink_db(const char *path)
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
    struct fixture *f = xcalloc(1, sizeof *f);
    snprintf(f->path, sizeof f->path, "/tmp/usher-test-task-store-%d.sqlite3", (int)getpid());
    unlink_db(f->path);
    char *url = xasprintf("sqlite:///%s", f->path);
    assert_int_equal(db_pool_new(url, 8, &f->pool), 0);
    free(url);
    char *dir = xasprintf("%s/migrations", getenv("USHER_DATA_DIR"));
    assert_int_equal(db_migrate(f->pool, dir, NULL), 0);
    free(dir);
    assert_int_equal(db_acquire(f->pool, 1000, &f->conn), 0);
    task_store_set_default_max_attempts(TASK_BUILTIN_MAX_ATTEMPTS);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    db_release(f->conn);
    db_pool_free(f->pool);
    unlink_db(f->path);
    free(f);
    return 0;
}

static int setup_pg(void **state)
{
    struct fixture *f = xcalloc(1, sizeof *f);
    testdb_open(&f->tdb, "task-store", true, PG_SCHEMA, 8);
    f->pool = f->tdb.pool;
    assert_int_equal(db_acquire(f->pool, 1000, &f->conn), 0);
    task_store_set_default_max_attempts(TASK_BUILTIN_MAX_ATTEMPTS);
    *state = f;
    return 0;
}

static int teardown_pg(void **state)
{
    struct fixture *f = *state;
    db_release(f->conn);
    testdb_close(&f->tdb);
    free(f);
    return 0;
}

static int64_t scalar(struct db_conn *c, const char *sql, int64_t arg)
{
    const struct db_param p[] = {DB_INT(arg)};
    struct db_result *res = NULL;
    assert_int_equal(db_query(c, sql, p, strstr(sql, "$1") ? 1 : 0, &res), 0);
    assert_int_equal(db_result_rows(res), 1);
    int64_t v = db_result_int(res, 0, 0);
    db_result_free(res);
    return v;
}

static char *text(struct db_conn *c, const char *sql, int64_t arg)
{
    const struct db_param p[] = {DB_INT(arg)};
    struct db_result *res = NULL;
    assert_int_equal(db_query(c, sql, p, 1, &res), 0);
    assert_int_equal(db_result_rows(res), 1);
    const char *t = db_result_text(res, 0, 0);
    char *copy = t ? xstrdup(t) : NULL;
    db_result_free(res);
    return copy;
}

static int64_t enqueue(struct db_conn *c, const char *name, int max_attempts, int64_t run_at)
{
    json_t *args = json_pack("{s:i}", "n", 1);
    int64_t id = 0;
    assert_int_equal(task_enqueue(c, name, args, max_attempts, run_at, NULL, &id), 0);
    json_decref(args);
    assert_true(id > 0);
    return id;
}

static int64_t outcome_total(struct db_conn *c, const char *name, const char *outcome)
{
    const struct db_param p[] = {DB_TEXT(name), DB_TEXT(outcome)};
    struct db_result *res = NULL;
    assert_int_equal(db_query(c,
                              "SELECT total FROM task_outcomes WHERE name = $1 "
                              "AND outcome = $2",
                              p, 2, &res),
                     0);
    int64_t v = db_result_rows(res) ? db_result_int(res, 0, 0) : 0;
    db_result_free(res);
    return v;
}

/* ---- enqueue ---------------------------------------------------------------------------- */

static void test_enqueue_rolled_back_leaves_no_task(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(db_begin(f->conn, DB_TX_WRITE), 0);
    int64_t id = enqueue(f->conn, "queue_probe", TASK_DEFAULT_MAX_ATTEMPTS, T0);
    assert_int_equal(scalar(f->conn, "SELECT count(*) FROM tasks WHERE id = $1", id), 1);
    assert_int_equal(db_rollback(f->conn), 0);
    assert_int_equal(scalar(f->conn, "SELECT count(*) FROM tasks", 0), 0);

    assert_int_equal(db_begin(f->conn, DB_TX_WRITE), 0);
    id = enqueue(f->conn, "queue_probe", TASK_DEFAULT_MAX_ATTEMPTS, T0);
    assert_int_equal(db_commit(f->conn), 0);
    assert_int_equal(scalar(f->conn, "SELECT count(*) FROM tasks", 0), 1);
    char *state_text = text(f->conn, "SELECT state FROM tasks WHERE id = $1", id);
    assert_string_equal(state_text, "queued");
    free(state_text);
}

static void test_enqueue_dedup_and_bad_input(void **state)
{
    struct fixture *f = *state;
    json_t *args = json_object();
    int64_t id = 0;
    assert_int_equal(task_enqueue(f->conn, "queue_probe", args, 0, T0, "k1", &id), 0);
    assert_true(id > 0);
    assert_int_equal(task_enqueue(f->conn, "queue_probe", args, 0, T0, "k1", &id), 0);
    assert_int_equal(id, 0);
    assert_int_equal(task_enqueue(f->conn, "", args, 0, T0, NULL, &id), USHER_EINVAL);
    assert_int_equal(task_enqueue(f->conn, "x", args, -1, T0, NULL, &id), USHER_EINVAL);
    json_decref(args);
}

static void test_max_attempts_policy(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(task_store_resolve_max_attempts("waitlist_add_member", 0), 4);
    assert_int_equal(task_store_resolve_max_attempts("waitlist_add_member", 2), 2);
    assert_int_equal(task_store_resolve_max_attempts("process_stripe_event", 0), 11);
    assert_int_equal(task_store_resolve_max_attempts("sync_user_post_checkout", 2), 11);
    task_store_set_default_max_attempts(7); /* TASK_MAX_RETRIES=6 */
    assert_int_equal(task_store_resolve_max_attempts("waitlist_add_member", 0), 7);
    task_store_set_default_max_attempts(0); /* ignored */
    assert_int_equal(task_store_default_max_attempts(), 7);
    int64_t id = enqueue(f->conn, "waitlist_add_member", TASK_DEFAULT_MAX_ATTEMPTS, T0);
    assert_int_equal(scalar(f->conn, "SELECT max_attempts FROM tasks WHERE id = $1", id), 7);
    id = enqueue(f->conn, "process_stripe_event", TASK_LONG_MAX_ATTEMPTS, T0);
    assert_int_equal(scalar(f->conn, "SELECT max_attempts FROM tasks WHERE id = $1", id), 11);
}

/* ---- claims, leases, outcomes ----------------------------------------------------------- */

static void test_claim_order_and_due(void **state)
{
    struct fixture *f = *state;
    int64_t later = enqueue(f->conn, "a", 0, T0 + 100);
    int64_t second = enqueue(f->conn, "b", 0, T0 - 5);
    int64_t first = enqueue(f->conn, "c", 0, T0 - 10);
    struct task_claim c;
    bool found = false;
    assert_int_equal(task_claim_next(f->conn, "w1", T0, LEASE, &c, &found), 0);
    assert_true(found);
    assert_int_equal(c.id, first);
    assert_string_equal(c.name, "c");
    assert_string_equal(c.args, "{\"n\":1}");
    assert_int_equal(c.attempt, 1);
    assert_int_equal(c.max_attempts, 4);
    assert_false(c.takeover);
    task_claim_cleanup(&c);
    assert_int_equal(scalar(f->conn, "SELECT lease_until FROM tasks WHERE id = $1", first),
                     T0 + LEASE);
    assert_int_equal(task_claim_next(f->conn, "w1", T0, LEASE, &c, &found), 0);
    assert_int_equal(c.id, second);
    task_claim_cleanup(&c);
    assert_int_equal(task_claim_next(f->conn, "w1", T0, LEASE, &c, &found), 0);
    assert_false(found); /* `later` is not due */
    assert_int_equal(task_claim_next(f->conn, "w1", T0 + 100, LEASE, &c, &found), 0);
    assert_true(found);
    assert_int_equal(c.id, later);
    task_claim_cleanup(&c);
}

static void test_outcomes_are_conditional(void **state)
{
    struct fixture *f = *state;
    int64_t id = enqueue(f->conn, "job", 0, T0);
    struct task_claim c;
    bool found = false, held = false;
    assert_int_equal(task_claim_next(f->conn, "w1", T0, LEASE, &c, &found), 0);
    assert_int_equal(task_heartbeat(f->conn, id, "w1", 1, T0 + 99, &held), 0);
    assert_true(held);
    assert_int_equal(scalar(f->conn, "SELECT lease_until FROM tasks WHERE id = $1", id), T0 + 99);
    assert_int_equal(task_heartbeat(f->conn, id, "w2", 1, T0 + 99, &held), 0);
    assert_false(held);
    assert_int_equal(task_heartbeat(f->conn, id, "w1", 2, T0 + 99, &held), 0);
    assert_false(held);
    assert_int_equal(task_complete(f->conn, id, "w2", 1, T0 + 1, &held), 0);
    assert_false(held);
    assert_int_equal(task_complete(f->conn, id, "w1", 1, T0 + 1, &held), 0);
    assert_true(held);
    assert_int_equal(task_complete(f->conn, id, "w1", 1, T0 + 1, &held), 0);
    assert_false(held); /* already done */
    char *s = text(f->conn, "SELECT state FROM tasks WHERE id = $1", id);
    assert_string_equal(s, "done");
    free(s);
    assert_int_equal(outcome_total(f->conn, "job", "done"), 1);
    task_claim_cleanup(&c);
}

static void test_fail_retry_then_failed(void **state)
{
    struct fixture *f = *state;
    int64_t id = enqueue(f->conn, "job", 2, T0);
    struct task_claim c;
    bool found = false, held = false;
    assert_int_equal(task_claim_next(f->conn, "w1", T0, LEASE, &c, &found), 0);
    char long_error[TASK_ERROR_MAX * 2];
    memset(long_error, 'e', sizeof long_error - 1);
    long_error[sizeof long_error - 1] = '\0';
    assert_int_equal(task_fail(f->conn, id, "w1", 1, T0, 2, T0 + 30, long_error, &held), 0);
    assert_true(held);
    task_claim_cleanup(&c);
    char *s = text(f->conn, "SELECT state FROM tasks WHERE id = $1", id);
    assert_string_equal(s, "queued");
    free(s);
    assert_int_equal(scalar(f->conn, "SELECT run_at FROM tasks WHERE id = $1", id), T0 + 30);
    assert_int_equal(scalar(f->conn, "SELECT length(last_error) FROM tasks WHERE id = $1", id),
                     TASK_ERROR_MAX);
    assert_int_equal(task_claim_next(f->conn, "w1", T0 + 29, LEASE, &c, &found), 0);
    assert_false(found);
    assert_int_equal(task_claim_next(f->conn, "w1", T0 + 30, LEASE, &c, &found), 0);
    assert_true(found);
    assert_int_equal(c.attempt, 2);
    assert_int_equal(task_fail(f->conn, id, "w1", 2, T0 + 31, 2, 0, "upstream down", &held), 0);
    assert_true(held);
    task_claim_cleanup(&c);
    s = text(f->conn, "SELECT state FROM tasks WHERE id = $1", id);
    assert_string_equal(s, "failed");
    free(s);
    s = text(f->conn, "SELECT last_error FROM tasks WHERE id = $1", id);
    assert_string_equal(s, "upstream down");
    free(s);
    assert_int_equal(outcome_total(f->conn, "job", "retry"), 1);
    assert_int_equal(outcome_total(f->conn, "job", "failed"), 1);
}

struct seen {
    int calls;
    int failed;
    int64_t last_id;
};

static void on_expired(void *ctx, int64_t id, const char *name, int attempts, bool failed)
{
    struct seen *s = ctx;
    (void)name;
    (void)attempts;
    s->calls++;
    s->failed += failed;
    s->last_id = id;
}

static void test_expired_lease_is_taken_over_once(void **state)
{
    struct fixture *f = *state;
    int64_t id = enqueue(f->conn, "job", 0, T0);
    int64_t last = enqueue(f->conn, "last", 1, T0);
    struct task_claim a, b, l;
    bool found = false, held = false;
    assert_int_equal(task_claim_next(f->conn, "dead", T0, LEASE, &a, &found), 0);
    assert_int_equal(task_claim_next(f->conn, "dead", T0, LEASE, &l, &found), 0);
    assert_int_equal(l.id, last);
    struct seen seen = {0};
    int n = -1;
    assert_int_equal(task_requeue_expired(f->conn, T0 + LEASE, on_expired, &seen, &n), 0);
    assert_int_equal(n, 0); /* lease_until == now is still held */
    assert_int_equal(task_requeue_expired(f->conn, T0 + LEASE + 1, on_expired, &seen, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(seen.calls, 2);
    assert_int_equal(seen.failed, 1); /* "last" had no attempt left */
    char *s = text(f->conn, "SELECT state FROM tasks WHERE id = $1", last);
    assert_string_equal(s, "failed");
    free(s);

    assert_int_equal(task_claim_next(f->conn, "alive", T0 + LEASE + 1, LEASE, &b, &found), 0);
    assert_true(found);
    assert_int_equal(b.id, id);
    assert_int_equal(b.attempt, 2);
    /* The dead worker wakes up: nothing it writes lands. */
    assert_int_equal(task_complete(f->conn, id, "dead", 1, T0 + 40, &held), 0);
    assert_false(held);
    assert_int_equal(task_heartbeat(f->conn, id, "dead", 1, T0 + 99, &held), 0);
    assert_false(held);
    assert_int_equal(task_complete(f->conn, id, "alive", 2, T0 + 41, &held), 0);
    assert_true(held);
    assert_int_equal(outcome_total(f->conn, "job", "expired"), 1);
    assert_int_equal(outcome_total(f->conn, "job", "done"), 1);
    task_claim_cleanup(&a);
    task_claim_cleanup(&b);
    task_claim_cleanup(&l);
}

static void test_claim_by_id(void **state)
{
    struct fixture *f = *state;
    int64_t due = enqueue(f->conn, "job", 0, T0);
    int64_t future = enqueue(f->conn, "job", 0, T0 + 60);
    struct task_claim c;
    enum task_claim_result r;
    assert_int_equal(task_claim_id(f->conn, due, "w1", T0, LEASE, &c, &r), 0);
    assert_int_equal(r, TASK_CLAIMED);
    assert_int_equal(c.attempt, 1);
    task_claim_cleanup(&c);
    assert_int_equal(task_claim_id(f->conn, due, "w2", T0 + 1, LEASE, &c, &r), 0);
    assert_int_equal(r, TASK_BUSY); /* a duplicate delivery while it runs */
    /* Delivered early (the relaying worker's clock runs ahead of this one's): dropped, and
     * marked unrelayed so the relay sends it again when due, not after the stale sweep. */
    assert_int_equal(task_relay_mark(f->conn, &future, 1, T0), 0);
    assert_int_equal(task_claim_id(f->conn, future, "w2", T0, LEASE, &c, &r), 0);
    assert_int_equal(r, TASK_GONE);
    assert_int_equal(scalar(f->conn,
                            "SELECT count(*) FROM tasks WHERE id = $1 AND state = 'queued' "
                            "AND relayed_at IS NULL AND attempts = 0",
                            future),
                     1);
    assert_int_equal(task_claim_id(f->conn, 999999, "w2", T0, LEASE, &c, &r), 0);
    assert_int_equal(r, TASK_GONE);
    /* w1 died: after its lease, a redelivery takes the task over. */
    assert_int_equal(task_claim_id(f->conn, due, "w2", T0 + LEASE + 1, LEASE, &c, &r), 0);
    assert_int_equal(r, TASK_CLAIMED);
    assert_true(c.takeover);
    assert_int_equal(c.attempt, 2);
    bool held = false;
    assert_int_equal(task_complete(f->conn, due, "w2", 2, T0 + 40, &held), 0);
    assert_true(held);
    task_claim_cleanup(&c);
    assert_int_equal(task_claim_id(f->conn, due, "w3", T0 + 41, LEASE, &c, &r), 0);
    assert_int_equal(r, TASK_GONE);
    assert_int_equal(outcome_total(f->conn, "job", "expired"), 1);
}

/* ---- concurrency ------------------------------------------------------------------------ */

#define CONC_TASKS 200
#define CONC_THREADS 4

struct claimer {
    struct db_pool *pool;
    char name[16];
    int claimed;
    int errors;
};

static void *claim_all(void *arg)
{
    struct claimer *cl = arg;
    for (;;) {
        struct db_conn *conn = NULL;
        if (db_acquire(cl->pool, 5000, &conn) != 0) {
            cl->errors++;
            break;
        }
        struct task_claim c;
        bool found = false, held = false;
        int rc = task_claim_next(conn, cl->name, T0, LEASE, &c, &found);
        if (rc == 0 && found) {
            rc = task_complete(conn, c.id, cl->name, c.attempt, T0, &held);
            if (rc != 0 || !held)
                cl->errors++;
            cl->claimed++;
            task_claim_cleanup(&c);
        }
        db_release(conn);
        if (rc != 0)
            cl->errors++;
        if (rc != 0 || !found)
            break;
    }
    return NULL;
}

static void test_concurrent_claims_run_each_task_once(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(db_begin(f->conn, DB_TX_WRITE), 0);
    for (int i = 0; i < CONC_TASKS; i++)
        enqueue(f->conn, "job", 0, T0);
    assert_int_equal(db_commit(f->conn), 0);
    pthread_t t[CONC_THREADS];
    struct claimer cl[CONC_THREADS];
    for (int i = 0; i < CONC_THREADS; i++) {
        cl[i] = (struct claimer){.pool = f->pool};
        snprintf(cl[i].name, sizeof cl[i].name, "w%d", i);
        assert_int_equal(pthread_create(&t[i], NULL, claim_all, &cl[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < CONC_THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(cl[i].errors, 0);
        total += cl[i].claimed;
    }
    assert_int_equal(total, CONC_TASKS);
    assert_int_equal(scalar(f->conn,
                            "SELECT count(*) FROM tasks WHERE state = 'done' "
                            "AND attempts = 1",
                            0),
                     CONC_TASKS);
    assert_int_equal(outcome_total(f->conn, "job", "done"), CONC_TASKS);
}

/* ---- relay, periodic, operator ---------------------------------------------------------- */

static void test_relay_bookkeeping(void **state)
{
    struct fixture *f = *state;
    int64_t a = enqueue(f->conn, "job", 0, T0 - 1);
    int64_t b = enqueue(f->conn, "job", 0, T0);
    enqueue(f->conn, "job", 0, T0 + 50);
    int64_t ids[8];
    int n = 0;
    bool due = false;
    assert_int_equal(task_any_due(f->conn, T0, true, &due), 0);
    assert_true(due);
    assert_int_equal(db_begin(f->conn, DB_TX_WRITE), 0);
    assert_int_equal(task_relay_pick(f->conn, T0, 8, ids, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], a);
    assert_int_equal(ids[1], b);
    assert_int_equal(task_relay_mark(f->conn, ids, n, T0), 0);
    assert_int_equal(db_commit(f->conn), 0);
    assert_int_equal(task_any_due(f->conn, T0, true, &due), 0);
    assert_false(due);
    assert_int_equal(task_any_due(f->conn, T0, false, &due), 0);
    assert_true(due); /* still queued: the database backend would claim it */
    assert_int_equal(task_relay_pick(f->conn, T0, 8, ids, &n), 0);
    assert_int_equal(n, 0);
    int64_t count = 0;
    assert_int_equal(task_relay_reset(f->conn, T0, &count), 0);
    assert_int_equal(count, 0); /* relayed at T0, not before */
    assert_int_equal(task_relay_reset(f->conn, INT64_MAX, &count), 0);
    assert_int_equal(count, 2);
    assert_int_equal(task_relay_pick(f->conn, T0, 1, ids, &n), 0);
    assert_int_equal(n, 1);
    /* A failed attempt clears relayed_at so the retry is relayed when due. */
    assert_int_equal(task_relay_mark(f->conn, &a, 1, T0), 0);
    struct task_claim c;
    enum task_claim_result r;
    bool held = false;
    assert_int_equal(task_claim_id(f->conn, a, "w1", T0, LEASE, &c, &r), 0);
    assert_int_equal(task_fail(f->conn, a, "w1", 1, T0, 4, T0 + 30, "x", &held), 0);
    task_claim_cleanup(&c);
    assert_int_equal(scalar(f->conn,
                            "SELECT count(*) FROM tasks WHERE id = $1 "
                            "AND relayed_at IS NULL",
                            a),
                     1);
}

static void test_periodic_slots(void **state)
{
    struct fixture *f = *state;
    enum task_periodic_result r;
    assert_int_equal(task_enqueue_periodic(f->conn, "cleanup", "periodic:cleanup:1", T0, &r), 0);
    assert_int_equal(r, TASK_PERIODIC_ENQUEUED);
    assert_int_equal(task_enqueue_periodic(f->conn, "cleanup", "periodic:cleanup:1", T0, &r), 0);
    assert_int_equal(r, TASK_PERIODIC_PRESENT);
    /* The next slot waits while the previous run is still queued or running. */
    assert_int_equal(task_enqueue_periodic(f->conn, "cleanup", "periodic:cleanup:2", T0, &r), 0);
    assert_int_equal(r, TASK_PERIODIC_BUSY);
    struct task_claim c;
    bool found = false, held = false;
    assert_int_equal(task_claim_next(f->conn, "w", T0, LEASE, &c, &found), 0);
    assert_int_equal(task_enqueue_periodic(f->conn, "cleanup", "periodic:cleanup:2", T0, &r), 0);
    assert_int_equal(r, TASK_PERIODIC_BUSY);
    assert_int_equal(task_complete(f->conn, c.id, "w", 1, T0, &held), 0);
    task_claim_cleanup(&c);
    assert_int_equal(task_enqueue_periodic(f->conn, "cleanup", "periodic:cleanup:2", T0, &r), 0);
    assert_int_equal(r, TASK_PERIODIC_ENQUEUED);
    assert_int_equal(scalar(f->conn, "SELECT count(*) FROM tasks WHERE name = 'cleanup'", 0), 2);
}

static void test_operator_retry_list_metrics(void **state)
{
    struct fixture *f = *state;
    int64_t id = enqueue(f->conn, "job", 1, T0);
    struct task_claim c;
    bool found = false, held = false;
    assert_int_equal(task_claim_next(f->conn, "w", T0, LEASE, &c, &found), 0);
    assert_int_equal(task_retry(f->conn, id, T0), USHER_ECONFLICT); /* running */
    assert_int_equal(task_fail(f->conn, id, "w", 1, T0, 1, 0, "boom", &held), 0);
    task_claim_cleanup(&c);
    assert_int_equal(task_retry(f->conn, 424242, T0), USHER_ENOTFOUND);

    struct task_info *items = NULL;
    int n = 0;
    assert_int_equal(task_list(f->conn, "failed", 10, &items, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(items[0].id, id);
    assert_string_equal(items[0].state, "failed");
    assert_string_equal(items[0].last_error, "boom");
    assert_int_equal(items[0].attempts, 1);
    task_info_free_array(items, n);
    assert_int_equal(task_list(f->conn, "bogus", 10, &items, &n), USHER_EINVAL);

    metrics_reset();
    assert_int_equal(task_store_metrics(f->conn), 0);
    struct buf out;
    buf_init(&out);
    metrics_render(&out);
    assert_non_null(strstr(out.data, "usher_tasks_failed 1"));
    assert_non_null(strstr(out.data, "usher_tasks_total{name=\"job\",outcome=\"failed\"} 1"));
    buf_cleanup(&out);

    assert_int_equal(task_retry(f->conn, id, T0 + 5), 0);
    char *s = text(f->conn, "SELECT state FROM tasks WHERE id = $1", id);
    assert_string_equal(s, "queued");
    free(s);
    assert_int_equal(scalar(f->conn, "SELECT attempts FROM tasks WHERE id = $1", id), 0);
    assert_int_equal(scalar(f->conn, "SELECT run_at FROM tasks WHERE id = $1", id), T0 + 5);
    assert_int_equal(task_claim_next(f->conn, "w", T0 + 5, LEASE, &c, &found), 0);
    assert_true(found);
    assert_int_equal(c.attempt, 1);
    /* A task waiting for a retry is made due now. */
    assert_int_equal(task_fail(f->conn, id, "w", 1, T0 + 5, 2, T0 + 500, "again", &held), 0);
    task_claim_cleanup(&c);
    assert_int_equal(task_retry(f->conn, id, T0 + 6), 0);
    assert_int_equal(scalar(f->conn, "SELECT run_at FROM tasks WHERE id = $1", id), T0 + 6);
    metrics_reset();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_enqueue_rolled_back_leaves_no_task, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enqueue_dedup_and_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_attempts_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_order_and_due, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outcomes_are_conditional, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_retry_then_failed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_lease_is_taken_over_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_by_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_claims_run_each_task_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relay_bookkeeping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_periodic_slots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_operator_retry_list_metrics, setup, teardown),
    };
    int failed = cmocka_run_group_tests_name("task_store (sqlite)", tests, NULL, NULL);
    if (!testdb_pg_url()) {
        printf("task_store (postgres): skipped: USHER_TEST_PG_URL unset\n");
        return failed;
    }
    const struct CMUnitTest pg_tests[] = {
        cmocka_unit_test_setup_teardown(test_enqueue_rolled_back_leaves_no_task, setup_pg,
                                        teardown_pg),
    };
    return failed + cmocka_run_group_tests_name("task_store (postgres)", pg_tests, NULL, NULL);
}
