/*
 * task_store.c — the tasks table: enqueue, claim, lease, outcome, relay bookkeeping
 * (see task_store.h).
 *
 * SQL text is shared by both dialects except where PostgreSQL row locking is wanted
 * (FOR UPDATE SKIP LOCKED); those statements branch on db_conn_dialect. Functions that make
 * several changes open their own write transaction (BEGIN IMMEDIATE on SQLite), except the
 * relay's, which run inside the caller's.
 */
#include "db/task_store.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "db/db.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_int default_max_attempts = TASK_BUILTIN_MAX_ATTEMPTS;

/* Tasks whose loss would leave a paying customer without access (SPEC §8). */
static const char *const long_schedule_names[] = {"process_stripe_event",
                                                  "sync_user_post_checkout"};

void task_store_set_default_max_attempts(int max_attempts)
{
    if (max_attempts >= 1 && max_attempts <= TASK_MAX_ATTEMPTS_LIMIT)
        atomic_store(&default_max_attempts, max_attempts);
}

int task_store_default_max_attempts(void)
{
    return atomic_load(&default_max_attempts);
}

int task_store_resolve_max_attempts(const char *name, int max_attempts)
{
    int n = max_attempts > 0 ? max_attempts : task_store_default_max_attempts();
    if (n > TASK_MAX_ATTEMPTS_LIMIT)
        n = TASK_MAX_ATTEMPTS_LIMIT;
    for (size_t i = 0; i < sizeof long_schedule_names / sizeof long_schedule_names[0]; i++)
        if (name && !strcmp(name, long_schedule_names[i]) && n < TASK_LONG_MAX_ATTEMPTS)
            n = TASK_LONG_MAX_ATTEMPTS;
    return n;
}

int task_enqueue(struct db_conn *conn, const char *name, const json_t *args, int max_attempts,
                 int64_t run_at, const char *dedup_key, int64_t *id)
{
    if (!name || !*name || strlen(name) > TASK_NAME_MAX || max_attempts < 0)
        return USHER_EINVAL;
    char *text = json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return USHER_EINVAL;
    int64_t now = clock_now();
    /* The user the task concerns, for the admin console's user page (indexed, 0007). */
    json_t *user = json_object_get(args, "user_id");
    json_int_t user_id = json_is_integer(user) ? json_integer_value(user) : 0;
    const struct db_param p[] = {DB_TEXT(name),
                                 DB_TEXT(text),
                                 DB_INT(task_store_resolve_max_attempts(name, max_attempts)),
                                 DB_INT(run_at),
                                 DB_INT(now),
                                 DB_TEXT_OR_NULL(dedup_key),
                                 user_id > 0 ? DB_INT(user_id) : DB_NULL};
    struct db_result *res = NULL;
    int rc = db_query(conn,
                      "INSERT INTO tasks (name, args, state, attempts, max_attempts, run_at, "
                      "created_at, updated_at, dedup_key, user_id) "
                      "VALUES ($1, $2, 'queued', 0, $3, $4, $5, $5, $6, $7) "
                      "ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
                      p, DB_NPARAMS(p), &res);
    if (rc == 0 && id)
        *id = db_result_rows(res) ? db_result_int(res, 0, 0) : 0;
    db_result_free(res);
    free(text);
    return rc;
}

