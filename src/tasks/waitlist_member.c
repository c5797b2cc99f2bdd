/*
 * waitlist_member.c — the waitlist_add_member task (SPEC §3, §8): adds a waitlist address
 * to the Mailgun list MAILGUN_WAITLIST_ADDRESS (upsert, so a re-run changes nothing) and
 * records when it was synced.
 */
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "domain/waitlist.h"
#include "integrations/mailgun.h"
#include "tasks/builtin.h"
#include "tasks/task.h"

int task_waitlist_add_member(struct task_run *run)
{
    const char *email = json_string_value(json_object_get(run->args, "email"));
    if (!email || !*email) {
        task_run_error(run, "waitlist_add_member: args need an email");
        run->permanent = true;
        return USHER_EINVAL;
    }
    const char *list = run->cfg->mailgun_waitlist_address;
    if (!*list) {
        task_run_error(run, "waitlist_add_member: MAILGUN_WAITLIST_ADDRESS is not set");
        return USHER_ECONFIG;
    }
    int rc = mailgun_list_add_member(run->cfg, list, email);
    if (rc != 0) {
        task_run_error(run, "waitlist_add_member: Mailgun: %s", usher_strerror(rc));
        return rc;
    }
    rc = waitlist_mark_synced(run->pool, email, clock_now());
    if (rc != 0)
        task_run_error(run, "waitlist_add_member: %s", usher_strerror(rc));
    return rc;
}
