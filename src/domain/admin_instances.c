/*
 * admin_instances.c — instances and groups in the admin console (see admin_instances.h).
 */
#include "domain/admin_instances.h"

#include "core/err.h"
#include "core/mem.h"
#include "db/task_store.h"
#include "domain/admin_change.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CAP_MAX 1000000
#define URL_MAX 2048
#define API_KEY_MAX 4096
#define GROUPS_MAX 100
#define GROUP_NAME_MAX 255

/* ---- lists ------------------------------------------------------------------------------ */

static const char instances_sql[] =
    "SELECT i.id, i.name, i.product_id, p.name AS product, i.base_url, i.soft_cap, "
    "i.allocation_cap, i.hard_cap, i.allocated_seats, i.auto_allocate, i.is_active "
    "FROM instances i JOIN products p ON p.id = i.product_id "
    "WHERE ($1 = '' OR lower(i.name) LIKE lower($1) ESCAPE '\\' "
    "      OR lower(i.base_url) LIKE lower($1) ESCAPE '\\') "
    "AND ($2 = 0 OR i.product_id = $2) "
    "AND ($3 < 0 OR (CASE WHEN i.is_active THEN 1 ELSE 0 END) = $3) "
    "AND ($4 < 0 OR (CASE WHEN i.auto_allocate THEN 1 ELSE 0 END) = $4) "
    "AND i.id > $5 ORDER BY i.id LIMIT $6";

/* Adds groups: [names] to each row of rows (ordered by id), from one query over the id range
 * the page spans. */
static int attach_groups(struct db_pool *pool, json_t *rows)
{
    size_t n = json_array_size(rows);
    if (n == 0)
        return 0;
    json_int_t first = json_integer_value(json_object_get(json_array_get(rows, 0), "id"));
    json_int_t last = json_integer_value(json_object_get(json_array_get(rows, n - 1), "id"));
    const struct db_param p[] = {DB_INT(first), DB_INT(last)};
    struct db_result *res = NULL;
    int rc = db_pool_query(pool,
                           "SELECT ig.instance_id, g.name FROM instance_groups ig "
                           "JOIN groups g ON g.id = ig.group_id "
                           "WHERE ig.instance_id BETWEEN $1 AND $2 ORDER BY ig.instance_id, g.name",
                           p, 2, &res);
    if (rc != 0)
        return rc;
    size_t i;
    json_t *row;
    json_array_foreach (rows, i, row)
        json_object_set_new(row, "groups", json_array());
    int r = 0;
    json_array_foreach (rows, i, row) {
        int64_t id = json_integer_value(json_object_get(row, "id"));
        while (r < db_result_rows(res) && db_result_int(res, r, 0) < id)
            r++;
        for (; r < db_result_rows(res) && db_result_int(res, r, 0) == id; r++)
            json_array_append_new(json_object_get(row, "groups"),
                                  json_string(db_result_text(res, r, 1)));
    }
    db_result_free(res);
    return 0;
}

int admin_instances_list(struct db_pool *pool, const struct admin_instance_filter *f, json_t **rows,
                         bool *more)
{
    if (f->limit < 1 || f->limit > 1000)
        return USHER_EINVAL;
    char *pattern = admin_like_pattern(f->q);
    const struct db_param p[] = {DB_TEXT(pattern),    DB_INT(f->product_id),
                                 DB_INT(f->active),   DB_INT(f->auto_allocate),
                                 DB_INT(f->after_id), DB_INT(f->limit + 1)};
    int rc =
        admin_list_rows(pool, instances_sql, p, DB_NPARAMS(p), "isissiiiibb", f->limit, rows, more);
    free(pattern);
    if (rc == 0)
        rc = attach_groups(pool, *rows);
    if (rc != 0) {
        json_decref(*rows);
        *rows = NULL;
    }
    return rc;
}

static const char groups_sql[] =
    "SELECT g.id, g.name, "
    "(SELECT count(*) FROM instance_groups ig WHERE ig.group_id = g.id) AS instances, "
    "(SELECT count(*) FROM user_groups ug WHERE ug.group_id = g.id) AS members "
    "FROM groups g WHERE ($1 = '' OR lower(g.name) LIKE lower($1) ESCAPE '\\') "
    "AND ($2 = 0 OR g.name > $3 OR (g.name = $3 AND g.id > $2)) "
    "ORDER BY g.name, g.id LIMIT $4";