int task_enqueue_periodic(struct db_conn *conn, const char *name, const char *dedup_key,
                          int64_t now, enum task_periodic_result *result)
{
    *result = TASK_PERIODIC_BUSY;
    const struct db_param p[] = {DB_TEXT(name), DB_INT(task_store_resolve_max_attempts(name, 0)),
                                 DB_INT(now), DB_TEXT(dedup_key)};
    struct db_result *res = NULL;
    int rc = db_query(conn,
                      "INSERT INTO tasks (name, args, state, attempts, max_attempts, run_at, "
                      "created_at, updated_at, dedup_key) "
                      "SELECT CAST($1 AS TEXT), '{}', 'queued', 0, CAST($2 AS INTEGER), "
                      "CAST($3 AS BIGINT), CAST($3 AS BIGINT), CAST($3 AS BIGINT), "
                      "CAST($4 AS TEXT) "
                      "WHERE NOT EXISTS (SELECT 1 FROM tasks WHERE name = $1 "
                      "AND state IN ('queued', 'running')) "
                      "ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
                      p, DB_NPARAMS(p), &res);
    bool inserted = rc == 0 && db_result_rows(res) == 1;
    db_result_free(res);
    if (rc != 0 || inserted) {
        if (inserted)
            *result = TASK_PERIODIC_ENQUEUED;
        return rc;
    }
    const struct db_param k[] = {DB_TEXT(dedup_key)};
    rc = db_query(conn, "SELECT 1 FROM tasks WHERE dedup_key = $1", k, 1, &res);
    if (rc == 0 && db_result_rows(res) == 1)
        *result = TASK_PERIODIC_PRESENT;
    db_result_free(res);
    return rc;
}

/* ---- helpers ---------------------------------------------------------------------------- */

static void copy_text(char *out, size_t size, const char *in)
{
    size_t n = in ? strlen(in) : 0;
    if (n >= size)
        n = size - 1;
    if (n)
        memcpy(out, in, n);
    out[n] = '\0';
}

/* error cut to TASK_ERROR_MAX bytes without splitting a UTF-8 sequence; heap. */
static char *cut_error(const char *error)
{
    const char *e = error && *error ? error : "failed";
    size_t n = strlen(e);
    if (n <= TASK_ERROR_MAX)
        return xstrdup(e);
    n = TASK_ERROR_MAX;
    while (n > 0 && ((unsigned char)e[n] & 0xC0) == 0x80)
        n--;
    return xstrndup(e, n);
}

/* Adds n to a cumulative outcome count. A transaction that records an outcome takes this
 * row lock last (after its task rows), so counting never closes a lock cycle. */
static int count_outcome_n(struct db_conn *conn, const char *name, const char *outcome, int64_t n)
{
    const struct db_param p[] = {DB_TEXT(name), DB_TEXT(outcome), DB_INT(n)};
    return db_exec(conn,
                   "INSERT INTO task_outcomes (name, outcome, total) VALUES ($1, $2, $3) "
                   "ON CONFLICT (name, outcome) DO UPDATE SET total = task_outcomes.total + $3",
                   p, DB_NPARAMS(p), NULL);
}

static int count_outcome(struct db_conn *conn, const char *name, const char *outcome)
{
    return count_outcome_n(conn, name, outcome, 1);
}

/* Commits on rc == 0, rolls back otherwise; returns the first error. */
static int finish_tx(struct db_conn *conn, int rc)
{
    if (rc == 0)
        return db_commit(conn);
    db_rollback(conn);
    return rc;
}

static void fill_claim(const struct db_result *res, struct task_claim *out)
{
    memset(out, 0, sizeof *out);
    out->id = db_result_int(res, 0, db_result_col(res, "id"));
    const char *name = db_result_text(res, 0, db_result_col(res, "name"));
    const char *args = db_result_text(res, 0, db_result_col(res, "args"));
    out->name = xstrdup(name ? name : "");
    out->args = xstrdup(args ? args : "{}");
    out->attempt = (int)db_result_int(res, 0, db_result_col(res, "attempts"));
    out->max_attempts = (int)db_result_int(res, 0, db_result_col(res, "max_attempts"));
}

void task_claim_cleanup(struct task_claim *c)
{
    if (!c)
        return;
    free(c->name);
    free(c->args);
    memset(c, 0, sizeof *c);
}

/* ---- claiming --------------------------------------------------------------------------- */

static const char claim_next_pg[] =
    "UPDATE tasks SET state = 'running', lease_until = $2, worker = $3, "
    "attempts = attempts + 1, updated_at = $1 "
    "WHERE id = (SELECT id FROM tasks WHERE state = 'queued' AND run_at <= $1 "
    "ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) AND state = 'queued' "
    "RETURNING id, name, args, attempts, max_attempts";

