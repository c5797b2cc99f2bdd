/*
 * waitlist_member.c — the waitlist_add_member task (SPEC §3, §8): adds a waitlist address
 * to the Mailgun list MAILGUN_WAITLIST_ADDRESS (upsert, so a re-run changes nothing) and
 * records when it was synced.
 */
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "db/db.h"
#include "integrations/mailgun.h"
#include "tasks/builtin.h"
#include "tasks/task.h"
#include "tasks/worker_internal.h"

static int mark_synced(struct task_run *run, const char *email)
{
    struct db_conn *conn = NULL;
    int rc = db_acquire(run->pool, WORKER_DB_WAIT_MS, &conn);
    const struct db_param p[] = {DB_INT(clock_now()), DB_TEXT(email)};
    if (rc == 0)
        rc = db_exec(conn, "UPDATE waitlist_entries SET synced_at = $1 WHERE email = $2", p, 2,
                     NULL);
    db_release(conn);
    return rc;
}

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
    rc = mark_synced(run, email);
    if (rc != 0)
        task_run_error(run, "waitlist_add_member: %s", usher_strerror(rc));
    return rc;
}
