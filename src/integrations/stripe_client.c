/*
 * stripe_client.c — Checkout Sessions, subscriptions and the Billing Portal over Stripe's
 * REST API (see stripe_client.h).
 */
#include "integrations/stripe_client.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UPSTREAM "stripe"
#define EMAIL_MAX 512
#define URL_PARAM_MAX 2048
#define QUANTITY_MAX 10000

/* ------------------------------------------------------------ versions, errors */

const char *stripe_api_version(const struct usher_config *cfg)
{
    if (cfg && cfg->stripe_api_version && *cfg->stripe_api_version)
        return cfg->stripe_api_version;
    return STRIPE_API_VERSION;
}

const char *stripe_checkout_ui_mode(const char *api_version, enum checkout_ui ui)
{
    /* Versions start with YYYY-MM-DD, so comparing the first ten bytes orders them. */
    bool renamed =
        strncmp(api_version ? api_version : STRIPE_API_VERSION, STRIPE_UI_MODE_RENAMED_IN, 10) >= 0;
    if (ui == CHECKOUT_UI_HOSTED)
        return renamed ? "hosted_page" : "hosted";
    return renamed ? "embedded_page" : "embedded";
}

static void copy_str(char *out, size_t size, const json_t *v)
{
    const char *s = json_string_value(v);
    if (!s) {
        out[0] = '\0';
        return;
    }
    http_excerpt(out, size, s, strlen(s));
}

int stripe_error_parse(long status, const char *body, size_t len, struct stripe_error *err)
{
    memset(err, 0, sizeof *err);
    err->http.status = status;
    err->http.kind = HTTP_ERR_STATUS;
    http_excerpt(err->http.excerpt, sizeof err->http.excerpt, body ? body : "", len);
    json_t *root = body ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *e = json_object_get(root, "error");
    if (!json_is_object(e)) {
        json_decref(root);
        return USHER_EINVAL;
    }
    copy_str(err->type, sizeof err->type, json_object_get(e, "type"));
    copy_str(err->code, sizeof err->code, json_object_get(e, "code"));
    copy_str(err->param, sizeof err->param, json_object_get(e, "param"));
    copy_str(err->message, sizeof err->message, json_object_get(e, "message"));
    copy_str(err->request_id, sizeof err->request_id, json_object_get(e, "request_id"));
    json_decref(root);
    return 0;
}

static bool portal_config_missing(const struct stripe_error *e)
{
    return e->http.status == 400 && (strstr(e->message, "No configuration provided") ||
                                     strstr(e->message, "default configuration has not been"));
}

/* ------------------------------------------------------------ requests */

static bool stripe_should_retry(int rc, const struct http_error *err,
                                const struct http_response *resp, void *arg)
{
    (void)arg;
    if (rc == 0) {
        if (resp->should_retry >= 0)
            return resp->should_retry == 1; /* Stripe's own verdict wins */
        return resp->status == 409 || resp->status >= 500;
    }
    return rc == USHER_EUPSTREAM && err &&
           (err->kind == HTTP_ERR_CONNECT || err->kind == HTTP_ERR_TIMEOUT ||
            err->kind == HTTP_ERR_TRANSPORT);
}

static const struct http_retry stripe_retry = {
    .max_attempts = 3,
    .base_delay_ms = 500,
    .max_delay_ms = 5000,
    .should_retry = stripe_should_retry,
};

static bool idempotency_key_ok(const char *k)
{
    if (!k || !*k || strlen(k) > STRIPE_IDEMPOTENCY_KEY_MAX)
        return false;
    for (; *k; k++)
        if ((unsigned char)*k < 0x21 || (unsigned char)*k > 0x7e)
            return false;
    return true;
}

static void fail(struct stripe_error *err, enum http_error_kind kind, const char *why)
{
    if (!err)
        return;
    memset(err, 0, sizeof *err);
    err->http.kind = kind;
    snprintf(err->http.excerpt, sizeof err->http.excerpt, "%s", why);
}

static int status_rc(const struct stripe_error *e)
{
    if (e->http.status == 404)
        return USHER_ENOTFOUND;
    if (!strcmp(e->type, "idempotency_error"))
        return USHER_ECONFLICT;
    if (e->portal_not_configured)
        return USHER_ECONFIG;
    return USHER_EUPSTREAM;
}