static const char claim_next_sqlite[] =
    "UPDATE tasks SET state = 'running', lease_until = $2, worker = $3, "
    "attempts = attempts + 1, updated_at = $1 "
    "WHERE id = (SELECT id FROM tasks WHERE state = 'queued' AND run_at <= $1 "
    "ORDER BY run_at, id LIMIT 1) AND state = 'queued' "
    "RETURNING id, name, args, attempts, max_attempts";

int task_claim_next(struct db_conn *conn, const char *worker, int64_t now, int lease_seconds,
                    struct task_claim *out, bool *found)
{
    *found = false;
    const struct db_param p[] = {DB_INT(now), DB_INT(now + lease_seconds), DB_TEXT(worker)};
    const char *sql = db_conn_dialect(conn) == DB_POSTGRES ? claim_next_pg : claim_next_sqlite;
    int rc = db_begin(conn, DB_TX_WRITE);
    if (rc != 0)
        return rc;
    struct db_result *res = NULL;
    rc = db_query(conn, sql, p, DB_NPARAMS(p), &res);
    rc = finish_tx(conn, rc);
    if (rc == 0 && db_result_rows(res) == 1) {
        fill_claim(res, out);
        *found = true;
    }
    db_result_free(res);
    return rc;
}

/* Decides from the row as read whether the stream's delivery may be claimed; *early: queued
 * but not due by this worker's clock (see task_claim_id). */
static enum task_claim_result judge(const struct db_result *row, int64_t now, bool *takeover,
                                    bool *early)
{
    const char *state = db_result_text(row, 0, 0);
    int64_t run_at = db_result_int(row, 0, 1);
    bool lease_null = db_result_is_null(row, 0, 2);
    int64_t lease_until = db_result_int(row, 0, 2);
    int64_t attempts = db_result_int(row, 0, 3);
    int64_t max_attempts = db_result_int(row, 0, 4);
    *takeover = false;
    *early = false;
    if (!state)
        return TASK_GONE;
    if (!strcmp(state, "queued")) {
        *early = run_at > now;
        return *early ? TASK_GONE : TASK_CLAIMED;
    }
    if (strcmp(state, "running"))
        return TASK_GONE;
    if (!lease_null && lease_until >= now)
        return TASK_BUSY;
    /* A dead worker's task. With attempts left, take it over; the last attempt is the
     * reaper's to mark failed. */
    if (attempts >= max_attempts)
        return TASK_GONE;
    *takeover = true;
    return TASK_CLAIMED;
}

int task_claim_id(struct db_conn *conn, int64_t id, const char *worker, int64_t now,
                  int lease_seconds, struct task_claim *out, enum task_claim_result *result)
{
    *result = TASK_GONE;
    int rc = db_begin(conn, DB_TX_WRITE);
    if (rc != 0)
        return rc;
    const struct db_param pid[] = {DB_INT(id)};
    struct db_result *row = NULL;
    rc = db_query(conn,
                  "SELECT state, run_at, lease_until, attempts, max_attempts FROM tasks "
                  "WHERE id = $1",
                  pid, 1, &row);
    if (rc != 0 || db_result_rows(row) != 1) {
        db_result_free(row);
        return finish_tx(conn, rc);
    }
    bool takeover = false, early = false;
    enum task_claim_result verdict = judge(row, now, &takeover, &early);
    const struct db_param p[] = {DB_INT(id),
                                 DB_INT(now),
                                 DB_INT(now + lease_seconds),
                                 DB_TEXT(worker),
                                 DB_TEXT(db_result_text(row, 0, 0)),
                                 DB_INT(db_result_int(row, 0, 3))};
    struct db_result *res = NULL;
    if (verdict == TASK_CLAIMED) {
        /* Conditional on the state and attempts just read: a concurrent claim makes this
         * affect no row (PostgreSQL re-checks the WHERE after waiting for the row lock). */
        rc = db_query(conn,
                      "UPDATE tasks SET state = 'running', lease_until = $3, worker = $4, "
                      "attempts = attempts + 1, updated_at = $2 "
                      "WHERE id = $1 AND state = $5 AND attempts = $6 "
                      "RETURNING id, name, args, attempts, max_attempts",
                      p, DB_NPARAMS(p), &res);
        if (rc == 0 && db_result_rows(res) == 1) {
            fill_claim(res, out);
            out->takeover = takeover;
            if (takeover)
                rc = count_outcome(conn, out->name, "expired");
            if (rc != 0)
                task_claim_cleanup(out);
            else
                *result = TASK_CLAIMED;
        } else if (rc == 0) {
            verdict = TASK_BUSY; /* someone claimed it in between */
        }
    } else if (early) {
        /* Delivered before it is due by this worker's clock: relayed by a worker whose
         * clock runs ahead of ours, or rescheduled since. The delivery is dropped; marked
         * unrelayed, the row is relayed again once due by the relaying clock, instead of
         * waiting for the sweep of stale relays (ten leases). */
        rc = db_exec(conn, "UPDATE tasks SET relayed_at = NULL WHERE id = $1 AND state = 'queued'",
                     pid, 1, NULL);
    }
    if (verdict != TASK_CLAIMED)
        *result = verdict;
    db_result_free(res);
    db_result_free(row);
    rc = finish_tx(conn, rc);
    if (rc != 0 && *result == TASK_CLAIMED) {
        task_claim_cleanup(out);
        *result = TASK_BUSY;
    }
    return rc;
}

