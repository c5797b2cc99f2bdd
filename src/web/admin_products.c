/*
 * admin_products.c — /admin/products/: the list with filters, search and the inline order and
 * flags form on each row, and /admin/products/edit/?id=N, the product in sections with its
 * prices (SPEC §9; the rules live in domain/admin_catalog.h).
 */
#include "core/buf.h"
#include "core/err.h"
#include "core/human_format.h"
#include "domain/admin_catalog.h"
#include "web/admin.h"
#include "web/app.h"
#include "web/handlers.h"
#include "web/response.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST "products"

static const char *const filters[] = {"q",      "page",  "coming_soon", "featured",
                                      "active", "addon", NULL};

int web_admin_products(struct web_request *r)
{
    struct web_admin_page pg;
    struct admin_product_filter f = {0};
    if (web_admin_page_params(r, LIST, &pg) || web_admin_term(r, "q", &f.q) ||
        web_admin_term(r, "page", &f.page) || web_admin_yes_no(r, "coming_soon", &f.coming_soon) ||
        web_admin_yes_no(r, "featured", &f.featured) || web_admin_yes_no(r, "active", &f.active) ||
        web_admin_yes_no(r, "addon", &f.addon))
        return 0;
    if (*f.page && strcmp(f.page, "plan") && strcmp(f.page, "addon") && strcmp(f.page, "storage")) {
        web_admin_error(r, 400, "The page filter must be plan, addon or storage.");
        return 0;
    }
    f.limit = pg.limit;
    if (pg.has_after) {
        char *end = NULL;
        errno = 0;
        long long order = strtoll(pg.after.key, &end, 10);
        if (!pg.after.has_key || errno || *end || end == pg.after.key) {
            web_admin_error(r, 400, "This page link is invalid. Start again from the first page.");
            return 0;
        }
        f.has_after = true;
        f.after_id = pg.after.id;
        f.after_order = order;
    }
    json_t *rows = NULL;
    bool more = false;
    int rc = admin_products_list(r->app->db, &f, &rows, &more);
    if (rc != 0)
        return rc;
    /* The inline forms come back to this very page, filters and all. */
    static const char *const here[] = {"q",     "page",  "coming_soon", "featured", "active",
                                       "addon", "after", "limit",       NULL};
    char *back = web_admin_here(r, here);
    const struct web_admin_list l = {"admin/products",
                                     "Products",
                                     "products",
                                     LIST,
                                     filters,
                                     "display_order",
                                     json_pack("{s:s}", "back", back)};
    free(back);
    web_admin_list_reply(r, &l, rows, more);
    return 0;
}

/* A whole number in -1,000,000..1,000,000, or false. */
static bool parse_order(const char *s, int64_t *out)
{
    if (!s || !*s || strlen(s) > 8)
        return false;
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < -1000000 || v > 1000000)
        return false;
    *out = v;
    return true;
}

int web_admin_products_inline(struct web_request *r)
{
    int64_t id = web_admin_id(r, "id");
    struct admin_product_flags flags = {
        .is_coming_soon = web_admin_checked(r, "is_coming_soon"),
        .is_featured = web_admin_checked(r, "is_featured"),
        .is_active = web_admin_checked(r, "is_active"),
    };
    const char *back = web_admin_back(r, "/admin/products/");
    if (!id) {
        web_admin_error(r, 404, "There is no such product.");
        return 0;
    }
    if (!parse_order(web_form(r, "display_order"), &flags.display_order)) {
        web_admin_flash(r, "error",
                        "Nothing was saved: the order must be a whole number from -1,000,000 "
                        "to 1,000,000.");
        web_redirect(r, back);
        return 0;
    }
    struct admin_actor who = web_admin_who(r);
    int rc = admin_product_set_flags(r->app->db, &who, id, web_form(r, "fp"), &flags, r->now);
    if (rc == USHER_ENOTFOUND) {
        web_admin_error(r, 404, "There is no such product.");
        return 0;
    }
    if (rc == USHER_ECONFLICT)
        web_admin_flash(r, "error",
                        "Nothing was saved: this product was changed by someone else since the "
                        "list was loaded. The list now shows the current values.");
    else if (rc == 0)
        web_admin_flash(r, "success", "Saved the product's order and flags.");
    else
        return rc;
    web_redirect(r, back);
    return 0;
}

