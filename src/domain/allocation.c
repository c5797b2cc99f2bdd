/*
 * allocation.c — seat allocation (see allocation.h for the rules and invariants).
 */
#include "domain/allocation.h"

#include "core/err.h"
#include "core/log.h"
#include "db/db.h"

#include <stdbool.h>
#include <stddef.h>

/* A serialization failure or deadlock on PostgreSQL (USHER_ECONFLICT) is retried whole. */
#define TX_RETRIES 5

struct current_seat {
    bool exists;
    bool waiting;
    bool active_on_live_instance;
    int64_t instance_id; /* 0 when waiting */
};

/* Serializes allocations of one product: locks the product's row. One lock whatever the
 * number of instances (locking each instance row cost a write per instance, and the
 * instances grow with the users). NO KEY UPDATE, so that inserts referring to the product
 * (assignments, subscription items: their foreign keys take KEY SHARE) do not wait. */
static int lock_product(struct db_conn *conn, int64_t product_id)
{
    if (db_conn_dialect(conn) != DB_POSTGRES)
        return 0; /* SQLite: the write transaction already excludes every other writer */
    const struct db_param p[] = {DB_INT(product_id)};
    struct db_result *res = NULL;
    int rc = db_query(conn, "SELECT id FROM products WHERE id = $1 FOR NO KEY UPDATE", p, 1, &res);
    db_result_free(res);
    return rc;
}

static int read_current(struct db_conn *conn, int64_t user_id, int64_t product_id,
                        struct current_seat *cur)
{
    const struct db_param p[] = {DB_INT(user_id), DB_INT(product_id)};
    struct db_result *res = NULL;
    int rc = db_query(conn,
                      "SELECT a.state, a.instance_id, i.is_active FROM instance_assignments a "
                      "LEFT JOIN instances i ON i.id = a.instance_id "
                      "WHERE a.user_id = $1 AND a.product_id = $2",
                      p, 2, &res);
    if (rc != 0)
        return rc;
    cur->exists = db_result_rows(res) > 0;
    cur->instance_id = cur->exists ? db_result_int(res, 0, 1) : 0;
    cur->waiting = cur->exists && cur->instance_id == 0;
    cur->active_on_live_instance = cur->exists && cur->instance_id && db_result_bool(res, 0, 2);
    db_result_free(res);
    return 0;
}

static int free_seat(struct db_conn *conn, int64_t instance_id)
{
    if (!instance_id)
        return 0;
    const struct db_param p[] = {DB_INT(instance_id)};
    return db_exec(conn,
                   "UPDATE instances SET allocated_seats = CASE WHEN allocated_seats > 0 "
                   "THEN allocated_seats - 1 ELSE 0 END WHERE id = $1",
                   p, 1, NULL);
}

/* Takes a seat on the best instance; *instance_id is 0 when none has room. The choice reads
 * instances_choice_idx (migration 0009) in order; the outer WHERE repeats the conditions so
 * that PostgreSQL checks them again on the row it updates should an operator have changed
 * the instance meanwhile (the product lock does not cover instance edits). */
static int take_best_seat(struct db_conn *conn, int64_t product_id, int64_t now,
                          int64_t *instance_id)
{
    const struct db_param p[] = {DB_INT(product_id), DB_INT(now)};
    struct db_result *res = NULL;
    int rc = db_query(conn,
                      "UPDATE instances SET allocated_seats = allocated_seats + 1, updated_at = $2 "
                      "WHERE id = (SELECT id FROM instances WHERE product_id = $1 AND is_active "
                      "AND auto_allocate AND allocated_seats < allocation_cap "
                      "ORDER BY CASE WHEN allocated_seats < soft_cap THEN 0 ELSE 1 END, "
                      "allocated_seats, name LIMIT 1) "
                      "AND is_active AND auto_allocate AND allocated_seats < allocation_cap "
                      "RETURNING id",
                      p, 2, &res);
    if (rc == 0)
        *instance_id = db_result_rows(res) ? db_result_int(res, 0, 0) : 0;
    db_result_free(res);
    return rc;
}

