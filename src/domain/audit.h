/*
 * audit.h — the audit log of admin changes (table audit_log; SPEC §9 "an audit log of every
 * admin change").
 *
 * audit_record writes one row in the caller's transaction, so a change and its entry commit
 * or roll back together. The row says who (the admin's user id and username), when, the
 * action ("product.update", …), the target ("product", "12") and, in `detail`, the fields
 * that changed as {"before": {…}, "after": {…}} (only the keys whose values differ; a
 * creation has no before, a deletion no after). Other writers of audit_log (`usher catalog
 * apply`, the final expiry, the mail tasks) keep their own detail shapes; the list shows
 * them all.
 *
 * audit_list reads newest first by keyset (id), filtered by actor (exact, case-insensitive
 * usernames are stored lowercase), action (exact or prefix "product." ) and target
 * ("product:12" or an id or a type), each an indexed lookup.
 */
#ifndef USHER_DOMAIN_AUDIT_H
#define USHER_DOMAIN_AUDIT_H

#include "db/db.h"

#include <jansson.h>
#include <stdint.h>

#define AUDIT_FIELD_MAX 255 /* actor, action, target_type, target_id */

struct audit_entry {
    int64_t actor_user_id; /* 0: none */
    const char *actor; /* username */
    const char *action; /* "product.update" */
    const char *target_type; /* "product" */
    const char *target_id; /* "12" */
    const json_t *before; /* row as it was, or NULL (a creation) */
    const json_t *after; /* row as it is now, or NULL (a deletion) */
};

/* Inserts the entry on conn (inside the caller's transaction). USHER_EINVAL when a field is
 * missing or too long; nothing changed (before and after equal) still records the entry. */
int audit_record(struct db_conn *conn, int64_t now, const struct audit_entry *e);

/* {"before": {changed keys as they were}, "after": {…as they are}} (caller owns). */
json_t *audit_diff(const json_t *before, const json_t *after);

struct audit_filter {
    const char *actor; /* NULL or "": any */
    const char *action; /* exact, or a prefix when it ends in '.' */
    const char *target; /* "type:id", or an id, or a type */
    int64_t before_id; /* keyset: entries with id < before_id; 0 from the newest */
    int limit; /* 1..200 */
};

/*
 * Up to f->limit entries into *rows (array of {id, created_at, actor, action, target_type,
 * target_id, detail (parsed JSON or null)}; caller owns), *next_id the id to continue before
 * (0 when this is the last page).
 */
int audit_list(struct db_pool *pool, const struct audit_filter *f, json_t **rows, int64_t *next_id);

#endif
