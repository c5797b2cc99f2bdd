/*
 * admin_assignments.h — instance assignments (SPEC §1, §5) as the admin console shows them,
 * waiting ones included, and "allocate now" for a waiting one.
 *
 * Allocate now is the automatic allocation (domain/allocation.h) run at once for one waiting
 * seat: it respects every cap the periodic fill respects, and when no instance has room it
 * changes nothing and says so. A seat taken is followed by the user's provisioning sync,
 * queued in the same transaction as the seat and the audit entry.
 */
#ifndef USHER_DOMAIN_ADMIN_ASSIGNMENTS_H
#define USHER_DOMAIN_ADMIN_ASSIGNMENTS_H

#include "domain/admin_ops.h"

#include <stddef.h>

struct db_pool;

struct admin_assignment_filter {
    const char *state; /* NULL or "": any; else active or waiting_capacity */
    int64_t product_id; /* 0: any */
    int64_t instance_id; /* 0: any */
};

/* USHER_EINVAL for a bad filter or page. Rows: {id, user_id, username, email, product_id,
 * product, instance_id, instance (null while waiting), state, waiting, assigned_at,
 * created_at}. */
int admin_assignments_list(struct db_pool *pool, const struct admin_assignment_filter *f,
                           int64_t before, int limit, struct admin_page *out);

/* The filter's choices: products that need instances [{id, name}] and instances [{id, name,
 * product}], both by name. Caller owns both. */
int admin_assignment_choices(struct db_pool *pool, json_t **products, json_t **instances);

/*
 * Seats the waiting assignment id now. USHER_ENOTFOUND; USHER_ECONFLICT when it is active
 * already; USHER_ELIMIT when no instance of its product has room (nothing changed). msg gets
 * a sentence for the operator either way.
 */
int admin_assignment_allocate(struct db_pool *pool, const struct admin_actor *actor, int64_t id,
                              int64_t now, char *msg, size_t msg_size);

#endif
