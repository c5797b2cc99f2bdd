/*
 * expiry.h — the final expiry of an account (SPEC §7): once access_expires_at has passed for
 * a canceled or past_due user, the account is closed for good.
 *
 * Closing is a recorded decision followed by converge steps, in the shape of the Stripe
 * events (DESIGN "Layers"), each step idempotent so that a failure anywhere is retried from
 * the start and changes nothing twice:
 *   1. the decision, in one transaction and conditional on the state (so of several workers
 *      and the CLI exactly one makes it): status `expired`, the subscription cache and the
 *      previous items cleared, the Usher sessions deleted, one audit_log row
 *      (action "account.expired": who, when, why, and what the account held);
 *   2. the Keycloak user deleted (a 404 counts as done), then the keycloak_id link cleared;
 *      deleting the user also ends its Keycloak sessions and takes its group memberships
 *      with it, so the groups are not removed one by one (and a group deleted from the realm
 *      cannot block a closure);
 *   3. the seats freed and the seat groups removed by the provisioning sync (an expired
 *      account wants nothing; with the link gone it makes no Keycloak call), then every
 *      remaining group membership and any session that slipped in deleted.
 * The users row stays (username, email, names, Stripe ids, canceled_at, access_expires_at)
 * so that a later recovery attempt can say when the account was closed.
 *
 * The worker runs this per user (tasks: expire_account, on the long retry schedule), enqueued
 * by a periodic scan; `usher user expire` runs it at once.
 */
#ifndef USHER_DOMAIN_EXPIRY_H
#define USHER_DOMAIN_EXPIRY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct db_pool;

#define EXPIRY_TASK_NAME "expire_account"
#define EXPIRY_AUDIT_ACTION "account.expired"
#define EXPIRY_STATUS_MAX 40

enum expiry_state {
    EXPIRY_NOT_DUE = 0, /* not canceled or past_due, or the final expiry is unset or ahead */
    EXPIRY_DUE = 1, /* canceled or past_due, and access_expires_at has passed */
    EXPIRY_UNFINISHED = 2, /* expired, but a Keycloak link, seat, group or session remains */
    EXPIRY_DONE = 3, /* expired, nothing left to take away */
};

/* The decision, pure: status and access_expires_at (0: unset) as stored, at now; leftovers
 * says whether anything of the account remains (only read for an expired one). */
enum expiry_state expiry_decide(const char *status, int64_t access_expires_at, int64_t now,
                                bool leftovers);

/* What closing the account would take away (the dry run's plan; the CLI prints it). */
struct expiry_plan {
    int64_t user_id;
    char status[EXPIRY_STATUS_MAX];
    int64_t access_expires_at; /* 0 when unset */
    enum expiry_state state;
    char *keycloak_id; /* NULL when not linked (owned) */
    json_t *seats; /* [{"product", "instance" (null while waiting), "state"}] (owned) */
    json_t *groups; /* [group names] (owned) */
    int64_t sessions;
};

/* Reads the plan of one user. USHER_ENOTFOUND for no such user. */
int expiry_plan_read(struct db_pool *pool, int64_t user_id, int64_t now, struct expiry_plan *out);
void expiry_plan_cleanup(struct expiry_plan *plan);

/* The identity provider's side of a closure (identity_keycloak.h fills it for Keycloak). */
struct expiry_identity {
    void *ctx;
    /* Deletes the user; USHER_ENOTFOUND when there is none (a closure counts that as done). */
    int (*delete_user)(void *ctx, const char *user_ref);
    /* Whether the user exists (for the plan only). */
    int (*user_exists)(void *ctx, const char *user_ref, bool *exists);
};

enum expiry_keycloak { EXPIRY_KC_NOT_LINKED = 0, EXPIRY_KC_DELETED, EXPIRY_KC_ALREADY_GONE };

struct expiry_report {
    enum expiry_state state; /* before this call */
    bool decided; /* this call made the decision (and wrote the audit row) */
    enum expiry_keycloak keycloak;
    int seats_released;
    int groups_removed; /* seat groups and any other membership, locally */
    int64_t sessions_ended;
    char problem[440]; /* why it failed, for the task's error and the CLI */
};

/*
 * Closes the account of user_id if it is due (or finishes one that is expired already).
 * actor ("worker", "cli") is recorded in the audit row. Not due: 0, report->state says so and
 * nothing changes. idp may be NULL only for a user without a Keycloak link (USHER_ECONFIG
 * otherwise). Any failure leaves a state from which a new call completes the work.
 */
int expiry_close_user(struct db_pool *pool, int64_t user_id, int64_t now, const char *actor,
                      const struct expiry_identity *idp, struct expiry_report *report);

/* The dedup key of the closure task of user_id for that final expiry (heap). */
char *expiry_task_key(int64_t user_id, int64_t access_expires_at);

/*
 * The periodic scan: enqueues expire_account (long retry schedule) for at most limit users
 * that are due or unfinished and have no closure task for their final expiry yet (queued,
 * running, done or failed: a failed one stays failed and visible, and is not enqueued
 * again behind the operator's back), oldest final expiry first, in one transaction.
 * *enqueued gets how many.
 */
int expiry_enqueue_due(struct db_pool *pool, int64_t now, int limit, int *enqueued);

/* For /metrics: accounts closed so far (audit rows) and accounts due or unfinished now. */
int expiry_counts(struct db_pool *pool, int64_t now, int64_t *closed, int64_t *pending);

#endif