/* ---- the edit form -------------------------------------------------------------------------- */

/* Sets key to the form field's text; false when it is not valid text. */
static bool put_text(json_t *o, const char *key, const char *value)
{
    json_t *s = json_string(value ? value : "");
    if (!s)
        return false;
    json_object_set_new(o, key, s);
    return true;
}

/* An optional text: empty means null. */
static bool put_optional(json_t *o, const char *key, const char *value)
{
    if (!value || !*value) {
        json_object_set_new(o, key, json_null());
        return true;
    }
    return put_text(o, key, value);
}

/* The features textarea: one non-empty line each. */
static json_t *feature_lines(const char *text)
{
    json_t *lines = json_array();
    const char *p = text ? text : "";
    while (*p) {
        size_t n = strcspn(p, "\r\n");
        const char *s = p, *e = p + n;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        json_t *line = e > s ? json_stringn(s, (size_t)(e - s)) : NULL;
        if (line)
            json_array_append_new(lines, line);
        p += n;
        p += strspn(p, "\r\n");
    }
    return lines;
}

/* A price's form fields ("price<id>_amount", …) as a catalog price object. */
static const char *price_field(char *buf, size_t size, const char *prefix, const char *name)
{
    snprintf(buf, size, "%s_%s", prefix, name);
    return buf;
}

static json_t *price_from_form(struct web_request *r, const char *prefix, const char *price_id,
                               bool *ok)
{
    char key[64];
    json_t *pr = json_object();
    *ok = put_text(pr, "stripe_price_id", price_id) &&
          put_text(pr, "billing_period",
                   web_form(r, price_field(key, sizeof key, prefix, "billing_period"))) &&
          put_text(pr, "currency", web_form(r, price_field(key, sizeof key, prefix, "currency")));
    const char *amount = web_form(r, price_field(key, sizeof key, prefix, "amount"));
    char *end = NULL;
    errno = 0;
    long long v = amount && *amount ? strtoll(amount, &end, 10) : -1;
    json_object_set_new(pr, "amount", !errno && end && !*end ? json_integer(v) : json_string("?"));
    json_object_set_new(
        pr, "is_active",
        json_boolean(web_admin_checked(r, price_field(key, sizeof key, prefix, "is_active"))));
    const char *ent = web_form(r, price_field(key, sizeof key, prefix, "entitlements"));
    if (ent && *ent) {
        json_t *parsed = json_loads(ent, JSON_REJECT_DUPLICATES, NULL);
        json_object_set_new(pr, "entitlements", parsed ? parsed : json_string(ent));
    }
    return pr;
}

/* The form as a catalog product object; *ok false when some field is not valid text. */
static json_t *product_from_form(struct web_request *r, const json_t *stored, bool *ok)
{
    json_t *p = json_object();
    static const char *const texts[] = {
        "name",    "description", "dashboard_name", "dashboard_description", "icon",
        "tagline", "footer_text", "page",           "provisioner",           NULL};
    *ok = put_text(p, "slug", json_string_value(json_object_get(stored, "slug")));
    for (size_t i = 0; texts[i]; i++)
        *ok = *ok && put_text(p, texts[i], web_form(r, texts[i]));
    *ok = *ok && put_optional(p, "stripe_product_id", web_form(r, "stripe_product_id")) &&
          put_optional(p, "parent", web_form(r, "parent")) &&
          put_optional(p, "standalone_url", web_form(r, "standalone_url"));
    int64_t order = 0;
    if (parse_order(web_form(r, "display_order"), &order))
        json_object_set_new(p, "display_order", json_integer(order));
    else
        json_object_set_new(p, "display_order", json_string("?"));
    static const char *const flags[] = {"is_addon",    "requires_instance", "is_coming_soon",
                                        "is_featured", "is_active",         NULL};
    for (size_t i = 0; flags[i]; i++)
        json_object_set_new(p, flags[i], json_boolean(web_admin_checked(r, flags[i])));
    json_object_set_new(p, "features", feature_lines(web_form(r, "features")));
    json_t *prices = json_array();
    size_t i;
    json_t *sp;
    json_array_foreach (json_object_get(stored, "prices"), i, sp) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "price%lld",
                 (long long)json_integer_value(json_object_get(sp, "id")));
        bool pok;
        json_array_append_new(
            prices,
            price_from_form(r, prefix, json_string_value(json_object_get(sp, "stripe_price_id")),
                            &pok));
        *ok = *ok && pok;
    }
    const char *new_id = web_form(r, "new_stripe_price_id");
    if (new_id && *new_id) {
        bool pok;
        json_array_append_new(prices, price_from_form(r, "new", new_id, &pok));
        *ok = *ok && pok;
    }
    json_object_set_new(p, "prices", prices);
    return p;
}

