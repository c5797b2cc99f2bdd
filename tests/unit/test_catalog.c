/*
 * test_catalog.c — the initial schema's constraints and `catalog apply`, run as one suite
 * over SQLite (a fresh temporary database per test, always) and over PostgreSQL (when
 * USHER_TEST_PG_URL names a database; each test then works in a fresh schema,
 * usher_test_catalog, so the real tables are never touched).
 *
 * Every database is built by the real migrations (USHER_DATA_DIR/migrations) and the demo
 * catalog is the real devstack/catalog.json, so both are tested as shipped.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"
#include "db/db.h"
#include "db/migrate.h"
#include "testdb.h"
#include "domain/catalog.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PG_SCHEMA "usher_test_catalog"

/* What the demo catalog holds; a change to devstack/catalog.json changes these. */
#define DEMO_GROUPS 4
#define DEMO_PRODUCTS 6
#define DEMO_PRICES 10
#define DEMO_INSTANCES 3

static struct db_pool *pool;
static bool use_pg; /* which dialect the running group sets up */

/* ---- helpers ---- */

static char *demo_path(void)
{
    return xasprintf("%s/devstack/catalog.json", testdb_data_dir());
}

static json_t *demo_doc(void)
{
    char *path = demo_path();
    json_error_t err;
    json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
    if (!doc)
        fail_msg("%s:%d: %s", path, err.line, err.text);
    free(path);
    return doc;
}

static struct db_conn *take(void)
{
    struct db_conn *c = NULL;
    assert_int_equal(db_acquire(pool, 5000, &c), 0);
    return c;
}

static int64_t scalar(const char *sql, const struct db_param *p, int n)
{
    struct db_conn *c = take();
    struct db_result *res = NULL;
    assert_int_equal(db_query(c, sql, p, n, &res), 0);
    assert_int_equal(db_result_rows(res), 1);
    int64_t v = db_result_int(res, 0, 0);
    db_result_free(res);
    db_release(c);
    return v;
}

static char *text_cell(const char *sql, const struct db_param *p, int n)
{
    struct db_conn *c = take();
    struct db_result *res = NULL;
    assert_int_equal(db_query(c, sql, p, n, &res), 0);
    assert_int_equal(db_result_rows(res), 1);
    char *v = xstrdup(db_result_text(res, 0, 0));
    db_result_free(res);
    db_release(c);
    return v;
}

static int exec(const char *sql, const struct db_param *p, int n)
{
    struct db_conn *c = take();
    int rc = db_exec(c, sql, p, n, NULL);
    db_release(c);
    return rc;
}

/* Every catalog row, as text, to prove a failed apply changed nothing (ids and timestamps
 * included). */
static char *snapshot(void)
{
    static const char *const queries[] = {
        "SELECT id, name FROM groups ORDER BY id",
        "SELECT * FROM products ORDER BY id",
        "SELECT * FROM product_prices ORDER BY id",
        "SELECT * FROM instances ORDER BY id",
        "SELECT * FROM instance_groups ORDER BY instance_id, group_id",
        "SELECT * FROM audit_log ORDER BY id",
    };
    struct buf b;
    buf_init(&b);
    struct db_conn *c = take();
    for (size_t q = 0; q < sizeof(queries) / sizeof(queries[0]); q++) {
        struct db_result *res = NULL;
        assert_int_equal(db_query(c, queries[q], NULL, 0, &res), 0);
        buf_printf(&b, "%s\n", queries[q]);
        for (int r = 0; r < db_result_rows(res); r++) {
            for (int col = 0; col < db_result_cols(res); col++) {
                const char *t = db_result_text(res, r, col);
                buf_printf(&b, "%s|", t ? t : "<null>");
            }
            buf_putc(&b, '\n');
        }
        db_result_free(res);
    }
    db_release(c);
    char *out = buf_detach(&b);
    buf_cleanup(&b); /* detach leaves a fresh, allocated buffer behind */
    return out;
}

static void assert_counts(const struct catalog_counts *c, int created, int updated, int unchanged)
{
    assert_int_equal(c->created, created);
    assert_int_equal(c->updated, updated);
    assert_int_equal(c->unchanged, unchanged);
}

static void apply_ok(const json_t *doc, struct catalog_apply_report *r)
{
    int rc = catalog_apply_json(pool, doc, r);
    if (rc != 0)
        fail_msg("apply failed (%d): %s", rc, r->error);
    assert_string_equal(r->error, "");
}

static void apply_demo(struct catalog_apply_report *r)
{
    char *path = demo_path();
    int rc = catalog_apply_file(pool, path, r);
    if (rc != 0)
        fail_msg("apply %s failed (%d): %s", path, rc, r->error);
    free(path);
}

static json_t *product(json_t *doc, size_t i)
{
    json_t *p = json_array_get(json_object_get(doc, "products"), i);
    assert_non_null(p);
    return p;
}

