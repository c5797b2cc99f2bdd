/*
 * recovery_session.h — what a recovery keeps in the browser session's "recovery" object:
 * the identifier typed (so a reload keeps it) and, once a code was verified, the account's
 * id and when — never the code. A verification is good for RECOVERY_VERIFIED_SECONDS; after
 * that the person asks for a new code.
 */
#ifndef USHER_WEB_RECOVERY_SESSION_H
#define USHER_WEB_RECOVERY_SESSION_H

#include "web/request.h"

#include <stdint.h>

#define RECOVERY_VERIFIED_SECONDS (30 * 60)

void web_recovery_remember_identifier(struct web_request *r, const char *identifier);
/* The identifier last typed, or NULL (borrowed from the session). */
const char *web_recovery_identifier(struct web_request *r);
void web_recovery_mark_verified(struct web_request *r, int64_t user_id);
/* The account verified in this browser within RECOVERY_VERIFIED_SECONDS, or 0. */
int64_t web_recovery_verified_user(struct web_request *r);
/* Drops the recovery object (the recovery is paid for). */
void web_recovery_forget(struct web_request *r);

#endif
