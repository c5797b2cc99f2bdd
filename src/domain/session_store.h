/*
 * session_store.h — server-side sessions in the database (SPEC §6).
 *
 * The browser holds a 256-bit id (64 hex characters); the database holds only its SHA-256, so
 * a leaked sessions table cannot be replayed as cookies. Expiry is enforced here, on the
 * server: 30 minutes idle, 8 hours absolute. A session also carries a CSRF token and a small
 * JSON object of state (onboarding choices, OIDC state, …).
 *
 * Sessions are lazy: a visitor gets an id on their first page view, but a row is written only
 * when there is something to keep (session_save of a dirty session). So that an id without a
 * row can be told from a forged one without a database read, the id is self-describing:
 *   160 random bits | 32-bit issue time (seconds) | 64-bit tag = HMAC(SECRET_KEY, those 24 bytes)
 * An id without a row is accepted only with a valid tag and for SESSION_ABSOLUTE_SECONDS after
 * it was issued. The CSRF token of an id is derived, HMAC(SECRET_KEY, "csrf\n" || id), so a
 * form rendered before the row existed still verifies after it is written (the row stores the
 * same token). Ids that name a row need no tag (rows written before ids carried one). Ids
 * issued at login (session_rotate) carry a tag of another kind and are never accepted without
 * their row: logout, a disabled account or expiry ends them for good.
 */
#ifndef USHER_DOMAIN_SESSION_STORE_H
#define USHER_DOMAIN_SESSION_STORE_H

#include "core/crypto.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct db_conn;

#define SESSION_IDLE_SECONDS (30 * 60)
#define SESSION_ABSOLUTE_SECONDS (8 * 60 * 60)
/* last_seen_at is written at most this often, so reading pages costs no write each time. */
#define SESSION_TOUCH_SECONDS 60
#define SESSION_DATA_MAX_BYTES (64 * 1024)
#define SESSION_ID_HEX_LEN 64
/* The state tag: the first 16 bytes of SHA-256(id_hash "\n" stored data text), in hex. */
#define SESSION_STATE_TAG_HEX_LEN 32

struct session {
    char id_hash[CRYPTO_SHA256_HEX_LEN + 1];
    int64_t user_id; /* 0: anonymous */
    char csrf_token[CRYPTO_SHA256_HEX_LEN + 1];
    json_t *data; /* owned; never NULL */
    int64_t created_at;
    int64_t last_seen_at;
    bool dirty; /* data or user_id changed since loading: session_save writes it */
    bool stored; /* a row exists (loaded, or written by session_save / session_rotate) */
    /* A digest of the row's data as last read or written ("" before that): it names one
     * state of the row, so a browser told it can be answered from a copy in memory that has
     * the same tag (web/session.c, domain/session_cache.h). */
    char state_tag[SESSION_STATE_TAG_HEX_LEN + 1];
};

/* The CSRF token of a raw id, into out (65 bytes). */
int session_csrf_token(const char *secret_key, const char *cookie_value,
                       char out[CRYPTO_SHA256_HEX_LEN + 1]);
/* A new session in memory only (nothing is written): fresh tagged id, derived CSRF token.
 * *cookie_value (heap, caller frees) is the only copy of the raw id. */
int session_create(const char *secret_key, int64_t now, struct session **out, char **cookie_value);
/* The session a cookie names: its live row (stored), or, without a row, an unstored session
 * when the id carries a valid tag issued less than SESSION_ABSOLUTE_SECONDS ago.
 * USHER_ENOTFOUND for anything else — malformed, forged, stale, or naming an expired row
 * (deleted on the way); the caller starts a fresh visit. */
int session_load(struct db_conn *conn, const char *secret_key, const char *cookie_value,
                 int64_t now, struct session **out);
/* Writes the session when there is something to keep: an unstored session gets its row only
 * when dirty; a stored one is updated when dirty, else only its last_seen_at when stale. */
int session_save(struct db_conn *conn, struct session *s, int64_t now);
/* Whether session_save at now would write anything (so a caller borrows a connection only
 * then: most views of a stored session write nothing). */
bool session_needs_save(const struct session *s, int64_t now);
/* Whether session_save would insert a row (the new-session ceiling is counted then). */
bool session_needs_insert(const struct session *s);
/* Replaces the session's id and CSRF token, keeping its data (call at login, so a cookie
 * from before login is never valid after it). A stored session's row is replaced at once;
 * an unstored one stays unstored and dirty. */
int session_rotate(struct db_conn *conn, const char *secret_key, struct session *s, int64_t now,
                   char **cookie_value);
int session_delete(struct db_conn *conn, const struct session *s);
/* Ends every session of a user at once (disabled account, logout everywhere). */
int session_delete_for_user(struct db_conn *conn, int64_t user_id, int64_t *deleted);
/* Deletes sessions past either timeout — which includes abandoned anonymous ones — in
 * statements of at most batch rows, stopping after max rows so that one run stays short
 * whatever piled up; *deleted gets the count. */
int session_purge_expired(struct db_conn *conn, int64_t now, int64_t batch, int64_t max,
                          int64_t *deleted);
void session_free(struct session *s);

/* Whether a session with these times is still live at now. */
bool session_is_live(int64_t created_at, int64_t last_seen_at, int64_t now);

#endif