static json_t *instance(json_t *doc, size_t i)
{
    json_t *p = json_array_get(json_object_get(doc, "instances"), i);
    assert_non_null(p);
    return p;
}

static json_t *price(json_t *doc, size_t i, size_t k)
{
    json_t *p = json_array_get(json_object_get(product(doc, i), "prices"), k);
    assert_non_null(p);
    return p;
}

/* ---- per-test databases ---- */

static struct testdb db;

static int db_setup(void **state)
{
    (void)state;
    testdb_open(&db, "catalog", use_pg, PG_SCHEMA, 2);
    pool = db.pool;
    assert_true(db.migrations_applied >= 1);
    return 0;
}

static int db_teardown(void **state)
{
    (void)state;
    testdb_close(&db);
    pool = NULL;
    return 0;
}

/* ---- schema ---- */

static void test_schema_tables(void **state)
{
    (void)state;
    static const char *const tables[] = {"groups",
                                         "products",
                                         "product_prices",
                                         "instances",
                                         "instance_groups",
                                         "users",
                                         "user_groups",
                                         "subscription_items",
                                         "instance_assignments",
                                         "sessions",
                                         "rate_limits",
                                         "verification_codes",
                                         "stripe_events",
                                         "tasks",
                                         "waitlist_entries",
                                         "audit_log"};
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        char *sql = xasprintf("SELECT count(*) FROM %s", tables[i]);
        assert_int_equal(scalar(sql, NULL, 0), 0);
        free(sql);
    }
    int version = 0;
    assert_int_equal(db_schema_version(pool, &version), 0);
    assert_true(version >= 1);
}

static void insert_product(const char *slug, const char *name)
{
    const struct db_param p[] = {DB_TEXT(name), DB_TEXT(slug), DB_INT(1000)};
    assert_int_equal(exec("INSERT INTO products (name, slug, created_at, updated_at) "
                          "VALUES ($1, $2, $3, $3)",
                          p, 3),
                     0);
}

static int insert_instance(int64_t soft, int64_t alloc, int64_t hard, int64_t seats)
{
    static int serial;
    char name[32];
    snprintf(name, sizeof(name), "i%d", ++serial);
    const struct db_param p[] = {DB_TEXT(name), DB_INT(soft),  DB_INT(alloc),
                                 DB_INT(hard),  DB_INT(seats), DB_INT(1000)};
    return exec("INSERT INTO instances (product_id, name, base_url, soft_cap, allocation_cap, "
                "hard_cap, allocated_seats, created_at, updated_at) "
                "VALUES ((SELECT id FROM products WHERE slug = 'p'), $1, "
                "'https://x.example.test', $2, $3, $4, $5, $6, $6)",
                p, 6);
}

static int insert_price(const char *period, int64_t amount, const char *currency)
{
    const struct db_param p[] = {DB_TEXT(period), DB_INT(amount), DB_TEXT(currency), DB_INT(1)};
    return exec("INSERT INTO product_prices (product_id, stripe_price_id, billing_period, "
                "amount, currency, created_at, updated_at) "
                "VALUES ((SELECT id FROM products WHERE slug = 'p'), 'price_x', $1, $2, $3, "
                "$4, $4)",
                p, 4);
}

static int insert_assignment(const char *state)
{
    const struct db_param p[] = {DB_TEXT(state), DB_INT(1)};
    return exec("INSERT INTO instance_assignments (user_id, product_id, instance_id, state, "
                "created_at) VALUES ((SELECT id FROM users WHERE username = 'alice'), "
                "(SELECT id FROM products WHERE slug = 'p'), NULL, $1, $2)",
                p, 2);
}

