/*
 * admin_catalog.c — products and prices in the admin console (see admin_catalog.h).
 */
#include "domain/admin_catalog.h"

#include "core/err.h"
#include "core/mem.h"
#include "domain/admin_change.h"
#include "domain/admin_list.h"
#include "domain/catalog_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ORDER_MAX 1000000

/* ---- lists ------------------------------------------------------------------------------ */

static const char products_sql[] =
    "SELECT id, name, slug, page, display_order, is_coming_soon, is_featured, is_active, "
    "is_addon FROM products "
    "WHERE ($1 = '' OR lower(name) LIKE lower($1) ESCAPE '\\' "
    "      OR lower(slug) LIKE lower($1) ESCAPE '\\') "
    "AND ($2 = '' OR page = $2) "
    "AND ($3 < 0 OR (CASE WHEN is_coming_soon THEN 1 ELSE 0 END) = $3) "
    "AND ($4 < 0 OR (CASE WHEN is_featured THEN 1 ELSE 0 END) = $4) "
    "AND ($5 < 0 OR (CASE WHEN is_active THEN 1 ELSE 0 END) = $5) "
    "AND ($6 < 0 OR (CASE WHEN is_addon THEN 1 ELSE 0 END) = $6) "
    "AND ($7 = 0 OR display_order > $8 OR (display_order = $8 AND id > $7)) "
    "ORDER BY display_order, id LIMIT $9";

static json_t *inline_state(const json_t *row)
{
    return json_pack("{s:O, s:O, s:O, s:O}", "display_order", json_object_get(row, "display_order"),
                     "is_coming_soon", json_object_get(row, "is_coming_soon"), "is_featured",
                     json_object_get(row, "is_featured"), "is_active",
                     json_object_get(row, "is_active"));
}

static void set_fp(json_t *row, const json_t *state)
{
    char fp[ADMIN_FINGERPRINT_LEN + 1];
    admin_fingerprint(state, fp);
    json_object_set_new(row, "fp", json_string(fp));
}

int admin_products_list(struct db_pool *pool, const struct admin_product_filter *f, json_t **rows,
                        bool *more)
{
    if (f->limit < 1 || f->limit > 1000)
        return USHER_EINVAL;
    char *pattern = admin_like_pattern(f->q);
    const struct db_param p[] = {
        DB_TEXT(pattern),
        DB_TEXT(f->page ? f->page : ""),
        DB_INT(f->coming_soon),
        DB_INT(f->featured),
        DB_INT(f->active),
        DB_INT(f->addon),
        DB_INT(f->has_after ? f->after_id : 0),
        DB_INT(f->after_order),
        DB_INT(f->limit + 1),
    };
    int rc =
        admin_list_rows(pool, products_sql, p, DB_NPARAMS(p), "isssibbbb", f->limit, rows, more);
    free(pattern);
    size_t i;
    json_t *row;
    json_array_foreach (rc == 0 ? *rows : NULL, i, row) {
        json_t *state = inline_state(row);
        set_fp(row, state);
        json_decref(state);
    }
    return rc;
}

static const char prices_sql[] =
    "SELECT pr.id, pr.stripe_price_id, pr.product_id, p.name AS product, pr.billing_period, "
    "pr.amount, pr.currency, pr.is_active FROM product_prices pr "
    "JOIN products p ON p.id = pr.product_id "
    "WHERE ($1 = '' OR lower(pr.stripe_price_id) LIKE lower($1) ESCAPE '\\' "
    "      OR lower(p.name) LIKE lower($1) ESCAPE '\\') "
    "AND ($2 = 0 OR pr.product_id = $2) AND ($3 = '' OR pr.billing_period = $3) "
    "AND ($4 < 0 OR (CASE WHEN pr.is_active THEN 1 ELSE 0 END) = $4) "
    "AND pr.id > $5 ORDER BY pr.id LIMIT $6";

int admin_prices_list(struct db_pool *pool, const struct admin_price_filter *f, json_t **rows,
                      bool *more)
{
    if (f->limit < 1 || f->limit > 1000)
        return USHER_EINVAL;
    char *pattern = admin_like_pattern(f->q);
    const struct db_param p[] = {
        DB_TEXT(pattern),  DB_INT(f->product_id), DB_TEXT(f->period ? f->period : ""),
        DB_INT(f->active), DB_INT(f->after_id),   DB_INT(f->limit + 1)};
    int rc = admin_list_rows(pool, prices_sql, p, DB_NPARAMS(p), "isissisb", f->limit, rows, more);
    free(pattern);
    return rc;
}