int admin_groups_list(struct db_pool *pool, const struct admin_group_filter *f, json_t **rows,
                      bool *more)
{
    if (f->limit < 1 || f->limit > 1000)
        return USHER_EINVAL;
    char *pattern = admin_like_pattern(f->q);
    const struct db_param p[] = {DB_TEXT(pattern), DB_INT(f->has_after ? f->after_id : 0),
                                 DB_TEXT(f->after_name ? f->after_name : ""), DB_INT(f->limit + 1)};
    int rc = admin_list_rows(pool, groups_sql, p, DB_NPARAMS(p), "isii", f->limit, rows, more);
    free(pattern);
    return rc;
}

/* ---- one instance ------------------------------------------------------------------------- */

static const char instance_sql[] =
    "SELECT i.id, p.slug AS product, i.product_id, i.name, i.base_url, "
    "i.api_key IS NOT NULL AND i.api_key <> '' AS api_key_set, i.soft_cap, i.allocation_cap, "
    "i.hard_cap, i.is_active, i.auto_allocate FROM instances i "
    "JOIN products p ON p.id = i.product_id WHERE i.id = $1";

/* The instance's editable state (seats left out: they move under the form's feet without
 * anyone editing the instance) and, separately, its seats. */
static int load_instance(struct db_conn *conn, int64_t id, bool lock, json_t **out, int64_t *seats)
{
    *out = NULL;
    const struct db_param p[] = {DB_INT(id)};
    struct db_result *res = NULL;
    int rc = db_query(conn,
                      lock && db_conn_dialect(conn) == DB_POSTGRES
                          ? "SELECT allocated_seats FROM instances WHERE id = $1 FOR UPDATE"
                          : "SELECT allocated_seats FROM instances WHERE id = $1",
                      p, 1, &res);
    if (rc == 0 && db_result_rows(res) == 0)
        rc = USHER_ENOTFOUND;
    if (rc == 0)
        *seats = db_result_int(res, 0, 0);
    db_result_free(res);
    res = NULL;
    if (rc == 0)
        rc = db_query(conn, instance_sql, p, 1, &res);
    if (rc == 0 && db_result_rows(res) == 0)
        rc = USHER_ENOTFOUND;
    json_t *inst = rc == 0 ? admin_row_json(res, 0, "isissbiiibb") : NULL;
    db_result_free(res);
    res = NULL;
    if (rc == 0)
        rc = db_query(conn,
                      "SELECT g.name FROM instance_groups ig JOIN groups g ON g.id = ig.group_id "
                      "WHERE ig.instance_id = $1 ORDER BY g.name",
                      p, 1, &res);
    if (rc != 0) {
        json_decref(inst);
        return rc;
    }
    json_t *groups = json_array();
    for (int i = 0; i < db_result_rows(res); i++)
        json_array_append_new(groups, json_string(db_result_text(res, i, 0)));
    db_result_free(res);
    json_object_set_new(inst, "groups", groups);
    *out = inst;
    return 0;
}

int admin_instance_get(struct db_pool *pool, int64_t id, json_t **out)
{
    struct db_conn *conn = NULL;
    int64_t seats = 0;
    *out = NULL;
    int rc = db_acquire(pool, DB_WAIT_MS, &conn);
    if (rc != 0)
        return rc;
    rc = load_instance(conn, id, false, out, &seats);
    db_release(conn);
    if (rc != 0)
        return rc;
    char fp[ADMIN_FINGERPRINT_LEN + 1];
    admin_fingerprint(*out, fp);
    json_object_set_new(*out, "fp", json_string(fp));
    json_object_set_new(*out, "allocated_seats", json_integer((json_int_t)seats));
    return 0;
}

/* ---- validation ----------------------------------------------------------------------------- */

static bool has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

static void field_error(json_t *errors, const char *field, const char *fmt, long long a,
                        long long b)
{
    if (json_object_get(errors, field))
        return; /* the first problem of a field is the one to fix first */
    char text[256];
    snprintf(text, sizeof text, fmt, a, b);
    json_object_set_new(errors, field, json_string(text));
}

/* A cap: digits only, 0..CAP_MAX; *ok false (and an error) otherwise. */
static int64_t parse_cap(const char *s, const char *field, json_t *errors, bool *ok)
{
    *ok = s && *s && strlen(s) <= 7 && strspn(s, "0123456789") == strlen(s) &&
          strtol(s, NULL, 10) <= CAP_MAX;
    if (!*ok) {
        json_object_set_new(errors, field,
                            json_string("Enter a whole number from 0 to 1,000,000."));
        return 0;
    }
    return strtol(s, NULL, 10);
}

