/*
 * admin_tasks.c — the task queue as the admin console shows and retries it (see
 * admin_tasks.h).
 */
#include "domain/admin_tasks.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"
#include "db/db.h"
#include "db/task_store.h"
#include "domain/admin_change.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool valid_state(const char *s)
{
    return !strcmp(s, "queued") || !strcmp(s, "running") || !strcmp(s, "done") ||
           !strcmp(s, "failed");
}

/* Task names are code identifiers (tasks/registry.c): lowercase words, digits, '_', '.', ':'. */
static bool valid_name(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > TASK_NAME_MAX)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' ||
              *p == ':' || *p == '-'))
            return false;
    return true;
}

static json_t *task_row(const struct db_result *res, int i)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(db_result_int(res, i, 0)));
    admin_set_text(o, "name", res, i, 1);
    admin_set_text(o, "state", res, i, 2);
    json_object_set_new(o, "attempts", json_integer(db_result_int(res, i, 3)));
    json_object_set_new(o, "max_attempts", json_integer(db_result_int(res, i, 4)));
    admin_set_time(o, "run_at", res, i, 5);
    admin_set_time(o, "updated_at", res, i, 6);
    admin_set_text(o, "last_error", res, i, 7);
    const char *state = db_result_text(res, i, 2);
    json_object_set_new(o, "failed", json_boolean(state && !strcmp(state, "failed")));
    return o;
}

int admin_tasks_list(struct db_pool *pool, const struct admin_task_filter *f, int64_t before,
                     int limit, struct admin_page *out)
{
    out->rows = NULL;
    out->next_before = 0;
    const char *state = f->state && *f->state ? f->state : NULL;
    const char *name = f->name && *f->name ? f->name : NULL;
    if (admin_page_check(before, limit) != 0 || (state && !valid_state(state)) ||
        (name && !valid_name(name)))
        return USHER_EINVAL;
    struct admin_query q;
    admin_query_init(&q, "tasks",
                     "SELECT id, name, state, attempts, max_attempts, run_at, updated_at, "
                     "last_error FROM tasks WHERE 1 = 1");
    if (state)
        admin_query_and(&q, "state =", DB_TEXT(state));
    if (name)
        admin_query_and(&q, "name =", DB_TEXT(name));
    return admin_query_page(&q, pool, "id", before, limit, task_row, out);
}

int admin_task_names(struct db_pool *pool, json_t **out)
{
    /* task_outcomes holds a row per name that ever finished an attempt: a few rows, where a
     * DISTINCT over tasks would read the whole queue. */
    struct db_result *res = NULL;
    int rc =
        db_pool_query(pool, "SELECT DISTINCT name FROM task_outcomes ORDER BY name", NULL, 0, &res);
    if (rc != 0)
        return rc;
    *out = json_array();
    for (int i = 0; i < db_result_rows(res); i++)
        json_array_append_new(*out, json_string(db_result_text(res, i, 0)));
    db_result_free(res);
    return 0;
}

int admin_task_get(struct db_pool *pool, int64_t id, json_t **out)
{
    const struct db_param p[] = {DB_INT(id)};
    struct db_result *res = NULL;
    int rc = db_pool_query(pool,
                           "SELECT id, name, state, attempts, max_attempts, run_at, updated_at, "
                           "last_error, args, created_at, lease_until, worker "
                           "FROM tasks WHERE id = $1",
                           p, 1, &res);
    if (rc == 0 && db_result_rows(res) != 1)
        rc = USHER_ENOTFOUND;
    if (rc == 0) {
        json_t *o = task_row(res, 0);
        char *args = admin_pretty_json(db_result_text(res, 0, 8));
        json_object_set_new(o, "args", json_string(args));
        free(args);
        admin_set_time(o, "created_at", res, 0, 9);
        admin_set_time(o, "lease_until", res, 0, 10);
        admin_set_text(o, "worker", res, 0, 11);
        *out = o;
    }
    db_result_free(res);
    return rc;
}

/* ---- retry ---------------------------------------------------------------------------- */

struct retry_ctx {
    const struct admin_actor *actor;
    const int64_t *ids;
    int n;
    int64_t now;
    bool bulk; /* skip (and report) a task that cannot be retried instead of failing */
    json_t *results; /* [{id, retried, note}] */
    int retried;
    char *msg; /* single retry: why it failed */
    size_t msg_size;
};

/* The task's state and attempts, for the audit entry; NULL when there is no such task. */
static json_t *task_snapshot(struct db_conn *conn, int64_t id)
{
    const struct db_param p[] = {DB_INT(id)};
    struct db_result *res = NULL;
    json_t *o = NULL;
    if (db_query(conn, "SELECT name, state, attempts, last_error FROM tasks WHERE id = $1", p, 1,
                 &res) == 0 &&
        db_result_rows(res) == 1) {
        o = json_object();
        admin_set_text(o, "name", res, 0, 0);
        admin_set_text(o, "state", res, 0, 1);
        json_object_set_new(o, "attempts", json_integer(db_result_int(res, 0, 2)));
        admin_set_text(o, "last_error", res, 0, 3);
    }
    db_result_free(res);
    return o;
}

