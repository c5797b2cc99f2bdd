/*
 * onboarding_session.h — the onboarding choices kept in the session's "onboarding" object
 * (first_name, plan, billing_cycle, general_addons, storage_addons, addons, email_verified),
 * shared by the onboarding steps.
 */
#ifndef USHER_WEB_ONBOARDING_SESSION_H
#define USHER_WEB_ONBOARDING_SESSION_H

#include "web/request.h"

#include <jansson.h>
#include <stdbool.h>

/* The state object (borrowed); with create it is made when missing. NULL without a session,
 * or when it is missing and create is false. */
json_t *web_onboarding_state(struct web_request *r, bool create);
/* Whether a JSON array of strings holds s. */
bool web_onboarding_list_has(const json_t *list, const char *s);

#endif
