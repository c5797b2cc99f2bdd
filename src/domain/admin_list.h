/*
 * admin_list.h — small pieces every admin list and edit form in domain/ shares: the LIKE
 * pattern of a search term, a result row as JSON, and the fingerprint that detects a
 * concurrent edit.
 *
 * Concurrent edits: an edit form carries the fingerprint of the row as it was shown (a hash
 * of its editable state, children included). The save re-reads the row inside its write
 * transaction and refuses with USHER_ECONFLICT when the fingerprint differs, whoever changed
 * it in between (another admin, `usher catalog apply`, SQL), so nothing is silently
 * overwritten. No version column is needed, and updated_at's one-second resolution does not
 * matter.
 */
#ifndef USHER_DOMAIN_ADMIN_LIST_H
#define USHER_DOMAIN_ADMIN_LIST_H

#include "db/db.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define ADMIN_FINGERPRINT_LEN 32 /* hex characters */

/* Who makes a change (the audit entry's actor). */
struct admin_actor {
    int64_t user_id;
    const char *username;
};

/* A refused edit: which form field (a column name, or "prices[N].column") and why. */
struct admin_error {
    char field[64];
    char message[512];
};

/* "%term%" with \, % and _ escaped for LIKE … ESCAPE '\' (heap), or "" for an empty term. */
char *admin_like_pattern(const char *term);

/* Row `row` of res as an object keyed by column name; types has one letter per column:
 * 'i' integer, 's' text, 'b' boolean (SQL NULL → null for every type). Caller owns. */
json_t *admin_row_json(const struct db_result *res, int row, const char *types);

/* The fingerprint of state (compact, sorted-keys JSON, SHA-256, first 16 bytes in hex) into
 * out. */
void admin_fingerprint(const json_t *state, char out[ADMIN_FINGERPRINT_LEN + 1]);

/* Whether state's fingerprint is fp. */
bool admin_fingerprint_matches(const json_t *state, const char *fp);

/* Runs sql on a pooled connection; *rows gets at most limit rows as admin_row_json(types),
 * *more whether the query returned more (ask for limit + 1). Caller owns *rows. */
int admin_list_rows(struct db_pool *pool, const char *sql, const struct db_param *p, int n,
                    const char *types, int limit, json_t **rows, bool *more);

/* One audit entry (domain/audit.h) for a change to target type/id made by who. */
int admin_audit(struct db_conn *conn, const struct admin_actor *who, const char *action,
                const char *type, int64_t id, const json_t *before, const json_t *after,
                int64_t now);

#endif