static void test_schema_checks(void **state)
{
    (void)state;
    insert_product("p", "P");
    /* Slug format, uniqueness. */
    const struct db_param bad_slug[] = {DB_TEXT("Bad Slug"), DB_INT(1)};
    assert_int_equal(exec("INSERT INTO products (name, slug, created_at, updated_at) "
                          "VALUES ('Q', $1, $2, $2)",
                          bad_slug, 2),
                     USHER_EINVAL);
    const struct db_param empty_slug[] = {DB_TEXT(""), DB_INT(1)};
    assert_int_equal(exec("INSERT INTO products (name, slug, created_at, updated_at) "
                          "VALUES ('Q', $1, $2, $2)",
                          empty_slug, 2),
                     USHER_EINVAL);
    const struct db_param dup_name[] = {DB_TEXT("q"), DB_INT(1)};
    assert_int_equal(exec("INSERT INTO products (name, slug, created_at, updated_at) "
                          "VALUES ('P', $1, $2, $2)",
                          dup_name, 2),
                     USHER_ECONFLICT);
    assert_int_equal(exec("UPDATE products SET page = 'other'", NULL, 0), USHER_EINVAL);
    assert_int_equal(exec("UPDATE products SET provisioner = 'magic'", NULL, 0), USHER_EINVAL);
    assert_int_equal(exec("UPDATE products SET parent_id = id", NULL, 0), USHER_EINVAL);

    /* Caps: soft <= allocation <= hard, seats within [0, hard]. */
    assert_int_equal(insert_instance(70, 90, 100, 0), 0);
    assert_int_equal(insert_instance(95, 90, 100, 1), USHER_EINVAL);
    assert_int_equal(insert_instance(70, 101, 100, 2), USHER_EINVAL);
    assert_int_equal(insert_instance(70, 90, 100, 101), USHER_EINVAL);
    assert_int_equal(insert_instance(70, 90, 100, 100), 0); /* manual fill up to hard_cap */
    assert_int_equal(exec("UPDATE instances SET allocated_seats = allocated_seats + 1", NULL, 0),
                     USHER_EINVAL);
    assert_int_equal(exec("UPDATE instances SET allocated_seats = -1", NULL, 0), USHER_EINVAL);
    /* A product with instances cannot be deleted. */
    assert_int_equal(exec("DELETE FROM products WHERE slug = 'p'", NULL, 0), USHER_EINVAL);

    /* Prices. */
    assert_int_equal(insert_price("monthly", 100, "usd"), USHER_EINVAL);
    assert_int_equal(insert_price("monthly", 100, "USDX"), USHER_EINVAL);
    assert_int_equal(insert_price("monthly", -1, "USD"), USHER_EINVAL);
    assert_int_equal(insert_price("weekly", 1, "USD"), USHER_EINVAL);
    assert_int_equal(insert_price("annual", 0, "EUR"), 0);
    assert_int_equal(insert_price("monthly", 1, "EUR"), USHER_ECONFLICT);

    /* Users: lowercase usernames, so UNIQUE is case-insensitive. */
    const struct db_param upper[] = {DB_TEXT("Alice"), DB_INT(1)};
    assert_int_equal(exec("INSERT INTO users (username, date_joined) VALUES ($1, $2)", upper, 2),
                     USHER_EINVAL);
    const struct db_param lower[] = {DB_TEXT("alice"), DB_INT(1)};
    assert_int_equal(exec("INSERT INTO users (username, date_joined) VALUES ($1, $2)", lower, 2),
                     0);
    assert_int_equal(exec("INSERT INTO users (username, date_joined) VALUES ($1, $2)", lower, 2),
                     USHER_ECONFLICT);

    /* Assignments: active needs an instance, waiting has none; one per user and product. */
    assert_int_equal(insert_assignment("active"), USHER_EINVAL);
    assert_int_equal(insert_assignment("pending"), USHER_EINVAL);
    assert_int_equal(insert_assignment("waiting_capacity"), 0);
    assert_int_equal(insert_assignment("waiting_capacity"), USHER_ECONFLICT);
    /* Deleting a user takes their assignments and sessions along. */
    const struct db_param now[] = {DB_INT(1)};
    assert_int_equal(exec("INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, "
                          "last_seen_at) VALUES ('h', (SELECT id FROM users), 't', $1, $1)",
                          now, 1),
                     0);
    assert_int_equal(exec("DELETE FROM users", NULL, 0), 0);
    assert_int_equal(scalar("SELECT count(*) FROM instance_assignments", NULL, 0), 0);
    assert_int_equal(scalar("SELECT count(*) FROM sessions", NULL, 0), 0);

    /* Queue, events and codes vocabularies. */
    assert_int_equal(exec("INSERT INTO tasks (name, args, state, max_attempts, run_at, "
                          "created_at, updated_at) VALUES ('t', '{}', 'lost', 4, $1, $1, $1)",
                          now, 1),
                     USHER_EINVAL);
    assert_int_equal(exec("INSERT INTO stripe_events (event_id, type, created, payload, status, "
                          "received_at) VALUES ('evt_1', 't', $1, '{}', 'weird', $1)",
                          now, 1),
                     USHER_EINVAL);
    assert_int_equal(exec("INSERT INTO verification_codes (purpose, email, code_hmac, "
                          "created_at, expires_at) VALUES ('other', 'a@b.test', 'x', $1, $1)",
                          now, 1),
                     USHER_EINVAL);
    assert_int_equal(exec("INSERT INTO waitlist_entries (email, created_at) "
                          "VALUES ('A@b.test', $1)",
                          now, 1),
                     USHER_EINVAL);
}

/* ---- apply ---- */