/* method + path (with its query) against STRIPE_API_BASE; body for POST. */
static int stripe_call(const struct usher_config *cfg, const char *method, const char *path,
                       const struct form *body, const char *idempotency_key, json_t **out,
                       struct stripe_error *err)
{
    *out = NULL;
    if (err)
        memset(err, 0, sizeof *err);
    if (!cfg->stripe_secret_key || !*cfg->stripe_secret_key) {
        fail(err, HTTP_ERR_INVALID, "STRIPE_SECRET_KEY is not set");
        return USHER_ECONFIG;
    }
    bool post = !strcmp(method, "POST");
    if (post && !idempotency_key_ok(idempotency_key)) {
        fail(err, HTTP_ERR_INVALID, "Idempotency-Key missing, too long or not printable");
        return USHER_EINVAL;
    }
    char *url = xasprintf("%s%s", cfg->stripe_api_base, path);
    char *version = xasprintf("Stripe-Version: %s", stripe_api_version(cfg));
    char *idem = post ? xasprintf("Idempotency-Key: %s", idempotency_key) : NULL;
    const char *headers[] = {version, idem, NULL};
    struct http_request req = {
        .method = method,
        .url = url,
        .headers = headers,
        .bearer_token = cfg->stripe_secret_key,
        .upstream = UPSTREAM,
        .connect_timeout_ms = cfg->http_connect_timeout_ms,
        .timeout_ms = cfg->http_timeout_ms,
    };
    if (body) {
        req.body = form_data(body);
        req.body_len = form_len(body);
        req.content_type = "application/x-www-form-urlencoded";
    }
    struct http_response resp;
    http_response_init(&resp);
    struct stripe_error local;
    struct stripe_error *e = err ? err : &local;
    int rc = http_send_retry(&req, &resp, &e->http, &stripe_retry);
    if (rc != 0)
        goto out;
    if (resp.status >= 200 && resp.status < 300) {
        json_error_t jerr;
        *out = json_loadb(resp.body, resp.body_len, 0, &jerr);
        if (!json_is_object(*out)) {
            json_decref(*out);
            *out = NULL;
            http_error_from_response(&e->http, &resp);
            rc = USHER_EUPSTREAM;
        }
        goto out;
    }
    stripe_error_parse(resp.status, resp.body, resp.body_len, e);
    if (!e->request_id[0] && resp.request_id)
        http_excerpt(e->request_id, sizeof e->request_id, resp.request_id, strlen(resp.request_id));
    e->portal_not_configured = portal_config_missing(e);
    rc = status_rc(e);
out:
    http_response_cleanup(&resp);
    free(url);
    free(version);
    free(idem);
    return rc;
}

/* ------------------------------------------------------------ checkout */

static bool text_ok(const char *s, size_t max)
{
    if (!s || !*s || strlen(s) > max)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

static bool url_param_ok(const char *u)
{
    return text_ok(u, URL_PARAM_MAX) && (!strncmp(u, "https://", 8) || !strncmp(u, "http://", 7));
}

static bool metadata_ok(const struct stripe_metadata *m, size_t n)
{
    if (n > STRIPE_METADATA_MAX_KEYS || (n && !m))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!text_ok(m[i].key, STRIPE_METADATA_KEY_MAX) || strpbrk(m[i].key, "[]"))
            return false;
        if (!m[i].value || strlen(m[i].value) > STRIPE_METADATA_VALUE_MAX)
            return false;
    }
    return true;
}

static void add_metadata(struct form *f, const char *prefix, const struct stripe_metadata *m,
                         size_t n)
{
    for (size_t i = 0; i < n; i++)
        form_add_keyf(f, m[i].value, "%s[%s]", prefix, m[i].key);
}

