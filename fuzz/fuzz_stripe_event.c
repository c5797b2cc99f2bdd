/*
 * fuzz_stripe_event.c — feeds webhook event payloads to the domain as it reads them: the
 * durable intake (domain/stripe_events.c: stripe_event_ingest, on a migrated SQLite database
 * in a temporary directory) and the worker's readers of `data.object`
 * (integrations/stripe_client.c: stripe_session_email, stripe_invoice_subscription_id,
 * stripe_subscription_item*, stripe_expandable_id, stripe_id_valid;
 * domain/subscription_state.c: sp_subscription_status, sp_items_json, and
 * sp_apply_subscription inside a transaction that is rolled back).
 *
 * The signature check comes before all this in production (fuzz_stripe_signature), but a
 * leaked webhook secret must not turn into memory corruption. The handlers that call Stripe
 * and Keycloak are not run here (they need those services); their input readers are.
 * Properties: an accepted event is a JSON object with an evt_ id; storing the same payload
 * again is a duplicate; sp_items_json always returns a JSON array.
 */
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "db/db.h"
#include "db/migrate.h"
#include "domain/stripe_events.h"
#include "domain/stripe_processing_internal.h"
#include "integrations/stripe_client.h"
#include "fuzz_util.h"

#include <ftw.h>
#include <limits.h>
#include <stdio.h>

static struct db_pool *pool;
static char dir[64];
static int64_t now = 1700000000;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void cleanup(void)
{
    db_pool_free(pool);
    nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    log_set_level(LOG_ERROR + 1);
    snprintf(dir, sizeof dir, "/tmp/usher-fuzz-stripe-XXXXXX");
    if (!mkdtemp(dir))
        abort();
    char url[128];
    snprintf(url, sizeof url, "sqlite:///%s/fuzz.db", dir);
    int applied = 0;
    /* The source tree's migrations when run from the build directory. */
    char migrations[PATH_MAX];
    snprintf(migrations, sizeof migrations, "%s/migrations", config_default_data_dir());
    if (db_pool_new(url, 1, &pool) != 0 || db_migrate(pool, migrations, &applied) != 0)
        abort();
    atexit(cleanup);
    struct db_conn *conn = NULL;
    if (db_acquire(pool, DB_WAIT_MS, &conn) != 0 ||
        db_exec(conn,
                "INSERT INTO users (username, email, date_joined) VALUES ('fuzz', "
                "'fuzz@usher.test', 0)",
                NULL, 0, NULL) != 0)
        abort();
    db_release(conn);
    return 0;
}

static void read_object(const json_t *obj)
{
    stripe_session_email(obj);
    stripe_invoice_subscription_id(obj);
    stripe_id_valid(stripe_str(obj, "id"));
    stripe_expandable_id(json_object_get(obj, "customer"));
    size_t n = stripe_subscription_item_count(obj);
    for (size_t i = 0; i < n && i < 64; i++) {
        struct stripe_sub_item it;
        if (stripe_subscription_item(obj, i, &it) == 0)
            stripe_id_valid(it.price_id);
    }
    sp_subscription_status(obj);
    char *items = sp_items_json(obj);
    json_t *parsed = json_loads(items, 0, NULL);
    FUZZ_ASSERT(json_is_array(parsed));
    json_decref(parsed);
    free(items);

    struct db_conn *conn = NULL;
    if (db_acquire(pool, DB_WAIT_MS, &conn) == 0 && db_begin(conn, DB_TX_WRITE) == 0) {
        sp_apply_subscription(conn, 1, obj);
        db_rollback(conn);
    }
    db_release(conn);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool duplicate = false;
    now++;
    int rc = stripe_event_ingest(pool, (const char *)data, size, now, &duplicate);
    json_t *doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (rc == 0) {
        FUZZ_ASSERT(json_is_object(doc));
        const char *id = json_string_value(json_object_get(doc, "id"));
        FUZZ_ASSERT(id && !strncmp(id, "evt_", 4));
        bool again = false;
        FUZZ_ASSERT(stripe_event_ingest(pool, (const char *)data, size, now, &again) == 0 && again);
    }
    const json_t *obj = json_object_get(json_object_get(doc, "data"), "object");
    read_object(obj ? obj : doc);
    json_decref(doc);
    return 0;
}
