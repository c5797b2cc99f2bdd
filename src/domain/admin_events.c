/*
 * admin_events.c — listing, showing and retrying stored Stripe events (see admin_events.h).
 */
#include "domain/admin_events.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"
#include "db/db.h"
#include "db/task_store.h"
#include "domain/admin_change.h"
#include "domain/stripe_events.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVENT_COLUMNS \
    "id, event_id, type, status, created, received_at, processed_at, attempts, last_error"

static bool valid_status(const char *s)
{
    return !strcmp(s, "pending") || !strcmp(s, "processed") || !strcmp(s, "ignored") ||
           !strcmp(s, "failed");
}

/* Event types are dotted lowercase words (customer.subscription.updated). */
static bool valid_type(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > STRIPE_EVENT_TYPE_MAX)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '.'))
            return false;
    return true;
}

static bool valid_event_id(const char *s)
{
    size_t len = strlen(s);
    if (len <= 4 || len > STRIPE_EVENT_ID_MAX || strncmp(s, "evt_", 4))
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            return false;
    return true;
}

static json_t *event_row(const struct db_result *res, int i)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(db_result_int(res, i, 0)));
    admin_set_text(o, "event_id", res, i, 1);
    admin_set_text(o, "type", res, i, 2);
    admin_set_text(o, "status", res, i, 3);
    admin_set_time(o, "created", res, i, 4);
    admin_set_time(o, "received_at", res, i, 5);
    admin_set_time(o, "processed_at", res, i, 6);
    json_object_set_new(o, "attempts", json_integer(db_result_int(res, i, 7)));
    admin_set_text(o, "last_error", res, i, 8);
    const char *status = db_result_text(res, i, 3);
    bool retryable = status && (!strcmp(status, "failed") || !strcmp(status, "ignored"));
    json_object_set_new(o, "retryable", json_boolean(retryable));
    json_object_set_new(o, "status_failed", json_boolean(status && !strcmp(status, "failed")));
    return o;
}

int admin_events_list(struct db_pool *pool, const struct admin_event_filter *f, int64_t before,
                      int limit, struct admin_page *out)
{
    out->rows = NULL;
    out->next_before = 0;
    const char *status = f->status && *f->status ? f->status : NULL;
    const char *type = f->type && *f->type ? f->type : NULL;
    const char *q = f->q && *f->q ? f->q : NULL;
    if (admin_page_check(before, limit) != 0 || (status && !valid_status(status)) ||
        (type && !valid_type(type)) || (q && !valid_event_id(q)))
        return USHER_EINVAL;
    struct admin_query qy;
    admin_query_init(&qy, "stripe_events",
                     "SELECT " EVENT_COLUMNS " FROM stripe_events WHERE 1 = 1");
    if (status)
        admin_query_and(&qy, "status =", DB_TEXT(status));
    if (type)
        admin_query_and(&qy, "type =", DB_TEXT(type));
    if (q)
        admin_query_and(&qy, "event_id =", DB_TEXT(q));
    return admin_query_page(&qy, pool, "id", before, limit, event_row, out);
}

/* The delivery's own processing task (found by its dedup key, an indexed lookup), as
 * {id, state}, or null when it is gone (done tasks are purged). */
static json_t *delivery_task(struct db_pool *pool, const char *event_id)
{
    char *key = xasprintf("process_stripe_event:%s", event_id);
    const struct db_param p[] = {DB_TEXT(key)};
    struct db_result *res = NULL;
    json_t *task = NULL;
    if (db_pool_query(pool, "SELECT id, state FROM tasks WHERE dedup_key = $1", p, 1, &res) == 0 &&
        db_result_rows(res) == 1)
        task = json_pack("{s:I,s:s}", "id", (json_int_t)db_result_int(res, 0, 0), "state",
                         db_result_text(res, 0, 1));
    db_result_free(res);
    free(key);
    return task ? task : json_null();
}

