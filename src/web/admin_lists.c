/*
 * admin_lists.c — the read-only catalog lists: /admin/prices/ (filter by product, period,
 * active; search by Stripe price id or product name) and /admin/groups/ (search by name)
 * (SPEC §9). Prices are edited on their product's page.
 */
#include "core/err.h"
#include "core/human_format.h"
#include "domain/admin_catalog.h"
#include "domain/admin_instances.h"
#include "web/admin.h"
#include "web/app.h"
#include "web/handlers.h"
#include "web/response.h"

#include <stdio.h>
#include <string.h>

int web_admin_product_param(struct web_request *r, int64_t *product_id)
{
    const char *product = NULL;
    *product_id = 0;
    if (web_admin_term(r, "product", &product))
        return USHER_EINVAL;
    *product_id = *product ? web_admin_id(r, "product") : 0;
    if (*product && !*product_id) {
        web_admin_error(r, 404, "There is no such product.");
        return USHER_EINVAL;
    }
    return 0;
}

int web_admin_product_choices(struct web_request *r, int64_t selected, json_t **out)
{
    int rc = admin_product_choices(r->app->db, out);
    size_t i;
    json_t *p;
    json_array_foreach (rc == 0 ? *out : NULL, i, p)
        json_object_set_new(p, "selected",
                            json_boolean(json_integer_value(json_object_get(p, "id")) == selected));
    return rc;
}

static const char *const price_filters[] = {"q", "product", "period", "active", NULL};

int web_admin_prices(struct web_request *r)
{
    struct web_admin_page pg;
    struct admin_price_filter f = {0};
    if (web_admin_page_params(r, "prices", &pg) || web_admin_term(r, "q", &f.q) ||
        web_admin_product_param(r, &f.product_id) || web_admin_term(r, "period", &f.period) ||
        web_admin_yes_no(r, "active", &f.active))
        return 0;
    if (*f.period && strcmp(f.period, "monthly") && strcmp(f.period, "annual")) {
        web_admin_error(r, 400, "The period filter must be monthly or annual.");
        return 0;
    }
    f.limit = pg.limit;
    f.after_id = pg.has_after ? pg.after.id : 0;
    json_t *rows = NULL, *products = NULL;
    bool more = false;
    int rc = admin_prices_list(r->app->db, &f, &rows, &more);
    if (rc == 0)
        rc = web_admin_product_choices(r, f.product_id, &products);
    if (rc != 0) {
        json_decref(rows);
        return rc;
    }
    size_t i;
    json_t *row;
    json_array_foreach (rows, i, row) {
        char money[FORMAT_PRICE_MAX];
        format_money(json_integer_value(json_object_get(row, "amount")),
                     json_string_value(json_object_get(row, "currency")), money, sizeof money);
        json_object_set_new(row, "amount_label", json_string(money));
    }
    const struct web_admin_list l = {"admin/prices",
                                     "Prices",
                                     "prices",
                                     "prices",
                                     price_filters,
                                     NULL,
                                     json_pack("{s:o}", "products", products)};
    web_admin_list_reply(r, &l, rows, more);
    return 0;
}

static const char *const group_filters[] = {"q", NULL};

int web_admin_groups(struct web_request *r)
{
    struct web_admin_page pg;
    struct admin_group_filter f = {0};
    if (web_admin_page_params(r, "groups", &pg) || web_admin_term(r, "q", &f.q))
        return 0;
    f.limit = pg.limit;
    if (pg.has_after) {
        f.has_after = true;
        f.after_id = pg.after.id;
        f.after_name = pg.after.key;
    }
    json_t *rows = NULL;
    bool more = false;
    int rc = admin_groups_list(r->app->db, &f, &rows, &more);
    if (rc != 0)
        return rc;
    const struct web_admin_list l = {"admin/groups", "Groups", "groups", "groups",
                                     group_filters,  "name",   NULL};
    web_admin_list_reply(r, &l, rows, more);
    return 0;
}
