/*
 * process_event.c — the process_stripe_event task (SPEC §4, §8): the worker side of the
 * webhook, args {"event_id": "evt_…"} as stored by domain/stripe_events.c. The work is
 * domain/stripe_processing.h; this file checks the arguments and reports. Retried on the long
 * schedule (db/task_store.h), because a Keycloak or Stripe outage must not cost a paying
 * customer their account.
 */
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "domain/stripe_events.h"
#include "domain/stripe_processing.h"
#include "tasks/builtin.h"
#include "tasks/task.h"

#include <string.h>

int task_process_stripe_event(struct task_run *run)
{
    const char *event_id = json_string_value(json_object_get(run->args, "event_id"));
    if (!event_id || strncmp(event_id, "evt_", 4) || strlen(event_id) > STRIPE_EVENT_ID_MAX) {
        task_run_error(run, "process_stripe_event: args need an event_id (evt_…)");
        run->permanent = true;
        return USHER_EINVAL;
    }
    struct stripe_process_result res;
    int rc = stripe_process_event(run->pool, run->cfg, event_id, clock_now(),
                                  run->attempt >= run->max_attempts, &res);
    if (rc == USHER_ENOTFOUND) {
        /* Purged, or never stored: there is nothing a retry could find. */
        task_run_error(run, "process_stripe_event: %s: %s", event_id, res.note);
        run->permanent = true;
        return rc;
    }
    if (rc != 0) {
        task_run_error(run, "process_stripe_event: %s: %s", event_id, res.note);
        return rc;
    }
    if (res.outcome == STRIPE_OUTCOME_IGNORED)
        log_info("msg=\"stripe event ignored\" event_id=%s reason=\"%s\"", event_id, res.note);
    else if (res.outcome == STRIPE_OUTCOME_ALREADY)
        log_info("msg=\"stripe event already handled\" event_id=%s", event_id);
    else
        log_info("msg=\"stripe event processed\" event_id=%s", event_id);
    return 0;
}
