/*
 * expiry.c — closing accounts past their final expiry (see expiry.h for the steps and why
 * they come in that order).
 */
#include "domain/expiry.h"

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "db/db.h"
#include "db/task_store.h"
#include "domain/provisioning.h"
#include "domain/session_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Users whose closure is due or unfinished at $1 (the scan and the metric agree on it). */
#define DUE_OR_UNFINISHED                                                      \
    "u.access_expires_at IS NOT NULL AND u.access_expires_at <= $1 "           \
    "AND (u.subscription_status IN ('canceled', 'past_due') "                  \
    "OR (u.subscription_status = 'expired' AND (u.keycloak_id IS NOT NULL "    \
    "OR EXISTS (SELECT 1 FROM instance_assignments a WHERE a.user_id = u.id) " \
    "OR EXISTS (SELECT 1 FROM user_groups ug WHERE ug.user_id = u.id))))"

enum expiry_state expiry_decide(const char *status, int64_t access_expires_at, int64_t now,
                                bool leftovers)
{
    const char *s = status ? status : "";
    if (!strcmp(s, "expired"))
        return leftovers ? EXPIRY_UNFINISHED : EXPIRY_DONE;
    if (strcmp(s, "canceled") && strcmp(s, "past_due"))
        return EXPIRY_NOT_DUE; /* active again, or never paid: nothing to close */
    return access_expires_at > 0 && access_expires_at <= now ? EXPIRY_DUE : EXPIRY_NOT_DUE;
}

/* ---- reading what an account holds ------------------------------------------------------ */

static int read_seats(struct db_conn *conn, int64_t user_id, json_t **out)
{
    const struct db_param p[] = {DB_INT(user_id)};
    struct db_result *res = NULL;
    int rc = db_query(conn,
                      "SELECT p.slug, i.name, a.state FROM instance_assignments a "
                      "JOIN products p ON p.id = a.product_id "
                      "LEFT JOIN instances i ON i.id = a.instance_id "
                      "WHERE a.user_id = $1 ORDER BY p.slug",
                      p, 1, &res);
    *out = json_array();
    for (int r = 0; rc == 0 && r < db_result_rows(res); r++) {
        const char *instance = db_result_text(res, r, 1);
        json_array_append_new(*out,
                              json_pack("{s:s, s:o, s:s}", "product", db_result_text(res, r, 0),
                                        "instance", instance ? json_string(instance) : json_null(),
                                        "state", db_result_text(res, r, 2)));
    }
    db_result_free(res);
    return rc;
}

static int read_groups(struct db_conn *conn, int64_t user_id, json_t **out)
{
    const struct db_param p[] = {DB_INT(user_id)};
    struct db_result *res = NULL;
    int rc = db_query(conn,
                      "SELECT g.name FROM user_groups ug JOIN groups g ON g.id = ug.group_id "
                      "WHERE ug.user_id = $1 ORDER BY g.name",
                      p, 1, &res);
    *out = json_array();
    for (int r = 0; rc == 0 && r < db_result_rows(res); r++)
        json_array_append_new(*out, json_string(db_result_text(res, r, 0)));
    db_result_free(res);
    return rc;
}

static int read_plan(struct db_conn *conn, int64_t user_id, int64_t now, struct expiry_plan *out)
{
    memset(out, 0, sizeof *out);
    out->user_id = user_id;
    const struct db_param p[] = {DB_INT(user_id)};
    struct db_result *res = NULL;
    int rc = db_query(conn,
                      "SELECT subscription_status, access_expires_at, keycloak_id, "
                      "(SELECT count(*) FROM sessions s WHERE s.user_id = users.id) "
                      "FROM users WHERE id = $1",
                      p, 1, &res);
    if (rc == 0 && db_result_rows(res) == 0)
        rc = USHER_ENOTFOUND;
    if (rc == 0) {
        const char *status = db_result_text(res, 0, 0);
        snprintf(out->status, sizeof out->status, "%s", status ? status : "");
        out->access_expires_at = db_result_is_null(res, 0, 1) ? 0 : db_result_int(res, 0, 1);
        const char *kc = db_result_text(res, 0, 2);
        out->keycloak_id = kc && *kc ? xstrdup(kc) : NULL;
        out->sessions = db_result_int(res, 0, 3);
    }
    db_result_free(res);
    if (rc == 0)
        rc = read_seats(conn, user_id, &out->seats);
    if (rc == 0)
        rc = read_groups(conn, user_id, &out->groups);
    if (rc == 0) {
        bool leftovers = out->keycloak_id || json_array_size(out->seats) ||
                         json_array_size(out->groups) || out->sessions > 0;
        out->state = expiry_decide(out->status, out->access_expires_at, now, leftovers);
    }
    return rc;
}