int stripe_checkout_form(const struct usher_config *cfg, const struct stripe_checkout_params *p,
                         struct form *f)
{
    if (!p->items || p->item_count == 0 || p->item_count > STRIPE_LINE_ITEMS_MAX)
        return USHER_EINVAL;
    for (size_t i = 0; i < p->item_count; i++)
        if (!stripe_id_valid(p->items[i].price) || p->items[i].quantity < 1 ||
            p->items[i].quantity > QUANTITY_MAX)
            return USHER_EINVAL;
    if (p->customer && p->customer_email)
        return USHER_EINVAL; /* Stripe refuses both; say so before asking it */
    if (p->customer && !stripe_id_valid(p->customer))
        return USHER_EINVAL;
    if (p->customer_email &&
        (!text_ok(p->customer_email, EMAIL_MAX) || !strchr(p->customer_email, '@')))
        return USHER_EINVAL;
    if (p->client_reference_id && !text_ok(p->client_reference_id, 200))
        return USHER_EINVAL;
    if (!metadata_ok(p->metadata, p->metadata_count) ||
        !metadata_ok(p->subscription_metadata, p->subscription_metadata_count))
        return USHER_EINVAL;
    if (!url_param_ok(p->return_url) || (p->cancel_url && !url_param_ok(p->cancel_url)))
        return USHER_EINVAL;

    const char *ui_mode = stripe_checkout_ui_mode(stripe_api_version(cfg), cfg->stripe_checkout_ui);
    form_add(f, "mode", "subscription");
    form_add(f, "ui_mode", ui_mode);
    for (size_t i = 0; i < p->item_count; i++) {
        form_add_keyf(f, p->items[i].price, "line_items[%zu][price]", i);
        char q[24];
        snprintf(q, sizeof q, "%ld", p->items[i].quantity);
        form_add_keyf(f, q, "line_items[%zu][quantity]", i);
    }
    if (p->customer)
        form_add(f, "customer", p->customer);
    if (p->customer_email)
        form_add(f, "customer_email", p->customer_email);
    if (p->client_reference_id)
        form_add(f, "client_reference_id", p->client_reference_id);
    add_metadata(f, "metadata", p->metadata, p->metadata_count);
    add_metadata(f, "subscription_data[metadata]", p->subscription_metadata,
                 p->subscription_metadata_count);
    if (cfg->stripe_checkout_ui == CHECKOUT_UI_HOSTED) {
        form_add(f, "success_url", p->return_url);
        if (p->cancel_url)
            form_add(f, "cancel_url", p->cancel_url);
    } else {
        form_add(f, "return_url", p->return_url);
    }
    return 0;
}

int stripe_checkout_session_create(const struct usher_config *cfg,
                                   const struct stripe_checkout_params *p, json_t **session,
                                   struct stripe_error *err)
{
    *session = NULL;
    struct form f;
    form_init(&f);
    int rc = stripe_checkout_form(cfg, p, &f);
    if (rc != 0)
        fail(err, HTTP_ERR_INVALID, "invalid checkout session parameters");
    else
        rc =
            stripe_call(cfg, "POST", "/v1/checkout/sessions", &f, p->idempotency_key, session, err);
    form_cleanup(&f);
    return rc;
}

static int retrieve(const struct usher_config *cfg, const char *collection, const char *id,
                    const char *const *expand, json_t **out, struct stripe_error *err)
{
    *out = NULL;
    if (!stripe_id_valid(id)) {
        fail(err, HTTP_ERR_INVALID, "malformed Stripe id");
        return USHER_EINVAL;
    }
    struct buf path;
    buf_init(&path);
    buf_puts(&path, collection);
    form_url_segment(&path, id);
    for (; expand && *expand; expand++)
        form_url_query(&path, "expand[]", *expand);
    int rc = stripe_call(cfg, "GET", path.data, NULL, NULL, out, err);
    buf_cleanup(&path);
    return rc;
}

int stripe_checkout_session_retrieve(const struct usher_config *cfg, const char *id,
                                     json_t **session, struct stripe_error *err)
{
    static const char *const expand[] = {"subscription", "customer", NULL};
    return retrieve(cfg, "/v1/checkout/sessions", id, expand, session, err);
}

int stripe_subscription_retrieve(const struct usher_config *cfg, const char *id,
                                 json_t **subscription, struct stripe_error *err)
{
    return retrieve(cfg, "/v1/subscriptions", id, NULL, subscription, err);
}