static int record(struct db_conn *conn, int64_t user_id, int64_t product_id, int64_t instance_id,
                  int64_t now)
{
    const struct db_param p[] = {DB_INT(user_id),
                                 DB_INT(product_id),
                                 instance_id ? DB_INT(instance_id) : DB_NULL,
                                 DB_TEXT(instance_id ? "active" : "waiting_capacity"),
                                 instance_id ? DB_INT(now) : DB_NULL,
                                 DB_INT(now)};
    return db_exec(conn,
                   "INSERT INTO instance_assignments (user_id, product_id, instance_id, state, "
                   "assigned_at, created_at) VALUES ($1, $2, $3, $4, $5, $6) "
                   "ON CONFLICT (user_id, product_id) DO UPDATE SET instance_id = $3, "
                   "state = $4, assigned_at = $5",
                   p, DB_NPARAMS(p), NULL);
}

static int assign_in_tx(struct db_conn *conn, int64_t user_id, int64_t product_id, int64_t now,
                        struct alloc_result *out)
{
    int rc = lock_product(conn, product_id);
    struct current_seat cur = {0};
    if (rc == 0)
        rc = read_current(conn, user_id, product_id, &cur);
    if (rc != 0)
        return rc;
    if (cur.active_on_live_instance) {
        *out = (struct alloc_result){ALLOC_ALREADY_ASSIGNED, cur.instance_id, 0};
        return 0;
    }
    /* A seat on an instance that was deactivated is given back before choosing anew. */
    rc = free_seat(conn, cur.instance_id);
    int64_t instance_id = 0;
    if (rc == 0)
        rc = take_best_seat(conn, product_id, now, &instance_id);
    if (rc == 0)
        rc = record(conn, user_id, product_id, instance_id, now);
    if (rc == 0)
        *out = (struct alloc_result){instance_id ? ALLOC_ASSIGNED : ALLOC_WAITING, instance_id,
                                     cur.waiting};
    return rc;
}

int alloc_assign_in_tx(struct db_conn *conn, int64_t user_id, int64_t product_id, int64_t now,
                       struct alloc_result *out)
{
    return assign_in_tx(conn, user_id, product_id, now, out);
}

typedef int (*tx_body_fn)(struct db_conn *conn, void *arg);

/* Runs body in a write transaction on a borrowed connection, retrying conflicts. */
static int in_write_tx(struct db_pool *pool, tx_body_fn body, void *arg)
{
    int rc = USHER_ECONFLICT;
    for (int attempt = 0; attempt < TX_RETRIES && rc == USHER_ECONFLICT; attempt++) {
        struct db_conn *conn = NULL;
        rc = db_acquire(pool, DB_WAIT_MS, &conn);
        if (rc != 0)
            return rc;
        rc = db_begin(conn, DB_TX_WRITE);
        if (rc == 0)
            rc = body(conn, arg);
        if (rc == 0)
            rc = db_commit(conn);
        db_release(conn); /* rolls back whatever was not committed */
    }
    return rc;
}

struct assign_args {
    int64_t user_id, product_id, instance_id, now;
    struct alloc_result *out;
    int filled;
};

static int assign_body(struct db_conn *conn, void *arg)
{
    struct assign_args *a = arg;
    return assign_in_tx(conn, a->user_id, a->product_id, a->now, a->out);
}

int alloc_assign(struct db_pool *pool, int64_t user_id, int64_t product_id, int64_t now,
                 struct alloc_result *out)
{
    struct assign_args a = {.user_id = user_id, .product_id = product_id, .now = now, .out = out};
    int rc = in_write_tx(pool, assign_body, &a);
    if (rc == 0 && out->outcome == ALLOC_WAITING && !out->was_waiting)
        log_warn("msg=\"no capacity: seat is waiting\" user_id=%lld product_id=%lld",
                 (long long)user_id, (long long)product_id);
    return rc;
}

static int release_body(struct db_conn *conn, void *arg)
{
    struct assign_args *a = arg;
    const struct db_param p[] = {DB_INT(a->user_id), DB_INT(a->product_id)};
    struct db_result *res = NULL;
    int rc = lock_product(conn, a->product_id);
    if (rc == 0)
        rc = db_query(conn,
                      "DELETE FROM instance_assignments WHERE user_id = $1 AND product_id = $2 "
                      "RETURNING instance_id",
                      p, 2, &res);
    if (rc == 0 && db_result_rows(res))
        rc = free_seat(conn, db_result_int(res, 0, 0));
    db_result_free(res);
    return rc;
}