static void test_apply_demo(void **state)
{
    (void)state;
    struct catalog_apply_report r;
    apply_demo(&r);
    assert_counts(&r.groups, DEMO_GROUPS, 0, 0);
    assert_counts(&r.products, DEMO_PRODUCTS, 0, 0);
    assert_counts(&r.prices, DEMO_PRICES, 0, 0);
    assert_counts(&r.instances, DEMO_INSTANCES, 0, 0);

    assert_int_equal(scalar("SELECT count(*) FROM products", NULL, 0), DEMO_PRODUCTS);
    assert_int_equal(scalar("SELECT count(*) FROM product_prices", NULL, 0), DEMO_PRICES);
    assert_int_equal(scalar("SELECT count(*) FROM instance_groups", NULL, 0), DEMO_INSTANCES);
    /* The storage add-on hangs off the Nextcloud plan and carries its grant. */
    assert_int_equal(scalar("SELECT count(*) FROM products c JOIN products p ON p.id = c.parent_id "
                            "WHERE c.slug = 'storage-100' AND p.slug = 'nextcloud'",
                            NULL, 0),
                     1);
    char *ent = text_cell("SELECT entitlements FROM product_prices "
                          "WHERE stripe_price_id = 'price_demo_storage_100_monthly'",
                          NULL, 0);
    assert_string_equal(ent, "{\"storage_gb\":100}");
    free(ent);
    char *features = text_cell("SELECT features FROM products WHERE slug = 'essentials'", NULL, 0);
    assert_string_equal(features, "Web mail and notes\n10 GB file drop\nWorks in any browser");
    free(features);
    char *prov = text_cell("SELECT provisioner FROM products WHERE slug = 'immich'", NULL, 0);
    assert_string_equal(prov, "group");
    free(prov);
    assert_int_equal(scalar("SELECT count(*) FROM instances i JOIN instance_groups ig "
                            "ON ig.instance_id = i.id JOIN groups g ON g.id = ig.group_id "
                            "WHERE i.name = 'foggy' AND g.name = 'nextcloud-foggy'",
                            NULL, 0),
                     1);
    assert_int_equal(scalar("SELECT count(*) FROM instances WHERE allocated_seats = 0 "
                            "AND api_key IS NULL",
                            NULL, 0),
                     DEMO_INSTANCES);
    /* One audit row, by the CLI. */
    assert_int_equal(scalar("SELECT count(*) FROM audit_log WHERE actor = 'cli' "
                            "AND action = 'catalog.apply' AND actor_user_id IS NULL",
                            NULL, 0),
                     1);
    char *detail = text_cell("SELECT detail FROM audit_log", NULL, 0);
    assert_non_null(strstr(detail, "\"products\":{\"created\":6,"));
    free(detail);
}

static void test_apply_twice_unchanged(void **state)
{
    (void)state;
    struct catalog_apply_report r;
    apply_demo(&r);
    char *before = text_cell("SELECT CAST(sum(updated_at) AS TEXT) FROM products", NULL, 0);
    apply_demo(&r);
    assert_counts(&r.groups, 0, 0, DEMO_GROUPS);
    assert_counts(&r.products, 0, 0, DEMO_PRODUCTS);
    assert_counts(&r.prices, 0, 0, DEMO_PRICES);
    assert_counts(&r.instances, 0, 0, DEMO_INSTANCES);
    char *after = text_cell("SELECT CAST(sum(updated_at) AS TEXT) FROM products", NULL, 0);
    assert_string_equal(before, after);
    free(before);
    free(after);
    assert_int_equal(scalar("SELECT count(*) FROM audit_log", NULL, 0), 2);
}

static void test_apply_price_change(void **state)
{
    (void)state;
    struct catalog_apply_report r;
    apply_demo(&r);
    json_t *doc = demo_doc();
    json_object_set_new(price(doc, 0, 0), "amount", json_integer(1234));
    apply_ok(doc, &r);
    assert_counts(&r.groups, 0, 0, DEMO_GROUPS);
    assert_counts(&r.products, 0, 0, DEMO_PRODUCTS);
    assert_counts(&r.prices, 0, 1, DEMO_PRICES - 1);
    assert_counts(&r.instances, 0, 0, DEMO_INSTANCES);
    assert_int_equal(scalar("SELECT amount FROM product_prices "
                            "WHERE stripe_price_id = 'price_demo_nextcloud_monthly'",
                            NULL, 0),
                     1234);
    /* Entitlements are compared by content, not by how the file spelled them. */
    json_object_set_new(json_object_get(price(doc, 3, 0), "entitlements"), "cpu", json_integer(2));
    apply_ok(doc, &r);
    assert_counts(&r.prices, 0, 1, DEMO_PRICES - 1);
    apply_ok(doc, &r);
    assert_counts(&r.prices, 0, 0, DEMO_PRICES);
    json_decref(doc);
}

/* Items absent from the file stay; a partial file touches only what it names; a parent may
 * live only in the database. */
