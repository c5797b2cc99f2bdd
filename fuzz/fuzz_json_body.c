/*
 * fuzz_json_body.c — feeds hostile JSON request bodies to the web layer's body handling
 * (web/request.c: web_json_body, web_json_email; domain/validate.c through them), which every
 * JSON endpoint (onboarding, recovery, waitlist) runs first, then reads the fields the
 * onboarding handlers read (username, first_name) through the same validators.
 *
 * Properties: a refused body gets exactly one reply, a 400 whose body is a JSON object with a
 * string "error" (the SPEC's error shape); an accepted one is a JSON object holding the
 * required strings, and no reply has been sent yet.
 */
#include "core/err.h"
#include "domain/validate.h"
#include "web/app.h"
#include "web/request.h"
#include "fuzz_util.h"

#include <stdio.h>
#include <ulfius.h>

static void check_error_shape(const struct web_request *r, const struct _u_response *resp)
{
    FUZZ_ASSERT(r->replied && r->status == 400);
    json_t *body = json_loadb(resp->binary_body, resp->binary_body_length, 0, NULL);
    FUZZ_ASSERT(json_is_string(json_object_get(body, "error")));
    json_decref(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const required[] = {"email", NULL};
    struct _u_request req;
    struct _u_response resp;
    ulfius_init_request(&req);
    ulfius_init_response(&resp);
    if (size) {
        req.binary_body = o_malloc(size);
        memcpy(req.binary_body, data, size);
        req.binary_body_length = size;
    }
    u_map_put(req.map_header, "Content-Type", "application/json");
    struct web_request r = {.u_req = &req, .u_resp = &resp};
    snprintf(r.request_id, sizeof r.request_id, "fuzz");

    json_t *body = NULL;
    int rc = web_json_body(&r, required, &body);
    if (rc != 0) {
        FUZZ_ASSERT(rc == USHER_EINVAL && !body);
        check_error_shape(&r, &resp);
    } else {
        FUZZ_ASSERT(json_is_object(body) && !r.replied);
        char *email = NULL;
        if (web_json_email(&r, body, &email) != 0)
            check_error_shape(&r, &resp);
        else
            FUZZ_ASSERT(email && strlen(email) <= EMAIL_MAX_LEN);
        free(email);
        char *norm = NULL;
        const char *error = NULL;
        if (validate_username(json_string_value(json_object_get(body, "username")), &norm,
                              &error) == 0)
            free(norm);
        norm = NULL;
        if (validate_name(json_string_value(json_object_get(body, "first_name")),
                          FIRST_NAME_MAX_LEN, &norm, &error) == 0)
            free(norm);
    }
    json_decref(body);
    ulfius_clean_response(&resp);
    ulfius_clean_request(&req);
    return 0;
}
