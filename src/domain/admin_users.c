/*
 * admin_users.c — the admin users list: search classification, keyset pages, counts (see
 * admin_users.h). The user page is in admin_user_detail.c.
 *
 * SQL is assembled only from constant fragments chosen by the search kind and the dialect;
 * every value (search text, status, cursor, limit, ids) is a bound parameter.
 */
#include "domain/admin_users.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"
#include "db/db.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const admin_users_statuses[] = {
    "active",     "trialing",           "past_due", "canceled", "unpaid",
    "incomplete", "incomplete_expired", "paused",   "none",     NULL,
};

/* Strict UTF-8 (no overlongs, no surrogates, at most U+10FFFF) without control characters;
 * *chars gets the code points. PostgreSQL rejects invalid UTF-8 with an error, which must
 * never be what an operator's typo produces. */
static bool clean_utf8(const char *s, size_t *chars)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;
    while (*p) {
        unsigned c = *p;
        int len = c < 0x80             ? 1
                  : (c & 0xE0) == 0xC0 ? 2
                  : (c & 0xF0) == 0xE0 ? 3
                  : (c & 0xF8) == 0xF0 ? 4
                                       : 0;
        if (len == 0 || (len == 1 && (c < 0x20 || c == 0x7F)))
            return false;
        unsigned cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
        for (int i = 1; i < len; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || (cp >= 0x80 && cp < 0xA0))
            return false;
        p += len;
        n++;
    }
    *chars = n;
    return true;
}

static bool all_of(const char *s, const char *set)
{
    return *s && strspn(s, set) == strlen(s);
}

#define ID_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"

static bool is_uuid(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}

int admin_users_classify(const char *search, enum admin_users_search_kind *kind, const char **error)
{
    *kind = ADMIN_SEARCH_NONE;
    *error = NULL;
    if (!search || !*search)
        return 0;
    size_t chars = 0;
    if (strlen(search) > ADMIN_USERS_SEARCH_MAX) {
        *error = "Search text is too long (at most 254 characters).";
        return USHER_EINVAL;
    }
    if (!clean_utf8(search, &chars)) {
        *error = "Search text must be plain text (no control characters or invalid bytes).";
        return USHER_EINVAL;
    }
    if (!strncmp(search, "cus_", 4) && all_of(search + 4, ID_CHARS))
        *kind = ADMIN_SEARCH_STRIPE_CUSTOMER;
    else if (!strncmp(search, "sub_", 4) && all_of(search + 4, ID_CHARS))
        *kind = ADMIN_SEARCH_STRIPE_SUBSCRIPTION;
    else if (is_uuid(search))
        *kind = ADMIN_SEARCH_KEYCLOAK_ID;
    else if (chars < ADMIN_USERS_SEARCH_MIN) {
        *error = "Type at least 3 characters to search.";
        return USHER_EINVAL;
    } else
        *kind = ADMIN_SEARCH_TEXT;
    return 0;
}

const char *admin_users_search_kind_name(enum admin_users_search_kind kind)
{
    switch (kind) {
    case ADMIN_SEARCH_TEXT: return "text";
    case ADMIN_SEARCH_STRIPE_CUSTOMER: return "stripe_customer";
    case ADMIN_SEARCH_STRIPE_SUBSCRIPTION: return "stripe_subscription";
    case ADMIN_SEARCH_KEYCLOAK_ID: return "keycloak_id";
    case ADMIN_SEARCH_NONE: break;
    }
    return "none";
}

static bool known_status(const char *s)
{
    for (int i = 0; admin_users_statuses[i]; i++)
        if (!strcmp(s, admin_users_statuses[i]))
            return true;
    return false;
}

/* "%text%" for ILIKE with \ as the escape character: %, _ and \ in the text match only
 * themselves. */
static char *like_pattern(const char *text, bool leading)
{
    struct buf b;
    buf_init(&b);
    if (leading)
        buf_append(&b, "%", 1);
    for (const char *p = text; *p; p++) {
        if (*p == '%' || *p == '_' || *p == '\\')
            buf_append(&b, "\\", 1);
        buf_append(&b, p, 1);
    }
    buf_append(&b, "%", 1);
    char *out = buf_detach(&b);
    buf_cleanup(&b); /* buf_detach leaves a fresh empty buffer */
    return out;
}

