/*
 * recovery.h — account recovery's rules (SPEC §7): who may come back, and with what.
 *
 * A person names their account by username or email. The account is
 *   recoverable  canceled or past_due, and its final expiry (access_expires_at) still ahead;
 *   active       active or trialing: nothing to recover, log in;
 *   closed       expired, or canceled/past_due with the final expiry behind it;
 *   none         no such account, or one that never had a subscription.
 * Only a recoverable account ever gets a recovery code. What it comes back to is its previous
 * plan: the items kept at cancellation (users.previous_items), else the subscription's cached
 * items (a failed payment keeps them), priced with the catalog as it is now.
 */
#ifndef USHER_DOMAIN_RECOVERY_H
#define USHER_DOMAIN_RECOVERY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct db_pool;

/* The task that sends a recovery code (tasks/recovery_code.c). */
#define RECOVERY_CODE_TASK "send_recovery_code"

enum recovery_state {
    RECOVERY_NONE = 0,
    RECOVERY_RECOVERABLE,
    RECOVERY_ACTIVE,
    RECOVERY_CLOSED,
};

struct recovery_account {
    int64_t id; /* 0: no account */
    char *username;
    char *email; /* as stored (normalized at signup) */
    char *first_name;
    char *last_name;
    char *status;
    char *stripe_customer_id; /* NULL when none */
    int64_t access_expires_at; /* 0 when unset */
    enum recovery_state state;
};

/*
 * Finds the account an identifier names: a valid username (lowercase) first, else a valid
 * email (case-insensitive). *out is cleared first; out->id stays 0 (RECOVERY_NONE) when no
 * account matches or identifier is neither. Returns 0 or a database error.
 */
int recovery_find(struct db_pool *pool, const char *identifier, int64_t now,
                  struct recovery_account *out);
/* The same by user id (the one a verified recovery session carries). */
int recovery_find_id(struct db_pool *pool, int64_t user_id, int64_t now,
                     struct recovery_account *out);
void recovery_account_cleanup(struct recovery_account *a);

/* The state of an account with this status and final expiry at now. */
enum recovery_state recovery_classify(const char *status, int64_t access_expires_at, int64_t now);

/*
 * Queues RECOVERY_CODE_TASK {identifier, session_hash}: the lookup and the mail happen in the
 * worker, so that the request costs the same whatever the identifier names.
 */
int recovery_request_code(struct db_pool *pool, const char *identifier, const char *session_hash,
                          int64_t now);

/* Whether identifier is acceptable input at all (a username or an email by the signup rules,
 * at most 254 bytes): a syntax check only, the same for every account. */
bool recovery_identifier_valid(const char *identifier);

/*
 * The previous plan of a recoverable account, priced with today's catalog:
 * {"lines":[{name, quantity, price_id, label}], "total_label", "cycle"} where label is
 * e.g. "$10.00 / month" (× quantity when more than one). Prices the catalog no longer offers
 * are left out. USHER_ENOTFOUND when nothing of the plan can be bought again.
 */
int recovery_previous_plan(struct db_pool *pool, int64_t user_id, json_t **out);

#endif
