/*
 * onboarding_start.c — step 1 of onboarding (SPEC §3): welcome and first name.
 *
 * The first name is stored, trimmed and bounded, in the session's "onboarding" object; the
 * later steps read it from there.
 */
#include "core/messages.h"
#include "domain/validate.h"
#include "web/handlers.h"
#include "web/onboarding_session.h"
#include "web/pages.h"
#include "web/response.h"
#include "web/session.h"

#include <stdlib.h>
#include <string.h>

static void show_form(struct web_request *r, int status, const char *first_name, const char *error)
{
    json_t *ctx = web_page_context(r, msg("title.welcome"));
    json_object_set_new(ctx, "first_name", json_string(first_name ? first_name : ""));
    if (error)
        json_object_set_new(ctx, "error", json_string(error));
    web_reply_page(r, status, "onboarding_start", ctx);
    json_decref(ctx);
}

int web_onboarding_start(struct web_request *r)
{
    json_t *state = web_onboarding_state(r, true);
    if (!strcmp(r->method, "GET") || !strcmp(r->method, "HEAD")) {
        show_form(r, 200, json_string_value(json_object_get(state, "first_name")), NULL);
        return 0;
    }
    char *name = NULL;
    const char *error = NULL;
    if (validate_name(web_form(r, "first_name"), FIRST_NAME_MAX_LEN, &name, &error) != 0) {
        show_form(r, 400, web_form(r, "first_name"), error);
        return 0;
    }
    json_object_set_new(state, "first_name", json_string(name));
    free(name);
    web_session_changed(r);
    web_redirect(r, "/onboarding/plan/");
    return 0;
}
