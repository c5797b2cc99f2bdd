/*
 * admin_bulk.c — bulk actions on users: the job, its tasks and audit entries in one
 * transaction, and the per-user result (see admin_bulk.h).
 */
#include "domain/admin_bulk.h"

#include "core/err.h"
#include "core/mem.h"
#include "db/db.h"
#include "db/task_store.h"
#include "domain/audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    enum admin_bulk_action action;
    const char *name;
    const char *label;
} actions[] = {
    {ADMIN_BULK_SYNC_KEYCLOAK, "sync_keycloak", "Sync to Keycloak"},
    {ADMIN_BULK_SYNC_ASSIGNMENTS, "sync_assignments", "Sync instance assignments"},
    {ADMIN_BULK_REFRESH_STRIPE, "refresh_stripe",
     "Refresh subscription status & items from Stripe"},
};
#define N_ACTIONS (sizeof actions / sizeof actions[0])

int admin_bulk_action_parse(const char *name, enum admin_bulk_action *action)
{
    for (size_t i = 0; name && i < N_ACTIONS; i++)
        if (!strcmp(name, actions[i].name)) {
            *action = actions[i].action;
            return 0;
        }
    return USHER_EINVAL;
}

const char *admin_bulk_action_name(enum admin_bulk_action action)
{
    for (size_t i = 0; i < N_ACTIONS; i++)
        if (actions[i].action == action)
            return actions[i].name;
    return "unknown";
}

const char *admin_bulk_action_label(enum admin_bulk_action action)
{
    for (size_t i = 0; i < N_ACTIONS; i++)
        if (actions[i].action == action)
            return actions[i].label;
    return "Unknown action";
}

static const char *label_of(const char *name)
{
    enum admin_bulk_action a;
    return admin_bulk_action_parse(name, &a) == 0 ? admin_bulk_action_label(a) : name;
}

static int audit(struct db_conn *conn, const struct admin_actor *actor, int64_t now,
                 const char *action, const char *target_type, const char *target_id,
                 const json_t *after)
{
    const struct audit_entry e = {.actor_user_id = actor->user_id,
                                  .actor = actor->username,
                                  .action = action,
                                  .target_type = target_type,
                                  .target_id = target_id,
                                  .after = after};
    return audit_record(conn, now, &e);
}

struct start {
    enum admin_bulk_action action;
    const struct admin_actor *actor;
    const int64_t *ids;
    int n;
    int64_t now;
    int64_t job_id;
};

static int add_item(struct db_conn *conn, const struct start *s, int64_t user_id)
{
    const struct db_param key[] = {DB_INT(s->job_id), DB_INT(user_id)};
    int64_t inserted = 0;
    int rc = db_exec(conn,
                     "INSERT INTO admin_bulk_job_items (job_id, user_id) VALUES ($1, $2) "
                     "ON CONFLICT (job_id, user_id) DO NOTHING",
                     key, 2, &inserted);
    if (rc != 0 || inserted == 0) /* a duplicate in the selection */
        return rc;
    const char *name = admin_bulk_action_name(s->action);
    json_t *args = json_pack("{s:I, s:s, s:I}", "user_id", (json_int_t)user_id, "action", name,
                             "bulk_job", (json_int_t)s->job_id);
    int64_t task_id = 0;
    rc = task_enqueue(conn, ADMIN_BULK_TASK, args, 1, s->now, NULL, &task_id);
    json_decref(args);
    if (rc == 0) {
        const struct db_param p[] = {DB_INT(task_id), DB_INT(s->job_id), DB_INT(user_id)};
        rc = db_exec(conn,
                     "UPDATE admin_bulk_job_items SET task_id = $1 "
                     "WHERE job_id = $2 AND user_id = $3",
                     p, 3, NULL);
    }
    if (rc == 0) {
        char target[24], action[64];
        snprintf(target, sizeof target, "%lld", (long long)user_id);
        snprintf(action, sizeof action, "user.bulk.%s", name);
        json_t *detail =
            json_pack("{s:I, s:I}", "bulk_job", (json_int_t)s->job_id, "task", (json_int_t)task_id);
        rc = audit(conn, s->actor, s->now, action, "user", target, detail);
        json_decref(detail);
    }
    return rc;
}

