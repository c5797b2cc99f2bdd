/*
 * fuzz_oidc_discovery.c — feeds hostile discovery documents and session state to the OIDC
 * relying party's offline pieces (integrations/oidc.c): oidc_build_auth_url (iddawc reads the
 * discovery document and builds the authorization URL) and oidc_pending_take /
 * oidc_pending_put on the session's "oidc_pending" object with a fuzzed `state` from the
 * callback's query string.
 *
 * Input: discovery JSON 0x1e session data JSON 0x1e state. Properties: a built URL starts
 * with the document's authorization_endpoint; a taken pending login is gone afterwards (each
 * state is good for one callback only).
 */
#include "core/err.h"
#include "integrations/oidc.h"
#include "fuzz_util.h"

#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_parts in;
    fuzz_split(data, size, 3, &in);

    json_t *disc = json_loadb(in.part[0], in.len[0], 0, NULL);
    char *url = NULL;
    int rc = oidc_build_auth_url(
        disc, "usher", "https://usher.test/oidc/callback/", "0123456789abcdef0123456789abcdef",
        "fedcba9876543210fedcba9876543210",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", &url);
    if (rc == 0) {
        const char *ep = json_string_value(json_object_get(disc, "authorization_endpoint"));
        FUZZ_ASSERT(url && ep && !strncmp(url, ep, strlen(ep)));
    }
    free(url);
    json_decref(disc);

    json_t *session = json_loadb(in.part[1], in.len[1], 0, NULL);
    if (json_is_object(session)) {
        struct oidc_pending p;
        memset(&p, 0, sizeof p);
        if (oidc_pending_take(session, in.part[2], 1700000000, &p) == 0) {
            struct oidc_pending again;
            memset(&again, 0, sizeof again);
            FUZZ_ASSERT(oidc_pending_take(session, in.part[2], 1700000000, &again) ==
                        USHER_ENOTFOUND);
            oidc_pending_cleanup(&again);
        }
        oidc_pending_cleanup(&p);
        struct oidc_login_request req;
        memset(&req, 0, sizeof req);
        snprintf(req.state, sizeof req.state, "%s", "00112233445566778899aabbccddeeff");
        snprintf(req.nonce, sizeof req.nonce, "%s", "ffeeddccbbaa99887766554433221100");
        snprintf(req.verifier, sizeof req.verifier, "%s", "ab");
        oidc_pending_put(session, &req, in.part[2], 1700000000);
        oidc_pending_clear(session);
    }
    json_decref(session);
    fuzz_parts_free(&in);
    return 0;
}
