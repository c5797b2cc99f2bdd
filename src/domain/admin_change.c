/*
 * admin_change.c — the frame of one audited admin action (see admin_change.h).
 */
#include "domain/admin_change.h"

#include <stdio.h>

static void set_msg(struct admin_change *c, const char *text)
{
    if (c->msg && c->msg_size > 0)
        snprintf(c->msg, c->msg_size, "%s", text);
}

int admin_change_finish(struct db_conn *conn, struct admin_change *c, int rc)
{
    if (rc == 0)
        rc = admin_audit(conn, c->actor, c->action, c->type, c->id, c->before, c->after, c->now);
    json_decref(c->before);
    json_decref(c->after);
    c->before = NULL;
    c->after = NULL;
    return rc;
}

struct run_ctx {
    struct admin_change *c;
    admin_change_fn body;
};

static int run_body(struct db_conn *conn, void *arg)
{
    struct run_ctx *r = arg;
    int body_rc = r->body(conn, r->c);
    int rc = admin_change_finish(conn, r->c, body_rc);
    /* The body wrote its success sentence but the audit entry failed: nothing happened. */
    if (body_rc == 0 && rc != 0)
        set_msg(r->c, "");
    return rc;
}

int admin_change_run(struct db_pool *pool, struct admin_change *c, admin_change_fn body)
{
    set_msg(c, "");
    c->before = NULL;
    c->after = NULL;
    struct run_ctx r = {.c = c, .body = body};
    return db_write_tx(pool, run_body, &r);
}

int admin_change_act(struct db_pool *pool, const struct admin_actor *actor, const char *action,
                     const char *type, int64_t id, int64_t now, char *msg, size_t msg_size,
                     admin_change_fn body)
{
    struct admin_change c = {.actor = actor,
                             .action = action,
                             .type = type,
                             .id = id,
                             .now = now,
                             .msg = msg,
                             .msg_size = msg_size};
    return admin_change_run(pool, &c, body);
}

int admin_change_save(struct db_pool *pool, const struct admin_actor *actor, const char *action,
                      const char *type, int64_t id, int64_t now, void *arg, admin_change_fn body)
{
    struct admin_change c = {
        .actor = actor, .action = action, .type = type, .id = id, .now = now, .arg = arg};
    return admin_change_run(pool, &c, body);
}
