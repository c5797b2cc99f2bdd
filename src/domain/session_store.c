/*
 * session_store.c — sessions table access and the lazy, tagged ids (see session_store.h).
 */
#include "domain/session_store.h"

#include "core/err.h"
#include "core/mem.h"
#include "db/db.h"

#include <stdlib.h>
#include <string.h>

#define ID_RANDOM_BYTES 20
#define ID_TIME_BYTES 4
#define ID_TAG_BYTES 8
#define ID_BYTES (ID_RANDOM_BYTES + ID_TIME_BYTES + ID_TAG_BYTES)
_Static_assert(2 * ID_BYTES == SESSION_ID_HEX_LEN, "the id is 64 hex characters");

bool session_is_live(int64_t created_at, int64_t last_seen_at, int64_t now)
{
    return now - last_seen_at < SESSION_IDLE_SECONDS && now - created_at < SESSION_ABSOLUTE_SECONDS;
}

static struct session *session_alloc(void)
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

/* Domain-separated MACs: the prefixes hold characters no hex id or other HMAC input of Usher
 * starts with, so a tag can never stand in for a CSRF token or the other way round. */
static int mac(const char *secret_key, const char *prefix, const void *data, size_t len,
               unsigned char out[CRYPTO_SHA256_LEN])
{
    size_t plen = strlen(prefix);
    unsigned char msg[32 + SESSION_ID_HEX_LEN];
    if (plen + len > sizeof msg)
        return USHER_EINVAL;
    memcpy(msg, prefix, plen);
    memcpy(msg + plen, data, len);
    return crypto_hmac_sha256(secret_key, strlen(secret_key), msg, plen + len, out);
}

int session_csrf_token(const char *secret_key, const char *cookie_value,
                       char out[CRYPTO_SHA256_HEX_LEN + 1])
{
    unsigned char m[CRYPTO_SHA256_LEN];
    int rc = mac(secret_key, "session-csrf\n", cookie_value, strlen(cookie_value), m);
    if (rc == 0)
        crypto_hex(m, sizeof m, out);
    return rc;
}

