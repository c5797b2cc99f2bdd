/*
 * fuzz_stripe_signature.c — feeds hostile `Stripe-Signature` headers and bodies to the webhook
 * verification (integrations/stripe_webhook.c: stripe_webhook_verify), as POST /stripe/webhook/
 * receives them before anything else looks at the body.
 *
 * Input: header 0x1e body. The header is checked as sent, then again with a correct v1 for
 * the body prepended (t=now, signed with the test secret): the verifier must accept that one
 * whatever fuzzed elements follow, since any matching v1 is enough. A fuzzed header alone
 * must never verify (it cannot know the HMAC), except when it embeds that same correct value.
 */
#include "core/crypto.h"
#include "integrations/stripe_webhook.h"
#include "fuzz_util.h"

#include <stdio.h>

static const char secret[] = "whsec_fuzz_secret";
static const int64_t now = 1700000000;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_parts in;
    fuzz_split(data, size, 2, &in);
    const char *header = in.part[0];
    const char *body = in.part[1];

    /* The signed payload is "<t>.<body>". */
    size_t signed_len = in.len[1] + 32;
    char *signed_payload = malloc(signed_len);
    FUZZ_ASSERT(signed_payload);
    int n = snprintf(signed_payload, signed_len, "%lld.", (long long)now);
    memcpy(signed_payload + n, body, in.len[1]);
    char good[65];
    FUZZ_ASSERT(crypto_hmac_sha256_hex(secret, signed_payload, (size_t)n + in.len[1], good) == 0);

    enum stripe_sig_result r = stripe_webhook_verify(header, body, in.len[1], secret, now,
                                                     STRIPE_WEBHOOK_TOLERANCE_SECONDS);
    stripe_sig_result_name(r);
    if (r == STRIPE_SIG_OK)
        FUZZ_ASSERT(strstr(header, good) != NULL);

    size_t hlen = in.len[0] + 128;
    char *with_good = malloc(hlen);
    FUZZ_ASSERT(with_good);
    snprintf(with_good, hlen, "t=%lld,v1=%s,%s", (long long)now, good, header);
    r = stripe_webhook_verify(with_good, body, in.len[1], secret, now,
                              STRIPE_WEBHOOK_TOLERANCE_SECONDS);
    /* The first t counts and our v1 comes first: within the length limit it must verify. */
    if (strlen(with_good) <= STRIPE_SIGNATURE_HEADER_MAX)
        FUZZ_ASSERT(r == STRIPE_SIG_OK);

    free(with_good);
    free(signed_payload);
    fuzz_parts_free(&in);
    return 0;
}
