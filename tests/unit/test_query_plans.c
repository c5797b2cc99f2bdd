/*
 * test_query_plans.c — every hot query uses an index on both databases.
 *
 * A migrated database is seeded with SEED rows in each large table (users, sessions, codes,
 * Stripe events, tasks, waitlist, seats, subscription items), shaped like production: most
 * events settled, most tasks done, few seats waiting. After ANALYZE, each query below is
 * EXPLAINed with sample parameters; the test fails when the plan reads a whole large table
 * (SQLite "SCAN <table>", with or without an index; PostgreSQL "Seq Scan", or an index scan
 * with no index condition). Only the catalog tables (products, prices, instances, groups)
 * are small enough to scan.
 *
 * The SQL below is a mirror of the code's, and kept honest: each text must equal a string
 * literal (adjacent literals joined, as the compiler does) of the source file named next to
 * it, so a query that changes shape in the code fails here until its mirror follows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/fileio.h"
#include "core/mem.h"
#include "db/db.h"
#include "testdb.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEED "20000"
#define PG_SCHEMA "usher_test_query_plans"
#define MAX_PARAMS 8

struct hot_query {
    const char *what;
    const char *file; /* under the source root */
    const char *sql; /* must equal one joined literal of file */
    const char *tail; /* NULL, or a second literal appended (a macro's columns + WHERE) */
    int dialect; /* 0: both */
    const char *uses; /* NULL, or an index the plan must name (one made for this query) */
    int np;
    struct db_param p[MAX_PARAMS];
};

/* ---- the code's string literals ---------------------------------------------------------- */

/* Skips a comment, character literal or preprocessor continuation at *s; true if it did. */
static bool skip_non_code(const char **s)
{
    const char *p = *s;
    if (p[0] == '/' && p[1] == '/') {
        p += strcspn(p, "\n");
    } else if (p[0] == '/' && p[1] == '*') {
        const char *end = strstr(p + 2, "*/");
        p = end ? end + 2 : p + strlen(p);
    } else if (p[0] == '\'') {
        for (p++; *p && *p != '\''; p++)
            if (*p == '\\' && p[1])
                p++;
        p += *p ? 1 : 0;
    } else {
        return false;
    }
    *s = p;
    return true;
}