int admin_product_choices(struct db_pool *pool, json_t **out)
{
    bool more;
    return admin_list_rows(pool, "SELECT id, slug, name FROM products ORDER BY name", NULL, 0,
                           "iss", 100000, out, &more);
}

/* ---- one product ------------------------------------------------------------------------- */

static const char product_sql[] =
    "SELECT p.id, p.name, p.slug, p.stripe_product_id, p.description, p.dashboard_name, "
    "p.dashboard_description, p.icon, (SELECT pp.slug FROM products pp WHERE pp.id = "
    "p.parent_id) AS parent, p.is_addon, p.requires_instance, p.standalone_url, p.page, "
    "p.display_order, p.is_coming_soon, p.is_featured, p.tagline, p.features, p.footer_text, "
    "p.provisioner, p.is_active FROM products p WHERE p.id = $1";
static const char product_types[] = "issssssssbbssibbssssb";

static const char product_prices_sql[] =
    "SELECT id, stripe_price_id, billing_period, amount, currency, is_active, entitlements "
    "FROM product_prices WHERE product_id = $1 ORDER BY id";

/* The product's state (row and prices) on conn; on PostgreSQL the row is locked for the rest
 * of the transaction when lock is set. */
static int load_product(struct db_conn *conn, int64_t id, bool lock, json_t **out)
{
    *out = NULL;
    const struct db_param p[] = {DB_INT(id)};
    struct db_result *res = NULL;
    if (lock && db_conn_dialect(conn) == DB_POSTGRES) {
        int rc = db_query(conn, "SELECT id FROM products WHERE id = $1 FOR UPDATE", p, 1, &res);
        db_result_free(res);
        res = NULL;
        if (rc != 0)
            return rc;
    }
    int rc = db_query(conn, product_sql, p, 1, &res);
    if (rc != 0)
        return rc;
    if (db_result_rows(res) == 0) {
        db_result_free(res);
        return USHER_ENOTFOUND;
    }
    json_t *product = admin_row_json(res, 0, product_types);
    db_result_free(res);
    res = NULL;
    rc = db_query(conn, product_prices_sql, p, 1, &res);
    if (rc != 0) {
        json_decref(product);
        return rc;
    }
    json_t *prices = json_array();
    for (int i = 0; i < db_result_rows(res); i++)
        json_array_append_new(prices, admin_row_json(res, i, "issisbs"));
    db_result_free(res);
    json_object_set_new(product, "prices", prices);
    *out = product;
    return 0;
}

int admin_product_get(struct db_pool *pool, int64_t id, json_t **out)
{
    *out = NULL;
    struct db_conn *conn = NULL;
    int rc = db_acquire(pool, DB_WAIT_MS, &conn);
    if (rc != 0)
        return rc;
    rc = load_product(conn, id, false, out);
    db_release(conn);
    if (rc == 0)
        set_fp(*out, *out);
    return rc;
}

/* The flags' own inputs (admin_change.arg). */
struct flags_tx {
    const char *fp;
    const struct admin_product_flags *flags;
};

static int flags_in_tx(struct db_conn *conn, struct admin_change *ch)
{
    const struct flags_tx *t = ch->arg;
    json_t *before = NULL;
    int rc = load_product(conn, ch->id, true, &before);
    if (rc != 0)
        return rc;
    ch->before = inline_state(before);
    json_decref(before);
    if (!admin_fingerprint_matches(ch->before, t->fp))
        return USHER_ECONFLICT;
    const struct admin_product_flags *f = t->flags;
    const struct db_param p[] = {
        DB_INT(ch->id),          DB_INT(f->display_order), DB_BOOL(f->is_coming_soon),
        DB_BOOL(f->is_featured), DB_BOOL(f->is_active),    DB_INT(ch->now)};
    rc = db_exec(conn,
                 "UPDATE products SET display_order = $2, is_coming_soon = $3, is_featured = $4, "
                 "is_active = $5, updated_at = $6 WHERE id = $1",
                 p, DB_NPARAMS(p), NULL);
    ch->after = json_pack("{s:I, s:b, s:b, s:b}", "display_order", (json_int_t)f->display_order,
                          "is_coming_soon", f->is_coming_soon, "is_featured", f->is_featured,
                          "is_active", f->is_active);
    return rc;
}

