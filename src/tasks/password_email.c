/*
 * password_email.c — the send_keycloak_password_reset_email task (SPEC §4, §8): Keycloak's
 * own password-setup email (execute-actions-email with UPDATE_PASSWORD) for a new customer,
 * sent by Keycloak from the realm's SMTP settings, not through Mailgun.
 *
 * Args {"keycloak_id": "<id>"}. The login client (OIDC_RP_CLIENT_ID) is passed as client_id,
 * as the dashboard's change-password action does, so the "back to application" link of
 * Keycloak's page leads to Usher; no redirect_uri (Keycloak accepts only the client's
 * registered URIs there). The link lives a day: a new customer may open the email hours
 * after paying, and the dashboard's reset sends a fresh one on demand.
 *
 * A sent email is recorded like Mailgun's (tasks/email.h: at-least-once, keyed by task id),
 * so a re-run after a crash does not send a second one. The user is read first: one disabled
 * in Keycloak (canceled, unpaid, closed) could not use the link and Keycloak refuses to mail
 * them, so the task settles as done with nothing to send and an info line — not a failure
 * for operators to chase. An unknown Keycloak id (404) and Keycloak's 400 (no email, the
 * client is unknown) are permanent failures with Keycloak's reason; Keycloak unreachable or
 * its mail failing (500) are retried.
 */
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "integrations/keycloak_admin.h"
#include "tasks/builtin.h"
#include "tasks/email.h"
#include "tasks/task.h"

#include <pthread.h>
#include <string.h>

#define TASK_NAME "send_keycloak_password_reset_email"
#define PASSWORD_SETUP_LIFESPAN_SECONDS 86400

static pthread_mutex_t client_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kc_admin *client; /* one per process, so its token is shared by every thread */

static int client_for(const struct usher_config *cfg, struct kc_admin **out)
{
    pthread_mutex_lock(&client_lock);
    int rc = client ? 0 : kc_admin_new(cfg, &client);
    *out = client;
    pthread_mutex_unlock(&client_lock);
    return rc;
}

/* An id Keycloak could have made: bounded, no characters that could leave the URL path. */
static bool id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > KC_ID_MAX)
        return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            return false;
    return true;
}

int task_send_keycloak_password_reset_email(struct task_run *run)
{
    const char *id = json_string_value(json_object_get(run->args, "keycloak_id"));
    if (!id_ok(id)) {
        task_run_error(run, TASK_NAME ": args need a keycloak_id");
        run->permanent = true;
        return USHER_EINVAL;
    }
    bool sent = false;
    int rc = email_sent_find(run->pool, run->id, &sent);
    if (rc != 0) {
        task_run_error(run, TASK_NAME ": %s", usher_strerror(rc));
        return rc;
    }
    if (sent) {
        log_info("msg=\"email already sent, not sending again\" task_id=%lld name=" TASK_NAME,
                 (long long)run->id);
        return 0;
    }
    struct kc_admin *kc = NULL;
    rc = client_for(run->cfg, &kc);
    if (rc != 0) {
        task_run_error(run, TASK_NAME ": Keycloak Admin API not configured");
        return rc;
    }
    const char *client_id = run->cfg->oidc_rp_client_id && *run->cfg->oidc_rp_client_id
                                ? run->cfg->oidc_rp_client_id
                                : NULL;
    struct kc_error err = {0};
    json_t *user = NULL;
    rc = kc_user_get(kc, id, &user, &err);
    bool enabled = rc == 0 && json_is_true(json_object_get(user, "enabled"));
    json_decref(user);
    if (rc == 0 && !enabled) {
        log_info("msg=\"password setup email not sent: the user is disabled in Keycloak\" "
                 "task_id=%lld keycloak_id=%s",
                 (long long)run->id, id);
        return 0;
    }
    if (rc == 0)
        rc = kc_user_send_update_password(kc, id, client_id, NULL, PASSWORD_SETUP_LIFESPAN_SECONDS,
                                          &err);
    if (rc == USHER_ENOTFOUND) {
        task_run_error(run, TASK_NAME ": Keycloak user %s not found", id);
        run->permanent = true;
        return rc;
    }
    if (rc != 0) {
        char reason[128];
        log_quote(reason, sizeof reason, err.message);
        /* Keycloak's 400 names a state of the user or the realm no retry changes. */
        run->permanent = rc == USHER_EINVAL;
        task_run_error(run, TASK_NAME ": Keycloak user %s: %s%s%s", id, usher_strerror(rc),
                       reason[0] ? ": " : "", reason);
        return rc;
    }
    int mark = email_sent_record(run->pool, run->id, TASK_NAME, 0, NULL, clock_now());
    if (mark != 0)
        log_warn("msg=\"email sent but not recorded\" task_id=%lld name=" TASK_NAME " error=\"%s\"",
                 (long long)run->id, usher_strerror(mark));
    log_info("msg=\"password setup email sent\" task_id=%lld keycloak_id=%s", (long long)run->id,
             id);
    return 0;
}