static void test_apply_partial(void **state)
{
    (void)state;
    struct catalog_apply_report r;
    apply_demo(&r);
    json_t *doc =
        json_pack("{s:[{s:s, s:s, s:s, s:s, s:b, s:b, s:[{s:s, s:s, s:i}]}]}", "products", "slug",
                  "storage-500", "name", "Extra Storage 500 GB", "parent", "nextcloud", "page",
                  "storage", "is_addon", 1, "requires_instance", 0, "prices", "stripe_price_id",
                  "price_s500", "billing_period", "monthly", "amount", 900);
    apply_ok(doc, &r);
    assert_counts(&r.groups, 0, 0, 0);
    assert_counts(&r.products, 1, 0, 0);
    assert_counts(&r.prices, 1, 0, 0);
    assert_int_equal(scalar("SELECT count(*) FROM products", NULL, 0), DEMO_PRODUCTS + 1);
    assert_int_equal(scalar("SELECT count(*) FROM product_prices", NULL, 0), DEMO_PRICES + 1);
    char *prov = text_cell("SELECT provisioner FROM products WHERE slug = 'storage-500'", NULL, 0);
    assert_string_equal(prov, "standalone"); /* the default follows requires_instance */
    free(prov);
    json_decref(doc);
    /* An empty document is a valid no-op (but still audited). */
    doc = json_object();
    apply_ok(doc, &r);
    assert_counts(&r.products, 0, 0, 0);
    json_decref(doc);
    assert_int_equal(scalar("SELECT count(*) FROM audit_log", NULL, 0), 3);
}

static void test_apply_seats_preserved(void **state)
{
    (void)state;
    struct catalog_apply_report r;
    apply_demo(&r);
    assert_int_equal(
        exec("UPDATE instances SET allocated_seats = 42 WHERE name = 'foggy'", NULL, 0), 0);
    json_t *doc = demo_doc();
    json_object_set_new(instance(doc, 0), "base_url", json_string("https://fog.example.test"));
    json_object_set_new(instance(doc, 0), "soft_cap", json_integer(50));
    apply_ok(doc, &r);
    assert_counts(&r.instances, 0, 1, DEMO_INSTANCES - 1);
    assert_int_equal(scalar("SELECT allocated_seats FROM instances WHERE name = 'foggy'", NULL, 0),
                     42);
    /* Caps may not go below the seats already taken. */
    char *before = snapshot();
    json_object_set_new(instance(doc, 0), "soft_cap", json_integer(10));
    json_object_set_new(instance(doc, 0), "allocation_cap", json_integer(20));
    json_object_set_new(instance(doc, 0), "hard_cap", json_integer(41));
    assert_int_equal(catalog_apply_json(pool, doc, &r), USHER_EINVAL);
    assert_non_null(strstr(r.error, "instances[0].hard_cap:"));
    assert_counts(&r.instances, 0, 0, 0);
    char *after = snapshot();
    assert_string_equal(before, after);
    free(before);
    free(after);
    /* Exactly full is fine; allocation may stay above the new allocation_cap. */
    json_object_set_new(instance(doc, 0), "hard_cap", json_integer(42));
    apply_ok(doc, &r);
    assert_int_equal(scalar("SELECT allocated_seats FROM instances WHERE name = 'foggy'", NULL, 0),
                     42);
    json_decref(doc);
}

static void test_apply_api_key_and_groups(void **state)
{
    (void)state;
    struct catalog_apply_report r;
    apply_demo(&r);
    json_t *doc = demo_doc();
    json_object_set_new(instance(doc, 1), "api_key", json_string("s3cret-key"));
    apply_ok(doc, &r);
    assert_counts(&r.instances, 0, 1, DEMO_INSTANCES - 1);
    /* Omitted: kept. */
    json_object_del(instance(doc, 1), "api_key");
    apply_ok(doc, &r);
    assert_counts(&r.instances, 0, 0, DEMO_INSTANCES);
    char *key = text_cell("SELECT api_key FROM instances WHERE name = 'cirrus'", NULL, 0);
    assert_string_equal(key, "s3cret-key");
    free(key);
    /* null: cleared. */
    json_object_set_new(instance(doc, 1), "api_key", json_null());
    apply_ok(doc, &r);
    assert_counts(&r.instances, 0, 1, DEMO_INSTANCES - 1);
    assert_int_equal(scalar("SELECT count(*) FROM instances WHERE api_key IS NULL", NULL, 0),
                     DEMO_INSTANCES);
    /* The group set is replaced by the file's. */
    json_object_set_new(instance(doc, 1), "groups",
                        json_pack("[s, s]", "usher-admins", "nextcloud-foggy"));
    apply_ok(doc, &r);
    assert_counts(&r.instances, 0, 1, DEMO_INSTANCES - 1);
    assert_int_equal(scalar("SELECT count(*) FROM instance_groups ig JOIN instances i "
                            "ON i.id = ig.instance_id WHERE i.name = 'cirrus'",
                            NULL, 0),
                     2);
    assert_int_equal(scalar("SELECT count(*) FROM instance_groups ig JOIN groups g "
                            "ON g.id = ig.group_id WHERE g.name = 'nextcloud-cirrus'",
                            NULL, 0),
                     0);
    apply_ok(doc, &r);
    assert_counts(&r.instances, 0, 0, DEMO_INSTANCES);
    json_decref(doc);
}

