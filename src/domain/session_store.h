/*
 * session_store.h — server-side sessions in the database (SPEC §6).
 *
 * The browser holds a random 256-bit id; the database holds only its SHA-256, so a leaked
 * sessions table cannot be replayed as cookies. Expiry is enforced here, on the server:
 * 30 minutes idle, 8 hours absolute. Each session carries its own CSRF token (synchronizer
 * pattern) and a small JSON object of state (onboarding choices, OIDC state, …).
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

struct session {
    char id_hash[CRYPTO_SHA256_HEX_LEN + 1];
    int64_t user_id; /* 0: anonymous */
    char csrf_token[CRYPTO_SHA256_HEX_LEN + 1];
    json_t *data; /* owned; never NULL */
    int64_t created_at;
    int64_t last_seen_at;
    bool dirty; /* data or user_id changed since loading */
};

/* Creates a session; *cookie_value (heap, caller frees) is the only copy of the raw id. */
int session_create(struct db_conn *conn, int64_t now, struct session **out, char **cookie_value);
/* Loads a live session by its cookie value; USHER_ENOTFOUND when unknown or expired (an
 * expired row is deleted on the way). */
int session_load(struct db_conn *conn, const char *cookie_value, int64_t now, struct session **out);
/* Writes data/user_id when dirty, otherwise only refreshes last_seen_at when it is stale. */
int session_save(struct db_conn *conn, struct session *s, int64_t now);
/* Replaces the session's id and CSRF token, keeping its data (call at login, so a cookie
 * from before login is never valid after it). */
int session_rotate(struct db_conn *conn, struct session *s, int64_t now, char **cookie_value);
int session_delete(struct db_conn *conn, const struct session *s);
/* Ends every session of a user at once (disabled account, logout everywhere). */
int session_delete_for_user(struct db_conn *conn, int64_t user_id, int64_t *deleted);
/* Deletes sessions past either timeout. */
int session_purge_expired(struct db_conn *conn, int64_t now, int64_t *deleted);
void session_free(struct session *s);

/* Whether a session with these times is still live at now. */
bool session_is_live(int64_t created_at, int64_t last_seen_at, int64_t now);

#endif
