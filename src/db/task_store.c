/*
 * task_store.c — inserting tasks (see task_store.h).
 */
#include "db/task_store.h"

#include "core/clock.h"
#include "core/err.h"
#include "db/db.h"

#include <stdlib.h>

int task_enqueue(struct db_conn *conn, const char *name, const json_t *args, int max_attempts,
                 int64_t run_at, const char *dedup_key, int64_t *id)
{
    char *text = json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return USHER_EINVAL;
    int64_t now = clock_now();
    const struct db_param p[] = {DB_TEXT(name), DB_TEXT(text), DB_INT(max_attempts),
                                 DB_INT(run_at), DB_INT(now), DB_TEXT_OR_NULL(dedup_key)};
    struct db_result *res = NULL;
    int rc = db_query(conn,
                      "INSERT INTO tasks (name, args, state, attempts, max_attempts, run_at, "
                      "created_at, updated_at, dedup_key) "
                      "VALUES ($1, $2, 'queued', 0, $3, $4, $5, $5, $6) "
                      "ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
                      p, DB_NPARAMS(p), &res);
    if (rc == 0 && id)
        *id = db_result_rows(res) ? db_result_int(res, 0, 0) : 0;
    db_result_free(res);
    free(text);
    return rc;
}
