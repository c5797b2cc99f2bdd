/*
 * session.c — session middleware (see session.h); storage is domain/session_store.c.
 */
#include "web/session.h"

#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "db/db.h"
#include "domain/rate_limit.h"
#include "domain/session_cache.h"
#include "domain/session_store.h"
#include "web/app.h"
#include "web/response.h"
#include "web/routes.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NEW_SESSION_WINDOW_SECONDS 60

const char *web_session_cookie_name(const struct web_request *r)
{
    return r->app->cfg->debug ? "usher_session" : "__Host-usher_session";
}

/* The cookie holding the state tag of the session's row as this browser last saw it written. */
static const char *state_cookie_name(const struct web_request *r)
{
    return r->app->cfg->debug ? "usher_state" : "__Host-usher_state";
}

static bool may_use_copy(const struct web_request *r)
{
    return r->route && (r->route->flags & WEB_SESSION_COPY) &&
           (!strcmp(r->method, "GET") || !strcmp(r->method, "HEAD"));
}

int web_session_load(struct web_request *r)
{
    const char *cookie = web_cookie(r, web_session_cookie_name(r));
    /* Not even the right length: no id of ours, so no database read either. */
    if (!cookie || strnlen(cookie, SESSION_ID_HEX_LEN + 1) != SESSION_ID_HEX_LEN)
        return 0;
    bool copy = may_use_copy(r);
    const char *tag = copy ? web_cookie(r, state_cookie_name(r)) : NULL;
    if (tag) {
        char id_hash[CRYPTO_SHA256_HEX_LEN + 1];
        crypto_sha256_hex(cookie, id_hash);
        r->session = session_cache_get(r->app->sessions, id_hash, tag, r->now);
        if (r->session)
            return 0;
    }
    struct db_conn *conn = NULL;
    int rc = db_acquire(r->app->db, DB_WAIT_MS, &conn);
    if (rc != 0)
        return rc;
    rc = session_load(conn, r->app->cfg->secret_key, cookie, r->now, &r->session);
    db_release(conn);
    if (rc == 0 && copy)
        session_cache_put(r->app->sessions, r->session, r->now);
    return rc == USHER_ENOTFOUND ? 0 : rc;
}

static void set_cookie(struct web_request *r, const char *value)
{
    char *header = xasprintf("%s=%s; Path=/; HttpOnly; SameSite=Lax%s", web_session_cookie_name(r),
                             value, r->app->cfg->debug ? "" : "; Secure");
    web_set_header(r, "Set-Cookie", header);
    free(header);
}

static void keep_new_cookie(struct web_request *r, char *value)
{
    free(r->new_cookie);
    r->new_cookie = value;
}

int web_session_ensure(struct web_request *r)
{
    if (r->session)
        return 0;
    char *value = NULL;
    int rc = session_create(r->app->cfg->secret_key, r->now, &r->session, &value);
    if (rc == 0)
        keep_new_cookie(r, value);
    return rc;
}

int web_session_rotate(struct web_request *r)
{
    int rc = web_session_ensure(r);
    if (rc != 0)
        return rc;
    session_cache_forget(r->app->sessions, r->session->id_hash);
    struct db_conn *conn = NULL;
    rc = db_acquire(r->app->db, DB_WAIT_MS, &conn);
    if (rc != 0)
        return rc;
    char *value = NULL;
    rc = session_rotate(conn, r->app->cfg->secret_key, r->session, r->now, &value);
    db_release(conn);
    if (rc == 0)
        keep_new_cookie(r, value);
    return rc;
}

static void count_refused(void)
{
    metrics_counter_add("usher_sessions_refused_total",
                        "Requests refused because their IP started too many sessions.", "", 1);
}

/* One hit on the IP's new-session bucket; *retry_after > 0 when refused. An IP-less request
 * (a Unix socket, an address family not parsed) shares one bucket. */
static int hit_ceiling(struct web_request *r, int64_t *retry_after)
{
    char bucket[RATE_LIMIT_BUCKET_MAX];
    snprintf(bucket, sizeof bucket, "session-new:ip:%s", *r->client_key ? r->client_key : "none");
    struct rate_limit_result limit;
    int rc = rate_limit_hit_pool(r->app->db, bucket, r->app->cfg->session_new_per_ip_per_minute,
                                 NEW_SESSION_WINDOW_SECONDS, r->now, &limit);
    *retry_after = rc == 0 && !limit.allowed ? limit.retry_after : 0;
    return rc;
}

