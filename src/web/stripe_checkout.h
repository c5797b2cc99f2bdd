/*
 * stripe_checkout.h — the browser's side of a Stripe Checkout, shared by onboarding and
 * recovery: opening the session (Idempotency-Key, the call, the JSON answer) and, when Stripe
 * sends the customer back, believing only Stripe about the payment.
 *
 * The Idempotency-Key is an HMAC (SECRET_KEY) of the browser session and the exact request
 * Usher sends, so a double click reuses the first session while any change in the order or
 * the details makes a new one.
 */
#ifndef USHER_WEB_STRIPE_CHECKOUT_H
#define USHER_WEB_STRIPE_CHECKOUT_H

#include "integrations/stripe_client.h"
#include "web/request.h"

/*
 * Creates the session described by p (its idempotency_key is set here) and answers the
 * browser: 200 {"clientSecret"} (embedded) or {"url"} (hosted), returning 0; or 400 (details
 * Stripe cannot take), 502 (Stripe failed) or 503 (payments not configured) with {"error"},
 * returning 1. r must have a session.
 */
int web_checkout_start(struct web_request *r, struct stripe_checkout_params *p);

/*
 * The return from Stripe: retrieves the Checkout Session named by the `session_id` query
 * parameter. Returns 0 with *cs (caller decrefs) when it is a complete subscription checkout
 * and the browser may store what follows (web_session_admit: a browser without a session
 * row starts one here). Otherwise answers and returns 1 — a redirect to back_path for a
 * missing, malformed, unknown, open or expired session, or 502 when Stripe cannot be asked —
 * or returns web_session_admit's refusal (USHER_ELIMIT, Retry-After set) for the dispatcher.
 */
int web_checkout_confirm(struct web_request *r, const char *back_path, json_t **cs);

/*
 * Keeps in the web session, under "signup", what the progress endpoint
 * (/onboarding/success/status/) needs about the paid checkout cs with id session_id (its
 * customer and subscription ids, the email, first_name), and drops the finished onboarding
 * state. Returns that object (caller decrefs).
 */
json_t *web_checkout_follow(struct web_request *r, const char *session_id, const json_t *cs,
                            const char *first_name);

#endif
