/*
 * admin_instances.h — the admin console's instances and groups (SPEC §9): lists with filters
 * and search, and the instance edit (base URL, API key, groups, caps, flags).
 *
 * Caps are checked field by field, all at once, so the form can say what is wrong with each:
 * every cap a whole number from 0 to 1,000,000; soft_cap ≤ allocation_cap ≤ hard_cap (SPEC
 * §1); allocation_cap and hard_cap never below the seats in use (read in the same
 * transaction, so a seat taken meanwhile counts). soft_cap may be below them: it is only the
 * preferred fill. Seats are read-only here (allocation owns them); so are the product and the
 * name, the instance's key in the catalog file. An empty API key field keeps the stored key,
 * which is never shown.
 *
 * Same transaction shape as admin_catalog.h: re-read and lock, compare the fingerprint
 * (USHER_ECONFLICT), validate, write, one audit entry (the API key appears only as
 * api_key_set). When the groups change, every user seated on the instance gets a provisioning
 * sync task in the same transaction, so their Keycloak groups follow.
 */
#ifndef USHER_DOMAIN_ADMIN_INSTANCES_H
#define USHER_DOMAIN_ADMIN_INSTANCES_H

#include "db/db.h"
#include "domain/admin_catalog.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct admin_instance_filter {
    const char *q; /* name or base_url contains */
    int64_t product_id; /* 0: any */
    int active, auto_allocate; /* -1 any */
    int limit;
    int64_t after_id; /* keyset by id */
};
/* {id, name, product_id, product, base_url, soft_cap, allocation_cap, hard_cap,
 * allocated_seats, auto_allocate, is_active, groups: [names]}. */
int admin_instances_list(struct db_pool *pool, const struct admin_instance_filter *f, json_t **rows,
                         bool *more);

/* {id, product, product_id, name, base_url, api_key_set, soft_cap, allocation_cap, hard_cap,
 * allocated_seats, is_active, auto_allocate, groups: [names], fp}. USHER_ENOTFOUND. */
int admin_instance_get(struct db_pool *pool, int64_t id, json_t **out);

/* The form, as text the way it came (NULL = empty). */
struct admin_instance_form {
    const char *base_url;
    const char *api_key; /* "" keeps the stored key */
    const char *groups; /* group names, one per line (or comma-separated) */
    const char *soft_cap, *allocation_cap, *hard_cap;
    bool is_active, auto_allocate;
};

/*
 * Saves the form. On USHER_EINVAL, *errors (caller owns) maps each refused field (base_url,
 * api_key, groups, soft_cap, allocation_cap, hard_cap) to its message. USHER_ECONFLICT when
 * the instance changed since fp was read; USHER_ENOTFOUND.
 */
int admin_instance_save(struct db_pool *pool, const struct admin_actor *who, int64_t id,
                        const char *fp, const struct admin_instance_form *form, int64_t now,
                        json_t **errors);

struct admin_group_filter {
    const char *q; /* name contains */
    int limit;
    bool has_after; /* keyset: (name, id) after these */
    const char *after_name;
    int64_t after_id;
};
/* {id, name, instances (how many instances use it), members (Usher users in it)}. */
int admin_groups_list(struct db_pool *pool, const struct admin_group_filter *f, json_t **rows,
                      bool *more);

#endif