/* The id's bytes from exactly SESSION_ID_HEX_LEN lowercase hex characters. */
static bool decode_id(const char *v, unsigned char out[ID_BYTES])
{
    if (!v || strnlen(v, SESSION_ID_HEX_LEN + 1) != SESSION_ID_HEX_LEN)
        return false;
    for (size_t i = 0; i < ID_BYTES; i++) {
        int hi = crypto_hex_value(v[2 * i]), lo = crypto_hex_value(v[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}

/* Ids issued at login are tagged in another domain: they are valid only with their row, so
 * once logout, a disabled account or expiry deletes it, the cookie is dead for good. */
static int id_tag(const char *secret_key, const unsigned char id[ID_BYTES], bool login,
                  unsigned char tag[CRYPTO_SHA256_LEN])
{
    return mac(secret_key, login ? "session-login-id\n" : "session-id\n", id,
               ID_RANDOM_BYTES + ID_TIME_BYTES, tag);
}

/* When an anonymous tagged id was issued; false for an untagged, forged or login id. */
static bool tagged_id_time(const char *secret_key, const unsigned char id[ID_BYTES],
                           int64_t *issued)
{
    unsigned char tag[CRYPTO_SHA256_LEN];
    if (id_tag(secret_key, id, false, tag) != 0 ||
        !crypto_equal(tag, ID_TAG_BYTES, id + ID_RANDOM_BYTES + ID_TIME_BYTES, ID_TAG_BYTES))
        return false;
    const unsigned char *t = id + ID_RANDOM_BYTES;
    *issued = (int64_t)((uint32_t)t[0] << 24 | (uint32_t)t[1] << 16 | (uint32_t)t[2] << 8 | t[3]);
    return true;
}

/* A fresh tagged id issued at now (heap), with its hash and CSRF token in s. */
static int new_secrets(const char *secret_key, struct session *s, int64_t now, bool login,
                       char **cookie_value)
{
    unsigned char id[ID_BYTES];
    crypto_random(id, ID_RANDOM_BYTES);
    uint32_t t = (uint32_t)now;
    id[ID_RANDOM_BYTES] = (unsigned char)(t >> 24);
    id[ID_RANDOM_BYTES + 1] = (unsigned char)(t >> 16);
    id[ID_RANDOM_BYTES + 2] = (unsigned char)(t >> 8);
    id[ID_RANDOM_BYTES + 3] = (unsigned char)t;
    unsigned char tag[CRYPTO_SHA256_LEN];
    int rc = id_tag(secret_key, id, login, tag);
    if (rc != 0)
        return rc;
    memcpy(id + ID_RANDOM_BYTES + ID_TIME_BYTES, tag, ID_TAG_BYTES);
    char *value = xmalloc(SESSION_ID_HEX_LEN + 1);
    crypto_hex(id, sizeof id, value);
    rc = session_csrf_token(secret_key, value, s->csrf_token);
    if (rc != 0) {
        free(value);
        return rc;
    }
    crypto_sha256_hex(value, s->id_hash);
    *cookie_value = value;
    return 0;
}

static void set_state_tag(struct session *s, const char *data)
{
    size_t hash_len = strlen(s->id_hash), data_len = strlen(data);
    char *input = xmalloc(hash_len + 1 + data_len);
    memcpy(input, s->id_hash, hash_len);
    input[hash_len] = '\n';
    memcpy(input + hash_len + 1, data, data_len);
    unsigned char digest[CRYPTO_SHA256_LEN];
    crypto_sha256(input, hash_len + 1 + data_len, digest);
    free(input);
    crypto_hex(digest, SESSION_STATE_TAG_HEX_LEN / 2, s->state_tag);
}

static char *data_text(const struct session *s)
{
    char *text = json_dumps(s->data, JSON_COMPACT);
    return text ? text : xstrdup("{}");
}

/* Two requests of one visitor may both write the first row: the later one's data wins, as
 * it would with an UPDATE, and the user stays whoever the row already had. */
static int insert(struct db_conn *conn, struct session *s)
{
    char *data = data_text(s);
    if (strlen(data) > SESSION_DATA_MAX_BYTES) {
        free(data);
        return USHER_ELIMIT;
    }
    const struct db_param p[] = {
        DB_TEXT(s->id_hash),    s->user_id ? DB_INT(s->user_id) : DB_NULL,
        DB_TEXT(s->csrf_token), DB_TEXT(data),
        DB_INT(s->created_at),  DB_INT(s->last_seen_at),
    };
    int rc = db_exec(conn,
                     "INSERT INTO sessions (id_hash, user_id, csrf_token, data, created_at, "
                     "last_seen_at) VALUES ($1, $2, $3, $4, $5, $6) "
                     "ON CONFLICT (id_hash) DO UPDATE SET data = excluded.data, "
                     "last_seen_at = excluded.last_seen_at",
                     p, DB_NPARAMS(p), NULL);
    if (rc == 0)
        set_state_tag(s, data);
    free(data);
    return rc;
}

int session_create(const char *secret_key, int64_t now, struct session **out, char **cookie_value)
{
    struct session *s = session_alloc();
    s->created_at = s->last_seen_at = now;
    int rc = new_secrets(secret_key, s, now, false, cookie_value);
    if (rc != 0) {
        session_free(s);
        return rc;
    }
    *out = s;
    return 0;
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
    s->stored = true;
    const char *data = db_result_text(res, 0, 2);
    set_state_tag(s, data ? data : "");
    json_t *doc = data ? json_loads(data, 0, NULL) : NULL;
    if (json_is_object(doc)) {
        json_decref(s->data);
        s->data = doc;
    } else {
        json_decref(doc);
    }
    return 0;
}

/* The row of s->id_hash into s: 0, USHER_ENOTFOUND, or the database's error. */
static int load_row(struct db_conn *conn, struct session *s)
{
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
    return rc;
}

/* An id issued in the future is accepted within this much clock skew between processes. */
#define ISSUE_SKEW_SECONDS 300

int session_load(struct db_conn *conn, const char *secret_key, const char *cookie_value,
                 int64_t now, struct session **out)
{
    unsigned char id[ID_BYTES];
    if (!decode_id(cookie_value, id))
        return USHER_ENOTFOUND;
    struct session *s = session_alloc();
    crypto_sha256_hex(cookie_value, s->id_hash);
    int rc = load_row(conn, s);
    if (rc == 0 && !session_is_live(s->created_at, s->last_seen_at, now)) {
        rc = session_delete(conn, s);
        if (rc == 0)
            rc = USHER_ENOTFOUND; /* stale: a fresh visit, not this id again without its row */
    } else if (rc == USHER_ENOTFOUND) {
        int64_t issued = 0;
        if (tagged_id_time(secret_key, id, &issued) && issued - now <= ISSUE_SKEW_SECONDS &&
            now - issued < SESSION_ABSOLUTE_SECONDS)
            rc = session_csrf_token(secret_key, cookie_value, s->csrf_token);
        s->created_at = s->last_seen_at = now;
    }
    if (rc != 0) {
        session_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

bool session_needs_insert(const struct session *s)
{
    return !s->stored && s->dirty;
}

bool session_needs_save(const struct session *s, int64_t now)
{
    return s->dirty || (s->stored && now - s->last_seen_at >= SESSION_TOUCH_SECONDS);
}

int session_save(struct db_conn *conn, struct session *s, int64_t now)
{
    if (!session_needs_save(s, now))
        return 0;
    if (!s->stored) {
        s->created_at = s->last_seen_at = now;
        int rc = insert(conn, s);
        if (rc == 0) {
            s->stored = true;
            s->dirty = false;
        }
        return rc;
    }
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
    if (rc == 0) {
        set_state_tag(s, data);
        s->dirty = false;
    }
    free(data);
    return rc;
}

int session_rotate(struct db_conn *conn, const char *secret_key, struct session *s, int64_t now,
                   char **cookie_value)
{
    *cookie_value = NULL;
    if (!s->stored) {
        int rc = new_secrets(secret_key, s, now, true, cookie_value);
        if (rc == 0)
            s->dirty = true;
        return rc;
    }
    int rc = db_begin(conn, DB_TX_WRITE);
    if (rc != 0)
        return rc;
    rc = session_delete(conn, s);
    if (rc == 0)
        rc = new_secrets(secret_key, s, now, true, cookie_value);
    if (rc == 0) {
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

/* A LIMIT inside IN (SELECT …) bounds a DELETE on both SQLite (whose DELETE … LIMIT is a
 * compile-time option) and PostgreSQL (which has none). */
int session_purge_expired(struct db_conn *conn, int64_t now, int64_t batch, int64_t max,
                          int64_t *deleted)
{
    *deleted = 0;
    if (batch < 1 || max < 1)
        return USHER_EINVAL;
    while (*deleted < max) {
        int64_t n = 0;
        int64_t limit = max - *deleted < batch ? max - *deleted : batch;
        const struct db_param p[] = {DB_INT(now - SESSION_IDLE_SECONDS),
                                     DB_INT(now - SESSION_ABSOLUTE_SECONDS), DB_INT(limit)};
        int rc = db_exec(conn,
                         "DELETE FROM sessions WHERE id_hash IN (SELECT id_hash FROM sessions "
                         "WHERE last_seen_at <= $1 OR created_at <= $2 LIMIT $3)",
                         p, 3, &n);
        if (rc != 0)
            return rc;
        *deleted += n;
        if (n < limit)
            break;
    }
    return 0;
}
