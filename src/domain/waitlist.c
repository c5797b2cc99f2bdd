/*
 * waitlist.c — joining the waitlist (see waitlist.h).
 */
#include "domain/waitlist.h"

#include "core/err.h"
#include "db/db.h"
#include "db/task_store.h"

#include <jansson.h>

struct join {
    const char *email;
    int64_t now;
    bool *already;
};

static int insert_and_enqueue(struct db_conn *conn, void *ctx)
{
    const struct join *j = ctx;
    const char *email = j->email;
    int64_t now = j->now;
    bool *already = j->already;
    const struct db_param p[] = {DB_TEXT(email), DB_INT(now)};
    struct db_result *res = NULL;
    int rc = db_query(conn,
                      "INSERT INTO waitlist_entries (email, created_at) VALUES ($1, $2) "
                      "ON CONFLICT (email) DO NOTHING RETURNING id",
                      p, 2, &res);
    if (rc != 0)
        return rc;
    *already = db_result_rows(res) == 0;
    db_result_free(res);
    if (*already)
        return 0;
    json_t *args = json_pack("{s:s}", "email", email);
    rc =
        task_enqueue(conn, "waitlist_add_member", args, TASK_DEFAULT_MAX_ATTEMPTS, now, NULL, NULL);
    json_decref(args);
    return rc;
}

int waitlist_join(struct db_pool *pool, const char *email, int64_t now, bool *already)
{
    struct join j = {email, now, already};
    return db_write_tx(pool, insert_and_enqueue, &j);
}

int waitlist_mark_synced(struct db_pool *pool, const char *email, int64_t now)
{
    struct db_conn *conn = NULL;
    int rc = db_acquire(pool, DB_WAIT_MS, &conn);
    const struct db_param p[] = {DB_INT(now), DB_TEXT(email)};
    if (rc == 0)
        rc = db_exec(conn, "UPDATE waitlist_entries SET synced_at = $1 WHERE email = $2", p, 2,
                     NULL);
    db_release(conn);
    return rc;
}
