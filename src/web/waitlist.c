/*
 * waitlist.c — /onboarding/waitlist/ and its JSON submit endpoint (SPEC §2, §3).
 */
#include "core/messages.h"
#include "domain/waitlist.h"
#include "web/app.h"
#include "web/handlers.h"
#include "web/pages.h"
#include "web/response.h"

#include <stdlib.h>

int web_waitlist_page(struct web_request *r)
{
    json_t *ctx = web_page_context(r, msg("title.join_the_waitlist"));
    web_reply_page(r, 200, "waitlist", ctx);
    json_decref(ctx);
    return 0;
}

int web_waitlist_submit(struct web_request *r)
{
    static const char *const required[] = {"email", NULL};
    json_t *body = NULL;
    if (web_json_body(r, required, &body) != 0)
        return 0;
    char *email = NULL;
    int rc = web_json_email(r, body, &email);
    json_decref(body);
    if (rc != 0)
        return 0;
    bool already = false;
    rc = waitlist_join(r->app->db, email, r->now, &already);
    free(email);
    if (rc != 0)
        return rc;
    json_t *reply =
        json_pack("{s:s}", "message", already ? msg("waitlist.already") : msg("waitlist.joined"));
    web_reply_json(r, 200, reply);
    json_decref(reply);
    return 0;
}