/* Retries one failed task inside the transaction, with its audit entry. *state gets the
 * state that stopped it (USHER_ECONFLICT), "" when there is no task (USHER_ENOTFOUND). */
static int retry_one(struct db_conn *conn, const struct retry_ctx *c, int64_t id, char *state,
                     size_t state_size)
{
    snprintf(state, state_size, "%s", "");
    struct admin_change ch = {
        .actor = c->actor, .action = "task.retry", .type = "task", .id = id, .now = c->now};
    ch.before = task_snapshot(conn, id);
    if (!ch.before)
        return USHER_ENOTFOUND;
    const char *was = json_string_value(json_object_get(ch.before, "state"));
    int rc = 0;
    if (!was || strcmp(was, "failed")) {
        snprintf(state, state_size, "%s", was ? was : "unknown");
        rc = USHER_ECONFLICT;
    }
    enum task_retry_result result;
    if (rc == 0)
        rc = task_retry_in_tx(conn, id, c->now, &result);
    /* On PostgreSQL another retry may have committed between the snapshot and that call: the
     * task is queued then, and this request changed nothing. */
    if (rc == 0 && result != TASK_RETRY_REQUEUED)
        rc = USHER_ECONFLICT;
    if (rc == USHER_ECONFLICT && !state[0])
        snprintf(state, state_size, "%s", "changed meanwhile");
    ch.after = rc == 0 ? task_snapshot(conn, id) : NULL;
    return admin_change_finish(conn, &ch, rc);
}

static int retry_body(struct db_conn *conn, void *arg)
{
    struct retry_ctx *c = arg;
    c->retried = 0;
    json_array_clear(c->results);
    for (int i = 0; i < c->n; i++) {
        char state[40];
        int rc = retry_one(conn, c, c->ids[i], state, sizeof state);
        bool skipped = rc == USHER_ENOTFOUND || rc == USHER_ECONFLICT;
        if (rc != 0 && !(c->bulk && skipped)) {
            if (rc == USHER_ENOTFOUND)
                snprintf(c->msg, c->msg_size, "Task %lld does not exist.", (long long)c->ids[i]);
            else if (rc == USHER_ECONFLICT)
                snprintf(c->msg, c->msg_size,
                         "Task %lld is not failed (%s); only failed tasks can be retried.",
                         (long long)c->ids[i], state);
            return rc;
        }
        char note[96];
        if (rc == USHER_ENOTFOUND)
            snprintf(note, sizeof note, "%s", "no such task");
        else if (rc == USHER_ECONFLICT)
            snprintf(note, sizeof note, "not failed (%s)", state);
        else
            snprintf(note, sizeof note, "%s", "queued to run now");
        json_array_append_new(c->results, json_pack("{s:I,s:b,s:s}", "id", (json_int_t)c->ids[i],
                                                    "retried", rc == 0, "note", note));
        c->retried += rc == 0;
    }
    return 0;
}

int admin_task_retry(struct db_pool *pool, const struct admin_actor *actor, int64_t id, int64_t now,
                     char *msg, size_t msg_size)
{
    snprintf(msg, msg_size, "%s", "");
    struct retry_ctx c = {.actor = actor,
                          .ids = &id,
                          .n = 1,
                          .now = now,
                          .bulk = false,
                          .results = json_array(),
                          .msg = msg,
                          .msg_size = msg_size};
    int rc = db_write_tx(pool, retry_body, &c);
    json_decref(c.results);
    if (rc == 0)
        snprintf(msg, msg_size, "Task %lld is queued to run now.", (long long)id);
    return rc;
}

int admin_tasks_retry_many(struct db_pool *pool, const struct admin_actor *actor,
                           const int64_t *ids, int n, int64_t now, json_t **results, int *retried)
{
    *results = NULL;
    *retried = 0;
    if (n < 1 || n > ADMIN_TASKS_BULK_MAX)
        return USHER_EINVAL;
    char msg[ADMIN_OPS_MSG_MAX];
    struct retry_ctx c = {.actor = actor,
                          .ids = ids,
                          .n = n,
                          .now = now,
                          .bulk = true,
                          .results = json_array(),
                          .msg = msg,
                          .msg_size = sizeof msg};
    int rc = db_write_tx(pool, retry_body, &c);
    if (rc != 0) {
        json_decref(c.results);
        return rc;
    }
    *results = c.results;
    *retried = c.retried;
    return 0;
}
