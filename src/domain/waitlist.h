/*
 * waitlist.h — the public waitlist (SPEC §3): a local row per address, and a task that adds
 * it to the Mailgun list, enqueued in the same transaction.
 */
#ifndef USHER_DOMAIN_WAITLIST_H
#define USHER_DOMAIN_WAITLIST_H

#include <stdbool.h>
#include <stdint.h>

struct db_pool;

/* email must already be normalized (validate_email). *already is true when the address was
 * on the list before. */
int waitlist_join(struct db_pool *pool, const char *email, int64_t now, bool *already);

/* Records that email reached the Mailgun list. */
int waitlist_mark_synced(struct db_pool *pool, const char *email, int64_t now);

#endif