static char *lowercase(const char *s)
{
    char *out = xstrdup(s);
    for (char *p = out; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return out;
}

/* The filter: SQL fragment (constants only) and its parameters, numbered from $1. */
struct filter {
    char where[1024];
    struct db_param params[4];
    int n;
    char *owned[2];
};

static void filter_cleanup(struct filter *f)
{
    free(f->owned[0]);
    free(f->owned[1]);
}

static void add_clause(struct filter *f, const char *clause)
{
    size_t len = strlen(f->where);
    snprintf(f->where + len, sizeof f->where - len, "%s%s", len ? " AND " : "", clause);
}

/* SQLite's range bound above every string that starts with the prefix (U+10FFFF, the largest
 * code point, compares above any continuation under the BINARY collation). */
#define PREFIX_TOP "\xf4\x8f\xbf\xbf"

static void build_filter(enum db_dialect dialect, const char *status,
                         enum admin_users_search_kind kind, const char *search, struct filter *f)
{
    memset(f, 0, sizeof *f);
    if (status && *status) {
        f->params[f->n++] = DB_TEXT(strcmp(status, "none") ? status : "");
        add_clause(f, "subscription_status = $1");
    }
    char clause[700];
    int a = f->n + 1;
    switch (kind) {
    case ADMIN_SEARCH_NONE: return;
    case ADMIN_SEARCH_STRIPE_CUSTOMER:
        f->params[f->n++] = DB_TEXT(search);
        snprintf(clause, sizeof clause, "stripe_customer_id = $%d", a);
        break;
    case ADMIN_SEARCH_STRIPE_SUBSCRIPTION:
        f->params[f->n++] = DB_TEXT(search);
        snprintf(clause, sizeof clause, "stripe_subscription_id = $%d", a);
        break;
    case ADMIN_SEARCH_KEYCLOAK_ID:
        f->owned[0] = lowercase(search);
        f->params[f->n++] = DB_TEXT(f->owned[0]);
        snprintf(clause, sizeof clause, "keycloak_id = $%d", a);
        break;
    case ADMIN_SEARCH_TEXT:
        if (dialect == DB_POSTGRES) {
            /* Two GIN (pg_trgm) index scans OR-ed in a bitmap; the expression is the index's
             * (migration 0007). Backslash is PostgreSQL's default LIKE escape; no ESCAPE
             * clause, which would hide the pattern from the planner behind like_escape(). */
            f->owned[0] = like_pattern(search, true);
            f->params[f->n++] = DB_TEXT(f->owned[0]);
            snprintf(clause, sizeof clause,
                     "((username || ' ' || email) ILIKE $%d OR keycloak_id ILIKE $%d)", a, a);
        } else {
            /* A union of three index range scans (usernames and emails are stored lower
             * case), so a rare prefix never walks the whole table in id order. */
            f->owned[0] = lowercase(search);
            f->owned[1] = xasprintf("%s" PREFIX_TOP, f->owned[0]);
            f->params[f->n++] = DB_TEXT(f->owned[0]);
            f->params[f->n++] = DB_TEXT(f->owned[1]);
            snprintf(clause, sizeof clause,
                     "id IN (SELECT id FROM users WHERE username >= $%d AND username < $%d "
                     "UNION SELECT id FROM users WHERE email >= $%d AND email < $%d "
                     "UNION SELECT id FROM users WHERE keycloak_id >= $%d AND keycloak_id < $%d)",
                     a, a + 1, a, a + 1, a, a + 1);
        }
        break;
    }
    add_clause(f, clause);
}

/* ---- one page ---------------------------------------------------------------------------- */

static json_t *user_row(const struct db_result *res, int r)
{
    const char *kc = db_result_text(res, r, 5);
    json_t *row = json_pack(
        "{s:I, s:s, s:s, s:s, s:I, s:o, s:o}", "id", (json_int_t)db_result_int(res, r, 0),
        "username", db_result_text(res, r, 1), "email", db_result_text(res, r, 2), "status",
        db_result_text(res, r, 3), "date_joined", (json_int_t)db_result_int(res, r, 4), "groups",
        json_array(), "products", json_array());
    if (!row)
        return NULL;
    json_object_set_new(row, "keycloak_id", kc ? json_string(kc) : json_null());
    /* The first block of the UUID, as Keycloak's own console abbreviates it. */
    json_object_set_new(row, "keycloak_short",
                        kc ? json_stringn(kc, strcspn(kc, "-") > 12 ? 12 : strcspn(kc, "-"))
                           : json_null());
    const char *cus = db_result_text(res, r, 6);
    json_object_set_new(row, "stripe_customer_id", cus ? json_string(cus) : json_null());
    return row;
}

/* " IN ($from, …, $from + ADMIN_USERS_PAGE_MAX - 1)" for one page of ids, so that the
 * statement text never varies (unused slots are bound to 0, which no user has). */
static void in_page(struct buf *sql, int from)
{
    buf_puts(sql, " IN (");
    for (int i = 0; i < ADMIN_USERS_PAGE_MAX; i++)
        buf_printf(sql, "%s$%d", i ? ", " : "", from + i);
    buf_puts(sql, ")");
}

static void bind_page(struct db_param *p, const int64_t *ids, int n)
{
    for (int i = 0; i < ADMIN_USERS_PAGE_MAX; i++)
        p[i] = DB_INT(i < n ? ids[i] : 0);
}

/* Adds names from (user_id, name) rows to each user's array key, in one query for the page. */
static int attach_names(struct db_conn *conn, const char *sql_head, const char *sql_tail,
                        json_t *users, const int64_t *ids, int n, const char *key)
{
    if (n == 0)
        return 0;
    struct db_param p[ADMIN_USERS_PAGE_MAX];
    bind_page(p, ids, n);
    struct buf sql;
    buf_init(&sql);
    buf_puts(&sql, sql_head);
    in_page(&sql, 1);
    buf_puts(&sql, sql_tail);
    struct db_result *res = NULL;
    int rc = db_query(conn, sql.data, p, ADMIN_USERS_PAGE_MAX, &res);
    buf_cleanup(&sql);
    for (int r = 0; rc == 0 && r < db_result_rows(res); r++) {
        int64_t id = db_result_int(res, r, 0);
        for (int i = 0; i < n; i++)
            if (ids[i] == id)
                json_array_append_new(json_object_get(json_array_get(users, (size_t)i), key),
                                      json_string(db_result_text(res, r, 1)));
    }
    db_result_free(res);
    return rc;
}

#define USER_COLUMNS                                                              \
    "SELECT id, username, email, subscription_status, date_joined, keycloak_id, " \
    "stripe_customer_id FROM users "

/*
 * A filtered list first takes up to ADMIN_USERS_MATCH_COUNT_MAX + 1 matching ids from the
 * cursor on: the same index scan gives the page and the (capped) count of matches, instead of
 * a second COUNT query. The page's rows are then read by id.
 */
static int filtered_ids(struct db_conn *conn, const struct admin_users_query *q,
                        const struct filter *f, int64_t *ids, int *n, json_t *out)
{
    struct filter page = *f;
    page.owned[0] = page.owned[1] = NULL; /* borrowed from f */
    char clause[32];
    snprintf(clause, sizeof clause, "id < $%d", page.n + 1);
    page.params[page.n++] = DB_INT(q->before_id > 0 ? q->before_id : INT64_MAX);
    add_clause(&page, clause);
    char sql[1600];
    snprintf(sql, sizeof sql, "SELECT id FROM users WHERE %s ORDER BY id DESC LIMIT %d", page.where,
             ADMIN_USERS_MATCH_COUNT_MAX + 1);
    struct db_result *res = NULL;
    int rc = db_query(conn, sql, page.params, page.n, &res);
    if (rc != 0)
        return rc;
    int rows = db_result_rows(res);
    *n = rows < q->limit ? rows : q->limit;
    for (int i = 0; i < *n; i++)
        ids[i] = db_result_int(res, i, 0);
    db_result_free(res);
    json_object_set_new(
        out, "matches",
        json_integer(rows > ADMIN_USERS_MATCH_COUNT_MAX ? ADMIN_USERS_MATCH_COUNT_MAX : rows));
    json_object_set_new(out, "matches_more", json_boolean(rows > ADMIN_USERS_MATCH_COUNT_MAX));
    json_object_set_new(out, "next_before",
                        rows > q->limit ? json_integer(ids[*n - 1]) : json_null());
    return 0;
}

static int query_page(struct db_conn *conn, const struct admin_users_query *q,
                      const struct filter *f, json_t *out)
{
    int64_t ids[ADMIN_USERS_PAGE_MAX];
    int n = 0;
    struct db_result *res = NULL;
    int rc;
    if (*f->where) {
        rc = filtered_ids(conn, q, f, ids, &n, out);
        struct db_param p[ADMIN_USERS_PAGE_MAX];
        bind_page(p, ids, n);
        struct buf sql;
        buf_init(&sql);
        buf_puts(&sql, USER_COLUMNS "WHERE id");
        in_page(&sql, 1);
        buf_puts(&sql, " ORDER BY id DESC");
        if (rc == 0 && n > 0)
            rc = db_query(conn, sql.data, p, ADMIN_USERS_PAGE_MAX, &res);
        buf_cleanup(&sql);
    } else {
        /* The whole table: the primary key walked backwards from the cursor. */
        const struct db_param p[] = {DB_INT(q->before_id > 0 ? q->before_id : INT64_MAX),
                                     DB_INT(q->limit + 1)};
        rc = db_query(conn, USER_COLUMNS "WHERE id < $1 ORDER BY id DESC LIMIT $2", p, 2, &res);
        int rows = rc == 0 ? db_result_rows(res) : 0;
        json_object_set_new(out, "next_before",
                            rows > q->limit ? json_integer(db_result_int(res, q->limit - 1, 0))
                                            : json_null());
    }
    if (rc != 0) {
        db_result_free(res);
        return rc;
    }
    json_t *users = json_array();
    n = 0;
    for (int r = 0; res && r < db_result_rows(res) && r < q->limit; r++) {
        ids[n++] = db_result_int(res, r, 0);
        json_array_append_new(users, user_row(res, r));
    }
    json_object_set_new(out, "users", users);
    db_result_free(res);
    rc = attach_names(conn,
                      "SELECT ug.user_id, g.name FROM user_groups ug "
                      "JOIN groups g ON g.id = ug.group_id WHERE ug.user_id",
                      " ORDER BY g.name", users, ids, n, "groups");
    if (rc == 0)
        rc = attach_names(conn,
                          "SELECT DISTINCT si.user_id, p.name FROM subscription_items si "
                          "JOIN products p ON p.id = si.product_id WHERE si.user_id",
                          " ORDER BY p.name", users, ids, n, "products");
    return rc;
}

int admin_users_list(struct db_pool *pool, const struct admin_users_query *q, json_t **out,
                     const char **error)
{
    *out = NULL;
    *error = NULL;
    if (q->limit < 1 || q->limit > ADMIN_USERS_PAGE_MAX || q->before_id < 0) {
        *error = "Invalid page.";
        return USHER_EINVAL;
    }
    if (q->status && *q->status && !known_status(q->status)) {
        *error = "Unknown status filter.";
        return USHER_EINVAL;
    }
    enum admin_users_search_kind kind;
    int rc = admin_users_classify(q->search, &kind, error);
    if (rc != 0)
        return rc;
    struct db_conn *conn = NULL;
    rc = db_acquire(pool, DB_WAIT_MS, &conn);
    if (rc != 0)
        return rc;
    struct filter f;
    build_filter(db_conn_dialect(conn), q->status, kind, q->search, &f);
    json_t *page = json_pack("{s:s}", "search_kind", admin_users_search_kind_name(kind));
    rc = db_begin(conn, DB_TX_READ); /* one snapshot for the page and its count */
    if (rc == 0)
        rc = query_page(conn, q, &f, page);
    if (rc == 0)
        rc = db_commit(conn);
    db_release(conn);
    filter_cleanup(&f);
    if (rc != 0) {
        json_decref(page);
        return rc;
    }
    *out = page;
    return 0;
}
