/*
 * admin_users.c — /admin/users/ (the list: status filter, search, keyset pages, checkboxes
 * for the bulk actions) and /admin/users/<id>/ (one user's page) of the admin console
 * (SPEC §9 "Users"; domain/admin_users.h). The bulk actions are in admin_users_bulk.c.
 *
 * Everything a page shows is prepared here as strings (dates, links, labels), so the
 * templates only escape and print.
 */
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/mem.h"
#include "db/count.h"
#include "domain/admin_bulk.h"
#include "domain/admin_users.h"
#include "integrations/form.h"
#include "web/admin.h"
#include "web/admin_users.h"
#include "web/app.h"
#include "web/handlers.h"
#include "web/response.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define USERS_LIST "users" /* the cursor's binding */

/* The Stripe dashboard's page of a customer (its test-mode pages under a test key). Only
 * for ids of Stripe's shape, so nothing odd from the database lands in an href. */
static json_t *stripe_customer_url(const struct web_request *r, const char *id)
{
    if (!id || strncmp(id, "cus_", 4) || strlen(id) > 64 ||
        strspn(id + 4, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") !=
            strlen(id + 4))
        return json_null();
    bool test = !strncmp(r->app->cfg->stripe_secret_key, "sk_test_", 8) ||
                !strncmp(r->app->cfg->stripe_secret_key, "rk_test_", 8);
    return json_sprintf("https://dashboard.stripe.com/%scustomers/%s", test ? "test/" : "", id);
}

static const char *status_label(const char *status)
{
    return status && *status ? status : "none";
}

/* What the list and the user page both show of a user: dates, status, the Stripe link. */
static void decorate_user(struct web_request *r, json_t *u, const char *const *times)
{
    web_admin_times(u, times);
    json_object_set_new(u, "status_label",
                        json_string(status_label(json_string_value(json_object_get(u, "status")))));
    json_object_set_new(
        u, "stripe_url",
        stripe_customer_url(r, json_string_value(json_object_get(u, "stripe_customer_id"))));
}

static void decorate_users(struct web_request *r, json_t *users)
{
    static const char *const times[] = {"date_joined", NULL};
    size_t i;
    json_t *u;
    json_array_foreach (users, i, u) {
        decorate_user(r, u, times);
        json_t *joined[2] = {json_object_get(u, "groups"), json_object_get(u, "products")};
        const char *keys[2] = {"groups_text", "products_text"};
        for (int k = 0; k < 2; k++) {
            char text[512] = "";
            size_t j;
            json_t *name;
            json_array_foreach (joined[k], j, name) {
                size_t len = strlen(text);
                snprintf(text + len, sizeof text - len, "%s%s", j ? ", " : "",
                         json_string_value(name));
            }
            json_object_set_new(u, keys[k], json_string(text));
        }
    }
}

static json_t *status_options(const char *current)
{
    json_t *list = json_array();
    for (int i = 0; admin_users_statuses[i]; i++)
        json_array_append_new(list,
                              json_pack("{s:s, s:b}", "value", admin_users_statuses[i], "selected",
                                        !strcmp(current, admin_users_statuses[i])));
    return list;
}

static json_t *action_options(void)
{
    json_t *list = json_array();
    for (int a = ADMIN_BULK_SYNC_KEYCLOAK; a <= ADMIN_BULK_REFRESH_STRIPE; a++)
        json_array_append_new(list,
                              json_pack("{s:s, s:s}", "value",
                                        admin_bulk_action_name((enum admin_bulk_action)a), "label",
                                        admin_bulk_action_label((enum admin_bulk_action)a)));
    return list;
}

static int total_label(struct web_request *r, char *out, size_t size)
{
    struct db_conn *conn = NULL;
    int rc = db_acquire(r->app->db, DB_WAIT_MS, &conn);
    if (rc != 0)
        return rc;
    struct db_count count;
    rc = db_count_table(conn, "users", DB_COUNT_THRESHOLD, DB_COUNT_CAP, &count);
    db_release(conn);
    if (rc == 0)
        web_admin_count_label(&count, out, size);
    return rc;
}

static void matches_label(const json_t *page, json_t *ctx)
{
    json_t *m = json_object_get(page, "matches");
    if (!m)
        return;
    struct db_count c = {.n = json_integer_value(m),
                         .more = json_is_true(json_object_get(page, "matches_more"))};
    char label[64];
    web_admin_count_label(&c, label, sizeof label);
    json_object_set_new(ctx, "matches", json_string(label));
}

int web_admin_users(struct web_request *r)
{
    struct web_admin_page pg;
    const char *q = NULL, *status = NULL;
    if (web_admin_page_params(r, USERS_LIST, &pg) != 0 || web_admin_term(r, "q", &q) != 0 ||
        web_admin_term(r, "status", &status) != 0)
        return 0;
    char *search = xstrdup(q); /* trimmed: a pasted id often brings spaces along */
    char *s = search + strspn(search, " ");
    for (size_t n = strlen(s); n && s[n - 1] == ' '; n--)
        s[n - 1] = '\0';
    struct admin_users_query query = {.status = status,
                                      .search = s,
                                      .before_id = pg.has_after ? pg.after.id : 0,
                                      .limit = pg.limit};
    json_t *page = NULL;
    const char *error = NULL;
    int rc = admin_users_list(r->app->db, &query, &page, &error);
    char total[64] = "";
    if (rc == 0 || rc == USHER_EINVAL) { /* a bad search still shows the page around it */
        int count_rc = total_label(r, total, sizeof total);
        rc = count_rc ? count_rc : rc;
    }
    if (rc != 0 && rc != USHER_EINVAL) {
        free(search);
        json_decref(page);
        return rc;
    }
    json_t *ctx = web_admin_context(r, "Users", "users");
    json_object_set_new(ctx, "q", json_string(s));
    json_object_set_new(ctx, "statuses", status_options(status));
    json_object_set_new(ctx, "actions", action_options());
    json_object_set_new(ctx, "total", json_string(total));
    json_object_set_new(ctx, "filtered", json_boolean(*s || *status));
    json_object_set_new(ctx, "db_prefix", json_boolean(db_pool_dialect(r->app->db) == DB_SQLITE));
    if (error) /* the form again, with what was wrong */
        json_object_set_new(ctx, "error", json_string(error));
    if (page) {
        json_t *users = json_object_get(page, "users");
        decorate_users(r, users);
        json_object_set(ctx, "users", users);
        json_object_set_new(ctx, "search_kind",
                            json_string(json_string_value(json_object_get(page, "search_kind"))));
        matches_label(page, ctx);
        json_t *next = json_object_get(page, "next_before");
        struct cursor c = {.id = json_integer_value(next)};
        static const char *const keep[] = {"q", "status", "limit", NULL};
        web_admin_next_link(r, ctx, USERS_LIST, json_is_integer(next) ? &c : NULL, keep);
        if (pg.has_after) {
            char *first = web_admin_here(r, keep);
            json_object_set_new(ctx, "first_url", json_string(first));
            free(first);
        }
    }
    web_reply_page(r, error ? 400 : 200, "admin/users", ctx);
    json_decref(ctx);
    json_decref(page);
    free(search);
    return 0;
}

/* ---- one user ---------------------------------------------------------------------------- */

static void decorate_rows(json_t *rows, const char *const *times)
{
    size_t i;
    json_t *row;
    json_array_foreach (rows, i, row)
        web_admin_times(row, times);
}

static int user_page(struct web_request *r, int64_t id)
{
    json_t *d = NULL;
    int rc = admin_user_detail(r->app->db, id, &d);
    if (rc == USHER_ENOTFOUND) {
        web_admin_error(r, 404, "There is no user with that id (it may have been deleted).");
        return 0;
    }
    if (rc != 0)
        return rc;
    json_t *user = json_object_get(d, "user");
    static const char *const user_times[] = {"date_joined", "last_login", "canceled_at",
                                             "access_expires_at", NULL};
    decorate_user(r, user, user_times);
    static const char *const item_times[] = {"current_period_end", NULL};
    static const char *const seat_times[] = {"assigned_at", "created_at", NULL};
    static const char *const task_times[] = {"updated_at", NULL};
    static const char *const event_times[] = {"created", NULL};
    static const char *const audit_times[] = {"created_at", NULL};
    decorate_rows(json_object_get(d, "items"), item_times);
    decorate_rows(json_object_get(d, "seats"), seat_times);
    decorate_rows(json_object_get(d, "tasks"), task_times);
    decorate_rows(json_object_get(d, "events"), event_times);
    decorate_rows(json_object_get(d, "audit"), audit_times);
    size_t i;
    json_t *seat;
    json_array_foreach (json_object_get(d, "seats"), i, seat)
        json_object_set_new(seat, "waiting",
                            json_boolean(!strcmp(json_string_value(json_object_get(seat, "state")),
                                                 "waiting_capacity")));
    char title[320];
    snprintf(title, sizeof title, "User %s", json_string_value(json_object_get(user, "username")));
    json_t *ctx = web_admin_context(r, title, "users");
    json_object_update(ctx, d);
    json_object_set_new(ctx, "actions", action_options());
    json_object_set_new(ctx, "has_groups",
                        json_boolean(json_array_size(json_object_get(d, "groups")) > 0));
    web_reply_page(r, 200, "admin/user", ctx);
    json_decref(ctx);
    json_decref(d);
    return 0;
}

int web_admin_user_item(struct web_request *r)
{
    const char *rest = r->path + strlen("/admin/users/");
    if (!strncmp(rest, "bulk/", 5))
        return web_admin_users_bulk_result(r, web_admin_path_id(rest + 5));
    int64_t id = web_admin_path_id(rest);
    if (id <= 0) {
        web_admin_error(r, 404, "There is no such page in the admin console.");
        return 0;
    }
    return user_page(r, id);
}
