/*
 * stripe_client.h — the Stripe REST calls Usher makes (INTEGRATIONS.md, Stripe section).
 *
 * Every request carries `Authorization: Bearer sk_…` and `Stripe-Version` (the pinned
 * STRIPE_API_VERSION unless STRIPE_API_VERSION is set in the environment), bodies are
 * form-encoded with nested keys (form.h), and every POST carries the caller's
 * Idempotency-Key (required, at most 255 characters: derive it from Usher's own ids so a
 * retried task reuses it). Calls are retried with backoff per Stripe's rules: connection
 * failures, 409, 5xx, or `Stripe-Should-Retry: true`; never when Stripe says false.
 *
 * Results are jansson objects that belong to the caller (json_decref). Failures:
 * USHER_ECONFIG (no STRIPE_SECRET_KEY), USHER_EINVAL (bad parameters, refused before any
 * request), USHER_ENOTFOUND (404 / resource_missing), USHER_ECONFLICT (idempotency_error:
 * the key was used with other parameters), USHER_EUPSTREAM (anything else); struct
 * stripe_error (may be NULL) tells the details. The Billing Portal's "no configuration"
 * error is USHER_ECONFIG with err->portal_not_configured set, so the web layer can tell the
 * operator what to do.
 */
#ifndef USHER_INTEGRATIONS_STRIPE_CLIENT_H
#define USHER_INTEGRATIONS_STRIPE_CLIENT_H

#include "core/config.h"
#include "integrations/form.h"
#include "integrations/http_client.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* The one place the Stripe API version is pinned (the official Python SDK's pin). */
#define STRIPE_API_VERSION "2026-06-24.dahlia"
/* From this version on, ui_mode is hosted_page / embedded_page (before: hosted / embedded). */
#define STRIPE_UI_MODE_RENAMED_IN "2026-03-25"

#define STRIPE_IDEMPOTENCY_KEY_MAX 255
#define STRIPE_ID_MAX 255
#define STRIPE_METADATA_MAX_KEYS 50
#define STRIPE_METADATA_KEY_MAX 40
#define STRIPE_METADATA_VALUE_MAX 500
#define STRIPE_LINE_ITEMS_MAX 20

/* Stripe's error object, parsed; every string is NUL-terminated and possibly cut short. */
struct stripe_error {
    struct http_error http; /* status, kind, sanitized excerpt */
    char type[64]; /* invalid_request_error, api_error, card_error, … */
    char code[64]; /* resource_missing, parameter_unknown, … */
    char param[128];
    char message[512];
    char request_id[64];
    bool portal_not_configured; /* Billing Portal without a saved configuration */
};

/* Parses `{"error":{type,code,message,param}}`; returns 0, or USHER_EINVAL when body is not
 * such an object (err still gets the status and an excerpt). Pure. */
int stripe_error_parse(long status, const char *body, size_t len, struct stripe_error *err);

/* The version sent: cfg->stripe_api_version when set, else STRIPE_API_VERSION. */
const char *stripe_api_version(const struct usher_config *cfg);
/* The ui_mode value for ui under api_version: the one place the rename is known. Pure. */
const char *stripe_checkout_ui_mode(const char *api_version, enum checkout_ui ui);

struct stripe_line_item {
    const char *price; /* price_… */
    long quantity; /* >= 1 */
};

struct stripe_metadata {
    const char *key;
    const char *value;
};

struct stripe_checkout_params {
    const struct stripe_line_item *items;
    size_t item_count;
    const char *customer; /* cus_… to attach, or NULL */
    const char *customer_email; /* to pre-fill, or NULL; never both */
    const struct stripe_metadata *metadata; /* on the session */
    size_t metadata_count;
    const struct stripe_metadata *subscription_metadata; /* subscription_data[metadata] */
    size_t subscription_metadata_count;
    const char *client_reference_id; /* or NULL */
    /* Where Stripe sends the customer afterwards, {CHECKOUT_SESSION_ID} included: sent as
     * return_url (embedded) or success_url (hosted). */
    const char *return_url;
    const char *cancel_url; /* hosted only (ignored when embedded); may be NULL */
    const char *idempotency_key;
};

/* Validates params and writes the form body of POST /v1/checkout/sessions (mode
 * subscription, ui_mode per cfg). Returns 0 or USHER_EINVAL. Pure; f must be initialised. */
int stripe_checkout_form(const struct usher_config *cfg, const struct stripe_checkout_params *p,
                         struct form *f);

/* POST /v1/checkout/sessions → the session (hosted: `url`; embedded: `client_secret`). */
int stripe_checkout_session_create(const struct usher_config *cfg,
                                   const struct stripe_checkout_params *p, json_t **session,
                                   struct stripe_error *err);

/* GET /v1/checkout/sessions/{id}?expand[]=subscription&expand[]=customer */
int stripe_checkout_session_retrieve(const struct usher_config *cfg, const char *id,
                                     json_t **session, struct stripe_error *err);

/* GET /v1/subscriptions/{id} (items with their prices). */
int stripe_subscription_retrieve(const struct usher_config *cfg, const char *id,
                                 json_t **subscription, struct stripe_error *err);

/* DELETE /v1/subscriptions/{id}: cancels it at once (no proration, no final invoice). A
 * subscription that is already canceled answers with its object too; an unknown one
 * USHER_ENOTFOUND. */
int stripe_subscription_cancel(const struct usher_config *cfg, const char *id,
                               json_t **subscription, struct stripe_error *err);

/* POST /v1/billing_portal/sessions (customer, return_url) → *url (heap, caller frees). */
int stripe_portal_session_create(const struct usher_config *cfg, const char *customer,
                                 const char *return_url, const char *idempotency_key, char **url,
                                 struct stripe_error *err);

/* ------------------------------------------------------------ accessors (borrowed) */

/* A Stripe id: letters, digits and '_', at most STRIPE_ID_MAX. */
bool stripe_id_valid(const char *id);
/* The id of a field that is either an id string or an expanded object; NULL otherwise. */
const char *stripe_expandable_id(const json_t *field);
/* A string member, or NULL. */
const char *stripe_str(const json_t *obj, const char *key);
/* The buyer's email from a checkout session, in SPEC §4's order: customer_details.email,
 * customer_email, customer.email (expanded), metadata.email; NULL when none. */
const char *stripe_session_email(const json_t *session);

struct stripe_sub_item {
    const char *id; /* si_… */
    const char *price_id; /* price_… */
    const char *product_id; /* prod_… (id, or the expanded product's id) */
    long quantity;
    int64_t current_period_end; /* per item since 2025-03-31.basil; 0 when absent */
};

size_t stripe_subscription_item_count(const json_t *subscription);
/* Item i of items.data; returns 0 or USHER_ENOTFOUND / USHER_EINVAL for a malformed item. */
int stripe_subscription_item(const json_t *subscription, size_t i, struct stripe_sub_item *out);
/* The subscription id of an invoice in either shape: `subscription` (before basil) or
 * `parent.subscription_details.subscription`; NULL when none. */
const char *stripe_invoice_subscription_id(const json_t *invoice);

#endif
