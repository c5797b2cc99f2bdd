/*
 * email.c — rendering and sending the tasks' emails, and their sent-markers (see email.h).
 */
#include "tasks/email.h"

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/mustache.h"
#include "db/db.h"
#include "integrations/mailgun.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SENT_ACTION "email.sent"

static pthread_mutex_t templates_lock = PTHREAD_MUTEX_INITIALIZER;
/* Built once under the lock and never changed after, so renders need no lock (mustache.h). */
static struct mustache_set *templates;

json_t *email_site_context(const struct usher_config *cfg)
{
    /* A mail client has no base URL: a site-relative logo (the default /static/logo.svg) is
     * made absolute with PUBLIC_BASE_URL. */
    const char *logo = cfg->logo_url ? cfg->logo_url : "";
    char *absolute = logo[0] == '/' && logo[1] != '/'
                         ? xasprintf("%s%s", cfg->public_base_url, logo)
                         : xstrdup(logo);
    json_t *site =
        json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", cfg->site_name, "support_email",
                  cfg->support_email ? cfg->support_email : "", "brand_color", cfg->brand_color,
                  "logo_url", absolute, "base_url", cfg->public_base_url);
    free(absolute);
    return site;
}

/* [a-z0-9_]: the name becomes part of a template name, never a path outside email/. */
static bool name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n >= EMAIL_NAME_MAX)
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

int email_render(const struct mustache_set *set, const char *name, const json_t *ctx, char **text,
                 char **html)
{
    if (!name_ok(name))
        return USHER_EINVAL;
    char text_name[EMAIL_NAME_MAX + 16], html_name[EMAIL_NAME_MAX + 16];
    snprintf(text_name, sizeof text_name, "email/%s.txt", name);
    snprintf(html_name, sizeof html_name, "email/%s.html", name);
    if (!mustache_set_has(set, text_name) || !mustache_set_has(set, html_name))
        return USHER_ENOTFOUND;
    struct buf t, h;
    buf_init(&t);
    buf_init(&h);
    int rc = mustache_render(set, text_name, ctx, &t);
    if (rc == 0)
        rc = mustache_render(set, html_name, ctx, &h);
    if (rc == 0) {
        *text = buf_detach(&t);
        *html = buf_detach(&h);
    }
    buf_cleanup(&t);
    buf_cleanup(&h);
    return rc;
}

int email_templates(const struct usher_config *cfg, const struct mustache_set **out)
{
    *out = NULL;
    int rc = 0;
    pthread_mutex_lock(&templates_lock);
    if (!templates) {
        char *dir = xasprintf("%s/templates", cfg->data_dir);
        struct mustache_set *set = mustache_set_new();
        char *error = NULL;
        /* Only email/: the rest are the web server's pages, 0.7 MB more once parsed (0.8 MB
         * for all, 0.1 MB for the emails), held a second time in one process with the worker. */
        rc = mustache_set_load_subdir(set, dir, "email", &error);
        if (rc != 0) {
            char quoted[300];
            log_quote(quoted, sizeof quoted, error ? error : "");
            log_error("msg=\"email templates failed to load\" detail=\"%s\"", quoted);
            mustache_set_free(set);
        } else {
            templates = set;
        }
        free(error);
        free(dir);
    }
    *out = templates;
    pthread_mutex_unlock(&templates_lock);
    return rc;
}

int email_send(const struct usher_config *cfg, const struct email_message *msg, char **message_id,
               struct http_error *err)
{
    if (message_id)
        *message_id = NULL;
    http_error_clear(err);
    const struct mustache_set *set = NULL;
    int rc = email_templates(cfg, &set);
    if (rc != 0)
        return rc;
    json_t *ctx = msg->ctx ? json_deep_copy(msg->ctx) : json_object();
    if (!ctx)
        return USHER_EINVAL;
    json_object_set_new(ctx, "site", email_site_context(cfg));
    char *text = NULL, *html = NULL;
    rc = email_render(set, msg->template_name, ctx, &text, &html);
    json_decref(ctx);
    if (rc != 0) {
        log_error("msg=\"email template failed\" template=%s error=\"%s\"",
                  name_ok(msg->template_name) ? msg->template_name : "(bad name)",
                  usher_strerror(rc));
        return rc;
    }
    struct mailgun_message m = {
        .to = msg->to, .subject = msg->subject, .text = text, .html = html, .tag = msg->tag};
    rc = mailgun_send_ex(cfg, &m, message_id, err);
    free(text);
    free(html);
    return rc;
}

int email_sent_find(struct db_pool *pool, int64_t task_id, bool *sent)
{
    *sent = false;
    struct db_conn *conn = NULL;
    int rc = db_acquire(pool, DB_WAIT_MS, &conn);
    if (rc != 0)
        return rc;
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)task_id);
    const struct db_param p[] = {DB_TEXT(id)};
    struct db_result *res = NULL;
    rc = db_query(conn,
                  "SELECT 1 FROM audit_log WHERE target_type = 'task' AND target_id = $1 "
                  "AND action = '" SENT_ACTION "' LIMIT 1",
                  p, DB_NPARAMS(p), &res);
    if (rc == 0)
        *sent = db_result_rows(res) > 0;
    db_result_free(res);
    db_release(conn);
    return rc;
}

int email_sent_record(struct db_pool *pool, int64_t task_id, const char *kind, int64_t user_id,
                      const char *message_id, int64_t now)
{
    json_t *detail = json_pack("{s:s}", "task", kind ? kind : "");
    if (!detail)
        return USHER_EINVAL;
    if (user_id > 0)
        json_object_set_new(detail, "user_id", json_integer((json_int_t)user_id));
    if (message_id)
        json_object_set_new(detail, "message_id", json_string(message_id));
    char *text = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(detail);
    if (!text)
        return USHER_EINVAL;
    struct db_conn *conn = NULL;
    int rc = db_acquire(pool, DB_WAIT_MS, &conn);
    if (rc == 0) {
        char id[24];
        snprintf(id, sizeof id, "%lld", (long long)task_id);
        const struct db_param p[] = {DB_INT(now), DB_TEXT(id), DB_TEXT(text)};
        rc = db_exec(conn,
                     "INSERT INTO audit_log (created_at, actor_user_id, actor, action, "
                     "target_type, target_id, detail) "
                     "VALUES ($1, NULL, 'worker', '" SENT_ACTION "', 'task', $2, $3)",
                     p, DB_NPARAMS(p), NULL);
        db_release(conn);
    }
    free(text);
    return rc;
}
