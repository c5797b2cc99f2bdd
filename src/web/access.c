/*
 * access.c — login and admin checks (see access.h).
 */
#include "web/access.h"

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/mem.h"
#include "core/messages.h"
#include "domain/admin_access.h"
#include "domain/session_store.h"
#include "domain/users.h"
#include "web/app.h"
#include "web/response.h"
#include "web/routes.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static void append_query_value(struct buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || strchr("-_.~/", c))
            buf_putc(b, (char)c);
        else
            buf_printf(b, "%%%02X", c);
    }
}

static void send_to_login(struct web_request *r)
{
    if (strcmp(r->method, "GET") && strcmp(r->method, "HEAD")) {
        web_reply_json_error(r, 401, msg("http.login_required"));
        return;
    }
    struct buf location;
    buf_init(&location);
    buf_puts(&location, "/oidc/authenticate/?next=");
    append_query_value(&location, r->path);
    web_redirect(r, location.data);
    buf_cleanup(&location);
}

static int load_user(struct web_request *r)
{
    if (!r->session || !r->session->user_id)
        return USHER_ENOTFOUND;
    struct user *u = xcalloc(1, sizeof *u);
    int rc = users_get(r->app->db, r->session->user_id, u);
    if (rc != 0) {
        free(u);
        return rc;
    }
    r->user = u;
    return 0;
}

static int admin_refused(struct web_request *r)
{
    char *message =
        msg_format("http.admin_only", json_pack("{s:s}", "group", r->app->cfg->admin_group));
    web_reply_error(r, 403, message);
    free(message);
    return USHER_EFORBIDDEN;
}

/* users.is_admin (the login's claim) first, so someone who never was an admin costs no
 * Keycloak call; then the membership itself, asked of Keycloak on every request. Anything
 * but a clear "member" refuses: Keycloak unreachable is a 503, never access. */
static int admin_check(struct web_request *r)
{
    if (!r->user->is_admin)
        return admin_refused(r);
    bool member = false;
    int rc = admin_access_confirm(r->app->db, r->app->kc, r->user->id, r->user->keycloak_id,
                                  r->app->cfg->admin_group, &member);
    if (rc == USHER_EDB)
        return rc;
    if (rc != 0) {
        web_set_header(r, "Retry-After", "30");
        web_reply_error(r, 503, msg("http.admin_check_unavailable"));
        return USHER_EFORBIDDEN;
    }
    if (!member) {
        r->user->is_admin = false;
        return admin_refused(r);
    }
    /* Admin pages show customers' data: never kept by a browser or a proxy. */
    web_set_header(r, "Cache-Control", "no-store");
    return 0;
}

int web_access_check(struct web_request *r)
{
    enum web_access access = r->route->access;
    if (access != WEB_LOGIN && access != WEB_ADMIN)
        return 0;
    int rc = load_user(r);
    if (rc == USHER_ENOTFOUND) {
        send_to_login(r);
        return USHER_EFORBIDDEN;
    }
    if (rc != 0)
        return rc;
    if (access == WEB_ADMIN)
        return admin_check(r);
    return 0;
}

void web_access_finish(struct web_request *r)
{
    if (!r->user)
        return;
    users_cleanup(r->user);
    free(r->user);
    r->user = NULL;
}
