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
#include "domain/session_store.h"
#include "web/app.h"
#include "web/response.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NEW_SESSION_WINDOW_SECONDS 60

const char *web_session_cookie_name(const struct web_request *r)
{
    return r->app->cfg->debug ? "usher_session" : "__Host-usher_session";
}

int web_session_load(struct web_request *r)
{
    const char *cookie = web_cookie(r, web_session_cookie_name(r));
    /* Not even the right length: no id of ours, so no database read either. */
    if (!cookie || strnlen(cookie, SESSION_ID_HEX_LEN + 1) != SESSION_ID_HEX_LEN)
        return 0;
    struct db_conn *conn = NULL;
    int rc = db_acquire(r->app->db, DB_WAIT_MS, &conn);
    if (rc != 0)
        return rc;
    rc = session_load(conn, r->app->cfg->secret_key, cookie, r->now, &r->session);
    db_release(conn);
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

int web_session_finish(struct web_request *r)
{
    int rc = 0;
    /* An unstored session with nothing to keep costs nothing: that is every anonymous view. */
    if (r->session && (r->session->stored || r->session->dirty) &&
        (!session_needs_insert(r->session) || admitted_late(r))) {
        struct db_conn *conn = NULL;
        rc = db_acquire(r->app->db, DB_WAIT_MS, &conn);
        if (rc == 0)
            rc = session_save(conn, r->session, r->now);
        db_release(conn);
        if (rc != 0)
            log_error("request_id=%s msg=\"session save failed\" error=\"%s\"", r->request_id,
                      usher_strerror(rc));
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
