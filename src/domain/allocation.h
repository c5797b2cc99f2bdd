/*
 * allocation.h — seats on product instances under capacity limits (SPEC §5).
 *
 * Every change to an assignment changes its instance's allocated_seats in the same
 * transaction, so allocated_seats always equals the number of active assignments. All
 * automatic allocations for one product are serialized: on PostgreSQL by locking that
 * product's row (SELECT … FOR NO KEY UPDATE: one lock however many instances it has), on
 * SQLite by the write transaction. That keeps the invariants under any
 * concurrency and across processes: automatic allocation never takes an instance past its
 * allocation_cap, nothing ever takes one past its hard_cap (also a CHECK in the schema).
 *
 * Choice of instance: active, auto_allocate, under allocation_cap; those still under
 * soft_cap first; then the fewest seats; then the name.
 */
#ifndef USHER_DOMAIN_ALLOCATION_H
#define USHER_DOMAIN_ALLOCATION_H

#include <stdint.h>

struct db_pool;

enum alloc_outcome {
    ALLOC_ALREADY_ASSIGNED = 1, /* an active seat on an active instance existed */
    ALLOC_ASSIGNED = 2, /* a seat was taken now */
    ALLOC_WAITING = 3, /* no capacity: recorded as waiting_capacity */
};

struct alloc_result {
    enum alloc_outcome outcome;
    int64_t instance_id; /* 0 when waiting */
    int was_waiting; /* the seat had been waiting before this call */
};

/* Makes sure the user holds a seat for the product (one that requires an instance). */
int alloc_assign(struct db_pool *pool, int64_t user_id, int64_t product_id, int64_t now,
                 struct alloc_result *out);
struct db_conn;
/* alloc_assign inside the caller's write transaction (the admin console's "allocate now"
 * records its audit entry in the same one). A conflict is returned, not retried. */
int alloc_assign_in_tx(struct db_conn *conn, int64_t user_id, int64_t product_id, int64_t now,
                       struct alloc_result *out);
/* Gives the seat back (never below zero) and deletes the assignment, waiting or active.
 * No assignment is not an error. */
int alloc_release(struct db_pool *pool, int64_t user_id, int64_t product_id);
/* An administrator's choice of instance: may exceed allocation_cap, never hard_cap
 * (USHER_ELIMIT). Moves an existing seat of the same product. */
int alloc_assign_manual(struct db_pool *pool, int64_t user_id, int64_t instance_id, int64_t now);
/* Called for each user who got a seat while filling (so their access can be provisioned). */
typedef int (*alloc_seated_fn)(int64_t user_id, void *ctx);

/* Tries to seat every waiting assignment, oldest first; *assigned gets how many got one.
 * on_seated (may be NULL) is called for each; its failure stops the fill and is returned. */
int alloc_fill_waiting(struct db_pool *pool, int64_t now, int *assigned, alloc_seated_fn on_seated,
                       void *ctx);
/* Number of assignments waiting for capacity (metrics, admin). */
int alloc_count_waiting(struct db_pool *pool, int64_t *count);

#endif
