/*
 * provisioning.h — bringing a user's access in line with their subscription (SPEC §5).
 *
 * One sync does, in order: take a seat for every subscribed product that requires an
 * instance (allocation.h); let the product's provisioner grant access on that seat (`group`:
 * membership of the instance's groups, in Usher and in the identity provider; `standalone`:
 * nothing beyond attributes); for products no longer subscribed, revoke that access and give
 * the seat back; finally replace the Usher-owned attributes in the identity provider
 * (entitlements.h). Every step is idempotent, so a sync can be repeated after any failure.
 * A canceled user inside the recovery window (access_expires_at in the future) keeps their
 * seats and groups (SPEC §4); their attributes follow the status like everyone's. An expired
 * account (closed for good, domain/expiry.h) wants nothing: a sync releases every seat, and
 * the final expiry relies on that.
 *
 * The identity provider is reached through struct identity_ops, so the domain does not
 * depend on one client and tests can watch what a sync asks for.
 */
#ifndef USHER_DOMAIN_PROVISIONING_H
#define USHER_DOMAIN_PROVISIONING_H

#include <jansson.h>
#include <stdint.h>

struct db_conn;
struct db_pool;

struct identity_ops {
    void *ctx;
    /* Group membership by group name; both idempotent. USHER_ENOTFOUND means the group
     * itself does not exist in the provider: joining it fails (the sync names the group and
     * its instance in its report), leaving it counts as done. */
    int (*add_to_group)(void *ctx, const char *user_ref, const char *group);
    int (*remove_from_group)(void *ctx, const char *user_ref, const char *group);
    /* Replaces the attributes for which owns(key) holds with attributes (key → [strings]),
     * keeping every other attribute. *dropped (may be NULL) gets keys the provider refused
     * to keep (caller owns), e.g. a Keycloak realm without unmanaged attributes. */
    int (*replace_attributes)(void *ctx, const char *user_ref, const json_t *owned_extra_keys,
                              const json_t *attributes, json_t **dropped);
};

struct provisioning_report {
    int seats_taken;
    int seats_waiting;
    int seats_released;
    int groups_added;
    int groups_removed;
    int attributes_dropped; /* keys the identity provider refused to keep */
    /* When a sync fails on a group: which one, of which instance, and why (for the task's
     * error and the operator's log), e.g. `Keycloak group "x" of instance "foggy" does not
     * exist`. Empty otherwise. */
    char problem[400];
};

/*
 * Syncs one user. The user's identity-provider reference is users.keycloak_id; a user
 * without one gets seats and local groups but no remote calls (USHER_ENOTFOUND is not
 * returned for that: the next sync after linking completes the work).
 */
int provisioning_sync_user(struct db_pool *pool, int64_t user_id, int64_t now,
                           const struct identity_ops *idp, struct provisioning_report *report);

/* Only the last step of a sync: replaces the user's Usher-owned attributes in the identity
 * provider (the admin console's "Sync to Keycloak"). USHER_ENOTFOUND, with report->problem
 * saying so, when no account is linked (or no such user, problem empty). */
int provisioning_sync_attributes(struct db_pool *pool, int64_t user_id, int64_t now,
                                 const struct identity_ops *idp,
                                 struct provisioning_report *report);

/* The groups a sync may grant: [{instance, group}] for every active instance of a product with
 * the group provisioner, ordered by instance then group (for `usher check`). */
int provisioning_required_groups(struct db_pool *pool, json_t **out);

/* Enqueues sync_user_post_checkout for the user (the worker runs provisioning_sync_user). */
int provisioning_request_sync(struct db_pool *pool, int64_t user_id, int64_t now);
/* The same inside the caller's transaction. */
int provisioning_request_sync_conn(struct db_conn *conn, int64_t user_id, int64_t now);

#endif