int admin_product_set_flags(struct db_pool *pool, const struct admin_actor *who, int64_t id,
                            const char *fp, const struct admin_product_flags *flags, int64_t now)
{
    if (flags->display_order < -ORDER_MAX || flags->display_order > ORDER_MAX)
        return USHER_EINVAL;
    struct flags_tx t = {.fp = fp, .flags = flags};
    return admin_change_save(pool, who, "product.update", "product", id, now, &t, flags_in_tx);
}

/* ---- the product edit form ----------------------------------------------------------------- */

/* The save's own inputs (admin_change.arg). */
struct save_tx {
    const char *fp;
    const struct catalog_product *p;
    struct admin_error *err;
};

__attribute__((format(printf, 3, 4))) static int refuse(struct admin_error *err, const char *field,
                                                        const char *fmt, ...)
{
    snprintf(err->field, sizeof err->field, "%s", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return USHER_EINVAL;
}

/* Checks only the database can make: the name is free, the parent exists, every price id is
 * this product's or new. *parent_id gets the parent's id (0: none). */
static int check_references(struct db_conn *conn, const struct admin_change *ch, int64_t *parent_id)
{
    const struct save_tx *t = ch->arg;
    const struct catalog_product *p = t->p;
    const struct db_param n[] = {DB_TEXT(p->name), DB_INT(ch->id)};
    int64_t other = 0;
    int rc =
        db_query_id(conn, "SELECT id FROM products WHERE name = $1 AND id <> $2", n, 2, &other);
    if (rc == 0 && other)
        return refuse(t->err, "name", "another product is already called \"%s\"", p->name);
    *parent_id = 0;
    if (rc == 0 && p->parent) {
        const struct db_param s[] = {DB_TEXT(p->parent)};
        rc = db_query_id(conn, "SELECT id FROM products WHERE slug = $1", s, 1, parent_id);
        if (rc == 0 && !*parent_id)
            return refuse(t->err, "parent", "there is no product with the slug \"%s\"", p->parent);
    }
    for (size_t i = 0; rc == 0 && i < p->nprices; i++) {
        const struct db_param q[] = {DB_TEXT(p->prices[i].stripe_price_id), DB_INT(ch->id)};
        rc = db_query_id(conn,
                         "SELECT product_id FROM product_prices WHERE stripe_price_id = $1 "
                         "AND product_id <> $2",
                         q, 2, &other);
        if (rc == 0 && other) {
            char field[64];
            snprintf(field, sizeof field, "prices[%zu].stripe_price_id", i);
            return refuse(t->err, field, "%s already belongs to another product",
                          p->prices[i].stripe_price_id);
        }
    }
    return rc;
}

static int write_prices(struct db_conn *conn, const struct admin_change *ch)
{
    const struct save_tx *t = ch->arg;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < t->p->nprices; i++) {
        const struct catalog_price *pr = &t->p->prices[i];
        const struct db_param p[] = {DB_INT(ch->id),
                                     DB_TEXT(pr->stripe_price_id),
                                     DB_TEXT(pr->billing_period),
                                     DB_INT(pr->amount),
                                     DB_TEXT(pr->currency),
                                     DB_BOOL(pr->is_active),
                                     DB_TEXT_OR_NULL(pr->entitlements),
                                     DB_INT(ch->now)};
        int64_t changed = 0;
        rc = db_exec(conn,
                     "UPDATE product_prices SET billing_period = $3, amount = $4, currency = $5, "
                     "is_active = $6, entitlements = $7, updated_at = $8 "
                     "WHERE product_id = $1 AND stripe_price_id = $2",
                     p, DB_NPARAMS(p), &changed);
        if (rc == 0 && changed == 0)
            rc = db_exec(conn,
                         "INSERT INTO product_prices (product_id, stripe_price_id, billing_period, "
                         "amount, currency, is_active, entitlements, created_at, updated_at) "
                         "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
                         p, DB_NPARAMS(p), NULL);
    }
    return rc;
}

