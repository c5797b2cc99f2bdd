/*
 * admin_ops.h — what the admin console's operations pages (Stripe events, tasks, waitlist,
 * instance assignments; SPEC §9 "beyond the old admin") share: who acts, one page of a
 * keyset-paginated list, and the transaction every action runs in.
 *
 * Lists page newest first by id: `before` is the id the previous page ended at (0 for the
 * first page); a page holds up to `limit` rows and says where the next one starts (0 when it
 * is the last). An id past the end simply yields the rows before it, so a stale or forged
 * cursor never errs; the web layer validates the cursor's form.
 *
 * Actions change one thing in one write transaction together with its audit entry
 * (admin_audit, domain/admin_list.h), so an action is either fully done and recorded or not
 * done at all. The acting admin is domain/admin_list.h's struct admin_actor.
 */
#ifndef USHER_DOMAIN_ADMIN_OPS_H
#define USHER_DOMAIN_ADMIN_OPS_H

#include "core/buf.h"
#include "db/count.h"
#include "db/db.h"
#include "domain/admin_list.h"

#include <jansson.h>
#include <stdint.h>

#define ADMIN_OPS_PAGE_MAX 200
#define ADMIN_OPS_QUERY_MAX 800 /* a search string's longest length in bytes (200 characters) */
#define ADMIN_OPS_MSG_MAX 256

/* One page of a list: rows (owned JSON array of objects), the next page's `before`, and how
 * many rows the whole list has (db/count.h: estimated on a big unfiltered PostgreSQL table,
 * else exact up to DB_COUNT_CAP). */
struct admin_page {
    json_t *rows;
    int64_t next_before; /* 0: this is the last page */
    struct db_count count;
};
void admin_page_cleanup(struct admin_page *page);

/* USHER_EINVAL unless 0 <= before and 1 <= limit <= ADMIN_OPS_PAGE_MAX. */
int admin_page_check(int64_t before, int limit);

/* Makes row `row` of a list query's result an object. */
typedef json_t *(*admin_row_fn)(const struct db_result *res, int row);

/*
 * A filtered list query assembled from fixed SQL fragments (never from input): start with
 * the SELECT ending in "WHERE 1 = 1" and the table it lists, add one "AND <fragment> $n" per
 * filter with its value, then admin_query_page counts the matches, adds the keyset
 * condition, the order and the limit, runs it (row 0 of the result is the id) and frees what
 * it built.
 */
#define ADMIN_QUERY_PARAMS_MAX 8
struct admin_query {
    struct buf sql;
    const char *table; /* counted whole when no filter is set */
    struct db_param params[ADMIN_QUERY_PARAMS_MAX];
    int n;
};
void admin_query_init(struct admin_query *q, const char *table, const char *select);
/* fragment: e.g. "a.state =" (the placeholder is appended). */
void admin_query_and(struct admin_query *q, const char *fragment, struct db_param value);
/* AND column LIKE pattern ESCAPE '\' (see admin_like_pattern in domain/admin_list.h). */
void admin_query_and_like(struct admin_query *q, const char *column, const char *pattern);
/* id_column: e.g. "a.id". */
int admin_query_page(struct admin_query *q, struct db_pool *pool, const char *id_column,
                     int64_t before, int limit, admin_row_fn row_fn, struct admin_page *out);

/* Sets key to the RFC 3339 form of the column (UTC), or null when it is NULL. */
void admin_set_time(json_t *obj, const char *key, const struct db_result *res, int row, int col);
/* Sets key to the column's text, or null. */
void admin_set_text(json_t *obj, const char *key, const struct db_result *res, int row, int col);

/* JSON text re-indented for reading (caller frees); the text itself when it is not JSON. */
char *admin_pretty_json(const char *text);

#endif