/* ---- leases and outcomes ---------------------------------------------------------------- */

int task_heartbeat(struct db_conn *conn, int64_t id, const char *worker, int attempt,
                   int64_t lease_until, bool *held)
{
    const struct db_param p[] = {DB_INT(id), DB_TEXT(worker), DB_INT(attempt), DB_INT(lease_until)};
    int64_t n = 0;
    int rc = db_exec(conn,
                     "UPDATE tasks SET lease_until = $4 "
                     "WHERE id = $1 AND worker = $2 AND attempts = $3 AND state = 'running'",
                     p, DB_NPARAMS(p), &n);
    *held = rc == 0 && n == 1;
    return rc;
}

/* Runs one conditional outcome UPDATE … RETURNING name and counts the outcome, in one
 * write transaction. */
static int record_outcome(struct db_conn *conn, const char *sql, const struct db_param *p, int np,
                          const char *outcome, bool *held)
{
    *held = false;
    int rc = db_begin(conn, DB_TX_WRITE);
    if (rc != 0)
        return rc;
    struct db_result *res = NULL;
    rc = db_query(conn, sql, p, np, &res);
    if (rc == 0 && db_result_rows(res) == 1) {
        *held = true;
        const char *name = db_result_text(res, 0, 0);
        rc = count_outcome(conn, name ? name : "", outcome);
    }
    db_result_free(res);
    rc = finish_tx(conn, rc);
    if (rc != 0)
        *held = false;
    return rc;
}

int task_complete(struct db_conn *conn, int64_t id, const char *worker, int attempt, int64_t now,
                  bool *held)
{
    const struct db_param p[] = {DB_INT(id), DB_TEXT(worker), DB_INT(attempt), DB_INT(now)};
    return record_outcome(conn,
                          "UPDATE tasks SET state = 'done', lease_until = NULL, updated_at = $4 "
                          "WHERE id = $1 AND worker = $2 AND attempts = $3 "
                          "AND state = 'running' RETURNING name",
                          p, DB_NPARAMS(p), "done", held);
}

