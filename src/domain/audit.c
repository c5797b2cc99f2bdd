/*
 * audit.c — recording and listing admin changes (see audit.h).
 */
#include "domain/audit.h"

#include "core/err.h"
#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUDIT_LIMIT_MAX 200

static bool field_ok(const char *s, bool required)
{
    if (!s || !*s)
        return !required;
    return strlen(s) <= AUDIT_FIELD_MAX;
}

json_t *audit_diff(const json_t *before, const json_t *after)
{
    json_t *b = json_object(), *a = json_object();
    const char *key;
    json_t *v;
    json_object_foreach ((json_t *)before, key, v) {
        json_t *now = json_object_get(after, key);
        if (!after || !json_equal(v, now))
            json_object_set(b, key, v);
    }
    json_object_foreach ((json_t *)after, key, v) {
        json_t *was = json_object_get(before, key);
        if (!before || !json_equal(v, was))
            json_object_set(a, key, v);
    }
    json_t *out = json_object();
    json_object_set_new(out, "before", before ? b : json_null());
    json_object_set_new(out, "after", after ? a : json_null());
    if (!before)
        json_decref(b);
    if (!after)
        json_decref(a);
    return out;
}

int audit_record(struct db_conn *conn, int64_t now, const struct audit_entry *e)
{
    if (!field_ok(e->actor, true) || !field_ok(e->action, true) ||
        !field_ok(e->target_type, false) || !field_ok(e->target_id, false))
        return USHER_EINVAL;
    json_t *detail = audit_diff(e->before, e->after);
    char *text = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(detail);
    if (!text)
        return USHER_EINVAL;
    const struct db_param p[] = {
        DB_INT(now),
        e->actor_user_id > 0 ? DB_INT(e->actor_user_id) : DB_NULL,
        DB_TEXT(e->actor),
        DB_TEXT(e->action),
        DB_TEXT_OR_NULL(e->target_type && *e->target_type ? e->target_type : NULL),
        DB_TEXT_OR_NULL(e->target_id && *e->target_id ? e->target_id : NULL),
        DB_TEXT(text),
    };
    int rc = db_exec(conn,
                     "INSERT INTO audit_log (created_at, actor_user_id, actor, action, "
                     "target_type, target_id, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                     p, DB_NPARAMS(p), NULL);
    free(text);
    return rc;
}

/* One query per shape of filter, so each can use its index (audit_log_actor_idx,
 * audit_log_action_idx, audit_log_target_idx, the primary key). Empty parameters match
 * anything; $6 = 0 starts from the newest. */
static const char list_sql[] =
    "SELECT id, created_at, actor, action, target_type, target_id, detail FROM audit_log "
    "WHERE ($1 = '' OR actor = $1) "
    "AND ($2 = '' OR action = $2 OR (substr($2, length($2), 1) = '.' "
    "     AND substr(action, 1, length($2)) = $2)) "
    "AND ($3 = '' OR target_type = $3) AND ($4 = '' OR target_id = $4) "
    "AND ($5 = 0 OR id < $5) "
    "ORDER BY id DESC LIMIT $6";

static const char *nz(const char *s)
{
    return s ? s : "";
}

/* "type:id", a number (an id), or a word (a type). */
static void split_target(const char *target, char *type, size_t tsize, char *id, size_t isize)
{
    type[0] = id[0] = '\0';
    if (!target || !*target)
        return;
    const char *colon = strchr(target, ':');
    if (colon) {
        snprintf(type, tsize, "%.*s", (int)(colon - target), target);
        snprintf(id, isize, "%s", colon + 1);
        return;
    }
    bool digits = strspn(target, "0123456789") == strlen(target);
    snprintf(digits ? id : type, digits ? isize : tsize, "%s", target);
}

int audit_list(struct db_pool *pool, const struct audit_filter *f, json_t **rows, int64_t *next_id)
{
    *rows = NULL;
    *next_id = 0;
    if (f->limit < 1 || f->limit > AUDIT_LIMIT_MAX || f->before_id < 0 ||
        !field_ok(f->actor, false) || !field_ok(f->action, false) ||
        (f->target && strlen(f->target) > 2 * AUDIT_FIELD_MAX + 1))
        return USHER_EINVAL;
    char type[AUDIT_FIELD_MAX + 1], id[AUDIT_FIELD_MAX + 1];
    split_target(f->target, type, sizeof type, id, sizeof id);
    const struct db_param p[] = {DB_TEXT(nz(f->actor)), DB_TEXT(nz(f->action)),
                                 DB_TEXT(type),         DB_TEXT(id),
                                 DB_INT(f->before_id),  DB_INT(f->limit + 1)};
    struct db_result *res = NULL;
    struct db_conn *conn = NULL;
    int rc = db_acquire(pool, DB_WAIT_MS, &conn);
    if (rc == 0)
        rc = db_query(conn, list_sql, p, DB_NPARAMS(p), &res);
    db_release(conn);
    if (rc != 0)
        return rc;
    json_t *out = json_array();
    int n = db_result_rows(res);
    for (int i = 0; i < n && i < f->limit; i++) {
        const char *detail = db_result_text(res, i, 6);
        json_t *parsed = detail ? json_loads(detail, JSON_DECODE_ANY, NULL) : NULL;
        json_array_append_new(
            out, json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:o}", "id",
                           (json_int_t)db_result_int(res, i, 0), "created_at",
                           (json_int_t)db_result_int(res, i, 1), "actor",
                           nz(db_result_text(res, i, 2)), "action", nz(db_result_text(res, i, 3)),
                           "target_type", nz(db_result_text(res, i, 4)), "target_id",
                           nz(db_result_text(res, i, 5)), "detail", parsed ? parsed : json_null()));
    }
    if (n > f->limit)
        *next_id = db_result_int(res, f->limit - 1, 0);
    db_result_free(res);
    *rows = out;
    return 0;
}
