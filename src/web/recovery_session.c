/*
 * recovery_session.c — the session's recovery object (see recovery_session.h).
 */
#include "web/recovery_session.h"

#include "web/session.h"

#include <stdbool.h>
#include <string.h>

static json_t *state(struct web_request *r, bool create)
{
    return web_session_object(r, "recovery", create);
}

void web_recovery_remember_identifier(struct web_request *r, const char *identifier)
{
    json_t *s = state(r, true);
    if (!s)
        return;
    const char *before = json_string_value(json_object_get(s, "identifier"));
    if (!before || strcmp(before, identifier)) {
        /* Another account: a verification of the previous one no longer applies. */
        json_object_clear(s);
        json_object_set_new(s, "identifier", json_string(identifier));
    }
    json_object_set_new(s, "requested_at", json_integer(r->now));
    web_session_changed(r);
}

const char *web_recovery_identifier(struct web_request *r)
{
    return json_string_value(json_object_get(state(r, false), "identifier"));
}

void web_recovery_mark_verified(struct web_request *r, int64_t user_id)
{
    json_t *s = state(r, true);
    if (!s)
        return;
    json_object_set_new(s, "verified_user", json_integer(user_id));
    json_object_set_new(s, "verified_at", json_integer(r->now));
    web_session_changed(r);
}

int64_t web_recovery_verified_user(struct web_request *r)
{
    json_t *s = state(r, false);
    json_int_t user = json_integer_value(json_object_get(s, "verified_user"));
    json_int_t at = json_integer_value(json_object_get(s, "verified_at"));
    if (user <= 0 || at <= 0 || r->now - at >= RECOVERY_VERIFIED_SECONDS || r->now < at)
        return 0;
    return (int64_t)user;
}

void web_recovery_forget(struct web_request *r)
{
    json_t *data = web_session_data(r);
    if (data && json_object_get(data, "recovery")) {
        json_object_del(data, "recovery");
        web_session_changed(r);
    }
}