int task_fail(struct db_conn *conn, int64_t id, const char *worker, int attempt, int64_t now,
              int max_attempts, int64_t retry_at, const char *error, bool *held)
{
    char *text = cut_error(error);
    /* retry_at last: the "failed" statement binds all but it. */
    const struct db_param p[] = {DB_INT(id),      DB_TEXT(worker),      DB_INT(attempt),
                                 DB_INT(now),     DB_INT(max_attempts), DB_TEXT(text),
                                 DB_INT(retry_at)};
    int rc;
    if (retry_at > 0)
        rc = record_outcome(conn,
                            "UPDATE tasks SET state = 'queued', run_at = $7, lease_until = NULL, "
                            "relayed_at = NULL, max_attempts = $5, last_error = $6, "
                            "updated_at = $4 WHERE id = $1 AND worker = $2 AND attempts = $3 "
                            "AND state = 'running' RETURNING name",
                            p, DB_NPARAMS(p), "retry", held);
    else
        rc = record_outcome(conn,
                            "UPDATE tasks SET state = 'failed', lease_until = NULL, "
                            "max_attempts = $5, last_error = $6, updated_at = $4 "
                            "WHERE id = $1 AND worker = $2 AND attempts = $3 "
                            "AND state = 'running' RETURNING name",
                            p, DB_NPARAMS(p) - 1, "failed", held);
    free(text);
    return rc;
}

struct expired_row {
    int64_t id;
    char name[TASK_NAME_MAX + 1];
    int attempts;
    bool failed;
};

/* Runs one reaper UPDATE … RETURNING id, name, attempts; appends to *rows. */
static int reap(struct db_conn *conn, const char *sql, const struct db_param *p, int np,
                bool failed, struct expired_row **rows, int *n)
{
    struct db_result *res = NULL;
    int rc = db_query(conn, sql, p, np, &res);
    int count = rc == 0 ? db_result_rows(res) : 0;
    if (count > 0)
        *rows = xrealloc(*rows, (size_t)(*n + count) * sizeof **rows);
    for (int i = 0; i < count; i++) {
        struct expired_row *r = &(*rows)[(*n)++];
        r->id = db_result_int(res, i, 0);
        copy_text(r->name, sizeof r->name, db_result_text(res, i, 1));
        r->attempts = (int)db_result_int(res, i, 2);
        r->failed = failed;
    }
    db_result_free(res);
    return rc;
}

static int by_outcome(const void *a, const void *b)
{
    const struct expired_row *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (int)x->failed - (int)y->failed;
}

/* One upsert per (name, outcome), in a fixed order: two reapers never wait on each other's
 * counters in opposite orders. Sorts rows. */
static int count_expired(struct db_conn *conn, struct expired_row *rows, int n)
{
    qsort(rows, (size_t)n, sizeof *rows, by_outcome);
    int rc = 0;
    for (int i = 0; rc == 0 && i < n;) {
        int j = i + 1;
        while (j < n && !by_outcome(&rows[i], &rows[j]))
            j++;
        rc = count_outcome_n(conn, rows[i].name, rows[i].failed ? "failed" : "expired", j - i);
        i = j;
    }
    return rc;
}

/* PostgreSQL takes the expired rows with SKIP LOCKED: a row another worker is finishing or
 * another reaper is requeueing is left for the next pass instead of waited for. */
static const char reap_failed_pg[] =
    "UPDATE tasks SET state = 'failed', lease_until = NULL, last_error = $2, updated_at = $1 "
    "WHERE id IN (SELECT id FROM tasks WHERE state = 'running' AND lease_until < $1 "
    "AND attempts >= max_attempts FOR UPDATE SKIP LOCKED) "
    "AND state = 'running' AND lease_until < $1 RETURNING id, name, attempts";
static const char reap_failed_sqlite[] =
    "UPDATE tasks SET state = 'failed', lease_until = NULL, last_error = $2, updated_at = $1 "
    "WHERE state = 'running' AND lease_until < $1 AND attempts >= max_attempts "
    "RETURNING id, name, attempts";
static const char reap_queued_pg[] =
    "UPDATE tasks SET state = 'queued', run_at = $1, lease_until = NULL, relayed_at = NULL, "
    "last_error = $2, updated_at = $1 "
    "WHERE id IN (SELECT id FROM tasks WHERE state = 'running' AND lease_until < $1 "
    "FOR UPDATE SKIP LOCKED) AND state = 'running' AND lease_until < $1 "
    "RETURNING id, name, attempts";