/* Every string literal of a C file, adjacent ones joined; each followed by a NUL in out. */
static void joined_literals(const char *src, struct buf *out)
{
    bool open = false; /* the last token was a literal: the next one joins it */
    for (const char *p = src; *p;) {
        if (skip_non_code(&p))
            continue;
        if (*p == '"') {
            if (open)
                out->len--; /* drop the NUL: append to the previous literal */
            for (p++; *p && *p != '"'; p++) {
                if (*p == '\\' && p[1])
                    buf_putc(out, *p++);
                buf_putc(out, *p);
            }
            buf_putc(out, '\0');
            p += *p ? 1 : 0;
            open = true;
        } else {
            if (!(*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\\'))
                open = false;
            p++;
        }
    }
}

static bool literal_in_file(const char *file, const char *sql)
{
    char *path = xasprintf("%s/%s", testdb_data_dir(), file);
    struct buf src;
    buf_init(&src);
    int rc = file_read_all(path, 4 * 1024 * 1024, &src);
    free(path);
    assert_int_equal(rc, 0);
    struct buf lits;
    buf_init(&lits);
    joined_literals(src.data, &lits);
    bool found = false;
    for (size_t off = 0; !found && off < lits.len; off += strlen(lits.data + off) + 1)
        found = strcmp(lits.data + off, sql) == 0;
    buf_cleanup(&lits);
    buf_cleanup(&src);
    return found;
}

/* ---- plans ------------------------------------------------------------------------------- */

static const char *const small_tables[] = {
    "products",        "instances",       "product_prices", "groups",
    "instance_groups", "catalog_version", "task_outcomes",  "cleanup_totals",
};
/* SQLite names tables by their alias in plans: the catalog tables' aliases in the code. */
static const char *const small_aliases[] = {"p", "i", "pp", "ig", "CONSTANT"};

static bool is_small(const char *name, size_t len, bool aliases)
{
    for (size_t i = 0; i < sizeof small_tables / sizeof *small_tables; i++)
        if (strlen(small_tables[i]) == len && strncmp(small_tables[i], name, len) == 0)
            return true;
    for (size_t i = 0; aliases && i < sizeof small_aliases / sizeof *small_aliases; i++)
        if (strlen(small_aliases[i]) == len && strncmp(small_aliases[i], name, len) == 0)
            return true;
    return false;
}

/* The first full scan of a large table in a SQLite plan (a heap copy), or NULL. */
static char *sqlite_full_scan(struct db_conn *conn, const struct hot_query *q, const char *sql)
{
    char *explain = xasprintf("EXPLAIN QUERY PLAN %s", sql);
    struct db_result *res = NULL;
    int rc = db_query(conn, explain, q->p, q->np, &res);
    free(explain);
    if (rc != 0)
        fail_msg("EXPLAIN failed (%d) for %s", rc, q->what);
    char *found = NULL;
    bool used = !q->uses;
    int col = db_result_col(res, "detail");
    for (int r = 0; !found && r < db_result_rows(res); r++) {
        const char *d = db_result_text(res, r, col);
        if (d && strncmp(d, "SCAN ", 5) == 0 && !is_small(d + 5, strcspn(d + 5, " "), true))
            found = xstrdup(d);
        if (d && q->uses && strstr(d, q->uses))
            used = true;
    }
    db_result_free(res);
    if (!found && !used)
        found = xasprintf("%s not used", q->uses);
    return found;
}

static const char *node_str(json_t *node, const char *key)
{
    return json_string_value(json_object_get(node, key));
}

/* Walks a PostgreSQL JSON plan node and its children for a full scan of a large table;
 * *used is set when a node reads index uses. */
static char *pg_node_full_scan(json_t *node, const char *uses, bool *used)
{
    const char *type = node_str(node, "Node Type");
    const char *index = node_str(node, "Index Name");
    if (uses && index && !strcmp(index, uses))
        *used = true;
    const char *rel = node_str(node, "Relation Name");
    if (type && rel && !is_small(rel, strlen(rel), false)) {
        bool index_scan = !strcmp(type, "Index Scan") || !strcmp(type, "Index Only Scan");
        if (!strcmp(type, "Seq Scan") || (index_scan && !json_object_get(node, "Index Cond")))
            return xasprintf("%s on %s", type, rel);
    }
    json_t *kids = json_object_get(node, "Plans");
    size_t i;
    json_t *kid;
    json_array_foreach (kids, i, kid) {
        char *found = pg_node_full_scan(kid, uses, used);
        if (found)
            return found;
    }
    return NULL;
}

static char *pg_full_scan(struct db_conn *conn, const struct hot_query *q, const char *sql)
{
    char *explain = xasprintf("EXPLAIN (FORMAT JSON) %s", sql);
    struct db_result *res = NULL;
    int rc = db_query(conn, explain, q->p, q->np, &res);
    free(explain);
    if (rc != 0)
        fail_msg("EXPLAIN failed (%d) for %s", rc, q->what);
    json_t *plan = json_loads(db_result_text(res, 0, 0), 0, NULL);
    db_result_free(res);
    assert_non_null(plan);
    bool used = !q->uses;
    char *found =
        pg_node_full_scan(json_object_get(json_array_get(plan, 0), "Plan"), q->uses, &used);
    json_decref(plan);
    if (!found && !used)
        found = xasprintf("%s not used", q->uses);
    return found;
}

/* ---- seed -------------------------------------------------------------------------------- */

/* A row number g.i from 1 to SEED, in SQL both databases take. */
#define SERIES "WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < " SEED ") "

static const char *const seed_sql[] = {
    "INSERT INTO products (name, slug, page, created_at, updated_at) "
    "VALUES ('Cloud', 'cloud', 'plan', 1, 1), ('Site', 'site', 'addon', 1, 1)",
    "UPDATE products SET requires_instance = (slug = 'cloud'), "
    "standalone_url = CASE WHEN slug = 'site' THEN 'https://site.example' END",
    "INSERT INTO product_prices (product_id, stripe_price_id, billing_period, amount, "
    "created_at, updated_at) SELECT id, 'price_' || slug, 'monthly', 500, 1, 1 FROM products",
    "INSERT INTO instances (product_id, name, base_url, soft_cap, allocation_cap, hard_cap, "
    "created_at, updated_at) SELECT id, 'one', 'https://one.example', 100000, 100000, 100000, "
    "1, 1 FROM products WHERE slug = 'cloud'",
    "INSERT INTO users (username, email, date_joined, keycloak_id, stripe_customer_id, "
    "stripe_subscription_id, subscription_status) " SERIES
    "SELECT 'user' || i, 'User' || i || '@Example.com', 1, 'kc' || i, 'cus_' || i, "
    "'sub_' || i, CASE WHEN i % 10 = 0 THEN 'canceled' ELSE 'active' END FROM g",
    "INSERT INTO groups (name) VALUES ('cloud-users'), ('site-users')",
    "INSERT INTO instance_groups (instance_id, group_id) SELECT i.id, g.id FROM instances i, "
    "groups g WHERE g.name = 'cloud-users'",
    "INSERT INTO user_groups (user_id, group_id) " SERIES
    "SELECT i, (SELECT id FROM groups WHERE name = 'cloud-users') FROM g",
    "INSERT INTO subscription_items (user_id, product_id, stripe_price_id, quantity) " SERIES
    "SELECT i, (SELECT id FROM products WHERE slug = 'cloud'), 'price_cloud', 1 FROM g",
    "INSERT INTO instance_assignments (user_id, product_id, instance_id, state, assigned_at, "
    "created_at) " SERIES
    "SELECT i, (SELECT id FROM products WHERE slug = 'cloud'), CASE WHEN i % 100 = 0 THEN NULL "
    "ELSE (SELECT min(id) FROM instances) END, CASE WHEN i % 100 = 0 THEN 'waiting_capacity' "
    "ELSE 'active' END, i, i FROM g",
    "INSERT INTO sessions (id_hash, user_id, csrf_token, data, created_at, last_seen_at) " SERIES
    "SELECT 'h' || i, i, 'csrf', '{}', i, i FROM g",
    "INSERT INTO verification_codes (purpose, email, session_hash, code_hmac, created_at, "
    "expires_at) " SERIES "SELECT 'signup', 'user' || i || '@example.com', 'h' || i, 'x', i, "
    "i + 600 FROM g",
    "INSERT INTO stripe_events (event_id, type, created, payload, status, received_at, "
    "processed_at, last_error) " SERIES
    "SELECT 'evt_' || i, 'invoice.paid', i, '{}', CASE WHEN i % 2 = 0 THEN 'ignored' ELSE "
    "'processed' END, i, i, CASE WHEN i % 200 = 0 THEN 'parked: no user has subscription sub_x' "
    "|| i || ' yet' WHEN i % 2 = 0 THEN 'not a type Usher acts on' END FROM g",
    "INSERT INTO tasks (name, args, state, attempts, max_attempts, run_at, lease_until, worker, "
    "created_at, updated_at, dedup_key) " SERIES
    "SELECT CASE WHEN i % 3 = 0 THEN 'cleanup' ELSE 'process_stripe_event' END, '{}', "
    "CASE WHEN i % 500 = 0 THEN 'queued' WHEN i % 500 = 1 THEN 'running' ELSE 'done' END, 1, "
    "5, i, CASE WHEN i % 500 = 1 THEN i + 60 END, 'w', i, i, 'k' || i FROM g",
    "INSERT INTO waitlist_entries (email, created_at) " SERIES
    "SELECT 'wait' || i || '@example.com', i FROM g",
    "ANALYZE",
};

static void seed(struct db_pool *pool)
{
    for (size_t i = 0; i < sizeof seed_sql / sizeof *seed_sql; i++)
        testdb_exec(pool, seed_sql[i], NULL, 0);
}

/* ---- the hot queries --------------------------------------------------------------------- */

#define Q(...) ((struct hot_query){__VA_ARGS__})
#define P1(a) .np = 1, .p = {a}
#define P2(a, b) .np = 2, .p = {a, b}
#define P3(a, b, c) .np = 3, .p = {a, b, c}
#define P4(a, b, c, d) .np = 4, .p = {a, b, c, d}

static const char task_store[] = "src/db/task_store.c";
static const char dashboard[] = "src/domain/dashboard.c";
static const char progress[] = "src/domain/onboarding_progress.c";
static const char codes[] = "src/domain/codes.c";
static const char sessions[] = "src/domain/session_store.c";
static const char allocation[] = "src/domain/allocation.c";
static const char sub_state[] = "src/domain/subscription_state.c";
static const char processing[] = "src/domain/stripe_processing.c";

static void check_queries(struct db_pool *pool)
{
    const struct db_param uid = DB_INT(4321), now = DB_INT(10000), txt = DB_TEXT("x");
    const struct db_param email = DB_TEXT("user4321@example.com");
    const struct hot_query qs[] = {
        /* dashboard reads */
        Q(.what = "dashboard seats", .file = dashboard,
          .sql = "SELECT COALESCE(NULLIF(p.dashboard_name, ''), p.name), i.name, i.base_url, "
                 "COALESCE(NULLIF(p.dashboard_description, ''), p.description), p.icon, "
                 "CASE WHEN p.provisioner <> 'group' OR NOT EXISTS (SELECT 1 FROM "
                 "instance_groups ig WHERE ig.instance_id = i.id AND NOT EXISTS (SELECT 1 FROM "
                 "user_groups ug WHERE ug.user_id = a.user_id AND ug.group_id = ig.group_id)) "
                 "THEN 1 ELSE 0 END FROM instances i JOIN products p ON p.id = i.product_id "
                 "JOIN instance_assignments a ON a.instance_id = i.id AND a.state = 'active' "
                 "WHERE a.user_id = $1 AND i.is_active "
                 "ORDER BY p.page, p.display_order, p.name, i.name",
          P1(uid)),
        Q(.what = "dashboard pending", .file = dashboard,
          .sql = "SELECT DISTINCT COALESCE(NULLIF(p.dashboard_name, ''), p.name), '', '', "
                 "COALESCE(NULLIF(p.dashboard_description, ''), p.description), p.icon, 0, "
                 "p.page, p.display_order, p.name FROM subscription_items si JOIN users u ON "
                 "u.id = si.user_id JOIN products p ON p.id = si.product_id WHERE si.user_id = "
                 "$1 AND p.requires_instance AND u.subscription_status IN ('active', "
                 "'trialing', 'past_due') AND NOT EXISTS (SELECT 1 FROM instance_assignments a "
                 "JOIN instances i ON i.id = a.instance_id AND i.is_active WHERE a.user_id = "
                 "si.user_id AND a.product_id = p.id AND a.state = 'active') "
                 "ORDER BY p.page, p.display_order, p.name",
          P1(uid)),
        Q(.what = "dashboard standalone", .file = dashboard,
          .sql = "SELECT DISTINCT COALESCE(NULLIF(p.dashboard_name, ''), p.name), '', "
                 "p.standalone_url, COALESCE(NULLIF(p.dashboard_description, ''), "
                 "p.description), p.icon, 1, p.page, p.display_order, p.name FROM "
                 "subscription_items si JOIN users u ON u.id = si.user_id JOIN products p ON "
                 "p.id = si.product_id WHERE si.user_id = $1 AND NOT p.requires_instance AND "
                 "p.standalone_url IS NOT NULL AND p.standalone_url <> '' AND "
                 "u.subscription_status IN ('active', 'trialing', 'past_due') "
                 "ORDER BY p.page, p.display_order, p.name",
          P1(uid)),
        Q(.what = "dashboard items", .file = dashboard,
          .sql = "SELECT COALESCE(p.name, si.stripe_price_id), si.quantity, pp.amount, "
                 "pp.currency, pp.billing_period, si.current_period_end FROM "
                 "subscription_items si LEFT JOIN products p ON p.id = si.product_id LEFT "
                 "JOIN product_prices pp ON pp.stripe_price_id = si.stripe_price_id WHERE "
                 "si.user_id = $1 ORDER BY p.page, p.display_order, p.name",
          P1(uid)),
        /* sessions */
        Q(.what = "session read", .file = sessions,
          .sql = "SELECT user_id, csrf_token, data, created_at, last_seen_at FROM sessions "
                 "WHERE id_hash = $1",
          P1(txt)),
        Q(.what = "session touch", .file = sessions,
          .sql = "UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2", P2(now, txt)),
        Q(.what = "session save", .file = sessions,
          .sql = "UPDATE sessions SET data = $1, user_id = $2, last_seen_at = $3 "
                 "WHERE id_hash = $4",
          P4(txt, uid, now, txt)),
        Q(.what = "sessions of a user", .file = sessions,
          .sql = "DELETE FROM sessions WHERE user_id = $1", P1(uid)),
        /* webhook ingest and processing */
        Q(.what = "webhook ingest", .file = "src/domain/stripe_events.c",
          .sql = "INSERT INTO stripe_events (event_id, type, created, payload, status, "
                 "received_at, attempts) VALUES ($1, $2, $3, $4, 'pending', $5, 0) "
                 "ON CONFLICT (event_id) DO NOTHING RETURNING id",
          .np = 5, .p = {txt, txt, now, txt, now}),
        Q(.what = "event claim", .file = processing,
          .sql = "UPDATE stripe_events SET attempts = attempts + 1 WHERE event_id = $1 AND "
                 "status IN ('pending', 'failed') RETURNING status, type, created, payload",
          P1(txt)),
        Q(.what = "event park", .file = sub_state,
          .sql = "UPDATE stripe_events SET status = 'ignored', last_error = $2, "
                 "processed_at = $3 WHERE event_id = $1",
          P3(txt, txt, now)),
        Q(.what = "parked-event requeue", .uses = "stripe_events_parked_idx", .file = sub_state,
          .sql = "UPDATE stripe_events SET status = 'pending', last_error = NULL, "
                 "processed_at = NULL WHERE status = 'ignored' AND last_error = $1 "
                 "RETURNING event_id",
          P1(DB_TEXT("parked: no user has subscription sub_x400 yet"))),
        Q(.what = "user by subscription", .file = sub_state,
          .sql = "SELECT id, stripe_state_at, subscription_status, payment_disabled FROM users "
                 "WHERE stripe_subscription_id = $1 ORDER BY id LIMIT 1",
          P1(DB_TEXT("sub_77"))),
        Q(.what = "user by customer", .file = progress,
          .sql = "SELECT id, keycloak_id, subscription_status FROM users WHERE "
                 "stripe_customer_id = $1 ORDER BY id DESC LIMIT 1",
          P1(DB_TEXT("cus_77"))),
        /* lower(email) */
        Q(.what = "email taken", .uses = "users_email_lower_idx", .file = progress,
          .sql = "SELECT COUNT(*) FROM users WHERE lower(email) = $1", P1(email)),
        Q(.what = "password resend", .uses = "users_email_lower_idx", .file = progress,
          .sql = "SELECT keycloak_id FROM users WHERE lower(email) = $1 AND keycloak_id IS NOT "
                 "NULL AND keycloak_id <> '' ORDER BY id DESC LIMIT 1",
          P1(email)),
        Q(.what = "recovery by email", .uses = "users_email_lower_idx",
          .file = "src/domain/recovery.c",
          .sql = "SELECT id, username, email, first_name, last_name, subscription_status, "
                 "stripe_customer_id, access_expires_at FROM users ",
          .tail = "WHERE lower(email) = $1 ORDER BY id DESC LIMIT 1", P1(email)),
        Q(.what = "provisioning progress", .uses = "tasks_live_name_idx", .file = progress,
          .sql = "SELECT COUNT(*) FROM tasks WHERE name = 'sync_user_post_checkout' AND state "
                 "IN ('queued', 'running') AND args = $1",
          P1(txt)),
        /* tasks */
        Q(.what = "task claim", .file = task_store, .dialect = DB_POSTGRES,
          .sql = "UPDATE tasks SET state = 'running', lease_until = $2, worker = $3, "
                 "attempts = attempts + 1, updated_at = $1 WHERE id = (SELECT id FROM tasks "
                 "WHERE state = 'queued' AND run_at <= $1 ORDER BY run_at, id LIMIT 1 FOR "
                 "UPDATE SKIP LOCKED) AND state = 'queued' RETURNING id, name, args, attempts, "
                 "max_attempts",
          P3(now, now, txt)),
        Q(.what = "task claim", .file = task_store, .dialect = DB_SQLITE,
          .sql = "UPDATE tasks SET state = 'running', lease_until = $2, worker = $3, "
                 "attempts = attempts + 1, updated_at = $1 WHERE id = (SELECT id FROM tasks "
                 "WHERE state = 'queued' AND run_at <= $1 ORDER BY run_at, id LIMIT 1) AND "
                 "state = 'queued' RETURNING id, name, args, attempts, max_attempts",
          P3(now, now, txt)),
        Q(.what = "task due?", .file = task_store,
          .sql = "SELECT 1 FROM tasks WHERE state = 'queued' AND run_at <= $1 LIMIT 1", P1(now)),
        Q(.what = "periodic enqueue dedup", .uses = "tasks_live_name_idx", .file = task_store,
          .sql = "INSERT INTO tasks (name, args, state, attempts, max_attempts, run_at, "
                 "created_at, updated_at, dedup_key) SELECT CAST($1 AS TEXT), '{}', 'queued', "
                 "0, CAST($2 AS INTEGER), CAST($3 AS BIGINT), CAST($3 AS BIGINT), CAST($3 AS "
                 "BIGINT), CAST($4 AS TEXT) WHERE NOT EXISTS (SELECT 1 FROM tasks WHERE name = "
                 "$1 AND state IN ('queued', 'running')) ON CONFLICT (dedup_key) DO NOTHING "
                 "RETURNING id",
          P4(DB_TEXT("cleanup"), DB_INT(3), now, DB_TEXT("cleanup:1"))),
        Q(.what = "periodic slot taken?", .file = task_store,
          .sql = "SELECT 1 FROM tasks WHERE dedup_key = $1", P1(txt)),
        Q(.what = "lease renew", .file = task_store,
          .sql = "UPDATE tasks SET lease_until = $4 WHERE id = $1 AND worker = $2 AND "
                 "attempts = $3 AND state = 'running'",
          P4(uid, txt, DB_INT(1), now)),
        Q(.what = "task done", .file = task_store,
          .sql = "UPDATE tasks SET state = 'done', lease_until = NULL, updated_at = $4 WHERE "
                 "id = $1 AND worker = $2 AND attempts = $3 AND state = 'running' RETURNING "
                 "name",
          P4(uid, txt, DB_INT(1), now)),
        Q(.what = "reaper", .file = task_store, .dialect = DB_SQLITE,
          .sql = "UPDATE tasks SET state = 'queued', run_at = $1, lease_until = NULL, "
                 "relayed_at = NULL, last_error = $2, updated_at = $1 WHERE state = 'running' "
                 "AND lease_until < $1 RETURNING id, name, attempts",
          P2(now, txt)),
        Q(.what = "reaper", .file = task_store, .dialect = DB_POSTGRES,
          .sql = "UPDATE tasks SET state = 'queued', run_at = $1, lease_until = NULL, "
                 "relayed_at = NULL, last_error = $2, updated_at = $1 WHERE id IN (SELECT id "
                 "FROM tasks WHERE state = 'running' AND lease_until < $1 FOR UPDATE SKIP "
                 "LOCKED) AND state = 'running' AND lease_until < $1 RETURNING id, name, "
                 "attempts",
          P2(now, txt)),
        Q(.what = "reaper (out of attempts)", .file = task_store, .dialect = DB_SQLITE,
          .sql = "UPDATE tasks SET state = 'failed', lease_until = NULL, last_error = $2, "
                 "updated_at = $1 WHERE state = 'running' AND lease_until < $1 AND attempts >= "
                 "max_attempts RETURNING id, name, attempts",
          P2(now, txt)),
        Q(.what = "reaper (out of attempts)", .file = task_store, .dialect = DB_POSTGRES,
          .sql = "UPDATE tasks SET state = 'failed', lease_until = NULL, last_error = $2, "
                 "updated_at = $1 WHERE id IN (SELECT id FROM tasks WHERE state = 'running' AND "
                 "lease_until < $1 AND attempts >= max_attempts FOR UPDATE SKIP LOCKED) AND "
                 "state = 'running' AND lease_until < $1 RETURNING id, name, attempts",
          P2(now, txt)),
        Q(.what = "purge of done tasks", .file = task_store,
          .sql = "DELETE FROM tasks WHERE state = 'done' AND updated_at < $1", P1(now)),
        /* seats */
        Q(.what = "seat of a user", .file = allocation,
          .sql = "SELECT a.state, a.instance_id, i.is_active FROM instance_assignments a LEFT "
                 "JOIN instances i ON i.id = a.instance_id WHERE a.user_id = $1 AND "
                 "a.product_id = $2",
          P2(uid, DB_INT(1))),
        Q(.what = "seats waiting (count)", .file = allocation,
          .sql = "SELECT count(*) FROM instance_assignments WHERE state = 'waiting_capacity'"),
        Q(.what = "seats waiting (oldest)", .file = allocation,
          .sql = "SELECT user_id, product_id FROM instance_assignments WHERE state = "
                 "'waiting_capacity' ORDER BY created_at, id LIMIT $1",
          P1(DB_INT(50))),
        Q(.what = "seat release", .file = allocation,
          .sql = "DELETE FROM instance_assignments WHERE user_id = $1 AND product_id = $2 "
                 "RETURNING instance_id",
          P2(uid, DB_INT(1))),
        /* waitlist */
        Q(.what = "waitlist join", .file = "src/domain/waitlist.c",
          .sql = "INSERT INTO waitlist_entries (email, created_at) VALUES ($1, $2) "
                 "ON CONFLICT (email) DO NOTHING RETURNING id",
          P2(email, now)),
        Q(.what = "waitlist synced", .file = "src/domain/waitlist.c",
          .sql = "UPDATE waitlist_entries SET synced_at = $1 WHERE email = $2", P2(now, email)),
        /* codes */
        Q(.what = "code cooldown", .file = codes,
          .sql = "SELECT created_at FROM verification_codes WHERE purpose = $1 AND email = $2 "
                 "ORDER BY created_at DESC LIMIT 1",
          P2(DB_TEXT("signup"), email)),
        Q(.what = "code lookup", .file = codes,
          .sql = "SELECT id, code_hmac, attempts, expires_at, consumed_at, superseded FROM "
                 "verification_codes WHERE purpose = $1 AND email = $2 AND session_hash = $3 "
                 "AND NOT superseded ORDER BY created_at DESC, id DESC LIMIT 1",
          P3(DB_TEXT("signup"), email, txt)),
        Q(.what = "code supersede", .file = codes,
          .sql = "UPDATE verification_codes SET superseded = $1 WHERE purpose = $2 AND email = "
                 "$3 AND session_hash = $4 AND NOT superseded AND consumed_at IS NULL",
          P4(DB_BOOL(true), DB_TEXT("signup"), email, txt)),
    };
    struct db_conn *conn = NULL;
    assert_int_equal(db_acquire(pool, 5000, &conn), 0);
    enum db_dialect dialect = db_conn_dialect(conn);
    int bad = 0;
    for (size_t i = 0; i < sizeof qs / sizeof *qs; i++) {
        const struct hot_query *q = &qs[i];
        if (!literal_in_file(q->file, q->sql) || (q->tail && !literal_in_file(q->file, q->tail))) {
            printf("not in %s (the code changed: update the mirror): %s\n", q->file, q->what);
            bad++;
        }
        if (q->dialect && (int)q->dialect != (int)dialect)
            continue;
        char *sql = xasprintf("%s%s", q->sql, q->tail ? q->tail : "");
        char *scan =
            dialect == DB_SQLITE ? sqlite_full_scan(conn, q, sql) : pg_full_scan(conn, q, sql);
        if (scan) {
            printf("full scan in \"%s\" (%s): %s\n", q->what, q->file, scan);
            bad++;
        }
        free(scan);
        free(sql);
    }
    db_release(conn);
    assert_int_equal(bad, 0);
}

/* The checks themselves: a query without an index is caught on both databases. */
static void check_detector(struct db_pool *pool)
{
    struct db_conn *conn = NULL;
    assert_int_equal(db_acquire(pool, 5000, &conn), 0);
    const struct hot_query q = {.what = "no index", .np = 1, .p = {DB_TEXT("x")}};
    const char *sql = "SELECT id FROM users WHERE first_name = $1";
    char *scan = db_conn_dialect(conn) == DB_SQLITE ? sqlite_full_scan(conn, &q, sql)
                                                    : pg_full_scan(conn, &q, sql);
    assert_non_null(scan);
    assert_non_null(strstr(scan, "users"));
    free(scan);
    db_release(conn);
    assert_false(literal_in_file(task_store, "SELECT 1 FROM tasks WHERE dedup_key = $1 "));
}

static void run(bool pg)
{
    struct testdb t;
    testdb_open(&t, "query-plans", pg, PG_SCHEMA, 2);
    seed(t.pool);
    check_detector(t.pool);
    check_queries(t.pool);
    testdb_close(&t);
}

static void test_sqlite(void **state)
{
    (void)state;
    run(false);
}

static void test_postgres(void **state)
{
    (void)state;
    if (!testdb_pg_url())
        skip();
    run(true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sqlite),
        cmocka_unit_test(test_postgres),
    };
    return cmocka_run_group_tests_name("query_plans", tests, NULL, NULL);
}
