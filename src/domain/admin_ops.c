/*
 * admin_ops.c — the list, formatting and transaction helpers of the operations pages (see
 * admin_ops.h).
 */
#include "domain/admin_ops.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/mem.h"
#include "db/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void admin_page_cleanup(struct admin_page *page)
{
    json_decref(page->rows);
    page->rows = NULL;
    page->next_before = 0;
}

int admin_page_check(int64_t before, int limit)
{
    return before >= 0 && limit >= 1 && limit <= ADMIN_OPS_PAGE_MAX ? 0 : USHER_EINVAL;
}

/* Runs the page query (its last parameter is LIMIT limit + 1): the extra row's presence says
 * a next page exists. */
static int page_rows(struct db_conn *conn, const char *sql, const struct db_param *params,
                     int nparams, int limit, admin_row_fn row_fn, struct admin_page *out)
{
    struct db_result *res = NULL;
    int rc = db_query(conn, sql, params, nparams, &res);
    if (rc != 0)
        return rc;
    int n = db_result_rows(res);
    int shown = n > limit ? limit : n;
    for (int i = 0; i < shown; i++)
        json_array_append_new(out->rows, row_fn(res, i));
    if (n > limit && shown > 0)
        out->next_before = db_result_int(res, shown - 1, 0);
    db_result_free(res);
    return 0;
}

void admin_query_init(struct admin_query *q, const char *table, const char *select)
{
    buf_init(&q->sql);
    buf_puts(&q->sql, select);
    q->table = table;
    q->n = 0;
}

static void add_param(struct admin_query *q, struct db_param value)
{
    /* The callers add at most a handful of filters; the page adds two more parameters. */
    if (q->n >= ADMIN_QUERY_PARAMS_MAX - 2)
        abort();
    q->params[q->n++] = value;
}

void admin_query_and(struct admin_query *q, const char *fragment, struct db_param value)
{
    add_param(q, value);
    buf_printf(&q->sql, " AND %s $%d", fragment, q->n);
}

void admin_query_and_like(struct admin_query *q, const char *column, const char *pattern)
{
    add_param(q, DB_TEXT(pattern));
    buf_printf(&q->sql, " AND %s LIKE $%d ESCAPE '\\'", column, q->n);
}

int admin_query_page(struct admin_query *q, struct db_pool *pool, const char *id_column,
                     int64_t before, int limit, admin_row_fn row_fn, struct admin_page *out)
{
    out->rows = json_array();
    out->next_before = 0;
    out->count = (struct db_count){0};
    struct db_conn *conn = NULL;
    int rc = db_acquire(pool, DB_WAIT_MS, &conn);
    /* The count is of the filtered list, before the keyset condition cuts it to a page. */
    if (rc == 0 && q->n == 0)
        rc = db_count_table(conn, q->table, DB_COUNT_THRESHOLD, DB_COUNT_CAP, &out->count);
    else if (rc == 0)
        rc = db_count_capped(conn, q->sql.data, q->params, q->n, DB_COUNT_CAP, &out->count);
    if (before > 0) {
        q->params[q->n++] = DB_INT(before);
        buf_printf(&q->sql, " AND %s < $%d", id_column, q->n);
    }
    q->params[q->n++] = DB_INT(limit + 1);
    buf_printf(&q->sql, " ORDER BY %s DESC LIMIT $%d", id_column, q->n);
    if (rc == 0)
        rc = page_rows(conn, q->sql.data, q->params, q->n, limit, row_fn, out);
    db_release(conn);
    buf_cleanup(&q->sql);
    if (rc != 0)
        admin_page_cleanup(out);
    return rc;
}

void admin_set_time(json_t *obj, const char *key, const struct db_result *res, int row, int col)
{
    if (db_result_is_null(res, row, col)) {
        json_object_set_new(obj, key, json_null());
        return;
    }
    char when[40];
    clock_format_rfc3339(db_result_int(res, row, col), when, sizeof when);
    json_object_set_new(obj, key, json_string(when));
}

void admin_set_text(json_t *obj, const char *key, const struct db_result *res, int row, int col)
{
    const char *s = db_result_is_null(res, row, col) ? NULL : db_result_text(res, row, col);
    /* Stored text is UTF-8 by construction; json_string refuses anything else, so fall back
     * to null rather than fail the page. */
    json_t *v = s ? json_string(s) : NULL;
    json_object_set_new(obj, key, v ? v : json_null());
}

char *admin_pretty_json(const char *text)
{
    json_t *doc = json_loads(text, JSON_DECODE_ANY, NULL);
    char *pretty = doc ? json_dumps(doc, JSON_INDENT(2) | JSON_ENCODE_ANY) : NULL;
    json_decref(doc);
    if (!pretty)
        return xstrdup(text);
    /* json_dumps allocates with jansson's allocator; hand back one of ours. */
    char *copy = xstrdup(pretty);
    free(pretty);
    return copy;
}
