/*
 * account_actions.c — the dashboard menu's actions (SPEC §6): change password (GET asks for
 * confirmation, POST sends Keycloak's UPDATE_PASSWORD email, one per minute per user) and manage
 * subscription (a Stripe Billing Portal session).
 */
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/messages.h"
#include "domain/rate_limit.h"
#include "domain/users.h"
#include "integrations/keycloak_admin.h"
#include "integrations/stripe_client.h"
#include "web/app.h"
#include "web/dashboard.h"
#include "web/handlers.h"
#include "web/pages.h"
#include "web/response.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PASSWORD_EMAIL_WINDOW_SECONDS 60
#define PASSWORD_EMAIL_LIFESPAN_SECONDS 3600

static void message_page(struct web_request *r, int status, const char *title, const char *message)
{
    json_t *ctx = web_page_context(r, title);
    json_object_set_new(ctx, "message", json_string(message));
    json_object_set_new(ctx, "back_url", json_string("/dashboard/"));
    json_object_set_new(ctx, "back_label", json_string(msg("account.back_to_services")));
    web_reply_page(r, status, "message", ctx);
    json_decref(ctx);
}

/* GET: "Change password?" with the button that sends the mail, so a stray click on the menu
 * never mails anyone. */
static void confirm_page(struct web_request *r)
{
    json_t *ctx = web_dashboard_context(r, msg("title.change_password"), "password");
    web_reply_page(r, 200, "change_password", ctx);
    json_decref(ctx);
}

int web_reset_password(struct web_request *r)
{
    const struct usher_config *cfg = r->app->cfg;
    if (strcmp(r->method, "POST")) {
        confirm_page(r);
        return 0;
    }
    if (!r->app->kc || !r->user->keycloak_id) {
        message_page(r, 503, msg("title.change_password"), msg("password.unavailable"));
        return 0;
    }
    char bucket[64];
    snprintf(bucket, sizeof bucket, "password-email:user:%lld", (long long)r->user->id);
    struct rate_limit_result limit;
    int rc =
        rate_limit_hit_pool(r->app->db, bucket, 1, PASSWORD_EMAIL_WINDOW_SECONDS, r->now, &limit);
    if (rc != 0)
        return rc;
    if (!limit.allowed) {
        char *text = msg_format("password.wait",
                                json_pack("{s:I}", "seconds", (json_int_t)limit.retry_after));
        message_page(r, 429, msg("title.change_password"), text);
        free(text);
        return 0;
    }
    /* No redirect_uri: Keycloak accepts only the client's registered redirect URIs there, and
     * its "account updated" page links back to the client anyway. */
    struct kc_error err = {0};
    rc = kc_user_send_update_password(r->app->kc, r->user->keycloak_id, cfg->oidc_rp_client_id,
                                      NULL, PASSWORD_EMAIL_LIFESPAN_SECONDS, &err);
    if (rc != 0) {
        char detail[300];
        log_quote(detail, sizeof detail, err.message);
        log_error("request_id=%s msg=\"password email failed\" user_id=%lld error=\"%s\" "
                  "detail=\"%s\"",
                  r->request_id, (long long)r->user->id, usher_strerror(rc), detail);
        message_page(r, 502, msg("title.change_password"), msg("mail.failed"));
        return 0;
    }
    message_page(r, 200, msg("title.change_password"), msg("password.sent"));
    return 0;
}

int web_billing_portal(struct web_request *r)
{
    const struct usher_config *cfg = r->app->cfg;
    if (!r->user->stripe_customer_id || !*cfg->stripe_secret_key) {
        message_page(r, 400, msg("title.manage_subscription"), msg("billing.no_subscription"));
        return 0;
    }
    char *return_url = xasprintf("%s/dashboard/", cfg->public_base_url);
    /* One portal session per click: the request id makes the key unique to this request. */
    char *key = xasprintf("usher-portal-%lld-%s", (long long)r->user->id, r->request_id);
    char *url = NULL;
    struct stripe_error err = {0};
    int rc =
        stripe_portal_session_create(cfg, r->user->stripe_customer_id, return_url, key, &url, &err);
    free(return_url);
    free(key);
    if (rc == USHER_ECONFIG && err.portal_not_configured) {
        log_error("request_id=%s msg=\"stripe billing portal has no saved configuration: save "
                  "one in the Stripe dashboard (Settings > Billing > Customer portal)\"",
                  r->request_id);
        message_page(r, 503, msg("title.manage_subscription"), msg("billing.not_set_up"));
        return 0;
    }
    if (rc != 0) {
        log_error("request_id=%s msg=\"billing portal failed\" error=\"%s\"", r->request_id,
                  usher_strerror(rc));
        message_page(r, 502, msg("title.manage_subscription"), msg("billing.failed"));
        return 0;
    }
    web_redirect(r, url);
    free(url);
    return 0;
}
