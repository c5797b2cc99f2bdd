/*
 * admin_change.h — one admin action on one row (retry a task or a Stripe event, allocate a
 * seat, save a product or an instance), done whole: the change and its audit entry
 * (before → after) in one write transaction, and the sentence the page shows.
 *
 * Every such action has the same frame: who, which row, when, the message; a body that
 * checks and changes the row and says what it looked like before and after; the audit entry
 * written only when the body succeeded, in the same transaction, so an action is either done
 * and recorded or neither. The body is the action's own; the frame lives here once.
 */
#ifndef USHER_DOMAIN_ADMIN_CHANGE_H
#define USHER_DOMAIN_ADMIN_CHANGE_H

#include "db/db.h"
#include "domain/admin_list.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct admin_change {
    const struct admin_actor *actor;
    const char *action; /* the audit action, e.g. "task.retry" */
    const char *type; /* the audit target type, e.g. "task" */
    int64_t id; /* the target row */
    int64_t now;
    char *msg; /* the sentence for the page; NULL (msg_size 0) when the caller shows none */
    size_t msg_size;
    void *arg; /* the action's own inputs and outputs */
    /* Set by the body; owned by the change (admin_change_finish frees them). */
    json_t *before;
    json_t *after;
};

/* Checks and changes c->id inside the transaction and sets c->before and c->after (and the
 * success sentence); on a refusal sets c->msg and returns the error. */
typedef int (*admin_change_fn)(struct db_conn *conn, struct admin_change *c);

/* Runs body in one write transaction (db_write_tx) and, when it returns 0, the audit entry
 * in the same transaction. c->msg is "" first, and "" again when the audit entry cannot be
 * written (the change is rolled back then). */
int admin_change_run(struct db_pool *pool, struct admin_change *c, admin_change_fn body);

/* admin_change_run for an action on row id that has no inputs of its own and answers with a
 * sentence in msg (retry, allocate now). */
int admin_change_act(struct db_pool *pool, const struct admin_actor *actor, const char *action,
                     const char *type, int64_t id, int64_t now, char *msg, size_t msg_size,
                     admin_change_fn body);

/* admin_change_run for an edit form's save of row id: its inputs in arg, no sentence (the
 * form shows its own outcome). */
int admin_change_save(struct db_pool *pool, const struct admin_actor *actor, const char *action,
                      const char *type, int64_t id, int64_t now, void *arg, admin_change_fn body);

/* Ends a change inside the caller's transaction (for a caller that changes several rows in
 * one, like a bulk task retry): when rc is 0 writes the audit entry c->before → c->after;
 * frees both either way. Returns rc, else the audit entry's error. */
int admin_change_finish(struct db_conn *conn, struct admin_change *c, int rc);

#endif
