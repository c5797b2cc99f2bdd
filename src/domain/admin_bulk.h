/*
 * admin_bulk.h — bulk actions on users chosen in the admin console (SPEC §9 "Users"):
 * "Sync to Keycloak", "Sync instance assignments", "Refresh subscription status & items from
 * Stripe".
 *
 * Starting one records a job (admin_bulk_jobs), enqueues one admin_user_action task per
 * selected user (tasks/admin_user_action.c runs it with the same domain functions as
 * `usher user sync` / `usher user refresh`), and writes the audit entries (domain/audit.h:
 * "users.bulk_action" on the job, "user.bulk.<action>" on each user) — all in one
 * transaction, so a failure leaves no job, no task and no audit row. Each task gets one
 * attempt: the result page reports per user success or the error at once instead of after
 * hours of retries (the tasks page can retry a failed one). A selected id with no user
 * (forged, or deleted meanwhile) is still a job item: its task fails with "no such user".
 */
#ifndef USHER_DOMAIN_ADMIN_BULK_H
#define USHER_DOMAIN_ADMIN_BULK_H

#include "domain/admin_list.h"

#include <jansson.h>
#include <stdint.h>

struct db_pool;
struct db_conn;

#define ADMIN_BULK_MAX_USERS 200 /* the largest page of the list */
#define ADMIN_BULK_TASK "admin_user_action"

enum admin_bulk_action {
    ADMIN_BULK_SYNC_KEYCLOAK = 1,
    ADMIN_BULK_SYNC_ASSIGNMENTS,
    ADMIN_BULK_REFRESH_STRIPE,
};

/* By the form's value ("sync_keycloak", …): 0, or USHER_EINVAL for anything else. */
int admin_bulk_action_parse(const char *name, enum admin_bulk_action *action);
const char *admin_bulk_action_name(enum admin_bulk_action action);
/* What the operator reads ("Sync to Keycloak", …). */
const char *admin_bulk_action_label(enum admin_bulk_action action);

/*
 * Starts a job over user_ids (1..ADMIN_BULK_MAX_USERS positive ids; duplicates are counted
 * once). *job_id gets its id. USHER_EINVAL for an empty or oversized selection.
 */
int admin_bulk_start(struct db_pool *pool, enum admin_bulk_action action,
                     const struct admin_actor *actor, const int64_t *user_ids, int n, int64_t now,
                     int64_t *job_id);

/*
 * The job and where each of its users stands: {"id", "action", "label", "actor",
 * "created_at", "total", "done", "failed", "pending", "finished": bool, "items": [{user_id,
 * username (null when the user is gone), state ("queued", "running", "done", "failed",
 * "unknown" when the task row was purged), error}]}. USHER_ENOTFOUND: no such job.
 */
int admin_bulk_result(struct db_pool *pool, int64_t job_id, json_t **out);

#endif