int admin_event_get(struct db_pool *pool, int64_t id, json_t **out)
{
    const struct db_param p[] = {DB_INT(id)};
    struct db_result *res = NULL;
    int rc = db_pool_query(
        pool, "SELECT " EVENT_COLUMNS ", payload FROM stripe_events WHERE id = $1", p, 1, &res);
    if (rc == 0 && db_result_rows(res) != 1)
        rc = USHER_ENOTFOUND;
    if (rc == 0) {
        json_t *o = event_row(res, 0);
        char *payload = admin_pretty_json(db_result_text(res, 0, 9));
        json_t *v = json_string(payload);
        json_object_set_new(o, "payload", v ? v : json_string("(payload is not UTF-8)"));
        free(payload);
        json_object_set_new(o, "task", delivery_task(pool, db_result_text(res, 0, 1)));
        *out = o;
    }
    db_result_free(res);
    return rc;
}

/* ---- retry ---------------------------------------------------------------------------- */

/* Queues processing again: the event's own task when it failed, else a new one. */
static int queue_processing(struct db_conn *conn, const char *event_id, int64_t now)
{
    char *key = xasprintf("process_stripe_event:%s", event_id);
    const struct db_param p[] = {DB_TEXT(key)};
    struct db_result *res = NULL;
    int rc = db_query(conn, "SELECT id FROM tasks WHERE dedup_key = $1 AND state = 'failed'", p, 1,
                      &res);
    int64_t task_id = rc == 0 && db_result_rows(res) == 1 ? db_result_int(res, 0, 0) : 0;
    db_result_free(res);
    free(key);
    if (rc != 0)
        return rc;
    if (task_id) {
        enum task_retry_result result;
        return task_retry_in_tx(conn, task_id, now, &result);
    }
    /* No dedup key: the conditional status change above is what makes a retry happen once. */
    json_t *args = json_pack("{s:s}", "event_id", event_id);
    rc = task_enqueue(conn, "process_stripe_event", args, TASK_LONG_MAX_ATTEMPTS, now, NULL, NULL);
    json_decref(args);
    return rc;
}

static json_t *snapshot(const struct db_result *res)
{
    json_t *o = json_object();
    admin_set_text(o, "event_id", res, 0, 0);
    admin_set_text(o, "status", res, 0, 1);
    admin_set_text(o, "last_error", res, 0, 2);
    return o;
}

static int retry_body(struct db_conn *conn, struct admin_change *c)
{
    const struct db_param p[] = {DB_INT(c->id)};
    struct db_result *res = NULL;
    int rc = db_query(conn, "SELECT event_id, status, last_error FROM stripe_events WHERE id = $1",
                      p, 1, &res);
    if (rc == 0 && db_result_rows(res) != 1) {
        snprintf(c->msg, c->msg_size, "Stripe event %lld does not exist.", (long long)c->id);
        rc = USHER_ENOTFOUND;
    }
    const char *status = rc == 0 ? db_result_text(res, 0, 1) : NULL;
    if (status && strcmp(status, "failed") && strcmp(status, "ignored")) {
        snprintf(c->msg, c->msg_size,
                 !strcmp(status, "processed")
                     ? "Event %s was processed already; it is not retried."
                     : "Event %s is pending: it is queued for processing already.",
                 db_result_text(res, 0, 0));
        rc = USHER_ECONFLICT;
    }
    char *event_id = rc == 0 ? xstrdup(db_result_text(res, 0, 0)) : NULL;
    c->before = rc == 0 ? snapshot(res) : NULL;
    db_result_free(res);
    int64_t changed = 0;
    if (rc == 0)
        rc = db_exec(conn,
                     "UPDATE stripe_events SET status = 'pending', last_error = NULL, "
                     "processed_at = NULL WHERE id = $1 AND status IN ('failed', 'ignored')",
                     p, 1, &changed);
    if (rc == 0 && changed != 1) {
        snprintf(c->msg, c->msg_size, "Event %s changed meanwhile; reload and try again.",
                 event_id);
        rc = USHER_ECONFLICT;
    }
    if (rc == 0)
        rc = queue_processing(conn, event_id, c->now);
    if (rc == 0) {
        c->after = json_pack("{s:s,s:s}", "event_id", event_id, "status", "pending");
        snprintf(c->msg, c->msg_size, "Event %s is queued for processing again.", event_id);
    }
    free(event_id);
    return rc;
}

int admin_event_retry(struct db_pool *pool, const struct admin_actor *actor, int64_t id,
                      int64_t now, char *msg, size_t msg_size)
{
    return admin_change_act(pool, actor, "stripe_event.retry", "stripe_event", id, now, msg,
                            msg_size, retry_body);
}