static const char reap_queued_sqlite[] =
    "UPDATE tasks SET state = 'queued', run_at = $1, lease_until = NULL, relayed_at = NULL, "
    "last_error = $2, updated_at = $1 WHERE state = 'running' AND lease_until < $1 "
    "RETURNING id, name, attempts";

int task_requeue_expired(struct db_conn *conn, int64_t now, task_expired_fn fn, void *ctx,
                         int *count)
{
    if (count)
        *count = 0;
    bool pg = db_conn_dialect(conn) == DB_POSTGRES;
    const struct db_param p[] = {
        DB_INT(now), DB_TEXT("lease expired: the worker stopped renewing it (killed or hung)")};
    struct expired_row *rows = NULL;
    int n = 0;
    int rc = db_begin(conn, DB_TX_WRITE);
    if (rc != 0)
        return rc;
    rc = reap(conn, pg ? reap_failed_pg : reap_failed_sqlite, p, DB_NPARAMS(p), true, &rows, &n);
    if (rc == 0)
        rc = reap(conn, pg ? reap_queued_pg : reap_queued_sqlite, p, DB_NPARAMS(p), false, &rows,
                  &n);
    if (rc == 0 && n > 0)
        rc = count_expired(conn, rows, n);
    rc = finish_tx(conn, rc);
    for (int i = 0; rc == 0 && fn && i < n; i++)
        fn(ctx, rows[i].id, rows[i].name, rows[i].attempts, rows[i].failed);
    if (rc == 0 && count)
        *count = n;
    free(rows);
    return rc;
}

/* ---- Redis relay ------------------------------------------------------------------------ */

int task_relay_pick(struct db_conn *conn, int64_t now, int max, int64_t *ids, int *n)
{
    *n = 0;
    const struct db_param p[] = {DB_INT(now), DB_INT(max)};
    const char *sql = db_conn_dialect(conn) == DB_POSTGRES
                          ? "SELECT id FROM tasks WHERE state = 'queued' AND relayed_at IS NULL "
                            "AND run_at <= $1 ORDER BY run_at, id LIMIT $2 "
                            "FOR UPDATE SKIP LOCKED"
                          : "SELECT id FROM tasks WHERE state = 'queued' AND relayed_at IS NULL "
                            "AND run_at <= $1 ORDER BY run_at, id LIMIT $2";
    struct db_result *res = NULL;
    int rc = db_query(conn, sql, p, DB_NPARAMS(p), &res);
    for (int i = 0; rc == 0 && i < db_result_rows(res) && i < max; i++)
        ids[(*n)++] = db_result_int(res, i, 0);
    db_result_free(res);
    return rc;
}

int task_relay_mark(struct db_conn *conn, const int64_t *ids, int n, int64_t now)
{
    int rc = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        const struct db_param p[] = {DB_INT(ids[i]), DB_INT(now)};
        rc = db_exec(conn, "UPDATE tasks SET relayed_at = $2 WHERE id = $1 AND state = 'queued'", p,
                     DB_NPARAMS(p), NULL);
    }
    return rc;
}

int task_relay_reset(struct db_conn *conn, int64_t before, int64_t *count)
{
    const struct db_param p[] = {DB_INT(before)};
    return db_exec(conn,
                   "UPDATE tasks SET relayed_at = NULL "
                   "WHERE state = 'queued' AND relayed_at IS NOT NULL AND relayed_at < $1",
                   p, 1, count);
}

int task_any_due(struct db_conn *conn, int64_t now, bool relay_only, bool *due)
{
    const struct db_param p[] = {DB_INT(now)};
    struct db_result *res = NULL;
    int rc = db_query(conn,
                      relay_only ? "SELECT 1 FROM tasks WHERE state = 'queued' "
                                   "AND relayed_at IS NULL AND run_at <= $1 LIMIT 1"
                                 : "SELECT 1 FROM tasks WHERE state = 'queued' AND run_at <= $1 "
                                   "LIMIT 1",
                      p, 1, &res);
    *due = rc == 0 && db_result_rows(res) > 0;
    db_result_free(res);
    return rc;
}