/* ---- invalid documents: EINVAL, the path in the message, nothing written ---- */

struct bad_case {
    const char *expect; /* substring of the error */
    void (*mutate)(json_t *doc);
};

static void bad_slug(json_t *d)
{
    json_object_set_new(product(d, 1), "slug", json_string("Bad Slug"));
}
static void caps_order(json_t *d)
{
    json_object_set_new(instance(d, 0), "soft_cap", json_integer(95));
}
static void caps_order2(json_t *d)
{
    json_object_set_new(instance(d, 2), "allocation_cap", json_integer(500));
}
static void unknown_key(json_t *d)
{
    json_object_set_new(product(d, 0), "colour", json_string("blue"));
}
static void unknown_top_key(json_t *d)
{
    json_object_set_new(d, "plans", json_array());
}
static void unknown_price_key(json_t *d)
{
    json_object_set_new(price(d, 4, 1), "interval", json_string("month"));
}
static void bad_period(json_t *d)
{
    json_object_set_new(price(d, 0, 1), "billing_period", json_string("weekly"));
}
static void missing_parent(json_t *d)
{
    json_object_set_new(product(d, 3), "parent", json_string("nope"));
}
static void self_parent(json_t *d)
{
    json_object_set_new(product(d, 3), "parent", json_string("storage-100"));
}
static void parent_cycle(json_t *d)
{
    json_object_set_new(product(d, 0), "parent", json_string("storage-100"));
}
static void wrong_type_bool(json_t *d)
{
    json_object_set_new(product(d, 0), "is_featured", json_string("yes"));
}
static void wrong_type_amount(json_t *d)
{
    json_object_set_new(price(d, 1, 0), "amount", json_string("5.00"));
}
static void wrong_type_products(json_t *d)
{
    json_object_set_new(d, "products", json_object());
}
static void missing_name(json_t *d)
{
    json_object_del(product(d, 2), "name");
}
static void negative_amount(json_t *d)
{
    json_object_set_new(price(d, 1, 0), "amount", json_integer(-1));
}
static void bad_currency(json_t *d)
{
    json_object_set_new(price(d, 1, 0), "currency", json_string("usd"));
}
static void bad_page(json_t *d)
{
    json_object_set_new(product(d, 4), "page", json_string("extras"));
}
static void long_tagline(json_t *d)
{
    char s[200];
    memset(s, 'x', sizeof(s) - 1);
    s[sizeof(s) - 1] = '\0';
    json_object_set_new(product(d, 4), "tagline", json_string(s));
}
static void dup_slug(json_t *d)
{
    json_object_set_new(product(d, 5), "slug", json_string("bitwarden"));
}
static void dup_price(json_t *d)
{
    json_object_set_new(price(d, 5, 1), "stripe_price_id",
                        json_string("price_demo_nextcloud_annual"));
}
static void two_active_monthly(json_t *d)
{
    json_object_set_new(price(d, 0, 1), "billing_period", json_string("monthly"));
}
static void bad_entitlement(json_t *d)
{
    json_object_set_new(json_object_get(price(d, 3, 0), "entitlements"), "storage_gb", json_true());
}
static void group_needs_instance(json_t *d)
{
    json_object_set_new(product(d, 1), "provisioner", json_string("group"));
}
static void bad_url(json_t *d)
{
    json_object_set_new(instance(d, 1), "base_url", json_string("ftp://cirrus.example.test"));
}
static void instance_of_standalone(json_t *d)
{
    json_object_set_new(instance(d, 2), "product", json_string("bitwarden"));
}
static void instance_unknown_product(json_t *d)
{
    json_object_set_new(instance(d, 2), "product", json_string("ghost"));
}
static void bad_version(json_t *d)
{
    json_object_set_new(d, "version", json_integer(2));
}
/* The next three fail only after rows were written inside the transaction: they prove the
 * rollback, not just validation before SQL. */
static void unknown_group_late(json_t *d)
{
    json_array_append_new(json_object_get(d, "groups"), json_string("extra-group"));
    json_object_set_new(product(d, 0), "tagline", json_string("changed"));
    json_object_set_new(instance(d, 2), "groups", json_pack("[s]", "ghost"));
}
static void unsellable_late(json_t *d)
{
    json_object_set_new(product(d, 0), "tagline", json_string("changed"));
    json_array_append_new(
        json_object_get(d, "products"),
        json_pack("{s:s, s:s, s:b}", "slug", "free", "name", "Free", "requires_instance", 0));
}
static void name_taken_in_db(json_t *d)
{
    json_t *doc = json_object_get(d, "products");
    json_array_clear(doc);
    json_array_append_new(
        doc, json_pack("{s:s, s:s, s:b}", "slug", "other", "name", "Immich", "is_coming_soon", 1));
}