static int start_tx(struct db_conn *conn, void *ctx)
{
    struct start *s = ctx;
    const struct db_param p[] = {DB_TEXT(admin_bulk_action_name(s->action)),
                                 s->actor->user_id > 0 ? DB_INT(s->actor->user_id) : DB_NULL,
                                 DB_TEXT(s->actor->username ? s->actor->username : ""),
                                 DB_INT(s->now)};
    int rc = db_query_id(conn,
                         "INSERT INTO admin_bulk_jobs (action, actor_user_id, actor, created_at, "
                         "total) VALUES ($1, $2, $3, $4, 0) RETURNING id",
                         p, DB_NPARAMS(p), &s->job_id);
    for (int i = 0; rc == 0 && i < s->n; i++)
        rc = add_item(conn, s, s->ids[i]);
    int64_t total = 0;
    if (rc == 0) {
        const struct db_param j[] = {DB_INT(s->job_id)};
        rc = db_query_id(conn, "SELECT count(*) FROM admin_bulk_job_items WHERE job_id = $1", j, 1,
                         &total);
    }
    if (rc == 0) {
        const struct db_param t[] = {DB_INT(total), DB_INT(s->job_id)};
        rc = db_exec(conn, "UPDATE admin_bulk_jobs SET total = $1 WHERE id = $2", t, 2, NULL);
    }
    if (rc == 0) {
        json_t *ids = json_array();
        for (int i = 0; i < s->n; i++)
            json_array_append_new(ids, json_integer(s->ids[i]));
        json_t *detail =
            json_pack("{s:s, s:o}", "action", admin_bulk_action_name(s->action), "user_ids", ids);
        char target[24];
        snprintf(target, sizeof target, "%lld", (long long)s->job_id);
        rc = audit(conn, s->actor, s->now, "users.bulk_action", "bulk_job", target, detail);
        json_decref(detail);
    }
    return rc;
}

int admin_bulk_start(struct db_pool *pool, enum admin_bulk_action action,
                     const struct admin_actor *actor, const int64_t *user_ids, int n, int64_t now,
                     int64_t *job_id)
{
    *job_id = 0;
    if (n < 1 || n > ADMIN_BULK_MAX_USERS)
        return USHER_EINVAL;
    for (int i = 0; i < n; i++)
        if (user_ids[i] <= 0)
            return USHER_EINVAL;
    struct start s = {.action = action, .actor = actor, .ids = user_ids, .n = n, .now = now};
    int rc = db_write_tx(pool, start_tx, &s);
    if (rc == 0)
        *job_id = s.job_id;
    return rc;
}

/* ---- the result ------------------------------------------------------------------------- */

static json_t *job_item(const struct db_result *res, int r, int64_t counts[3])
{
    const char *state = db_result_is_null(res, r, 2) ? "unknown" : db_result_text(res, r, 2);
    if (!strcmp(state, "done"))
        counts[0]++;
    else if (!strcmp(state, "failed") || !strcmp(state, "unknown"))
        counts[1]++;
    else
        counts[2]++;
    const char *username = db_result_text(res, r, 1);
    const char *error = db_result_text(res, r, 3);
    if (!error && !strcmp(state, "unknown"))
        error = "the task record is gone (finished tasks are deleted after 30 days)";
    return json_pack("{s:I, s:o, s:s, s:o, s:b, s:b}", "user_id",
                     (json_int_t)db_result_int(res, r, 0), "username",
                     username ? json_string(username) : json_null(), "state", state, "error",
                     error ? json_string(error) : json_null(), "ok", !strcmp(state, "done"),
                     "failed", !strcmp(state, "failed") || !strcmp(state, "unknown"));
}

int admin_bulk_result(struct db_pool *pool, int64_t job_id, json_t **out)
{
    *out = NULL;
    if (job_id <= 0)
        return USHER_ENOTFOUND;
    struct db_conn *conn = NULL;
    int rc = db_acquire(pool, DB_WAIT_MS, &conn);
    if (rc != 0)
        return rc;
    const struct db_param p[] = {DB_INT(job_id)};
    struct db_result *job = NULL, *items = NULL;
    rc = db_begin(conn, DB_TX_READ);
    if (rc == 0)
        rc = db_query(conn,
                      "SELECT id, action, actor, created_at, total FROM admin_bulk_jobs "
                      "WHERE id = $1",
                      p, 1, &job);
    if (rc == 0 && db_result_rows(job) == 0)
        rc = USHER_ENOTFOUND;
    if (rc == 0)
        rc = db_query(conn,
                      "SELECT i.user_id, u.username, t.state, t.last_error FROM "
                      "admin_bulk_job_items i LEFT JOIN users u ON u.id = i.user_id "
                      "LEFT JOIN tasks t ON t.id = i.task_id WHERE i.job_id = $1 "
                      "ORDER BY i.user_id",
                      p, 1, &items);
    if (rc == 0)
        rc = db_commit(conn);
    db_release(conn);
    if (rc == 0) {
        int64_t counts[3] = {0, 0, 0}; /* done, failed, pending */
        json_t *list = json_array();
        for (int r = 0; r < db_result_rows(items); r++)
            json_array_append_new(list, job_item(items, r, counts));
        const char *action = db_result_text(job, 0, 1);
        *out =
            json_pack("{s:I, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:b, s:o}", "id",
                      (json_int_t)job_id, "action", action, "label", label_of(action), "actor",
                      db_result_text(job, 0, 2), "created_at", (json_int_t)db_result_int(job, 0, 3),
                      "total", (json_int_t)db_result_int(job, 0, 4), "done", (json_int_t)counts[0],
                      "failed", (json_int_t)counts[1], "pending", (json_int_t)counts[2], "finished",
                      counts[2] == 0, "items", list);
    }
    db_result_free(job);
    db_result_free(items);
    return rc;
}
