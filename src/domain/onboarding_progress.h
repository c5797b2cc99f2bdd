/*
 * onboarding_progress.h — what the checkout and the success page need to know about local
 * accounts (SPEC §2, §3): whether a username or email is already used here, how far a paid
 * signup has got, and the password-setup email on request.
 *
 * Progress is read from the database only (the webhook and the worker write it), so the
 * success page can poll it cheaply:
 *   pending           no local user with a Keycloak id for the checkout's customer or
 *                     subscription yet (the webhook has not been processed)
 *   account_created   the account exists, but the subscription is not in effect yet, or a
 *                     subscribed instance product holds no active seat, or a
 *                     sync_user_post_checkout task for the user is queued or running
 *   waiting_capacity  some subscribed product waits for a free seat (it is filled
 *                     automatically when one appears)
 *   ready             every subscribed instance product holds an active seat on an active
 *                     instance and no sync is outstanding
 */
#ifndef USHER_DOMAIN_ONBOARDING_PROGRESS_H
#define USHER_DOMAIN_ONBOARDING_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

struct db_pool;

enum onboarding_progress {
    ONBOARDING_PENDING = 0,
    ONBOARDING_ACCOUNT_CREATED,
    ONBOARDING_WAITING_CAPACITY,
    ONBOARDING_READY,
};

/* "pending", "account_created", "waiting_capacity", "ready". */
const char *onboarding_progress_name(enum onboarding_progress p);
/* A sentence for the visitor. */
const char *onboarding_progress_message(enum onboarding_progress p);

/* Whether a local user already has this username / email (both normalized, lowercase;
 * either may be NULL to skip it). */
int onboarding_local_taken(struct db_pool *pool, const char *username, const char *email,
                           bool *username_taken, bool *email_taken);

/* The progress of the signup paid with this Stripe subscription or customer (either may be
 * NULL or empty; the subscription wins when both match different users). */
int onboarding_progress_get(struct db_pool *pool, const char *subscription_id,
                            const char *customer_id, enum onboarding_progress *out);

/* When a local user with this email (normalized) has a Keycloak id, enqueues
 * send_keycloak_password_reset_email {"keycloak_id": …} for the newest such user and sets
 * *enqueued; otherwise changes nothing. */
int onboarding_request_password_email(struct db_pool *pool, const char *email, int64_t now,
                                      bool *enqueued);

#endif
