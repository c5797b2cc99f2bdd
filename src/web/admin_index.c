/*
 * admin_index.c — /admin/, the console's overview: each section with its row count (SPEC §9).
 *
 * Counts come from db/count.h, so the overview costs a few catalog lookups on PostgreSQL
 * however large the tables grow, and at most DB_COUNT_CAP rows per table on SQLite.
 */
#include "core/err.h"
#include "db/count.h"
#include "web/admin.h"
#include "web/app.h"
#include "web/handlers.h"
#include "web/response.h"

static const struct {
    const char *label, *url, *table, *text;
} cards[] = {
    {"Products", "/admin/products/", "products", "What is sold: order, flags, features, prices."},
    {"Prices", "/admin/prices/", "product_prices", "Stripe prices mapped to products."},
    {"Instances", "/admin/instances/", "instances", "Deployments, their groups and seat caps."},
    {"Groups", "/admin/groups/", "groups", "Keycloak groups Usher knows."},
    {"Users", "/admin/users/", "users", "Customers and operators; sync actions."},
    {"Stripe events", "/admin/stripe-events/", "stripe_events", "Webhook events and retries."},
    {"Tasks", "/admin/tasks/", "tasks", "Background work; retry failures."},
    {"Waitlist", "/admin/waitlist/", "waitlist_entries", "People waiting; CSV export."},
    {"Assignments", "/admin/assignments/", "instance_assignments",
     "Seats on instances, and who is waiting."},
    {"Audit log", "/admin/audit/", "audit_log", "Every admin change: who, when, what."},
};

int web_admin_index(struct web_request *r)
{
    struct db_conn *conn = NULL;
    int rc = db_acquire(r->app->db, DB_WAIT_MS, &conn);
    if (rc != 0)
        return rc;
    json_t *list = json_array();
    for (size_t i = 0; rc == 0 && i < sizeof cards / sizeof cards[0]; i++) {
        struct db_count count;
        rc = db_count_table(conn, cards[i].table, DB_COUNT_THRESHOLD, DB_COUNT_CAP, &count);
        char label[64] = "";
        if (rc == 0)
            web_admin_count_label(&count, label, sizeof label);
        json_array_append_new(list,
                              json_pack("{s:s, s:s, s:s, s:s}", "label", cards[i].label, "url",
                                        cards[i].url, "text", cards[i].text, "count", label));
    }
    db_release(conn);
    if (rc != 0) {
        json_decref(list);
        return rc;
    }
    json_t *ctx = web_admin_context(r, "Admin console", "home");
    json_object_set_new(ctx, "cards", list);
    web_reply_page(r, 200, "admin/index", ctx);
    json_decref(ctx);
    return 0;
}
