/*
 * stripe_webhook.h — verifying the `Stripe-Signature` header of a webhook delivery.
 *
 * As the official SDKs do (INTEGRATIONS.md): the header is `t=<unix>,v1=<hex>[,v1=…][,v0=…]`;
 * only v1 counts and any matching v1 is enough (several appear while a secret is rolled);
 * the signed payload is "<t>.<raw body>", HMAC-SHA256 keyed with the whsec_ secret's bytes as
 * they are; hex compared in constant time. A timestamp older than the tolerance is refused.
 *
 * One deliberate difference: Usher also refuses timestamps more than the tolerance in the
 * future (the SDKs accept them), so a captured, correctly signed delivery cannot be made to
 * stay valid for longer by a sender with a skewed or malicious clock.
 */
#ifndef USHER_INTEGRATIONS_STRIPE_WEBHOOK_H
#define USHER_INTEGRATIONS_STRIPE_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#define STRIPE_WEBHOOK_TOLERANCE_SECONDS 300
#define STRIPE_SIGNATURE_HEADER_MAX 4096

enum stripe_sig_result {
    STRIPE_SIG_OK = 0,
    STRIPE_SIG_MALFORMED = -1, /* no header, no t, bad t, no v1 */
    STRIPE_SIG_MISMATCH = -2, /* no v1 matches */
    STRIPE_SIG_STALE = -3, /* t older than the tolerance */
    STRIPE_SIG_FUTURE = -4, /* t further ahead than the tolerance */
};

enum stripe_sig_result stripe_webhook_verify(const char *header, const void *payload,
                                             size_t payload_len, const char *secret, int64_t now,
                                             int64_t tolerance);
const char *stripe_sig_result_name(enum stripe_sig_result r);

#endif