/* What the template needs beyond the stored values: select flags, the features as text, each
 * price's field prefix and its entitlements as text. */
static void view_product(json_t *p)
{
    char key[64];
    const char *page = json_string_value(json_object_get(p, "page"));
    const char *prov = json_string_value(json_object_get(p, "provisioner"));
    snprintf(key, sizeof key, "page_%s", page ? page : "");
    json_object_set_new(p, key, json_true());
    snprintf(key, sizeof key, "provisioner_%s", prov ? prov : "");
    json_object_set_new(p, key, json_true());
    size_t i;
    json_t *pr;
    json_array_foreach (json_object_get(p, "prices"), i, pr) {
        snprintf(key, sizeof key, "price%lld",
                 (long long)json_integer_value(json_object_get(pr, "id")));
        json_object_set_new(pr, "prefix", json_string(key));
        const char *period = json_string_value(json_object_get(pr, "billing_period"));
        snprintf(key, sizeof key, "period_%s", period ? period : "");
        json_object_set_new(pr, key, json_true());
        json_t *ent = json_object_get(pr, "entitlements");
        if (json_is_object(ent)) {
            char *text = json_dumps(ent, JSON_COMPACT | JSON_SORT_KEYS);
            json_object_set_new(pr, "entitlements", json_string(text ? text : ""));
            free(text);
        }
        json_t *amount = json_object_get(pr, "amount");
        const char *cur = json_string_value(json_object_get(pr, "currency"));
        if (json_is_integer(amount) && cur) {
            char money[FORMAT_PRICE_MAX];
            format_money(json_integer_value(amount), cur, money, sizeof money);
            json_object_set_new(pr, "amount_label", json_string(money));
        }
    }
}

/* stored, with what the failed form sent laid over it, so the operator's input is not lost. */
static void overlay(json_t *stored, const json_t *sent)
{
    const char *key;
    json_t *v;
    json_object_foreach ((json_t *)sent, key, v) {
        if (strcmp(key, "prices") && strcmp(key, "features") && strcmp(key, "slug"))
            json_object_set(stored, key, v);
    }
    json_t *lines = json_object_get(sent, "features");
    struct buf text;
    buf_init(&text);
    size_t i;
    json_array_foreach (lines, i, v) {
        if (i)
            buf_putc(&text, '\n');
        buf_puts(&text, json_string_value(v));
    }
    json_object_set_new(stored, "features", json_string(text.data));
    buf_cleanup(&text);
    json_t *sp, *prices = json_object_get(stored, "prices");
    json_array_foreach (json_object_get(sent, "prices"), i, sp) {
        json_t *target = json_array_get(prices, i);
        if (!target) { /* the new price row */
            json_t *fresh = json_deep_copy(sp);
            json_object_set_new(stored, "new_price", fresh);
            continue;
        }
        json_object_set(target, "billing_period", json_object_get(sp, "billing_period"));
        json_object_set(target, "currency", json_object_get(sp, "currency"));
        json_object_set(target, "is_active", json_object_get(sp, "is_active"));
        json_t *amount = json_object_get(sp, "amount");
        if (json_is_integer(amount))
            json_object_set(target, "amount", amount);
        json_t *ent = json_object_get(sp, "entitlements");
        json_object_set(target, "entitlements", ent ? ent : json_null());
    }
}

static const struct {
    const char *field, *label;
} labels[] = {
    {"name", "Name"},
    {"stripe_product_id", "Stripe product id"},
    {"description", "Description"},
    {"dashboard_name", "Dashboard name"},
    {"dashboard_description", "Dashboard description"},
    {"icon", "Icon"},
    {"parent", "Parent product"},
    {"standalone_url", "Standalone URL"},
    {"page", "Page"},
    {"display_order", "Order"},
    {"tagline", "Tagline"},
    {"footer_text", "Footer text"},
    {"features", "Features"},
    {"provisioner", "Provisioner"},
    {"requires_instance", "Requires an instance"},
};