/* ---- operator's view -------------------------------------------------------------------- */

static bool known_state(const char *s)
{
    return !strcmp(s, "queued") || !strcmp(s, "running") || !strcmp(s, "done") ||
           !strcmp(s, "failed");
}

int task_list(struct db_conn *conn, const char *state, int limit, struct task_info **out, int *n)
{
    *out = NULL;
    *n = 0;
    if (limit < 1 || limit > 1000 || (state && !known_state(state)))
        return USHER_EINVAL;
    const struct db_param p[] = {DB_INT(limit), DB_TEXT_OR_NULL(state)};
    struct db_result *res = NULL;
    int rc = db_query(conn,
                      state ? "SELECT id, name, state, attempts, max_attempts, run_at, "
                              "created_at, updated_at, last_error FROM tasks WHERE state = $2 "
                              "ORDER BY id DESC LIMIT $1"
                            : "SELECT id, name, state, attempts, max_attempts, run_at, "
                              "created_at, updated_at, last_error FROM tasks "
                              "ORDER BY id DESC LIMIT $1",
                      p, state ? 2 : 1, &res);
    int rows = rc == 0 ? db_result_rows(res) : 0;
    struct task_info *items = rows ? xcalloc((size_t)rows, sizeof *items) : NULL;
    for (int i = 0; i < rows; i++) {
        struct task_info *t = &items[i];
        t->id = db_result_int(res, i, 0);
        copy_text(t->name, sizeof t->name, db_result_text(res, i, 1));
        copy_text(t->state, sizeof t->state, db_result_text(res, i, 2));
        t->attempts = (int)db_result_int(res, i, 3);
        t->max_attempts = (int)db_result_int(res, i, 4);
        t->run_at = db_result_int(res, i, 5);
        t->created_at = db_result_int(res, i, 6);
        t->updated_at = db_result_int(res, i, 7);
        const char *e = db_result_text(res, i, 8);
        t->last_error = e ? xstrdup(e) : NULL;
    }
    db_result_free(res);
    *out = items;
    *n = rows;
    return rc;
}

void task_info_free_array(struct task_info *items, int n)
{
    for (int i = 0; items && i < n; i++)
        free(items[i].last_error);
    free(items);
}

int task_count(struct db_conn *conn, const char *state, int64_t *count)
{
    *count = 0;
    const struct db_param p[] = {DB_TEXT(state)};
    struct db_result *res = NULL;
    int rc = db_query(conn, "SELECT count(*) FROM tasks WHERE state = $1", p, 1, &res);
    if (rc == 0 && db_result_rows(res) == 1)
        *count = db_result_int(res, 0, 0);
    db_result_free(res);
    return rc;
}

int task_batch_progress(struct db_conn *conn, const char *dedup_prefix, int64_t first, int64_t last,
                        int64_t *done, int64_t *failed, int64_t *pending)
{
    *done = *failed = *pending = 0;
    char *pattern = xasprintf("%s%%", dedup_prefix);
    const struct db_param p[] = {DB_INT(first), DB_INT(last), DB_TEXT(pattern)};
    struct db_result *res = NULL;
    int rc = db_query(conn,
                      "SELECT state, count(*) FROM tasks WHERE id BETWEEN $1 AND $2 "
                      "AND dedup_key LIKE $3 GROUP BY state",
                      p, DB_NPARAMS(p), &res);
    for (int i = 0; rc == 0 && i < db_result_rows(res); i++) {
        const char *s = db_result_text(res, i, 0);
        int64_t v = db_result_int(res, i, 1);
        if (s && !strcmp(s, "done"))
            *done += v;
        else if (s && !strcmp(s, "failed"))
            *failed += v;
        else
            *pending += v;
    }
    db_result_free(res);
    free(pattern);
    return rc;
}