int web_session_admit(struct web_request *r)
{
    if (!r->session || r->session->stored || r->session_admitted)
        return 0;
    int64_t retry_after = 0;
    int rc = hit_ceiling(r, &retry_after);
    if (rc != 0)
        return rc;
    if (retry_after > 0) {
        char seconds[24];
        snprintf(seconds, sizeof seconds, "%lld", (long long)retry_after);
        web_set_header(r, "Retry-After", seconds);
        log_warn("request_id=%s msg=\"new session refused: per-IP ceiling\" ip=%s", r->request_id,
                 r->client_ip);
        count_refused();
        return USHER_ELIMIT;
    }
    r->session_admitted = true;
    return 0;
}

/* A handler stored something without web_session_admit first: the ceiling still holds, the
 * row is not written (the reply is already made, so this is only logged). */
static bool admitted_late(struct web_request *r)
{
    if (r->session_admitted)
        return true;
    int64_t retry_after = 0;
    if (hit_ceiling(r, &retry_after) != 0 || retry_after > 0) {
        log_warn("request_id=%s msg=\"session not stored: per-IP ceiling\" ip=%s", r->request_id,
                 r->client_ip);
        count_refused();
        return false;
    }
    return true;
}

/* After a save. A request that wrote an anonymous row's data sends the browser the row's new
 * state tag and keeps a copy of what it wrote; one that only touched it moves its copy's
 * last_seen_at. Only a writer sends a tag: a reader's tag could overtake a concurrent writer's
 * answer and leave the browser vouching for an older state. A logged-in session is never
 * answered from a copy, so it needs neither. */
static void share_state(struct web_request *r, bool wrote, int64_t last_seen_before)
{
    const struct session *s = r->session;
    if (!s->stored || s->user_id != 0 || !s->state_tag[0])
        return;
    const char *sent = web_cookie(r, state_cookie_name(r));
    if (!wrote) {
        if (sent && !strcmp(sent, s->state_tag) && s->last_seen_at != last_seen_before)
            session_cache_touched(r->app->sessions, s->id_hash, s->state_tag, s->last_seen_at);
        return;
    }
    if ((!sent || strcmp(sent, s->state_tag)) &&
        web_add_cookie(r, state_cookie_name(r), s->state_tag) != 0) {
        /* Without the new tag the browser keeps sending the old one: no copy ever matches,
         * so its pages are read from the database, which is still right. */
        log_warn("request_id=%s msg=\"state cookie not set\"", r->request_id);
        return;
    }
    session_cache_put(r->app->sessions, s, r->now);
}

int web_session_finish(struct web_request *r)
{
    int rc = 0;
    /* A session with nothing to write costs no connection: every anonymous view, and every
     * view of a stored session touched less than a minute ago. */
    if (r->session && session_needs_save(r->session, r->now) &&
        (!session_needs_insert(r->session) || admitted_late(r))) {
        int64_t last_seen_before = r->session->last_seen_at;
        bool writes = r->session->dirty;
        struct db_conn *conn = NULL;
        rc = db_acquire(r->app->db, DB_WAIT_MS, &conn);
        if (rc == 0)
            rc = session_save(conn, r->session, r->now);
        db_release(conn);
        if (rc != 0)
            log_error("request_id=%s msg=\"session save failed\" error=\"%s\"", r->request_id,
                      usher_strerror(rc));
        else
            share_state(r, writes, last_seen_before);
    }
    if (r->new_cookie) {
        set_cookie(r, r->new_cookie);
        free(r->new_cookie);
        r->new_cookie = NULL;
    }
    session_free(r->session);
    r->session = NULL;
    return rc;
}

json_t *web_session_data(struct web_request *r)
{
    return r->session ? r->session->data : NULL;
}

void web_session_changed(struct web_request *r)
{
    if (r->session)
        r->session->dirty = true;
}

json_t *web_session_object(struct web_request *r, const char *key, bool create)
{
    json_t *data = web_session_data(r);
    if (!data)
        return NULL;
    json_t *obj = json_object_get(data, key);
    if (!json_is_object(obj) && create) {
        obj = json_object();
        json_object_set_new(data, key, obj);
    }
    return json_is_object(obj) ? obj : NULL;
}