static const struct bad_case bad_cases[] = {
    {"products[1].slug: must be 1-128 characters", bad_slug},
    {"instances[0].soft_cap: 95 must not exceed allocation_cap (90)", caps_order},
    {"instances[2].allocation_cap: 500 must not exceed hard_cap (200)", caps_order2},
    {"products[0].colour: unknown key", unknown_key},
    {"plans: unknown key", unknown_top_key},
    {"products[4].prices[1].interval: unknown key", unknown_price_key},
    {"products[0].prices[1].billing_period: must be \"monthly\" or \"annual\"", bad_period},
    {"products[3].parent: no product \"nope\"", missing_parent},
    {"products[3].parent: a product cannot be its own parent", self_parent},
    {"products[0].parent: \"nextcloud\" would become its own ancestor", parent_cycle},
    {"products[0].is_featured: must be true or false", wrong_type_bool},
    {"products[1].prices[0].amount: must be an integer", wrong_type_amount},
    {"products: must be an array", wrong_type_products},
    {"products[2].name: is required", missing_name},
    {"products[1].prices[0].amount: must be between 0 and", negative_amount},
    {"products[1].prices[0].currency: must be an ISO 4217 code", bad_currency},
    {"products[4].page: must be \"plan\", \"addon\" or \"storage\"", bad_page},
    {"products[4].tagline: must be at most 128 characters", long_tagline},
    {"products[5].slug: \"bitwarden\" is also products[4]", dup_slug},
    {"products[5].prices[1].stripe_price_id: \"price_demo_nextcloud_annual\" is also "
     "products[0].prices[1]",
     dup_price},
    {"products[0].prices[1]: a second active monthly USD price", two_active_monthly},
    {"products[3].prices[0].entitlements.storage_gb: must be a number", bad_entitlement},
    {"products[1].provisioner: \"group\" grants access", group_needs_instance},
    {"instances[1].base_url: must be an http:// or https:// URL", bad_url},
    {"instances[2].product: \"bitwarden\" has requires_instance false", instance_of_standalone},
    {"instances[2].product: no product \"ghost\"", instance_unknown_product},
    {"version: must be 1", bad_version},
    {"instances[2].groups[0]: no group \"ghost\"", unknown_group_late},
    {"products[6].prices: \"free\" is active and not coming soon, so it needs an active price",
     unsellable_late},
    {"products[0].name: \"Immich\" is already the name of product \"immich\"", name_taken_in_db},
};

static void test_apply_invalid(void **state)
{
    (void)state;
    struct catalog_apply_report r;
    apply_demo(&r);
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        json_t *doc = demo_doc();
        bad_cases[i].mutate(doc);
        char *before = snapshot();
        int rc = catalog_apply_json(pool, doc, &r);
        if (rc != USHER_EINVAL || !strstr(r.error, bad_cases[i].expect))
            fail_msg("case %zu: rc %d, error \"%s\", wanted \"%s\"", i, rc, r.error,
                     bad_cases[i].expect);
        assert_counts(&r.products, 0, 0, 0);
        assert_counts(&r.groups, 0, 0, 0);
        char *after = snapshot();
        assert_string_equal(before, after);
        free(before);
        free(after);
        json_decref(doc);
    }
}

/* All or nothing on an empty database too: a late failure leaves no groups, no products. */
static void test_apply_invalid_fresh(void **state)
{
    (void)state;
    struct catalog_apply_report r;
    json_t *doc = demo_doc();
    unknown_group_late(doc);
    assert_int_equal(catalog_apply_json(pool, doc, &r), USHER_EINVAL);
    json_decref(doc);
    assert_int_equal(scalar("SELECT count(*) FROM groups", NULL, 0), 0);
    assert_int_equal(scalar("SELECT count(*) FROM products", NULL, 0), 0);
    assert_int_equal(scalar("SELECT count(*) FROM instances", NULL, 0), 0);
    assert_int_equal(scalar("SELECT count(*) FROM audit_log", NULL, 0), 0);
    /* Parents listed after their add-ons are fine. */
    doc = demo_doc();
    json_t *products = json_object_get(doc, "products");
    json_t *first = json_incref(json_array_get(products, 0));
    json_array_remove(products, 0);
    json_array_append_new(products, first);
    apply_ok(doc, &r);
    assert_counts(&r.products, DEMO_PRODUCTS, 0, 0);
    json_decref(doc);
}

/* Several applies at once (several operators, or a deploy script run twice) serialize: all
 * succeed, and each item is created exactly once. */
#define APPLIERS 4

struct applier {
    pthread_t thread;
    int rc;
    struct catalog_apply_report report;
};

static void *apply_thread(void *arg)
{
    struct applier *a = arg;
    char *path = demo_path();
    a->rc = catalog_apply_file(pool, path, &a->report);
    free(path);
    return NULL;
}

