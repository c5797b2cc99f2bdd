/*
 * session_store.c — sessions table access (see session_store.h).
 */
#include "domain/session_store.h"

#include "core/err.h"
#include "core/mem.h"
#include "db/db.h"

#include <stdlib.h>
#include <string.h>

#define SESSION_ID_BYTES 32

bool session_is_live(int64_t created_at, int64_t last_seen_at, int64_t now)
{
    return now - last_seen_at < SESSION_IDLE_SECONDS && now - created_at < SESSION_ABSOLUTE_SECONDS;
}

static struct session *session_new(void)
{
    struct session *s = xcalloc(1, sizeof *s);
    s->data = json_object();
    return s;
}

void session_free(struct session *s)
{
    if (!s)
        return;
    json_decref(s->data);
    free(s);
}

static void new_secrets(struct session *s, char **cookie_value)
{
    char *id = crypto_random_hex(SESSION_ID_BYTES);
    char *csrf = crypto_random_hex(SESSION_ID_BYTES);
    crypto_sha256_hex(id, s->id_hash);
    memcpy(s->csrf_token, csrf, sizeof s->csrf_token);
    free(csrf);
    *cookie_value = id;
}

static char *data_text(const struct session *s)
{
    char *text = json_dumps(s->data, JSON_COMPACT);
    return text ? text : xstrdup("{}");
}

static int insert(struct db_conn *conn, const struct session *s)
{
    char *data = data_text(s);
    const struct db_param p[] = {
        DB_TEXT(s->id_hash),    s->user_id ? DB_INT(s->user_id) : DB_NULL,
        DB_TEXT(s->csrf_token), DB_TEXT(data),
        DB_INT(s->created_at),  DB_INT(s->last_seen_at),
    };
    int rc = db_exec(conn,
                     "INSERT INTO sessions (id_hash, user_id, csrf_token, data, created_at, "
                     "last_seen_at) VALUES ($1, $2, $3, $4, $5, $6)",
                     p, DB_NPARAMS(p), NULL);
    free(data);
    return rc;
}

int session_create(struct db_conn *conn, int64_t now, struct session **out, char **cookie_value)
{
    struct session *s = session_new();
    s->created_at = s->last_seen_at = now;
    new_secrets(s, cookie_value);
    int rc = insert(conn, s);
    if (rc != 0) {
        free(*cookie_value);
        *cookie_value = NULL;
        session_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

static bool plausible_cookie(const char *v)
{
    if (!v || strlen(v) != 2 * SESSION_ID_BYTES)
        return false;
    for (const char *p = v; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

static int from_row(const struct db_result *res, struct session *s)
{
    const char *csrf = db_result_text(res, 0, 1);
    if (!csrf || strlen(csrf) != CRYPTO_SHA256_HEX_LEN)
        return USHER_EDB;
    memcpy(s->csrf_token, csrf, sizeof s->csrf_token);
    s->user_id = db_result_int(res, 0, 0);
    s->created_at = db_result_int(res, 0, 3);
    s->last_seen_at = db_result_int(res, 0, 4);
    const char *data = db_result_text(res, 0, 2);
    json_t *doc = data ? json_loads(data, 0, NULL) : NULL;
    if (json_is_object(doc)) {
        json_decref(s->data);
        s->data = doc;
    } else {
        json_decref(doc);
    }
    return 0;
}

int session_load(struct db_conn *conn, const char *cookie_value, int64_t now, struct session **out)
{
    if (!plausible_cookie(cookie_value))
        return USHER_ENOTFOUND;
    struct session *s = session_new();
    crypto_sha256_hex(cookie_value, s->id_hash);
    const struct db_param p[] = {DB_TEXT(s->id_hash)};
    struct db_result *res = NULL;
    int rc = db_query(conn,
                      "SELECT user_id, csrf_token, data, created_at, last_seen_at FROM sessions "
                      "WHERE id_hash = $1",
                      p, 1, &res);
    if (rc == 0 && db_result_rows(res) == 0)
        rc = USHER_ENOTFOUND;
    if (rc == 0)
        rc = from_row(res, s);
    db_result_free(res);
    if (rc == 0 && !session_is_live(s->created_at, s->last_seen_at, now)) {
        rc = session_delete(conn, s);
        if (rc == 0)
            rc = USHER_ENOTFOUND;
    }
    if (rc != 0) {
        session_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int session_save(struct db_conn *conn, struct session *s, int64_t now)
{
    if (!s->dirty && now - s->last_seen_at < SESSION_TOUCH_SECONDS)
        return 0;
    s->last_seen_at = now;
    if (!s->dirty) {
        const struct db_param p[] = {DB_INT(now), DB_TEXT(s->id_hash)};
        return db_exec(conn, "UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2", p, 2,
                       NULL);
    }
    char *data = data_text(s);
    if (strlen(data) > SESSION_DATA_MAX_BYTES) {
        free(data);
        return USHER_ELIMIT;
    }
    const struct db_param p[] = {DB_TEXT(data), s->user_id ? DB_INT(s->user_id) : DB_NULL,
                                 DB_INT(now), DB_TEXT(s->id_hash)};
    int rc = db_exec(conn,
                     "UPDATE sessions SET data = $1, user_id = $2, last_seen_at = $3 "
                     "WHERE id_hash = $4",
                     p, DB_NPARAMS(p), NULL);
    free(data);
    if (rc == 0)
        s->dirty = false;
    return rc;
}

int session_rotate(struct db_conn *conn, struct session *s, int64_t now, char **cookie_value)
{
    int rc = db_begin(conn, DB_TX_WRITE);
    if (rc != 0)
        return rc;
    rc = session_delete(conn, s);
    if (rc == 0) {
        new_secrets(s, cookie_value);
        s->created_at = s->last_seen_at = now;
        rc = insert(conn, s);
    }
    if (rc == 0)
        rc = db_commit(conn);
    if (rc != 0) {
        db_rollback(conn);
        free(*cookie_value);
        *cookie_value = NULL;
        return rc;
    }
    s->dirty = false;
    return 0;
}

int session_delete(struct db_conn *conn, const struct session *s)
{
    const struct db_param p[] = {DB_TEXT(s->id_hash)};
    return db_exec(conn, "DELETE FROM sessions WHERE id_hash = $1", p, 1, NULL);
}

int session_delete_for_user(struct db_conn *conn, int64_t user_id, int64_t *deleted)
{
    const struct db_param p[] = {DB_INT(user_id)};
    return db_exec(conn, "DELETE FROM sessions WHERE user_id = $1", p, 1, deleted);
}

int session_purge_expired(struct db_conn *conn, int64_t now, int64_t *deleted)
{
    const struct db_param p[] = {DB_INT(now - SESSION_IDLE_SECONDS),
                                 DB_INT(now - SESSION_ABSOLUTE_SECONDS)};
    return db_exec(conn, "DELETE FROM sessions WHERE last_seen_at <= $1 OR created_at <= $2", p, 2,
                   deleted);
}