int task_retry_in_tx(struct db_conn *conn, int64_t id, int64_t now, enum task_retry_result *result)
{
    const struct db_param p[] = {DB_INT(id), DB_INT(now)};
    struct db_result *res = NULL;
    int rc = db_query(conn, "SELECT state FROM tasks WHERE id = $1", p, 1, &res);
    const char *state = rc == 0 && db_result_rows(res) == 1 ? db_result_text(res, 0, 0) : NULL;
    int64_t changed = 0;
    if (rc == 0 && !state) {
        rc = USHER_ENOTFOUND;
    } else if (rc == 0 && !strcmp(state, "failed")) {
        rc = db_exec(conn,
                     "UPDATE tasks SET state = 'queued', attempts = 0, run_at = $2, "
                     "lease_until = NULL, relayed_at = NULL, updated_at = $2 "
                     "WHERE id = $1 AND state = 'failed'",
                     p, DB_NPARAMS(p), &changed);
        *result = TASK_RETRY_REQUEUED;
    } else if (rc == 0 && !strcmp(state, "queued")) {
        /* Not yet due (waiting for a retry): due now. relayed_at is already NULL then. */
        rc = db_exec(conn,
                     "UPDATE tasks SET run_at = $2, updated_at = $2 "
                     "WHERE id = $1 AND state = 'queued' AND run_at > $2",
                     p, DB_NPARAMS(p), &changed);
        *result = changed ? TASK_RETRY_MADE_DUE : TASK_RETRY_ALREADY_DUE;
        changed = 1;
    } else if (rc == 0) {
        rc = USHER_ECONFLICT;
    }
    /* The row changed state between the read and the write (another retry, a worker). */
    if (rc == 0 && changed != 1)
        rc = USHER_ECONFLICT;
    db_result_free(res);
    return rc;
}

int task_retry(struct db_conn *conn, int64_t id, int64_t now)
{
    int rc = db_begin(conn, DB_TX_WRITE);
    if (rc != 0)
        return rc;
    enum task_retry_result result;
    rc = task_retry_in_tx(conn, id, now, &result);
    return finish_tx(conn, rc);
}

int task_store_metrics(struct db_conn *conn)
{
    struct db_result *res = NULL;
    int rc = db_query(conn,
                      "SELECT state, count(*) FROM tasks "
                      "WHERE state IN ('queued', 'running', 'failed') GROUP BY state",
                      NULL, 0, &res);
    if (rc != 0)
        return rc;
    double queued = 0, running = 0, failed = 0;
    for (int i = 0; i < db_result_rows(res); i++) {
        const char *s = db_result_text(res, i, 0);
        double v = (double)db_result_int(res, i, 1);
        if (s && !strcmp(s, "queued"))
            queued = v;
        else if (s && !strcmp(s, "running"))
            running = v;
        else if (s && !strcmp(s, "failed"))
            failed = v;
    }
    db_result_free(res);
    metrics_gauge_set("usher_tasks_failed", "Tasks out of retries (kept until retried).", "",
                      failed);
    metrics_gauge_set("usher_tasks_queued", "Tasks waiting to run (due or retrying later).", "",
                      queued);
    metrics_gauge_set("usher_tasks_running", "Tasks claimed by a worker.", "", running);

    rc = db_query(conn, "SELECT name, outcome, total FROM task_outcomes", NULL, 0, &res);
    struct buf labels;
    buf_init(&labels);
    for (int i = 0; rc == 0 && i < db_result_rows(res); i++) {
        const char *name = db_result_text(res, i, 0);
        const char *outcome = db_result_text(res, i, 1);
        buf_reset(&labels);
        metrics_labels(&labels, 2, "name", name ? name : "", "outcome", outcome ? outcome : "");
        metrics_counter_set("usher_tasks_total", "Task attempts finished, by outcome.", labels.data,
                            (double)db_result_int(res, i, 2));
    }
    buf_cleanup(&labels);
    db_result_free(res);
    return rc;
}

int task_store_purge_done(struct db_conn *conn, int64_t cutoff, int64_t *deleted)
{
    const struct db_param p[] = {DB_INT(cutoff)};
    return db_exec(conn, "DELETE FROM tasks WHERE state = 'done' AND updated_at < $1", p, 1,
                   deleted);
}