int expiry_plan_read(struct db_pool *pool, int64_t user_id, int64_t now, struct expiry_plan *out)
{
    struct db_conn *conn = NULL;
    int rc = db_acquire(pool, DB_WAIT_MS, &conn);
    if (rc == 0)
        rc = read_plan(conn, user_id, now, out);
    else
        memset(out, 0, sizeof *out);
    db_release(conn);
    return rc;
}

void expiry_plan_cleanup(struct expiry_plan *plan)
{
    if (!plan)
        return;
    free(plan->keycloak_id);
    json_decref(plan->seats);
    json_decref(plan->groups);
    memset(plan, 0, sizeof *plan);
}

/* ---- step 1: the decision --------------------------------------------------------------- */

struct decision {
    int64_t user_id, now;
    const char *actor;
    bool decided;
    int64_t sessions;
};

static int audit(struct db_conn *conn, const struct decision *d, const struct expiry_plan *before)
{
    json_t *detail = json_pack(
        "{s:s, s:s, s:I, s:o, s:O, s:O, s:I}", "reason", "final expiry passed", "status_before",
        before->status, "access_expires_at", (json_int_t)before->access_expires_at, "keycloak_id",
        before->keycloak_id ? json_string(before->keycloak_id) : json_null(), "seats",
        before->seats, "groups", before->groups, "sessions_ended", (json_int_t)d->sessions);
    char *text = detail ? json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(detail);
    if (!text)
        return USHER_EINVAL;
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)d->user_id);
    const struct db_param p[] = {DB_INT(d->now), DB_TEXT(d->actor), DB_TEXT(id), DB_TEXT(text)};
    int rc = db_exec(conn,
                     "INSERT INTO audit_log (created_at, actor_user_id, actor, action, "
                     "target_type, target_id, detail) "
                     "VALUES ($1, NULL, $2, '" EXPIRY_AUDIT_ACTION "', 'user', $3, $4)",
                     p, DB_NPARAMS(p), NULL);
    free(text);
    return rc;
}

/* A past-due account closed for good: Stripe would go on retrying its unpaid invoices
 * (tasks/stale_subscription.c cancels it, in Stripe). */
static int cancel_unpaid_subscription(struct db_conn *conn, const struct decision *d,
                                      const struct expiry_plan *before)
{
    if (strcmp(before->status, "past_due"))
        return 0;
    const struct db_param p[] = {DB_INT(d->user_id)};
    struct db_result *res = NULL;
    int rc = db_query(conn,
                      "SELECT stripe_subscription_id FROM users WHERE id = $1 "
                      "AND stripe_subscription_id IS NOT NULL",
                      p, 1, &res);
    if (rc == 0 && db_result_rows(res) > 0) {
        const char *sub_id = db_result_text(res, 0, 0);
        json_t *args =
            json_pack("{s:s, s:I}", "subscription_id", sub_id, "user_id", (json_int_t)d->user_id);
        char *key = xasprintf("stale-sub:%s", sub_id);
        rc = task_enqueue(conn, "cancel_stale_subscription", args, 0, d->now, key, NULL);
        free(key);
        json_decref(args);
    }
    db_result_free(res);
    return rc;
}

static int decide_body(struct db_conn *conn, void *arg)
{
    struct decision *d = arg;
    struct expiry_plan before;
    int rc = read_plan(conn, d->user_id, d->now, &before);
    int64_t changed = 0;
    /* Conditional on the state, so that of several workers (and the CLI) one decides, and a
     * recovery that committed first wins. */
    const struct db_param p[] = {DB_INT(d->user_id), DB_INT(d->now)};
    if (rc == 0 && before.state == EXPIRY_DUE)
        rc = db_exec(conn,
                     "UPDATE users SET subscription_status = 'expired', previous_items = NULL, "
                     "is_admin = false WHERE id = $1 "
                     "AND subscription_status IN ('canceled', 'past_due') "
                     "AND access_expires_at IS NOT NULL AND access_expires_at <= $2",
                     p, DB_NPARAMS(p), &changed);
    if (rc == 0 && changed == 1) {
        const struct db_param u[] = {DB_INT(d->user_id)};
        rc = cancel_unpaid_subscription(conn, d, &before);
        if (rc == 0)
            rc = db_exec(conn, "DELETE FROM subscription_items WHERE user_id = $1", u, 1, NULL);
        if (rc == 0)
            rc = session_delete_for_user(conn, d->user_id, &d->sessions);
        if (rc == 0)
            rc = audit(conn, d, &before);
        d->decided = rc == 0;
    }
    expiry_plan_cleanup(&before);
    return rc;
}

