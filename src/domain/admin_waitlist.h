/*
 * admin_waitlist.h — the public waitlist (SPEC §3) as the admin console shows and exports it.
 *
 * The list pages newest first and searches by part of an address. The export writes the
 * same rows oldest first as CSV (core/csv.h: RFC 4180 quoting, formula-injection guard) in
 * chunks of bounded size, so the web layer streams a list of any length without holding it.
 */
#ifndef USHER_DOMAIN_ADMIN_WAITLIST_H
#define USHER_DOMAIN_ADMIN_WAITLIST_H

#include "core/buf.h"
#include "domain/admin_ops.h"

struct db_pool;

#define ADMIN_WAITLIST_CSV_CHUNK 500

/* q: NULL or "" for every entry, else a part of the address (case-insensitive, at most
 * ADMIN_OPS_QUERY_MAX bytes, no control characters: USHER_EINVAL). Rows: {id, email,
 * created_at, synced_at, synced}. */
int admin_waitlist_list(struct db_pool *pool, const char *q, int64_t before, int limit,
                        struct admin_page *out);

/* Validates q as admin_waitlist_list does. */
int admin_waitlist_check_query(const char *q);

/* The CSV header row. */
void admin_waitlist_csv_header(struct buf *out);
/*
 * Appends the CSV rows of up to ADMIN_WAITLIST_CSV_CHUNK entries matching q with ids above
 * after_id, oldest first. *last_id gets the last id written (the next call's after_id) and
 * *rows how many were written (0: the export is complete).
 */
int admin_waitlist_csv_chunk(struct db_pool *pool, const char *q, int64_t after_id, struct buf *out,
                             int64_t *last_id, int *rows);

#endif
