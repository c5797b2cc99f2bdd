/*
 * email.h — the emails that background tasks send (SPEC §8): a template pair rendered from
 * the data dir and handed to Mailgun, plus the marker that keeps a re-run from sending twice.
 *
 * Templates: templates/email/<name>.txt.mustache and <name>.html.mustache under
 * USHER_DATA_DIR, the same tree `usher serve` loads, so an email may use the same partials
 * and looks the same whichever process sends it. The worker has no web template set, so this
 * module loads {data_dir}/templates once per process on first use (a failed load is not
 * kept: the task fails, is retried, and the next attempt loads again). Every context gets a
 * "site" object (name, support_email, brand_color, logo_url, base_url) from the settings,
 * so templates carry no brand and no domain of their own; logo_url is absolute (a
 * site-relative SITE_LOGO_URL is put under PUBLIC_BASE_URL), since a mail has no base.
 *
 * Sent-markers and the delivery trade-off: a task row (its id) is the unit of "one email".
 * email_sent_find is asked before sending and email_sent_record writes one audit_log row
 * (actor "worker", action "email_sent", target task/<id>) after Mailgun — or Keycloak, for
 * its own email — accepted the message. That is at-least-once: a worker killed between
 * the provider's 200 and the commit of the marker sends the email again on the re-run,
 * and nothing else does (a re-run after the marker, a retry after a later failure, a
 * lease taken over). At-most-once (mark first, then send) would instead lose the email
 * in that window, and these emails tell people their access was cut and how to get it
 * back, so a rare duplicate is the cheaper mistake. The audit_log rows also give operators
 * the record of what was sent, and they are never cleaned up.
 */
#ifndef USHER_TASKS_EMAIL_H
#define USHER_TASKS_EMAIL_H

#include "integrations/http_client.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct db_pool;
struct mustache_set;
struct usher_config;

#define EMAIL_NAME_MAX 64 /* bytes of a template pair's name */

/* The "site" object every email context carries (heap; caller decrefs). */
json_t *email_site_context(const struct usher_config *cfg);

/*
 * Renders email/<name>.txt and email/<name>.html from set with ctx (borrowed). *text and
 * *html (heap, caller frees) are set only on success. USHER_EINVAL for a bad name,
 * USHER_ENOTFOUND when either template is missing, else as mustache_render.
 */
int email_render(const struct mustache_set *set, const char *name, const json_t *ctx, char **text,
                 char **html);

/* The process's template set ({data_dir}/templates), loaded on first use; thread-safe.
 * USHER_EIO / USHER_EINVAL when the templates cannot be loaded. */
int email_templates(const struct usher_config *cfg, const struct mustache_set **out);

struct email_message {
    const char *to;
    const char *subject;
    const char *template_name; /* the pair's name, e.g. "payment_failed" */
    const char *tag; /* Mailgun o:tag, may be NULL */
    const json_t *ctx; /* borrowed; "site" is added to a copy */
};

/*
 * Renders msg and sends it with mailgun_send_ex from "{SITE_NAME} <no-reply@{MAILGUN_DOMAIN}>".
 * *message_id (may be NULL) gets Mailgun's id (heap); err (may be NULL) the failure's
 * details. Errors as email_templates, email_render and mailgun_send_ex.
 */
int email_send(const struct usher_config *cfg, const struct email_message *msg, char **message_id,
               struct http_error *err);

/* Whether an email of task task_id was already recorded as sent. */
int email_sent_find(struct db_pool *pool, int64_t task_id, bool *sent);

/* Records that task task_id's email went out: kind names it (the task name), user_id (0 when
 * unknown) and message_id (may be NULL) are kept in the row's detail; never the address. */
int email_sent_record(struct db_pool *pool, int64_t task_id, const char *kind, int64_t user_id,
                      const char *message_id, int64_t now);

#endif
