/*
 * mailgun.c — messages and mailing-list members over Mailgun's HTTP API (see mailgun.h).
 */
#include "integrations/mailgun.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"
#include "integrations/form.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UPSTREAM "mailgun"
#define BODY_MAX (2 * 1024 * 1024)

static void fail(struct http_error *err, enum http_error_kind kind, const char *why)
{
    if (!err)
        return;
    memset(err, 0, sizeof *err);
    err->kind = kind;
    snprintf(err->excerpt, sizeof err->excerpt, "%s", why);
}

static bool configured(const struct usher_config *cfg, struct http_error *err)
{
    if (cfg->mailgun_api_key && *cfg->mailgun_api_key && cfg->mailgun_domain &&
        *cfg->mailgun_domain && cfg->mailgun_api_base && *cfg->mailgun_api_base)
        return true;
    fail(err, HTTP_ERR_INVALID, "MAILGUN_API_KEY/MAILGUN_DOMAIN are not set");
    return false;
}

/* A header field value: present, bounded, one line. */
static bool header_ok(const char *s, size_t max)
{
    return s && *s && strlen(s) <= max && !strpbrk(s, "\r\n");
}

char *mailgun_from_address(const char *site_name, const char *domain)
{
    struct buf b;
    buf_init(&b);
    const char *name = site_name && *site_name ? site_name : "Usher";
    bool quote = strpbrk(name, "()<>[]:;@\\,.\"") != NULL;
    if (quote)
        buf_putc(&b, '"');
    for (const char *p = name; *p; p++) {
        if (*p == '\r' || *p == '\n')
            continue;
        if (quote && (*p == '"' || *p == '\\'))
            buf_putc(&b, '\\');
        buf_putc(&b, *p);
    }
    if (quote)
        buf_putc(&b, '"');
    buf_printf(&b, " <no-reply@%s>", domain);
    char *out = buf_detach(&b);
    buf_cleanup(&b);
    return out;
}

/* Sends parts to path under MAILGUN_API_BASE; on 2xx *body_json (may be NULL) gets the
 * parsed answer. */
static int mailgun_post(const struct usher_config *cfg, const char *path,
                        const struct http_part *parts, size_t count,
                        const struct http_retry *policy, json_t **body_json, struct http_error *err)
{
    char *url = xasprintf("%s%s", cfg->mailgun_api_base, path);
    struct http_request req = {
        .method = "POST",
        .url = url,
        .parts = parts,
        .part_count = count,
        .basic_user = "api",
        .basic_password = cfg->mailgun_api_key,
        .upstream = UPSTREAM,
        .connect_timeout_ms = cfg->http_connect_timeout_ms,
        .timeout_ms = cfg->http_timeout_ms,
    };
    struct http_response resp;
    http_response_init(&resp);
    int rc = http_send_retry(&req, &resp, err, policy);
    if (rc == 0 && (resp.status < 200 || resp.status >= 300)) {
        http_error_from_response(err, &resp);
        rc = USHER_EUPSTREAM;
    } else if (rc == 0 && body_json) {
        *body_json = json_loadb(resp.body, resp.body_len, 0, NULL);
        if (!json_is_object(*body_json)) {
            json_decref(*body_json);
            *body_json = NULL;
            http_error_from_response(err, &resp);
            rc = USHER_EUPSTREAM;
        }
    }
    http_response_cleanup(&resp);
    free(url);
    return rc;
}

int mailgun_send_ex(const struct usher_config *cfg, const struct mailgun_message *msg,
                    char **message_id, struct http_error *err)
{
    if (message_id)
        *message_id = NULL;
    http_error_clear(err);
    if (!configured(cfg, err))
        return USHER_ECONFIG;
    if (!header_ok(msg->to, MAILGUN_ADDRESS_MAX) || !strchr(msg->to, '@') ||
        !header_ok(msg->subject, MAILGUN_SUBJECT_MAX) || (!msg->text && !msg->html) ||
        (msg->tag && !header_ok(msg->tag, 128)) || (msg->text && strlen(msg->text) > BODY_MAX) ||
        (msg->html && strlen(msg->html) > BODY_MAX)) {
        fail(err, HTTP_ERR_INVALID, "message without recipient, subject or body");
        return USHER_EINVAL;
    }
    char *from = mailgun_from_address(cfg->site_name, cfg->mailgun_domain);
    struct http_part parts[6];
    size_t n = 0;
    parts[n++] = (struct http_part){"from", from};
    parts[n++] = (struct http_part){"to", msg->to};
    parts[n++] = (struct http_part){"subject", msg->subject};
    if (msg->text)
        parts[n++] = (struct http_part){"text", msg->text};
    if (msg->html)
        parts[n++] = (struct http_part){"html", msg->html};
    if (msg->tag)
        parts[n++] = (struct http_part){"o:tag", msg->tag};
    struct buf path;
    buf_init(&path);
    buf_puts(&path, "/v3");
    form_url_segment(&path, cfg->mailgun_domain);
    buf_puts(&path, "/messages");
    json_t *answer = NULL;
    int rc = mailgun_post(cfg, path.data, parts, n, &http_retry_once_sent, &answer, err);
    if (rc == 0 && message_id) {
        const char *id = json_string_value(json_object_get(answer, "id"));
        *message_id = id ? xstrdup(id) : NULL;
    }
    json_decref(answer);
    buf_cleanup(&path);
    free(from);
    return rc;
}

int mailgun_send(const struct usher_config *cfg, const struct mailgun_message *msg,
                 char **message_id)
{
    return mailgun_send_ex(cfg, msg, message_id, NULL);
}

int mailgun_list_add_member_ex(const struct usher_config *cfg, const char *list_address,
                               const char *member, struct http_error *err)
{
    http_error_clear(err);
    if (!configured(cfg, err))
        return USHER_ECONFIG;
    if (!header_ok(list_address, MAILGUN_ADDRESS_MAX) || !strchr(list_address, '@') ||
        !header_ok(member, MAILGUN_ADDRESS_MAX) || !strchr(member, '@')) {
        fail(err, HTTP_ERR_INVALID, "list or member address missing or malformed");
        return USHER_EINVAL;
    }
    const struct http_part parts[] = {
        {"address", member},
        {"subscribed", "yes"},
        {"upsert", "yes"},
    };
    struct buf path;
    buf_init(&path);
    buf_puts(&path, "/v3/lists");
    form_url_segment(&path, list_address);
    buf_puts(&path, "/members");
    int rc = mailgun_post(cfg, path.data, parts, 3, &http_retry_default, NULL, err);
    buf_cleanup(&path);
    return rc;
}

int mailgun_list_add_member(const struct usher_config *cfg, const char *list_address,
                            const char *member)
{
    return mailgun_list_add_member_ex(cfg, list_address, member, NULL);
}
