/*
 * home.c — GET / (SPEC §2): the dashboard for a logged-in user; for a visitor the front door,
 * templates/pages/home.mustache: Log in, Sign up, and "Forgot password?", which is the
 * identity provider's own reset flow (Keycloak's login-actions/reset-credentials for the
 * login client; absent when login is not configured).
 */
#include "core/buf.h"
#include "core/config.h"
#include "core/messages.h"
#include "domain/session_store.h"
#include "integrations/form.h"
#include "web/app.h"
#include "web/handlers.h"
#include "web/pages.h"
#include "web/response.h"

#include <stdlib.h>

/* {KEYCLOAK_SERVER_URL}/realms/{realm}/login-actions/reset-credentials?client_id=…, or NULL.
 * The caller frees it. */
static char *reset_credentials_url(const struct usher_config *cfg)
{
    if (!cfg->keycloak_server_url || !*cfg->keycloak_realm || !*cfg->oidc_rp_client_id)
        return NULL;
    struct buf url;
    buf_init(&url);
    buf_puts(&url, cfg->keycloak_server_url);
    buf_puts(&url, "/realms");
    form_url_segment(&url, cfg->keycloak_realm);
    buf_puts(&url, "/login-actions/reset-credentials");
    form_url_query(&url, "client_id", cfg->oidc_rp_client_id);
    char *out = buf_detach(&url);
    buf_cleanup(&url); /* buf_detach leaves a fresh empty buffer behind */
    return out;
}

int web_home(struct web_request *r)
{
    if (r->session && r->session->user_id) {
        web_redirect(r, "/dashboard/");
        return 0;
    }
    json_t *ctx = web_page_context(r, msg("title.welcome"));
    char *forgot = reset_credentials_url(r->app->cfg);
    if (forgot)
        json_object_set_new(ctx, "forgot_password_url", json_string(forgot));
    free(forgot);
    web_reply_page(r, 200, "home", ctx);
    json_decref(ctx);
    return 0;
}
