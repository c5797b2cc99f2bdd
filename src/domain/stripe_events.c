/*
 * stripe_events.c — storing webhook events with their processing task (see stripe_events.h).
 */
#include "domain/stripe_events.h"

#include "core/err.h"
#include "core/mem.h"
#include "db/db.h"
#include "db/task_store.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct event_head {
    const char *id;
    const char *type;
    int64_t created;
};

static int read_head(const json_t *doc, struct event_head *h)
{
    h->id = json_string_value(json_object_get(doc, "id"));
    h->type = json_string_value(json_object_get(doc, "type"));
    const json_t *created = json_object_get(doc, "created");
    if (!h->id || strncmp(h->id, "evt_", 4) || strlen(h->id) > STRIPE_EVENT_ID_MAX || !h->type ||
        !*h->type || strlen(h->type) > STRIPE_EVENT_TYPE_MAX || !json_is_integer(created))
        return USHER_EINVAL;
    h->created = json_integer_value(created);
    return 0;
}

static int store(struct db_conn *conn, const struct event_head *h, const char *payload, int64_t now,
                 bool *duplicate)
{
    const struct db_param p[] = {DB_TEXT(h->id), DB_TEXT(h->type), DB_INT(h->created),
                                 DB_TEXT(payload), DB_INT(now)};
    struct db_result *res = NULL;
    int rc = db_query(conn,
                      "INSERT INTO stripe_events (event_id, type, created, payload, status, "
                      "received_at, attempts) VALUES ($1, $2, $3, $4, 'pending', $5, 0) "
                      "ON CONFLICT (event_id) DO NOTHING RETURNING id",
                      p, DB_NPARAMS(p), &res);
    if (rc != 0)
        return rc;
    *duplicate = db_result_rows(res) == 0;
    db_result_free(res);
    if (*duplicate)
        return 0;
    json_t *args = json_pack("{s:s}", "event_id", h->id);
    char *dedup = xasprintf("process_stripe_event:%s", h->id);
    rc = task_enqueue(conn, "process_stripe_event", args, TASK_LONG_MAX_ATTEMPTS, now, dedup, NULL);
    free(dedup);
    json_decref(args);
    return rc;
}

int stripe_event_ingest(struct db_pool *pool, const char *payload, size_t len, int64_t now,
                        bool *duplicate)
{
    json_t *doc = json_loadb(payload, len, JSON_REJECT_DUPLICATES, NULL);
    struct event_head head;
    int rc = json_is_object(doc) ? read_head(doc, &head) : USHER_EINVAL;
    /* The payload is stored as text: it must be one string without NUL bytes. */
    if (rc == 0 && memchr(payload, '\0', len))
        rc = USHER_EINVAL;
    char *text = rc == 0 ? xstrndup(payload, len) : NULL;
    struct db_conn *conn = NULL;
    if (rc == 0)
        rc = db_acquire(pool, DB_WAIT_MS, &conn);
    if (rc == 0)
        rc = db_begin(conn, DB_TX_WRITE);
    if (rc == 0)
        rc = store(conn, &head, text, now, duplicate);
    if (rc == 0)
        rc = db_commit(conn);
    db_release(conn);
    free(text);
    json_decref(doc);
    return rc;
}

int stripe_event_purge(struct db_conn *conn, int64_t cutoff, int64_t *deleted)
{
    const struct db_param p[] = {DB_INT(cutoff)};
    return db_exec(conn,
                   "DELETE FROM stripe_events WHERE status IN ('processed', 'ignored') "
                   "AND received_at < $1",
                   p, 1, deleted);
}