/* ---- steps 2 and 3: converging ---------------------------------------------------------- */

/* The provisioning sync of a closed account has no Keycloak link, so it never calls these;
 * should a link reappear under it, the step fails and is retried rather than re-granting. */
static int closed_group(void *ctx, const char *user_ref, const char *group)
{
    (void)ctx, (void)user_ref, (void)group;
    return USHER_ECONFLICT;
}

static int closed_attributes(void *ctx, const char *user_ref, const json_t *keys,
                             const json_t *attrs, json_t **dropped)
{
    (void)ctx, (void)user_ref, (void)keys, (void)attrs;
    if (dropped)
        *dropped = NULL;
    return USHER_ECONFLICT;
}

static const struct identity_ops closed_ops = {NULL, closed_group, closed_group, closed_attributes};

static int delete_identity(struct db_pool *pool, int64_t user_id, const char *keycloak_id,
                           const struct expiry_identity *idp, struct expiry_report *report)
{
    if (!idp || !idp->delete_user) {
        snprintf(report->problem, sizeof report->problem,
                 "the Keycloak Admin API is not configured, so Keycloak user %s stays",
                 keycloak_id);
        return USHER_ECONFIG;
    }
    int rc = idp->delete_user(idp->ctx, keycloak_id);
    if (rc == USHER_ENOTFOUND) {
        report->keycloak = EXPIRY_KC_ALREADY_GONE; /* an earlier attempt, or an operator */
        rc = 0;
    } else if (rc == 0) {
        report->keycloak = EXPIRY_KC_DELETED;
    } else {
        snprintf(report->problem, sizeof report->problem, "Keycloak: deleting user %s: %s",
                 keycloak_id, usher_strerror(rc));
        return rc;
    }
    struct db_conn *conn = NULL;
    rc = db_acquire(pool, DB_WAIT_MS, &conn);
    const struct db_param p[] = {DB_INT(user_id), DB_TEXT(keycloak_id)};
    if (rc == 0)
        rc = db_exec(conn,
                     "UPDATE users SET keycloak_id = NULL WHERE id = $1 AND keycloak_id = $2 "
                     "AND subscription_status = 'expired'",
                     p, DB_NPARAMS(p), NULL);
    db_release(conn);
    return rc;
}

struct remainder {
    int64_t user_id;
    int64_t groups, sessions;
};

static int remainder_body(struct db_conn *conn, void *arg)
{
    struct remainder *r = arg;
    const struct db_param p[] = {DB_INT(r->user_id)};
    int rc = db_exec(conn, "DELETE FROM user_groups WHERE user_id = $1", p, 1, &r->groups);
    if (rc == 0)
        rc = session_delete_for_user(conn, r->user_id, &r->sessions);
    return rc;
}

static int converge(struct db_pool *pool, int64_t user_id, int64_t now,
                    const struct expiry_identity *idp, struct expiry_report *report)
{
    struct expiry_plan now_state;
    int rc = expiry_plan_read(pool, user_id, now, &now_state);
    if (rc == 0 && strcmp(now_state.status, "expired")) {
        expiry_plan_cleanup(&now_state);
        report->state = EXPIRY_NOT_DUE; /* recovered between the first read and the decision */
        return 0;
    }
    if (rc == 0 && now_state.keycloak_id)
        rc = delete_identity(pool, user_id, now_state.keycloak_id, idp, report);
    expiry_plan_cleanup(&now_state);
    struct provisioning_report prep;
    if (rc == 0) {
        rc = provisioning_sync_user(pool, user_id, now, &closed_ops, &prep);
        if (rc != 0)
            snprintf(report->problem, sizeof report->problem, "freeing seats: %s",
                     *prep.problem ? prep.problem : usher_strerror(rc));
    }
    if (rc != 0)
        return rc;
    report->seats_released = prep.seats_released;
    report->groups_removed = prep.groups_removed;
    struct remainder rest = {.user_id = user_id};
    rc = db_write_tx(pool, remainder_body, &rest);
    if (rc != 0) {
        snprintf(report->problem, sizeof report->problem, "database: %s", usher_strerror(rc));
        return rc;
    }
    report->groups_removed += (int)rest.groups;
    report->sessions_ended += rest.sessions;
    return 0;
}