static void test_apply_concurrent(void **state)
{
    (void)state;
    struct applier a[APPLIERS];
    memset(a, 0, sizeof(a));
    for (int i = 0; i < APPLIERS; i++)
        assert_int_equal(pthread_create(&a[i].thread, NULL, apply_thread, &a[i]), 0);
    int created = 0, unchanged = 0;
    for (int i = 0; i < APPLIERS; i++) {
        assert_int_equal(pthread_join(a[i].thread, NULL), 0);
        if (a[i].rc != 0)
            fail_msg("applier %d: %d %s", i, a[i].rc, a[i].report.error);
        created += a[i].report.products.created;
        unchanged += a[i].report.products.unchanged;
    }
    assert_int_equal(created, DEMO_PRODUCTS);
    assert_int_equal(unchanged, DEMO_PRODUCTS * (APPLIERS - 1));
    assert_int_equal(scalar("SELECT count(*) FROM products", NULL, 0), DEMO_PRODUCTS);
    assert_int_equal(scalar("SELECT count(*) FROM audit_log", NULL, 0), APPLIERS);
}

/* ---- files and printing ---- */

static char *write_tmp(const char *content)
{
    char *path = xasprintf("%s/catalog-XXXXXX", db.dir);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(content, f);
    fclose(f);
    return path;
}

static void test_apply_file_errors(void **state)
{
    (void)state;
    struct catalog_apply_report r;
    assert_int_equal(catalog_apply_file(pool, "/nonexistent/catalog.json", &r), USHER_EIO);
    assert_non_null(strstr(r.error, "/nonexistent/catalog.json"));

    char *path = write_tmp("{\"products\": [}");
    assert_int_equal(catalog_apply_file(pool, path, &r), USHER_EINVAL);
    assert_non_null(strstr(r.error, "invalid JSON"));
    unlink(path);
    free(path);

    /* A syntax error inside a secret must not echo the secret. */
    path = write_tmp("{\"instances\": [{\"api_key\": \"s3cret\tkey\"}]}");
    assert_int_equal(catalog_apply_file(pool, path, &r), USHER_EINVAL);
    assert_non_null(strstr(r.error, ":1:"));
    assert_null(strstr(r.error, "s3cret"));
    unlink(path);
    free(path);

    path = write_tmp("{\"groups\": [\"a\"], \"groups\": [\"b\"]}");
    assert_int_equal(catalog_apply_file(pool, path, &r), USHER_EINVAL);
    assert_non_null(strstr(r.error, "duplicate"));
    unlink(path);
    free(path);

    path = write_tmp("[]");
    assert_int_equal(catalog_apply_file(pool, path, &r), USHER_EINVAL);
    assert_non_null(strstr(r.error, "must be a JSON object"));
    unlink(path);
    free(path);

    assert_int_equal(scalar("SELECT count(*) FROM audit_log", NULL, 0), 0);
}

static void test_report_print(void **state)
{
    (void)state;
    struct catalog_apply_report r;
    apply_demo(&r);
    char buf[1024] = {0};
    FILE *f = fmemopen(buf, sizeof(buf) - 1, "w");
    catalog_report_print(&r, f);
    fclose(f);
    assert_non_null(strstr(buf, "products:  created 6, updated 0, unchanged 0"));
    assert_non_null(strstr(buf, "instances: created 3, updated 0, unchanged 0"));

    json_t *doc = demo_doc();
    bad_period(doc);
    assert_int_equal(catalog_apply_json(pool, doc, &r), USHER_EINVAL);
    json_decref(doc);
    memset(buf, 0, sizeof(buf));
    f = fmemopen(buf, sizeof(buf) - 1, "w");
    catalog_report_print(&r, f);
    fclose(f);
    assert_non_null(strstr(buf, "products[0].prices[1].billing_period"));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, db_setup, db_teardown)

static const struct CMUnitTest tests[] = {
    T(test_schema_tables),
    T(test_schema_checks),
    T(test_apply_demo),
    T(test_apply_twice_unchanged),
    T(test_apply_price_change),
    T(test_apply_partial),
    T(test_apply_seats_preserved),
    T(test_apply_api_key_and_groups),
    T(test_apply_invalid),
    T(test_apply_invalid_fresh),
    T(test_apply_concurrent),
    T(test_apply_file_errors),
    T(test_report_print),
};

int main(void)
{
    use_pg = false;
    int failed = cmocka_run_group_tests_name("catalog/sqlite", tests, NULL, NULL);
    const char *pg = getenv("USHER_TEST_PG_URL");
    if (!pg || !*pg) {
        printf("skipped: USHER_TEST_PG_URL unset (PostgreSQL half of test_catalog)\n");
        return failed;
    }
    use_pg = true;
    failed += cmocka_run_group_tests_name("catalog/postgres", tests, NULL, NULL);
    return failed;
}
