/*
 * mailgun.h — sending email and joining mailing lists through Mailgun's HTTP API
 * (INTEGRATIONS.md, Mailgun section).
 *
 * HTTP Basic auth (user "api", password MAILGUN_API_KEY) against MAILGUN_API_BASE (US by
 * default; the EU base must match the domain's region). Messages go as multipart/form-data,
 * as the official SDK sends them. A message is sent at most once from here: only a failure
 * to connect (nothing sent) is retried, the task that sends it retries the rest. Joining a
 * list is idempotent (upsert=yes) and retried with backoff.
 */
#ifndef USHER_INTEGRATIONS_MAILGUN_H
#define USHER_INTEGRATIONS_MAILGUN_H

#include "core/config.h"
#include "integrations/http_client.h"

#define MAILGUN_ADDRESS_MAX 320
#define MAILGUN_SUBJECT_MAX 998

struct mailgun_message {
    const char *to;
    const char *subject;
    const char *text;
    const char *html;
    const char *tag; /* may be NULL */
};

/* Sends from "{SITE_NAME} <no-reply@{MAILGUN_DOMAIN}>" via POST
 * {MAILGUN_API_BASE}/v3/{domain}/messages (multipart). *message_id (may be NULL) gets
 * Mailgun's id (heap). USHER_ECONFIG when MAILGUN_API_KEY/DOMAIN are unset; USHER_EUPSTREAM
 * on failure (429 included). */
int mailgun_send(const struct usher_config *cfg, const struct mailgun_message *msg,
                 char **message_id);

/* POST /v3/lists/{list}/members with address, subscribed=yes, upsert=yes (idempotent). */
int mailgun_list_add_member(const struct usher_config *cfg, const char *list_address,
                            const char *member);

/* ------------------------------------------------------------ additions */

/* mailgun_send with the failure's details in err (may be NULL). USHER_EINVAL for a message
 * that cannot be sent (no recipient, no subject, neither text nor html, CR/LF in a header
 * field). */
int mailgun_send_ex(const struct usher_config *cfg, const struct mailgun_message *msg,
                    char **message_id, struct http_error *err);
int mailgun_list_add_member_ex(const struct usher_config *cfg, const char *list_address,
                               const char *member, struct http_error *err);

/* The From header for site_name and domain (heap): the display name is quoted when it holds
 * characters special in RFC 5322, CR/LF are dropped. Pure. */
char *mailgun_from_address(const char *site_name, const char *domain);

#endif
