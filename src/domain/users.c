/*
 * users.c — finding, creating and reading users (see users.h).
 */
#include "domain/users.h"

#include "core/err.h"
#include "core/mem.h"
#include "db/db.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *lowercase(const char *s)
{
    char *out = xstrdup(s);
    for (char *p = out; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return out;
}

static int find_id(struct db_conn *conn, const char *sql, const char *key, int64_t *id)
{
    const struct db_param p[] = {DB_TEXT(key)};
    return db_query_id(conn, sql, p, 1, id);
}

static int update_user(struct db_conn *conn, int64_t id, const char *username,
                       const struct user_login *l, int64_t now)
{
    const struct db_param p[] = {DB_TEXT(username),
                                 DB_TEXT(l->email ? l->email : ""),
                                 DB_TEXT(l->first_name ? l->first_name : ""),
                                 DB_TEXT(l->last_name ? l->last_name : ""),
                                 DB_BOOL(l->is_admin),
                                 DB_TEXT(l->sub),
                                 DB_INT(now),
                                 DB_INT(id)};
    return db_exec(conn,
                   "UPDATE users SET username = $1, email = $2, first_name = $3, last_name = $4, "
                   "is_admin = $5, keycloak_id = $6, last_login = $7 WHERE id = $8",
                   p, DB_NPARAMS(p), NULL);
}

static int insert_user(struct db_conn *conn, const char *username, const struct user_login *l,
                       int64_t now, int64_t *id)
{
    const struct db_param p[] = {DB_TEXT(username),
                                 DB_TEXT(l->email ? l->email : ""),
                                 DB_TEXT(l->first_name ? l->first_name : ""),
                                 DB_TEXT(l->last_name ? l->last_name : ""),
                                 DB_BOOL(l->is_admin),
                                 DB_TEXT(l->sub),
                                 DB_INT(now)};
    struct db_result *res = NULL;
    int rc = db_query(conn,
                      "INSERT INTO users (username, email, first_name, last_name, is_admin, "
                      "keycloak_id, date_joined, last_login) "
                      "VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
                      p, DB_NPARAMS(p), &res);
    if (rc == 0)
        *id = db_result_int(res, 0, 0);
    db_result_free(res);
    return rc;
}

static int upsert(struct db_conn *conn, const char *username, const struct user_login *l,
                  int64_t now, int64_t *id, bool *created)
{
    int rc = find_id(conn, "SELECT id FROM users WHERE username = $1", username, id);
    if (rc == 0 && !*id)
        rc = find_id(conn, "SELECT id FROM users WHERE keycloak_id = $1", l->sub, id);
    if (rc != 0)
        return rc;
    *created = *id == 0;
    if (*created)
        return insert_user(conn, username, l, now, id);
    /* Another local row may still hold this Keycloak id (an account Keycloak re-created
     * under the same sub is impossible; one renamed is not): unlink it first. */
    const struct db_param p[] = {DB_TEXT(l->sub), DB_INT(*id)};
    rc = db_exec(conn, "UPDATE users SET keycloak_id = NULL WHERE keycloak_id = $1 AND id <> $2", p,
                 2, NULL);
    return rc == 0 ? update_user(conn, *id, username, l, now) : rc;
}

int users_upsert_from_login(struct db_pool *pool, const struct user_login *login, int64_t now,
                            int64_t *user_id, bool *created)
{
    if (!login->sub || !*login->sub || !login->username || !*login->username ||
        strlen(login->username) > USERNAME_MAX_LEN)
        return USHER_EINVAL;
    char *username = lowercase(login->username);
    struct db_conn *conn = NULL;
    int rc = db_acquire(pool, DB_WAIT_MS, &conn);
    if (rc == 0)
        rc = db_begin(conn, DB_TX_WRITE);
    if (rc == 0)
        rc = upsert(conn, username, login, now, user_id, created);
    if (rc == 0)
        rc = db_commit(conn);
    db_release(conn);
    free(username);
    return rc;
}

int users_get(struct db_pool *pool, int64_t id, struct user *out)
{
    memset(out, 0, sizeof *out);
    struct db_conn *conn = NULL;
    int rc = db_acquire(pool, DB_WAIT_MS, &conn);
    if (rc != 0)
        return rc;
    const struct db_param p[] = {DB_INT(id)};
    struct db_result *res = NULL;
    rc = db_query(conn,
                  "SELECT id, username, email, first_name, last_name, is_admin, keycloak_id, "
                  "stripe_customer_id, subscription_status, access_expires_at "
                  "FROM users WHERE id = $1",
                  p, 1, &res);
    if (rc == 0 && db_result_rows(res) == 0)
        rc = USHER_ENOTFOUND;
    if (rc == 0) {
        out->id = db_result_int(res, 0, 0);
        snprintf(out->username, sizeof out->username, "%s", db_result_text(res, 0, 1));
        out->email = xstrdup(db_result_text(res, 0, 2));
        out->first_name = xstrdup(db_result_text(res, 0, 3));
        out->last_name = xstrdup(db_result_text(res, 0, 4));
        out->is_admin = db_result_bool(res, 0, 5);
        out->keycloak_id = xstrdup(db_result_text(res, 0, 6));
        out->stripe_customer_id = xstrdup(db_result_text(res, 0, 7));
        out->subscription_status = xstrdup(db_result_text(res, 0, 8));
        out->access_expires_at = db_result_int(res, 0, 9);
    }
    db_result_free(res);
    db_release(conn);
    return rc;
}

void users_cleanup(struct user *u)
{
    free(u->email);
    free(u->first_name);
    free(u->last_name);
    free(u->keycloak_id);
    free(u->stripe_customer_id);
    free(u->subscription_status);
    memset(u, 0, sizeof *u);
}

int users_exists(struct db_pool *pool, int64_t id, bool *exists)
{
    const struct db_param p[] = {DB_INT(id)};
    struct db_result *res = NULL;
    int rc = db_pool_query(pool, "SELECT 1 FROM users WHERE id = $1", p, 1, &res);
    *exists = rc == 0 && db_result_rows(res) == 1;
    db_result_free(res);
    return rc;
}