int stripe_subscription_cancel(const struct usher_config *cfg, const char *id,
                               json_t **subscription, struct stripe_error *err)
{
    *subscription = NULL;
    if (!stripe_id_valid(id)) {
        fail(err, HTTP_ERR_INVALID, "malformed Stripe id");
        return USHER_EINVAL;
    }
    struct buf path;
    buf_init(&path);
    buf_puts(&path, "/v1/subscriptions");
    form_url_segment(&path, id);
    int rc = stripe_call(cfg, "DELETE", path.data, NULL, NULL, subscription, err);
    buf_cleanup(&path);
    return rc;
}

int stripe_portal_session_create(const struct usher_config *cfg, const char *customer,
                                 const char *return_url, const char *idempotency_key, char **url,
                                 struct stripe_error *err)
{
    *url = NULL;
    if (!stripe_id_valid(customer) || (return_url && !url_param_ok(return_url))) {
        fail(err, HTTP_ERR_INVALID, "invalid billing portal parameters");
        return USHER_EINVAL;
    }
    struct form f;
    form_init(&f);
    form_add(&f, "customer", customer);
    if (return_url)
        form_add(&f, "return_url", return_url);
    json_t *session = NULL;
    int rc =
        stripe_call(cfg, "POST", "/v1/billing_portal/sessions", &f, idempotency_key, &session, err);
    form_cleanup(&f);
    if (rc == 0) {
        const char *u = stripe_str(session, "url");
        if (u && *u) {
            *url = xstrdup(u);
        } else {
            fail(err, HTTP_ERR_STATUS, "billing portal session without url");
            rc = USHER_EUPSTREAM;
        }
    }
    json_decref(session);
    return rc;
}

/* ------------------------------------------------------------ accessors */

bool stripe_id_valid(const char *id)
{
    if (!id || !*id || strlen(id) > STRIPE_ID_MAX)
        return false;
    for (; *id; id++) {
        char c = *id;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return false;
    }
    return true;
}

const char *stripe_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

const char *stripe_expandable_id(const json_t *field)
{
    if (json_is_string(field))
        return json_string_value(field);
    if (json_is_object(field))
        return stripe_str(field, "id");
    return NULL;
}

static const char *nonempty(const char *s)
{
    return s && *s ? s : NULL;
}

const char *stripe_session_email(const json_t *session)
{
    const char *e = nonempty(stripe_str(json_object_get(session, "customer_details"), "email"));
    if (!e)
        e = nonempty(stripe_str(session, "customer_email"));
    if (!e) {
        const json_t *c = json_object_get(session, "customer");
        if (json_is_object(c))
            e = nonempty(stripe_str(c, "email"));
    }
    if (!e)
        e = nonempty(stripe_str(json_object_get(session, "metadata"), "email"));
    return e;
}

static const json_t *items_data(const json_t *sub)
{
    const json_t *data = json_object_get(json_object_get(sub, "items"), "data");
    return json_is_array(data) ? data : NULL;
}

size_t stripe_subscription_item_count(const json_t *subscription)
{
    return json_array_size(items_data(subscription));
}

int stripe_subscription_item(const json_t *subscription, size_t i, struct stripe_sub_item *out)
{
    memset(out, 0, sizeof *out);
    const json_t *item = json_array_get(items_data(subscription), i);
    if (!item)
        return USHER_ENOTFOUND;
    const json_t *price = json_object_get(item, "price");
    out->id = stripe_str(item, "id");
    out->price_id = stripe_expandable_id(price);
    out->product_id = stripe_expandable_id(json_object_get(price, "product"));
    const json_t *q = json_object_get(item, "quantity");
    out->quantity = json_is_integer(q) ? (long)json_integer_value(q) : 1;
    const json_t *end = json_object_get(item, "current_period_end");
    if (!json_is_integer(end)) /* older versions keep the period on the subscription */
        end = json_object_get(subscription, "current_period_end");
    out->current_period_end = json_is_integer(end) ? (int64_t)json_integer_value(end) : 0;
    return out->price_id ? 0 : USHER_EINVAL;
}

const char *stripe_invoice_subscription_id(const json_t *invoice)
{
    const char *id = stripe_expandable_id(json_object_get(invoice, "subscription"));
    if (id)
        return id;
    const json_t *details =
        json_object_get(json_object_get(invoice, "parent"), "subscription_details");
    return stripe_expandable_id(json_object_get(details, "subscription"));
}