static int write_product(struct db_conn *conn, const struct admin_change *ch, int64_t parent_id)
{
    const struct save_tx *t = ch->arg;
    const struct catalog_product *p = t->p;
    const struct db_param q[] = {
        DB_INT(ch->id),
        DB_TEXT(p->name),
        DB_TEXT_OR_NULL(p->stripe_product_id),
        DB_TEXT(p->description),
        DB_TEXT(p->dashboard_name),
        DB_TEXT(p->dashboard_description),
        DB_TEXT(p->icon),
        parent_id ? DB_INT(parent_id) : DB_NULL,
        DB_BOOL(p->is_addon),
        DB_BOOL(p->requires_instance),
        DB_TEXT_OR_NULL(p->standalone_url),
        DB_TEXT(p->page),
        DB_INT(p->display_order),
        DB_BOOL(p->is_coming_soon),
        DB_BOOL(p->is_featured),
        DB_TEXT(p->tagline),
        DB_TEXT(p->features),
        DB_TEXT(p->footer_text),
        DB_TEXT(p->provisioner),
        DB_BOOL(p->is_active),
        DB_INT(ch->now),
    };
    return db_exec(conn,
                   "UPDATE products SET name = $2, stripe_product_id = $3, description = $4, "
                   "dashboard_name = $5, dashboard_description = $6, icon = $7, parent_id = $8, "
                   "is_addon = $9, requires_instance = $10, standalone_url = $11, page = $12, "
                   "display_order = $13, is_coming_soon = $14, is_featured = $15, tagline = $16, "
                   "features = $17, footer_text = $18, provisioner = $19, is_active = $20, "
                   "updated_at = $21 WHERE id = $1",
                   q, DB_NPARAMS(q), NULL);
}

static int save_in_tx(struct db_conn *conn, struct admin_change *ch)
{
    const struct save_tx *t = ch->arg;
    int rc = load_product(conn, ch->id, true, &ch->before);
    if (rc != 0)
        return rc;
    if (!admin_fingerprint_matches(ch->before, t->fp))
        rc = USHER_ECONFLICT;
    else if (strcmp(t->p->slug, json_string_value(json_object_get(ch->before, "slug"))))
        rc = refuse(t->err, "slug",
                    "the slug cannot be changed here (it is the catalog file's key)");
    int64_t parent_id = 0;
    if (rc == 0)
        rc = check_references(conn, ch, &parent_id);
    if (rc == 0)
        rc = write_product(conn, ch, parent_id);
    if (rc == 0)
        rc = write_prices(conn, ch);
    if (rc == 0)
        rc = load_product(conn, ch->id, false, &ch->after);
    return rc;
}

/* "products[0].prices[1].amount: must be …" → field "prices[1].amount", message "must be …". */
static void split_parse_error(const char *text, struct admin_error *err)
{
    const char *rest = text;
    if (!strncmp(rest, "products[0].", 12))
        rest += 12;
    else if (!strncmp(rest, "products[0]", 11))
        rest += 11;
    const char *colon = strstr(rest, ": ");
    if (colon && (size_t)(colon - rest) < sizeof err->field) {
        snprintf(err->field, sizeof err->field, "%.*s", (int)(colon - rest), rest);
        snprintf(err->message, sizeof err->message, "%s", colon + 2);
    } else {
        err->field[0] = '\0';
        snprintf(err->message, sizeof err->message, "%s", rest);
    }
}

int admin_product_save(struct db_pool *pool, const struct admin_actor *who, int64_t id,
                       const char *fp, const json_t *product, int64_t now, struct admin_error *err)
{
    memset(err, 0, sizeof *err);
    json_t *doc = json_pack("{s:[O]}", "products", product);
    struct catalog_doc d;
    char text[512] = "";
    int rc = doc ? catalog_doc_parse(doc, &d, text, sizeof text) : USHER_EINVAL;
    if (rc == USHER_EINVAL && doc)
        split_parse_error(text, err);
    if (rc == 0) {
        struct save_tx t = {.fp = fp, .p = &d.products[0], .err = err};
        rc = admin_change_save(pool, who, "product.update", "product", id, now, &t, save_in_tx);
    }
    if (doc)
        catalog_doc_cleanup(&d);
    json_decref(doc);
    return rc;
}
