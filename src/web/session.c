/*
 * session.c — session middleware (see session.h); storage is domain/session_store.c.
 */
#include "web/session.h"

#include "core/config.h"
#include "core/crypto.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "db/db.h"
#include "domain/session_store.h"
#include "web/app.h"
#include "web/response.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

const char *web_session_cookie_name(const struct web_request *r)
{
    return r->app->cfg->debug ? "usher_session" : "__Host-usher_session";
}

int web_session_load(struct web_request *r)
{
    const char *cookie = web_cookie(r, web_session_cookie_name(r));
    if (!cookie)
        return 0;
    struct db_conn *conn = NULL;
    int rc = db_acquire(r->app->db, DB_WAIT_MS, &conn);
    if (rc != 0)
        return rc;
    rc = session_load(conn, cookie, r->now, &r->session);
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

/* Runs a session-store call that issues a new raw id (create or rotate) and keeps that id
 * for the Set-Cookie of this reply. */
static int with_new_id(struct web_request *r, bool rotate)
{
    struct db_conn *conn = NULL;
    int rc = db_acquire(r->app->db, DB_WAIT_MS, &conn);
    if (rc != 0)
        return rc;
    char *value = NULL;
    rc = rotate ? session_rotate(conn, r->session, r->now, &value)
                : session_create(conn, r->now, &r->session, &value);
    db_release(conn);
    if (rc == 0) {
        free(r->new_cookie);
        r->new_cookie = value;
    }
    return rc;
}

int web_session_ensure(struct web_request *r)
{
    return r->session ? 0 : with_new_id(r, false);
}

int web_session_rotate(struct web_request *r)
{
    return with_new_id(r, r->session != NULL);
}

int web_session_finish(struct web_request *r)
{
    int rc = 0;
    if (r->session) {
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