/* "Order: must be …", or for a price "Price price_123, amount: …". */
static void error_text(const struct admin_error *err, const json_t *sent, char *out, size_t size)
{
    size_t idx;
    char column[64];
    if (sscanf(err->field, "prices[%zu].%63s", &idx, column) == 2 ||
        sscanf(err->field, "prices[%zu]", &idx) == 1) {
        const char *id = json_string_value(json_object_get(
            json_array_get(json_object_get(sent, "prices"), idx), "stripe_price_id"));
        snprintf(out, size, "Price %s: %s", id ? id : "?", err->message);
        return;
    }
    for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++) {
        if (!strncmp(err->field, labels[i].field, strlen(labels[i].field))) {
            snprintf(out, size, "%s: %s", labels[i].label, err->message);
            return;
        }
    }
    snprintf(out, size, "%s%s%s", err->field, *err->field ? ": " : "", err->message);
}

static int render_edit(struct web_request *r, int status, json_t *product, const char *error,
                       const char *field)
{
    json_t *choices = NULL;
    int rc = admin_product_choices(r->app->db, &choices);
    if (rc != 0)
        return rc;
    const char *parent = json_string_value(json_object_get(product, "parent"));
    size_t i;
    json_t *c;
    json_array_foreach (choices, i, c) {
        const char *slug = json_string_value(json_object_get(c, "slug"));
        json_object_set_new(c, "selected", json_boolean(parent && slug && !strcmp(parent, slug)));
    }
    view_product(product);
    json_t *ctx = web_admin_context(r, "Edit product", "products");
    json_object_set_new(ctx, "product", json_incref(product));
    json_object_set_new(ctx, "parents", choices);
    if (error) {
        json_object_set_new(ctx, "error", json_string(error));
        if (field && *field) {
            char key[80];
            snprintf(key, sizeof key, "invalid_%s", field);
            json_object_set_new(ctx, key, json_true());
        }
    }
    web_reply_page(r, status, "admin/product_edit", ctx);
    json_decref(ctx);
    return 0;
}

int web_admin_product_edit(struct web_request *r)
{
    int64_t id = web_admin_id(r, "id");
    json_t *stored = NULL;
    int rc = id ? admin_product_get(r->app->db, id, &stored) : USHER_ENOTFOUND;
    if (rc == USHER_ENOTFOUND) {
        web_admin_error(r, 404, "There is no such product. It may have been deleted.");
        return 0;
    }
    if (rc != 0)
        return rc;
    if (strcmp(r->method, "POST")) {
        rc = render_edit(r, 200, stored, NULL, NULL);
        json_decref(stored);
        return rc;
    }
    bool ok = true;
    json_t *sent = product_from_form(r, stored, &ok);
    struct admin_error err = {0};
    struct admin_actor who = web_admin_who(r);
    if (!ok) {
        rc = USHER_EINVAL;
        snprintf(err.message, sizeof err.message, "a field holds text that is not valid UTF-8");
    } else {
        rc = admin_product_save(r->app->db, &who, id, web_form(r, "fp"), sent, r->now, &err);
    }
    if (rc == 0) {
        web_admin_flash(r, "success", "Saved the product.");
        char location[64];
        snprintf(location, sizeof location, "/admin/products/edit/?id=%lld", (long long)id);
        web_redirect(r, location);
    } else if (rc == USHER_EINVAL) {
        char text[640];
        error_text(&err, sent, text, sizeof text);
        overlay(stored, sent);
        rc = render_edit(r, 400, stored, text, err.field);
    } else if (rc == USHER_ECONFLICT) {
        json_decref(stored);
        stored = NULL;
        rc = admin_product_get(r->app->db, id, &stored);
        if (rc == 0)
            rc = render_edit(r, 409, stored,
                             "Nothing was saved: this product was changed by someone else "
                             "since you opened the form. The form now shows the current "
                             "values; make your change again.",
                             NULL);
    } else if (rc == USHER_ENOTFOUND) {
        web_admin_error(r, 404, "There is no such product. It may have been deleted.");
        rc = 0;
    }
    json_decref(sent);
    json_decref(stored);
    return rc;
}