int alloc_release(struct db_pool *pool, int64_t user_id, int64_t product_id)
{
    struct assign_args a = {.user_id = user_id, .product_id = product_id};
    return in_write_tx(pool, release_body, &a);
}

static int manual_body(struct db_conn *conn, void *arg)
{
    struct assign_args *a = arg;
    const struct db_param inst[] = {DB_INT(a->instance_id)};
    struct db_result *res = NULL;
    int rc = db_query(conn, "SELECT product_id FROM instances WHERE id = $1", inst, 1, &res);
    if (rc == 0 && db_result_rows(res) == 0)
        rc = USHER_ENOTFOUND;
    int64_t product_id = rc == 0 ? db_result_int(res, 0, 0) : 0;
    db_result_free(res);
    struct current_seat cur = {0};
    if (rc == 0)
        rc = lock_product(conn, product_id);
    if (rc == 0)
        rc = read_current(conn, a->user_id, product_id, &cur);
    if (rc != 0 || cur.instance_id == a->instance_id)
        return rc; /* already there: nothing to change */
    rc = free_seat(conn, cur.instance_id);
    int64_t changed = 0;
    const struct db_param take[] = {DB_INT(a->instance_id), DB_INT(a->now)};
    if (rc == 0)
        rc = db_exec(conn,
                     "UPDATE instances SET allocated_seats = allocated_seats + 1, updated_at = $2 "
                     "WHERE id = $1 AND allocated_seats < hard_cap",
                     take, 2, &changed);
    if (rc == 0 && changed != 1)
        rc = USHER_ELIMIT;
    if (rc == 0)
        rc = record(conn, a->user_id, product_id, a->instance_id, a->now);
    return rc;
}

int alloc_assign_manual(struct db_pool *pool, int64_t user_id, int64_t instance_id, int64_t now)
{
    struct assign_args a = {.user_id = user_id, .instance_id = instance_id, .now = now};
    return in_write_tx(pool, manual_body, &a);
}

int alloc_count_waiting(struct db_pool *pool, int64_t *count)
{
    struct db_conn *conn = NULL;
    int rc = db_acquire(pool, DB_WAIT_MS, &conn);
    struct db_result *res = NULL;
    if (rc == 0)
        rc = db_query(conn,
                      "SELECT count(*) FROM instance_assignments WHERE state = 'waiting_capacity'",
                      NULL, 0, &res);
    if (rc == 0)
        *count = db_result_int(res, 0, 0);
    db_result_free(res);
    db_release(conn);
    return rc;
}

/* Reads the oldest waiting assignments (at most limit) as (user, product) pairs. */
static int read_waiting(struct db_pool *pool, int64_t (*pairs)[2], int limit, int *n)
{
    struct db_conn *conn = NULL;
    int rc = db_acquire(pool, DB_WAIT_MS, &conn);
    struct db_result *res = NULL;
    const struct db_param p[] = {DB_INT(limit)};
    if (rc == 0)
        rc = db_query(conn,
                      "SELECT user_id, product_id FROM instance_assignments "
                      "WHERE state = 'waiting_capacity' ORDER BY created_at, id LIMIT $1",
                      p, 1, &res);
    *n = 0;
    for (int i = 0; rc == 0 && i < db_result_rows(res); i++) {
        pairs[i][0] = db_result_int(res, i, 0);
        pairs[i][1] = db_result_int(res, i, 1);
        (*n)++;
    }
    db_result_free(res);
    db_release(conn);
    return rc;
}

#define FILL_BATCH 256

int alloc_fill_waiting(struct db_pool *pool, int64_t now, int *assigned, alloc_seated_fn on_seated,
                       void *ctx)
{
    int64_t pairs[FILL_BATCH][2];
    int n = 0;
    *assigned = 0;
    int rc = read_waiting(pool, pairs, FILL_BATCH, &n);
    for (int i = 0; rc == 0 && i < n; i++) {
        struct alloc_result r;
        rc = alloc_assign(pool, pairs[i][0], pairs[i][1], now, &r);
        if (rc == 0 && r.outcome == ALLOC_ASSIGNED) {
            (*assigned)++;
            if (on_seated)
                rc = on_seated(pairs[i][0], ctx);
        }
    }
    return rc;
}