int expiry_close_user(struct db_pool *pool, int64_t user_id, int64_t now, const char *actor,
                      const struct expiry_identity *idp, struct expiry_report *report)
{
    memset(report, 0, sizeof *report);
    struct expiry_plan start;
    int rc = expiry_plan_read(pool, user_id, now, &start);
    if (rc != 0) {
        snprintf(report->problem, sizeof report->problem, "reading user %lld: %s",
                 (long long)user_id, usher_strerror(rc));
        return rc;
    }
    report->state = start.state;
    expiry_plan_cleanup(&start);
    if (report->state == EXPIRY_NOT_DUE || report->state == EXPIRY_DONE)
        return 0;
    struct decision d = {.user_id = user_id, .now = now, .actor = actor ? actor : "worker"};
    rc = db_write_tx(pool, decide_body, &d);
    if (rc != 0) {
        snprintf(report->problem, sizeof report->problem, "recording the closure: %s",
                 usher_strerror(rc));
        return rc;
    }
    report->decided = d.decided;
    report->sessions_ended = d.sessions;
    rc = converge(pool, user_id, now, idp, report);
    if (rc == 0 && report->decided)
        log_info("msg=\"account closed: final expiry passed\" user_id=%lld actor=%s",
                 (long long)user_id, d.actor);
    return rc;
}

/* ---- the scan and the figures ----------------------------------------------------------- */

char *expiry_task_key(int64_t user_id, int64_t access_expires_at)
{
    return xasprintf(EXPIRY_TASK_NAME ":%lld:%lld", (long long)user_id,
                     (long long)access_expires_at);
}

struct scan {
    int64_t now;
    int limit;
    int enqueued;
};

static int scan_body(struct db_conn *conn, void *arg)
{
    struct scan *s = arg;
    const struct db_param p[] = {DB_INT(s->now), DB_INT(s->limit)};
    struct db_result *res = NULL;
    /* The key names the final expiry, so a user who recovered and was canceled again gets a
     * closure of their own; a failed closure keeps its key and is left to the operator. */
    int rc = db_query(conn,
                      "SELECT u.id, u.access_expires_at FROM users u WHERE " DUE_OR_UNFINISHED " "
                      "AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.dedup_key = "
                      "'" EXPIRY_TASK_NAME ":' || u.id || ':' || u.access_expires_at) "
                      "ORDER BY u.access_expires_at, u.id LIMIT $2",
                      p, DB_NPARAMS(p), &res);
    for (int r = 0; rc == 0 && r < db_result_rows(res); r++) {
        int64_t user_id = db_result_int(res, r, 0);
        char *key = expiry_task_key(user_id, db_result_int(res, r, 1));
        json_t *args = json_pack("{s:I}", "user_id", (json_int_t)user_id);
        int64_t id = 0;
        rc = task_enqueue(conn, EXPIRY_TASK_NAME, args, TASK_LONG_MAX_ATTEMPTS, s->now, key, &id);
        json_decref(args);
        free(key);
        if (rc == 0 && id)
            s->enqueued++;
    }
    db_result_free(res);
    return rc;
}

int expiry_enqueue_due(struct db_pool *pool, int64_t now, int limit, int *enqueued)
{
    struct scan s = {.now = now, .limit = limit > 0 ? limit : 1};
    int rc = db_write_tx(pool, scan_body, &s);
    *enqueued = rc == 0 ? s.enqueued : 0;
    return rc;
}

int expiry_counts(struct db_pool *pool, int64_t now, int64_t *closed, int64_t *pending)
{
    const struct db_param p[] = {DB_INT(now)};
    struct db_result *res = NULL;
    int rc = db_pool_query(pool,
                           "SELECT (SELECT count(*) FROM audit_log "
                           "WHERE action = '" EXPIRY_AUDIT_ACTION "'), "
                           "(SELECT count(*) FROM users u WHERE " DUE_OR_UNFINISHED ")",
                           p, 1, &res);
    if (rc == 0) {
        *closed = db_result_int(res, 0, 0);
        *pending = db_result_int(res, 0, 1);
    }
    db_result_free(res);
    return rc;
}