struct caps {
    int64_t soft, allocation, hard;
};

/* Every cap rule, each reported on the field an operator would change. */
static void check_caps(const struct admin_instance_form *f, int64_t seats, struct caps *c,
                       json_t *errors)
{
    bool s_ok, a_ok, h_ok;
    c->soft = parse_cap(f->soft_cap, "soft_cap", errors, &s_ok);
    c->allocation = parse_cap(f->allocation_cap, "allocation_cap", errors, &a_ok);
    c->hard = parse_cap(f->hard_cap, "hard_cap", errors, &h_ok);
    if (h_ok && c->hard < seats)
        field_error(errors, "hard_cap",
                    "The hard cap (%lld) cannot be below the %lld seats in use.", c->hard, seats);
    if (a_ok && c->allocation < seats)
        field_error(errors, "allocation_cap",
                    "The allocation cap (%lld) cannot be below the %lld seats in use.",
                    c->allocation, seats);
    if (a_ok && h_ok && c->allocation > c->hard)
        field_error(errors, "allocation_cap",
                    "The allocation cap (%lld) cannot be above the hard cap (%lld).", c->allocation,
                    c->hard);
    if (s_ok && a_ok && c->soft > c->allocation)
        field_error(errors, "soft_cap",
                    "The soft cap (%lld) cannot be above the allocation cap (%lld).", c->soft,
                    c->allocation);
}

static bool web_url(const char *s)
{
    size_t n = strlen(s);
    bool scheme = !strncmp(s, "https://", 8) || !strncmp(s, "http://", 7);
    return scheme && n > 8 && n <= URL_MAX && !has_control(s) && !strchr(s, ' ');
}

/* Splits the group field (lines or commas) into names, de-duplicated. */
static json_t *group_names(const char *text, json_t *errors)
{
    json_t *names = json_array();
    const char *p = text ? text : "";
    while (*p) {
        size_t len = strcspn(p, ",\r\n");
        const char *start = p, *end = p + len;
        while (start < end && (*start == ' ' || *start == '\t'))
            start++;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (end > start) {
            if ((size_t)(end - start) > GROUP_NAME_MAX || json_array_size(names) >= GROUPS_MAX) {
                json_object_set_new(errors, "groups",
                                    json_string("Too many groups, or a name that is too long."));
                break;
            }
            json_t *name = json_stringn(start, (size_t)(end - start));
            size_t i;
            json_t *seen;
            bool dup = false;
            json_array_foreach (names, i, seen)
                dup = dup || json_equal(seen, name);
            if (name && !dup)
                json_array_append(names, name);
            json_decref(name);
        }
        p += len;
        p += strspn(p, ",\r\n");
    }
    return names;
}

/* The ids of names (all of which must exist) into ids. */
static int resolve_groups(struct db_conn *conn, const json_t *names, int64_t *ids, json_t *errors)
{
    size_t i;
    json_t *name;
    json_array_foreach (names, i, name) {
        const struct db_param p[] = {DB_TEXT(json_string_value(name))};
        int rc = db_query_id(conn, "SELECT id FROM groups WHERE name = $1", p, 1, &ids[i]);
        if (rc != 0)
            return rc;
        if (!ids[i] && !json_object_get(errors, "groups")) {
            char text[GROUP_NAME_MAX + 96];
            snprintf(text, sizeof text,
                     "There is no group \"%s\" (groups come from the catalog file).",
                     json_string_value(name));
            json_object_set_new(errors, "groups", json_string(text));
        }
    }
    return 0;
}

/* ---- saving -------------------------------------------------------------------------------- */

/* The save's own inputs (admin_change.arg). */
struct inst_tx {
    const char *fp;
    const struct admin_instance_form *f;
    json_t *errors;
};

