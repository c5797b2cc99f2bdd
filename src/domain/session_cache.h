/*
 * session_cache.h — anonymous sessions kept in memory for the pages that only show them.
 *
 * A visitor going through onboarding reads the same session on every page view, and on
 * PostgreSQL that read was most of a page's time. A copy of the row may answer a page view
 * instead, but only one the browser itself vouches for: every write of an anonymous session's
 * data sends the browser the row's new state tag (session_store.h), and a copy is used only
 * when its tag equals the tag the browser sends, so a step saved through another `usher serve`
 * process is never shown from an older copy here.
 *
 * What the tag cannot tell — the row deleted or rotated by another process while an old
 * cookie is replayed, a write whose answer never reached the browser, two concurrent writes of
 * one visitor whose answers arrive in the other order — is bounded: a copy is
 * used for at most SESSION_CACHE_TTL_SECONDS after it was read, only for GET pages that opt in,
 * and never for a logged-in session (a logout, a disabled account or an admin's change is seen
 * at once, on every process). Live-ness (session_is_live) is checked on the copy's own times.
 *
 * One cache per process (`usher serve` owns one in its web_app). Thread-safe.
 */
#ifndef USHER_DOMAIN_SESSION_CACHE_H
#define USHER_DOMAIN_SESSION_CACHE_H

#include "domain/session_store.h"

#include <stdint.h>

#define SESSION_CACHE_TTL_SECONDS 30
#define SESSION_CACHE_SLOTS 1024

struct session_cache;

struct session_cache *session_cache_new(void);
void session_cache_free(struct session_cache *cache);

/* A copy (the caller's) of the anonymous session id_hash when one is held with this state tag,
 * was read less than SESSION_CACHE_TTL_SECONDS ago and is live at now; else NULL. */
struct session *session_cache_get(struct session_cache *cache, const char *id_hash,
                                  const char *state_tag, int64_t now);
/* Keeps a copy of s as read or written at now. Only a stored anonymous session with a state
 * tag is kept; anything else drops what is held for its id. */
void session_cache_put(struct session_cache *cache, const struct session *s, int64_t now);
/* The session's last_seen_at was written at last_seen_at: the copy of id_hash with this state
 * tag follows, so it does not ask for the write again (its read time stays). */
void session_cache_touched(struct session_cache *cache, const char *id_hash, const char *state_tag,
                           int64_t last_seen_at);
/* Drops the copy of id_hash (the session was deleted or rotated here). */
void session_cache_forget(struct session_cache *cache, const char *id_hash);

#endif
