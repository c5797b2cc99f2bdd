/*
 * admin_users.h — the admin console's users list and user page (SPEC §9 "Users"), built to
 * stay fast at a million users.
 *
 * The list is keyset-paginated, newest first (id descending): a page is "ids below the
 * cursor", so page 20,000 costs what page 1 costs, and nothing here counts the whole table
 * (the page takes the total from db/count.h: pg_class.reltuples above a threshold).
 *
 * Search: one box, whose text is classified first, so each kind uses its own index —
 *   cus_…  exact Stripe customer id;  sub_…  exact Stripe subscription id;
 *   a full Keycloak id (UUID)  exact;  anything else  username, email or Keycloak id:
 *   PostgreSQL: a case-insensitive substring (ILIKE, pg_trgm GIN indexes, migration 0007);
 *   SQLite: a prefix (B-tree range scans; SQLite has no trigram index).
 * Search text is a parameter, never SQL: LIKE metacharacters are escaped, its length capped,
 * it must be valid UTF-8 without control characters; a bad one is USHER_EINVAL with a
 * message for the operator, never a database error.
 */
#ifndef USHER_DOMAIN_ADMIN_USERS_H
#define USHER_DOMAIN_ADMIN_USERS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct db_pool;

#define ADMIN_USERS_PAGE_MAX 200 /* the admin console's largest page (web/admin.h) */
#define ADMIN_USERS_PAGE_DEFAULT 50
#define ADMIN_USERS_SEARCH_MAX 254 /* bytes: the longest email */
#define ADMIN_USERS_SEARCH_MIN 3 /* characters of a text search (a trigram) */
/* A filtered list counts its matches up to this, then says "more than". */
#define ADMIN_USERS_MATCH_COUNT_MAX 1000

enum admin_users_search_kind {
    ADMIN_SEARCH_NONE = 0,
    ADMIN_SEARCH_TEXT, /* username / email / Keycloak id: substring (PG) or prefix (SQLite) */
    ADMIN_SEARCH_STRIPE_CUSTOMER,
    ADMIN_SEARCH_STRIPE_SUBSCRIPTION,
    ADMIN_SEARCH_KEYCLOAK_ID,
};

struct admin_users_query {
    const char *status; /* NULL or "" for every status; "none" for no subscription */
    const char *search; /* NULL or "" for no search */
    int64_t before_id; /* keyset cursor: ids below it; 0 for the first page */
    int limit; /* 1..ADMIN_USERS_PAGE_MAX */
};

/* The subscription statuses the filter offers ("none" = never subscribed), NULL-terminated. */
extern const char *const admin_users_statuses[];

/*
 * Checks and classifies search text (trimmed by the caller). USHER_EINVAL with *error a
 * static message for the operator when it is too long, too short, not UTF-8, or holds
 * control characters.
 */
int admin_users_classify(const char *search, enum admin_users_search_kind *kind,
                         const char **error);
/* The kind's name for the page ("text", "stripe_customer", …). */
const char *admin_users_search_kind_name(enum admin_users_search_kind kind);

/*
 * One page of the list. *out = {"users": [{id, username, email, status, keycloak_id,
 * keycloak_short, stripe_customer_id, date_joined, groups: [names], products: [names]}],
 * "next_before": id of the last row when there may be more, else null, "search_kind": name,
 * "matches": capped count of a filtered list (absent when unfiltered), "matches_more": bool}.
 * USHER_EINVAL (bad status, search or limit) with *error set; never a database error for bad
 * input.
 */
int admin_users_list(struct db_pool *pool, const struct admin_users_query *q, json_t **out,
                     const char **error);

/*
 * Everything the user page shows: {"user": {...profile, status, dates, ids}, "groups",
 * "items" (with product names), "seats" (active and waiting, with instance names), "tasks"
 * (newest 20 that concern the user), "events" (newest Stripe events mentioning the user's
 * customer or subscription id, among the most recent ADMIN_USER_EVENT_SCAN events),
 * "audit" (newest 20 admin changes targeting the user)}. USHER_ENOTFOUND: no such user.
 */
#define ADMIN_USER_DETAIL_ROWS 20
#define ADMIN_USER_EVENT_SCAN 5000
int admin_user_detail(struct db_pool *pool, int64_t user_id, json_t **out);

#endif
