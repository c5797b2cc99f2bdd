/*
 * admin_waitlist.c — listing, searching and exporting the waitlist (see admin_waitlist.h).
 */
#include "domain/admin_waitlist.h"

#include "core/clock.h"
#include "core/csv.h"
#include "core/err.h"
#include "core/mem.h"
#include "db/db.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

int admin_waitlist_check_query(const char *q)
{
    if (!q || !*q)
        return 0;
    if (strlen(q) > ADMIN_OPS_QUERY_MAX)
        return USHER_EINVAL;
    for (const unsigned char *p = (const unsigned char *)q; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return USHER_EINVAL;
    return 0;
}

/* The address pattern: stored addresses are lowercase, so the search is too (ASCII; the
 * domain part of an address may be IDN but is stored as typed, lowercased the same way). */
static char *pattern(const char *q)
{
    char *lower = xstrdup(q);
    for (char *p = lower; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    char *like = admin_like_pattern(lower);
    free(lower);
    return like;
}

static json_t *entry_row(const struct db_result *res, int i)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(db_result_int(res, i, 0)));
    admin_set_text(o, "email", res, i, 1);
    admin_set_time(o, "created_at", res, i, 2);
    admin_set_time(o, "synced_at", res, i, 3);
    json_object_set_new(o, "synced", json_boolean(!db_result_is_null(res, i, 3)));
    return o;
}

int admin_waitlist_list(struct db_pool *pool, const char *q, int64_t before, int limit,
                        struct admin_page *out)
{
    out->rows = NULL;
    out->next_before = 0;
    if (admin_page_check(before, limit) != 0 || admin_waitlist_check_query(q) != 0)
        return USHER_EINVAL;
    struct admin_query qy;
    admin_query_init(&qy, "waitlist_entries",
                     "SELECT id, email, created_at, synced_at FROM waitlist_entries WHERE 1 = 1");
    char *like = q && *q ? pattern(q) : NULL;
    if (like)
        admin_query_and_like(&qy, "email", like);
    int rc = admin_query_page(&qy, pool, "id", before, limit, entry_row, out);
    free(like);
    return rc;
}

void admin_waitlist_csv_header(struct buf *out)
{
    csv_field(out, "email", true);
    csv_field(out, "joined_at", false);
    csv_field(out, "synced_to_mailing_list_at", false);
    csv_end_row(out);
}

int admin_waitlist_csv_chunk(struct db_pool *pool, const char *q, int64_t after_id, struct buf *out,
                             int64_t *last_id, int *rows)
{
    *rows = 0;
    *last_id = after_id;
    if (admin_waitlist_check_query(q) != 0)
        return USHER_EINVAL;
    char *like = q && *q ? pattern(q) : NULL;
    const struct db_param p[] = {DB_TEXT(like ? like : "%"), DB_INT(after_id),
                                 DB_INT(ADMIN_WAITLIST_CSV_CHUNK)};
    struct db_result *res = NULL;
    int rc = db_pool_query(pool,
                           like ? "SELECT id, email, created_at, synced_at FROM waitlist_entries "
                                  "WHERE email LIKE $1 ESCAPE '\\' AND id > $2 "
                                  "ORDER BY id LIMIT $3"
                                : "SELECT id, email, created_at, synced_at FROM waitlist_entries "
                                  "WHERE $1 = '%' AND id > $2 ORDER BY id LIMIT $3",
                           p, DB_NPARAMS(p), &res);
    free(like);
    if (rc != 0)
        return rc;
    for (int i = 0; i < db_result_rows(res); i++) {
        char joined[40], synced[40] = "";
        clock_format_rfc3339(db_result_int(res, i, 2), joined, sizeof joined);
        if (!db_result_is_null(res, i, 3))
            clock_format_rfc3339(db_result_int(res, i, 3), synced, sizeof synced);
        csv_field(out, db_result_text(res, i, 1), true);
        csv_field(out, joined, false);
        csv_field(out, synced, false);
        csv_end_row(out);
        *last_id = db_result_int(res, i, 0);
        (*rows)++;
    }
    db_result_free(res);
    return 0;
}
