/*
 * stripe_refresh.c — a user's subscription re-read from Stripe without an event (see
 * stripe_processing.h): `usher user refresh`, the admin console's refresh, and the daily
 * reconcile that catches missed webhooks. The same steps as the event handlers
 * (subscription_state.c), under the same per-subscription transaction, so a refresh and an
 * event about the same subscription never interleave their local changes.
 */
#include "domain/stripe_processing.h"

#include "core/err.h"
#include "core/mem.h"
#include "db/db.h"
#include "domain/stripe_processing_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int read_subscription_id(struct db_pool *pool, int64_t user_id, char **sub_id)
{
    *sub_id = NULL;
    const struct db_param p[] = {DB_INT(user_id)};
    struct db_result *res = NULL;
    int rc =
        db_pool_query(pool, "SELECT stripe_subscription_id FROM users WHERE id = $1", p, 1, &res);
    if (rc == 0 && db_result_rows(res) == 0)
        rc = USHER_ENOTFOUND;
    if (rc == 0 && !db_result_is_null(res, 0, 0) && *db_result_text(res, 0, 0))
        *sub_id = xstrdup(db_result_text(res, 0, 0));
    db_result_free(res);
    return rc;
}

static int read_result(struct db_pool *pool, int64_t user_id, struct stripe_refresh_result *out)
{
    const struct db_param p[] = {DB_INT(user_id)};
    struct db_result *res = NULL;
    int rc = db_pool_query(pool,
                           "SELECT subscription_status, (SELECT count(*) FROM subscription_items "
                           "WHERE user_id = $1) FROM users WHERE id = $1",
                           p, 1, &res);
    if (rc == 0 && db_result_rows(res) > 0) {
        const char *status = db_result_text(res, 0, 0);
        snprintf(out->status, sizeof out->status, "%s", status ? status : "");
        out->items = (int)db_result_int(res, 0, 1);
    }
    db_result_free(res);
    return rc;
}

/* In the subscription's transaction: the user must still hold it. */
static int apply(struct sp_ctx *c, const char *sub_id, int64_t user_id, const json_t *sub,
                 struct stripe_refresh_result *out)
{
    struct db_conn *conn = NULL;
    int rc = sp_begin(c, sub_id, &conn);
    if (rc != 0)
        return rc;
    struct sp_user u;
    rc = sp_user_by_subscription(conn, sub_id, &u);
    if (rc == 0 && u.id != user_id)
        rc = sp_fail(c, USHER_ECONFLICT, "the user's subscription changed during the refresh");
    bool canceled = !strcmp(sp_subscription_status(sub), "canceled");
    /* Closed for good (domain/expiry.h) while the refresh was reading Stripe: a past_due
     * subscription Stripe still keeps must not bring the status back. */
    bool closed = rc == 0 && !strcmp(u.status, "expired");
    if (rc == 0 && !closed)
        rc = sp_apply_changed(c, conn, &u, sub);
    out->outcome = canceled && !closed && strcmp(u.status, "canceled") ? STRIPE_REFRESH_CANCELED
                                                                       : STRIPE_REFRESH_UPDATED;
    rc = sp_finish(conn, rc);
    if (rc != 0 && !c->res->note[0])
        sp_fail(c, rc, "database: %s", usher_strerror(rc));
    return rc;
}

int stripe_refresh_user(struct db_pool *pool, const struct usher_config *cfg, int64_t user_id,
                        int64_t now, struct stripe_refresh_result *out)
{
    memset(out, 0, sizeof *out);
    char *sub_id = NULL;
    int rc = read_subscription_id(pool, user_id, &sub_id);
    if (rc != 0) {
        snprintf(out->note, sizeof out->note, "reading the user: %s", usher_strerror(rc));
        return rc;
    }
    if (!sub_id) {
        out->outcome = STRIPE_REFRESH_NO_SUBSCRIPTION;
        return read_result(pool, user_id, out);
    }
    struct stripe_process_result res = {0};
    /* Dedup keys of the follow-up tasks name this refresh (one per user and second). */
    char *pseudo_id = xasprintf("refresh-%lld-%lld", (long long)user_id, (long long)now);
    struct sp_ctx c = {.pool = pool, .cfg = cfg, .now = now, .res = &res};
    c.ev.id = pseudo_id;
    c.ev.type = "refresh";
    json_t *sub = NULL;
    rc = sp_fetch_subscription(&c, sub_id, &sub);
    if (rc == USHER_ENOTFOUND) /* Stripe's 404; USHER_ENOTFOUND means "no such user" here */
        rc = USHER_EUPSTREAM;
    if (rc == 0) {
        c.ev.object = sub;
        rc = apply(&c, sub_id, user_id, sub, out);
    }
    if (rc == 0)
        rc = sp_converge_access(&c, user_id);
    if (rc == 0)
        rc = read_result(pool, user_id, out);
    if (rc != 0)
        snprintf(out->note, sizeof out->note, "%s", res.note[0] ? res.note : usher_strerror(rc));
    json_decref(sub);
    free(pseudo_id);
    free(sub_id);
    return rc;
}

int stripe_reconcile_candidates(struct db_pool *pool, int64_t after_id, int max, int64_t *ids,
                                int *n)
{
    *n = 0;
    const struct db_param p[] = {DB_INT(after_id), DB_INT(max)};
    struct db_result *res = NULL;
    int rc = db_pool_query(pool,
                           "SELECT id FROM users WHERE id > $1 AND stripe_subscription_id IS NOT "
                           "NULL AND subscription_status IN ('active', 'trialing', 'past_due') "
                           "ORDER BY id LIMIT $2",
                           p, DB_NPARAMS(p), &res);
    for (int r = 0; rc == 0 && r < db_result_rows(res) && r < max; r++)
        ids[(*n)++] = db_result_int(res, r, 0);
    db_result_free(res);
    return rc;
}