static int write_instance(struct db_conn *conn, const struct admin_change *ch, const struct caps *c,
                          const json_t *names, const int64_t *ids)
{
    const struct inst_tx *t = ch->arg;
    const struct admin_instance_form *f = t->f;
    const struct db_param p[] = {
        DB_INT(ch->id),  DB_TEXT(f->base_url),  DB_INT(c->soft),           DB_INT(c->allocation),
        DB_INT(c->hard), DB_BOOL(f->is_active), DB_BOOL(f->auto_allocate), DB_INT(ch->now)};
    int rc = db_exec(conn,
                     "UPDATE instances SET base_url = $2, soft_cap = $3, allocation_cap = $4, "
                     "hard_cap = $5, is_active = $6, auto_allocate = $7, updated_at = $8 "
                     "WHERE id = $1",
                     p, DB_NPARAMS(p), NULL);
    if (rc == 0 && f->api_key && *f->api_key) {
        const struct db_param k[] = {DB_INT(ch->id), DB_TEXT(f->api_key)};
        rc = db_exec(conn, "UPDATE instances SET api_key = $2 WHERE id = $1", k, 2, NULL);
    }
    const struct db_param id[] = {DB_INT(ch->id)};
    if (rc == 0)
        rc = db_exec(conn, "DELETE FROM instance_groups WHERE instance_id = $1", id, 1, NULL);
    for (size_t i = 0; rc == 0 && i < json_array_size(names); i++) {
        const struct db_param g[] = {DB_INT(ch->id), DB_INT(ids[i])};
        rc = db_exec(conn, "INSERT INTO instance_groups (instance_id, group_id) VALUES ($1, $2)", g,
                     2, NULL);
    }
    return rc;
}

/* The instance's groups changed: every user seated on it gets a provisioning sync, enqueued in
 * this transaction (the same task a checkout asks for), so Keycloak memberships follow. */
static int resync_seated_users(struct db_conn *conn, int64_t instance_id, int64_t now)
{
    const struct db_param p[] = {DB_INT(instance_id)};
    struct db_result *res = NULL;
    int rc = db_query(conn,
                      "SELECT user_id FROM instance_assignments WHERE instance_id = $1 "
                      "AND state = 'active' ORDER BY user_id",
                      p, 1, &res);
    for (int i = 0; rc == 0 && i < db_result_rows(res); i++) {
        json_t *args = json_pack("{s:I}", "user_id", (json_int_t)db_result_int(res, i, 0));
        rc = task_enqueue(conn, "sync_user_post_checkout", args, TASK_LONG_MAX_ATTEMPTS, now, NULL,
                          NULL);
        json_decref(args);
    }
    db_result_free(res);
    return rc;
}

static int instance_in_tx(struct db_conn *conn, struct admin_change *ch)
{
    struct inst_tx *t = ch->arg;
    const struct admin_instance_form *f = t->f;
    int64_t seats = 0;
    int rc = load_instance(conn, ch->id, true, &ch->before, &seats);
    if (rc != 0)
        return rc;
    if (!admin_fingerprint_matches(ch->before, t->fp))
        return USHER_ECONFLICT;
    if (!f->base_url || !web_url(f->base_url))
        json_object_set_new(t->errors, "base_url",
                            json_string("Enter a full http:// or https:// address (at most "
                                        "2,048 characters, no spaces)."));
    if (f->api_key && (strlen(f->api_key) > API_KEY_MAX || has_control(f->api_key)))
        json_object_set_new(t->errors, "api_key",
                            json_string("The API key must be one line of at most 4,096 "
                                        "characters."));
    struct caps c;
    check_caps(f, seats, &c, t->errors);
    json_t *names = group_names(f->groups, t->errors);
    int64_t *ids = xcalloc(json_array_size(names) + 1, sizeof *ids);
    rc = resolve_groups(conn, names, ids, t->errors);
    if (rc == 0 && json_object_size(t->errors) > 0)
        rc = USHER_EINVAL;
    if (rc == 0)
        rc = write_instance(conn, ch, &c, names, ids);
    if (rc == 0)
        rc = load_instance(conn, ch->id, false, &ch->after, &seats);
    if (rc == 0 &&
        !json_equal(json_object_get(ch->before, "groups"), json_object_get(ch->after, "groups")))
        rc = resync_seated_users(conn, ch->id, ch->now);
    if (rc == 0 && f->api_key && *f->api_key) /* the key itself never goes into the log */
        json_object_set_new(ch->after, "api_key_replaced", json_true());
    free(ids);
    json_decref(names);
    return rc;
}

int admin_instance_save(struct db_pool *pool, const struct admin_actor *who, int64_t id,
                        const char *fp, const struct admin_instance_form *form, int64_t now,
                        json_t **errors)
{
    *errors = json_object();
    struct inst_tx t = {.fp = fp, .f = form, .errors = *errors};
    return admin_change_save(pool, who, "instance.update", "instance", id, now, &t, instance_in_tx);
}
