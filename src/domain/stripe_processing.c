/*
 * stripe_processing.c — one stored Stripe event: loading it, dispatching by type, and the
 * event's bookkeeping (see stripe_processing.h).
 */
#include "domain/stripe_processing.h"

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "db/db.h"
#include "domain/stripe_processing_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct stored_event {
    char *status;
    char *type;
    int64_t created;
    json_t *doc;
};

static void stored_event_cleanup(struct stored_event *e)
{
    free(e->status);
    free(e->type);
    json_decref(e->doc);
}

/* Loads the event and counts this run in attempts (unless an earlier run finished it). */
static int load_event(struct db_pool *pool, const char *event_id, struct stored_event *e)
{
    struct db_conn *conn = NULL;
    int rc = db_acquire(pool, DB_WAIT_MS, &conn);
    if (rc != 0)
        return rc;
    const struct db_param p[] = {DB_TEXT(event_id)};
    struct db_result *res = NULL;
    rc = db_query(conn,
                  "UPDATE stripe_events SET attempts = attempts + 1 WHERE event_id = $1 "
                  "AND status IN ('pending', 'failed') RETURNING status, type, created, payload",
                  p, 1, &res);
    if (rc == 0 && db_result_rows(res) == 0) {
        db_result_free(res);
        res = NULL;
        rc = db_query(conn,
                      "SELECT status, type, created, NULL FROM stripe_events WHERE event_id = $1",
                      p, 1, &res);
        if (rc == 0 && db_result_rows(res) == 0)
            rc = USHER_ENOTFOUND;
    }
    if (rc == 0) {
        e->status = xstrdup(db_result_text(res, 0, 0));
        e->type = xstrdup(db_result_text(res, 0, 1));
        e->created = db_result_int(res, 0, 2);
        const char *payload = db_result_text(res, 0, 3);
        if (payload)
            e->doc = json_loads(payload, JSON_REJECT_DUPLICATES, NULL);
    }
    db_result_free(res);
    db_release(conn);
    return rc;
}

static int record(struct db_pool *pool, const char *event_id, const char *status, const char *note,
                  int64_t now)
{
    struct db_conn *conn = NULL;
    int rc = db_acquire(pool, DB_WAIT_MS, &conn);
    if (rc != 0)
        return rc;
    const struct db_param p[] = {DB_TEXT(event_id), DB_TEXT(status), DB_TEXT_OR_NULL(note),
                                 DB_INT(now)};
    /* An event finished by an earlier run stays as that run recorded it. */
    rc = db_exec(conn,
                 "UPDATE stripe_events SET status = $2, last_error = $3, processed_at = $4 "
                 "WHERE event_id = $1 AND status IN ('pending', 'failed')",
                 p, DB_NPARAMS(p), NULL);
    db_release(conn);
    return rc;
}

static int record_failure(struct db_pool *pool, const char *event_id, const char *note,
                          bool final_attempt)
{
    struct db_conn *conn = NULL;
    int rc = db_acquire(pool, DB_WAIT_MS, &conn);
    if (rc != 0)
        return rc;
    const struct db_param p[] = {DB_TEXT(event_id), DB_TEXT(note),
                                 DB_TEXT_OR_NULL(final_attempt ? "failed" : NULL)};
    rc = db_exec(conn,
                 "UPDATE stripe_events SET last_error = $2, status = COALESCE($3, status) "
                 "WHERE event_id = $1 "
                 "AND status IN ('pending', 'failed')",
                 p, DB_NPARAMS(p), NULL);
    db_release(conn);
    return rc;
}

static int dispatch(struct sp_ctx *c)
{
    const char *t = c->ev.type;
    if (!strcmp(t, "checkout.session.completed"))
        return sp_checkout_completed(c);
    if (!strcmp(t, "customer.subscription.created") || !strcmp(t, "customer.subscription.updated"))
        return sp_subscription_changed(c);
    if (!strcmp(t, "customer.subscription.deleted"))
        return sp_subscription_deleted(c);
    if (!strcmp(t, "invoice.payment_failed"))
        return sp_invoice_payment_failed(c);
    if (!strcmp(t, "invoice.paid"))
        return sp_invoice_paid(c);
    sp_ignore(c, "event type not handled");
    return 0;
}

int stripe_process_event(struct db_pool *pool, const struct usher_config *cfg, const char *event_id,
                         int64_t now, bool final_attempt, struct stripe_process_result *out)
{
    memset(out, 0, sizeof *out);
    struct stored_event e = {0};
    int rc = load_event(pool, event_id, &e);
    if (rc != 0) {
        snprintf(out->note, sizeof out->note, "loading event: %s", usher_strerror(rc));
        return rc;
    }
    if (strcmp(e.status, "pending") && strcmp(e.status, "failed")) {
        out->outcome = STRIPE_OUTCOME_ALREADY;
        snprintf(out->note, sizeof out->note, "already %s", e.status);
        stored_event_cleanup(&e);
        return 0;
    }
    struct sp_ctx c = {.pool = pool, .cfg = cfg, .now = now, .res = out};
    c.ev.id = event_id;
    c.ev.type = e.type;
    c.ev.created = e.created;
    c.ev.object = json_object_get(json_object_get(e.doc, "data"), "object");
    if (!json_is_object(c.ev.object))
        sp_ignore(&c, "payload without data.object");
    else
        rc = dispatch(&c);
    /* USHER_ENOTFOUND is reserved for "no such event"; a 404 from Stripe is upstream. */
    if (rc == USHER_ENOTFOUND)
        rc = USHER_EUPSTREAM;

    if (rc != 0) {
        if (!out->note[0])
            snprintf(out->note, sizeof out->note, "%s", usher_strerror(rc));
        int rc2 = record_failure(pool, event_id, out->note, final_attempt);
        if (rc2 != 0)
            log_error("msg=\"cannot record stripe event failure\" event_id=%s error=\"%s\"",
                      event_id, usher_strerror(rc2));
    } else if (!c.recorded) {
        /* (A parked event's status was committed with the parking; a checkout may have queued
         * it again since, and that pending state must not be overwritten here.) */
        bool ignored = out->outcome == STRIPE_OUTCOME_IGNORED;
        rc = record(pool, event_id, ignored ? "ignored" : "processed", ignored ? out->note : NULL,
                    now);
        if (rc != 0)
            snprintf(out->note, sizeof out->note, "recording the outcome: %s", usher_strerror(rc));
    }
    stored_event_cleanup(&e);
    return rc;
}
