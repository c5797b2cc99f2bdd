/*
 * onboarding_session.c — the session's onboarding object (see onboarding_session.h).
 */
#include "web/onboarding_session.h"

#include "web/session.h"

#include <string.h>

json_t *web_onboarding_state(struct web_request *r, bool create)
{
    return web_session_object(r, "onboarding", create);
}

bool web_onboarding_list_has(const json_t *list, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach (list, i, v) {
        const char *item = json_string_value(v);
        if (item && !strcmp(item, s))
            return true;
    }
    return false;
}
