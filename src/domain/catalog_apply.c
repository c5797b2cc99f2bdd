/*
 * catalog_apply.c — writes a validated catalog (catalog_internal.h) to the database.
 *
 * One write transaction holds the whole apply, so a failure anywhere — a reference that
 * only the database can resolve, a constraint, a lost connection — leaves the database as it
 * was. Every item is an upsert by its natural key: read the row, insert it when missing,
 * update it only when a managed column differs. Comparing before writing is what lets a
 * second apply of the same file report "0 created, 0 updated" and leave updated_at alone.
 *
 * Columns a file never writes: ids, created_at, instances.allocated_seats (allocation owns
 * it), instances.api_key when the file omits it. Rows the file does not mention are never
 * deleted; the one set a file replaces wholesale is an instance's groups.
 */
#include "domain/catalog.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/mem.h"
#include "domain/catalog_internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define ACQUIRE_MS 10000
#define MAX_COLS 24
/* Serializes concurrent applies on PostgreSQL, where two transactions could both find a
 * slug missing and the second would fail on the unique key instead of waiting. Any constant
 * nothing else uses; migrate.c uses another one. */
#define APPLY_LOCK_SQL "SELECT pg_advisory_xact_lock(7239155374306014000)"

struct col {
    const char *name; /* a constant column name, never input */
    struct db_param val;
};

enum outcome { OUTCOME_UNCHANGED, OUTCOME_CREATED, OUTCOME_UPDATED };

struct upsert {
    const char *table;
    const struct col *key; /* the natural key, matched with = */
    int nkey;
    const struct col *cols; /* the columns the file manages */
    int ncols;
    bool stamped; /* the table has created_at / updated_at */
};

/* A product that was in the database before this apply. */
struct known_product {
    int64_t id;
    int64_t parent_id; /* 0: none */
    bool requires_instance;
    char *slug;
    char *name;
};

struct wctx {
    struct db_conn *conn;
    const struct catalog_doc *d;
    struct catalog_apply_report *report;
    int64_t now;
    struct known_product *known;
    size_t nknown;
    int64_t *product_ids; /* per file product, once written */
    enum outcome *product_outcome;
};

__attribute__((format(printf, 3, 4))) static int werr(struct wctx *w, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->report->error, sizeof(w->report->error), fmt, ap);
    va_end(ap);
    return rc;
}

/* A statement failed while writing the item at path. */
static int db_refused(struct wctx *w, int rc, const char *path)
{
    if (rc == USHER_ECONFLICT)
        return werr(w, rc, "%s: conflicts with a row already in the database", path);
    return werr(w, rc, "%s: the database refused the change (%s)", path, usher_strerror(rc));
}

static void count(struct catalog_counts *c, enum outcome o)
{
    if (o == OUTCOME_CREATED)
        c->created++;
    else if (o == OUTCOME_UPDATED)
        c->updated++;
    else
        c->unchanged++;
}

/* ---- generic upsert ---------------------------------------------------------------------- */

static bool cell_equals(const struct db_result *res, int col, const struct db_param *p)
{
    bool null = db_result_is_null(res, 0, col);
    switch (p->type) {
    case DB_P_NULL: return null;
    case DB_P_TEXT: return !null && strcmp(db_result_text(res, 0, col), p->text) == 0;
    case DB_P_INT: return !null && db_result_int(res, 0, col) == p->i;
    case DB_P_BOOL: return !null && db_result_bool(res, 0, col) == (p->i != 0);
    }
    return false;
}

static int upsert_insert(struct db_conn *c, const struct upsert *u, int64_t now, int64_t *id)
{
    struct buf sql;
    struct db_param p[MAX_COLS + 1];
    struct db_result *res = NULL;
    int n = 0;
    buf_init(&sql);
    buf_printf(&sql, "INSERT INTO %s (", u->table);
    for (int i = 0; i < u->nkey; i++) {
        buf_printf(&sql, "%s%s", n ? ", " : "", u->key[i].name);
        p[n++] = u->key[i].val;
    }
    for (int i = 0; i < u->ncols; i++) {
        buf_printf(&sql, ", %s", u->cols[i].name);
        p[n++] = u->cols[i].val;
    }
    if (u->stamped)
        buf_puts(&sql, ", created_at, updated_at");
    buf_puts(&sql, ") VALUES (");
    for (int i = 1; i <= n; i++)
        buf_printf(&sql, "%s$%d", i > 1 ? ", " : "", i);
    if (u->stamped) {
        p[n++] = DB_INT(now);
        buf_printf(&sql, ", $%d, $%d", n, n);
    }
    buf_puts(&sql, ") RETURNING id");
    int rc = db_query(c, sql.data, p, n, &res);
    if (rc == 0)
        *id = db_result_int(res, 0, 0);
    db_result_free(res);
    buf_cleanup(&sql);
    return rc;
}

static int upsert_update(struct db_conn *c, const struct upsert *u, int64_t now, int64_t id)
{
    struct buf sql;
    struct db_param p[MAX_COLS + 2];
    int n = 0;
    buf_init(&sql);
    buf_printf(&sql, "UPDATE %s SET ", u->table);
    p[n++] = DB_INT(id);
    for (int i = 0; i < u->ncols; i++) {
        p[n++] = u->cols[i].val;
        buf_printf(&sql, "%s%s = $%d", i ? ", " : "", u->cols[i].name, n);
    }
    if (u->stamped) {
        p[n++] = DB_INT(now);
        buf_printf(&sql, ", updated_at = $%d", n);
    }
    buf_puts(&sql, " WHERE id = $1");
    int rc = db_exec(c, sql.data, p, n, NULL);
    buf_cleanup(&sql);
    return rc;
}

/* The statements are built from constant column names, so each upsert kind always yields
 * the same SQL text and the connection's prepared-statement cache serves it. */
static int upsert(struct db_conn *c, const struct upsert *u, int64_t now, int64_t *id,
                  enum outcome *outcome)
{
    struct buf sql;
    struct db_param p[MAX_COLS];
    struct db_result *res = NULL;
    int rc;
    if (u->nkey + u->ncols > MAX_COLS)
        return USHER_EINVAL;
    buf_init(&sql);
    buf_puts(&sql, "SELECT id");
    for (int i = 0; i < u->ncols; i++)
        buf_printf(&sql, ", %s", u->cols[i].name);
    buf_printf(&sql, " FROM %s WHERE ", u->table);
    for (int i = 0; i < u->nkey; i++) {
        buf_printf(&sql, "%s%s = $%d", i ? " AND " : "", u->key[i].name, i + 1);
        p[i] = u->key[i].val;
    }
    rc = db_query(c, sql.data, p, u->nkey, &res);
    if (rc != 0)
        goto out;
    if (db_result_rows(res) == 0) {
        *outcome = OUTCOME_CREATED;
        rc = upsert_insert(c, u, now, id);
        goto out;
    }
    *id = db_result_int(res, 0, 0);
    *outcome = OUTCOME_UNCHANGED;
    for (int i = 0; i < u->ncols; i++) {
        if (!cell_equals(res, i + 1, &u->cols[i].val)) {
            *outcome = OUTCOME_UPDATED;
            break;
        }
    }
    if (*outcome == OUTCOME_UPDATED)
        rc = upsert_update(c, u, now, *id);
out:
    db_result_free(res);
    buf_cleanup(&sql);
    return rc;
}

/* ---- what the database already holds ----------------------------------------------------- */

static void known_cleanup(struct wctx *w)
{
    for (size_t i = 0; i < w->nknown; i++) {
        free(w->known[i].slug);
        free(w->known[i].name);
    }
    free(w->known);
    w->known = NULL;
    w->nknown = 0;
}

static int load_known(struct wctx *w)
{
    struct db_result *res = NULL;
    int rc = db_query(w->conn, "SELECT id, slug, name, parent_id, requires_instance FROM products",
                      NULL, 0, &res);
    if (rc != 0)
        return werr(w, rc, "reading products: %s", usher_strerror(rc));
    int rows = db_result_rows(res);
    w->known = xcalloc((size_t)rows + 1, sizeof(*w->known));
    for (int r = 0; r < rows; r++) {
        struct known_product *k = &w->known[w->nknown++];
        k->id = db_result_int(res, r, 0);
        k->slug = xstrdup(db_result_text(res, r, 1));
        k->name = xstrdup(db_result_text(res, r, 2));
        k->parent_id = db_result_is_null(res, r, 3) ? 0 : db_result_int(res, r, 3);
        k->requires_instance = db_result_bool(res, r, 4);
    }
    db_result_free(res);
    return 0;
}

static const struct known_product *known_by_slug(const struct wctx *w, const char *slug)
{
    for (size_t i = 0; i < w->nknown; i++)
        if (strcmp(w->known[i].slug, slug) == 0)
            return &w->known[i];
    return NULL;
}

static const struct known_product *known_by_id(const struct wctx *w, int64_t id)
{
    for (size_t i = 0; i < w->nknown; i++)
        if (w->known[i].id == id)
            return &w->known[i];
    return NULL;
}

/* The parent a product will have after this apply: the file's word for products it lists,
 * the database's for the rest. */
static const char *parent_after_apply(const struct wctx *w, const char *slug)
{
    int fi = catalog_doc_find_product(w->d, slug);
    if (fi >= 0)
        return w->d->products[fi].parent;
    const struct known_product *k = known_by_slug(w, slug);
    const struct known_product *parent = k && k->parent_id ? known_by_id(w, k->parent_id) : NULL;
    return parent ? parent->slug : NULL;
}

static int check_product_refs(struct wctx *w, size_t i)
{
    const struct catalog_product *p = &w->d->products[i];
    if (p->parent && catalog_doc_find_product(w->d, p->parent) < 0 && !known_by_slug(w, p->parent))
        return werr(w, USHER_EINVAL,
                    "products[%zu].parent: no product \"%s\" in the file or the database", i,
                    p->parent);
    for (size_t k = 0; k < w->nknown; k++) {
        const struct known_product *kp = &w->known[k];
        /* A clash is real only when the other product keeps its name (is not in the file). */
        if (strcmp(kp->name, p->name) == 0 && strcmp(kp->slug, p->slug) != 0 &&
            catalog_doc_find_product(w->d, kp->slug) < 0)
            return werr(w, USHER_EINVAL,
                        "products[%zu].name: \"%s\" is already the name of product \"%s\"", i,
                        p->name, kp->slug);
    }
    /* A cycle would make "the plan of this add-on" undefined. Any walk longer than the
     * number of products has revisited one. */
    const char *cur = p->parent;
    for (size_t steps = 0; cur && steps <= w->d->nproducts + w->nknown; steps++) {
        if (strcmp(cur, p->slug) == 0)
            return werr(w, USHER_EINVAL,
                        "products[%zu].parent: \"%s\" would become its own ancestor", i, p->slug);
        cur = parent_after_apply(w, cur);
    }
    return 0;
}

static int check_instance_refs(struct wctx *w, size_t i)
{
    const struct catalog_instance *in = &w->d->instances[i];
    int fi = catalog_doc_find_product(w->d, in->product);
    const struct known_product *k = fi < 0 ? known_by_slug(w, in->product) : NULL;
    if (fi < 0 && !k)
        return werr(w, USHER_EINVAL,
                    "instances[%zu].product: no product \"%s\" in the file or the database", i,
                    in->product);
    bool requires = fi >= 0 ? w->d->products[fi].requires_instance : k->requires_instance;
    if (!requires)
        return werr(w, USHER_EINVAL,
                    "instances[%zu].product: \"%s\" has requires_instance false, so it takes no "
                    "instances",
                    i, in->product);
    return 0;
}

static int check_refs(struct wctx *w)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < w->d->nproducts; i++)
        rc = check_product_refs(w, i);
    for (size_t i = 0; rc == 0 && i < w->d->ninstances; i++)
        rc = check_instance_refs(w, i);
    return rc;
}

/* ---- groups and products ----------------------------------------------------------------- */

static int write_groups(struct wctx *w)
{
    for (size_t i = 0; i < w->d->ngroups; i++) {
        const struct col key[] = {{"name", DB_TEXT(w->d->groups[i])}};
        const struct upsert u = {.table = "groups", .key = key, .nkey = 1};
        int64_t id;
        enum outcome o;
        int rc = upsert(w->conn, &u, w->now, &id, &o);
        if (rc != 0) {
            char path[48];
            snprintf(path, sizeof(path), "groups[%zu]", i);
            return db_refused(w, rc, path);
        }
        count(&w->report->groups, o);
    }
    return 0;
}

static int write_product(struct wctx *w, size_t i, int64_t parent_id)
{
    const struct catalog_product *p = &w->d->products[i];
    const struct col key[] = {{"slug", DB_TEXT(p->slug)}};
    const struct col cols[] = {
        {"name", DB_TEXT(p->name)},
        {"stripe_product_id", DB_TEXT_OR_NULL(p->stripe_product_id)},
        {"description", DB_TEXT(p->description)},
        {"dashboard_name", DB_TEXT(p->dashboard_name)},
        {"dashboard_description", DB_TEXT(p->dashboard_description)},
        {"icon", DB_TEXT(p->icon)},
        {"parent_id", parent_id ? DB_INT(parent_id) : DB_NULL},
        {"is_addon", DB_BOOL(p->is_addon)},
        {"requires_instance", DB_BOOL(p->requires_instance)},
        {"standalone_url", DB_TEXT_OR_NULL(p->standalone_url)},
        {"page", DB_TEXT(p->page)},
        {"display_order", DB_INT(p->display_order)},
        {"is_coming_soon", DB_BOOL(p->is_coming_soon)},
        {"is_featured", DB_BOOL(p->is_featured)},
        {"tagline", DB_TEXT(p->tagline)},
        {"features", DB_TEXT(p->features)},
        {"footer_text", DB_TEXT(p->footer_text)},
        {"provisioner", DB_TEXT(p->provisioner)},
        {"is_active", DB_BOOL(p->is_active)},
    };
    const struct upsert u = {.table = "products",
                             .key = key,
                             .nkey = 1,
                             .cols = cols,
                             .ncols = DB_NPARAMS(cols),
                             .stamped = true};
    int rc = upsert(w->conn, &u, w->now, &w->product_ids[i], &w->product_outcome[i]);
    if (rc != 0) {
        char path[48];
        snprintf(path, sizeof(path), "products[%zu]", i);
        return db_refused(w, rc, path);
    }
    return 0;
}

/* Parents are written before their children, so a parent new in this file has an id when
 * its add-ons need it. check_refs has ruled out cycles, so every pass makes progress. */
static int write_products(struct wctx *w)
{
    size_t left = w->d->nproducts;
    bool *done = xcalloc(w->d->nproducts + 1, sizeof(*done));
    int rc = 0;
    while (left > 0 && rc == 0) {
        size_t before = left;
        for (size_t i = 0; i < w->d->nproducts && rc == 0; i++) {
            const char *parent = w->d->products[i].parent;
            int64_t parent_id = 0;
            if (done[i])
                continue;
            if (parent) {
                int fi = catalog_doc_find_product(w->d, parent);
                if (fi >= 0 && !done[fi])
                    continue;
                parent_id = fi >= 0 ? w->product_ids[fi] : known_by_slug(w, parent)->id;
            }
            rc = write_product(w, i, parent_id);
            done[i] = true;
            left--;
        }
        if (rc == 0 && left == before)
            rc = werr(w, USHER_EINVAL, "products: the parent links form a cycle");
    }
    free(done);
    return rc;
}

/* ---- prices ------------------------------------------------------------------------------ */

static int write_prices(struct wctx *w, size_t i)
{
    const struct catalog_product *p = &w->d->products[i];
    for (size_t k = 0; k < p->nprices; k++) {
        const struct catalog_price *pr = &p->prices[k];
        const struct col key[] = {{"stripe_price_id", DB_TEXT(pr->stripe_price_id)}};
        /* product_id is managed too: the file says which product a price belongs to. */
        const struct col cols[] = {
            {"product_id", DB_INT(w->product_ids[i])},
            {"billing_period", DB_TEXT(pr->billing_period)},
            {"amount", DB_INT(pr->amount)},
            {"currency", DB_TEXT(pr->currency)},
            {"is_active", DB_BOOL(pr->is_active)},
            {"entitlements", DB_TEXT_OR_NULL(pr->entitlements)},
        };
        const struct upsert u = {.table = "product_prices",
                                 .key = key,
                                 .nkey = 1,
                                 .cols = cols,
                                 .ncols = DB_NPARAMS(cols),
                                 .stamped = true};
        int64_t id;
        enum outcome o;
        int rc = upsert(w->conn, &u, w->now, &id, &o);
        if (rc != 0) {
            char path[96];
            snprintf(path, sizeof(path), "products[%zu].prices[%zu]", i, k);
            return db_refused(w, rc, path);
        }
        count(&w->report->prices, o);
    }
    return 0;
}

/* Something on sale must have a price to sell it at; a coming-soon product needs none. The
 * price may already be in the database, so this runs after the prices are written. */
static int check_sellable(struct wctx *w, size_t i)
{
    const struct catalog_product *p = &w->d->products[i];
    if (!p->is_active || p->is_coming_soon)
        return 0;
    const struct db_param params[] = {DB_INT(w->product_ids[i]), DB_BOOL(true)};
    struct db_result *res = NULL;
    int rc = db_query(w->conn,
                      "SELECT count(*) FROM product_prices "
                      "WHERE product_id = $1 AND is_active = $2",
                      params, DB_NPARAMS(params), &res);
    if (rc != 0) {
        char path[48];
        snprintf(path, sizeof(path), "products[%zu]", i);
        return db_refused(w, rc, path);
    }
    int64_t n = db_result_int(res, 0, 0);
    db_result_free(res);
    if (n == 0)
        return werr(w, USHER_EINVAL,
                    "products[%zu].prices: \"%s\" is active and not coming soon, so it needs an "
                    "active price",
                    i, p->slug);
    return 0;
}

/* ---- instances --------------------------------------------------------------------------- */

static int group_id(struct wctx *w, size_t i, size_t g, int64_t *id)
{
    const char *name = w->d->instances[i].groups[g];
    const struct db_param params[] = {DB_TEXT(name)};
    struct db_result *res = NULL;
    int rc = db_query(w->conn, "SELECT id FROM groups WHERE name = $1", params, 1, &res);
    char path[96];
    snprintf(path, sizeof(path), "instances[%zu].groups[%zu]", i, g);
    if (rc != 0)
        return db_refused(w, rc, path);
    bool found = db_result_rows(res) > 0;
    if (found)
        *id = db_result_int(res, 0, 0);
    db_result_free(res);
    if (!found)
        return werr(w, USHER_EINVAL,
                    "%s: no group \"%s\" in the file or the database (list it under \"groups\")",
                    path, name);
    return 0;
}

static bool id_in(const int64_t *ids, size_t n, int64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

/* Makes the instance's group set exactly the file's; *changed says whether it moved. */
static int sync_instance_groups(struct wctx *w, size_t i, int64_t instance_id, bool *changed)
{
    const struct catalog_instance *in = &w->d->instances[i];
    int64_t *want = xcalloc(in->ngroups + 1, sizeof(*want));
    int64_t *have = NULL;
    struct db_result *res = NULL;
    char path[48];
    int rc = 0;
    snprintf(path, sizeof(path), "instances[%zu]", i);
    *changed = false;
    for (size_t g = 0; g < in->ngroups && rc == 0; g++)
        rc = group_id(w, i, g, &want[g]);
    if (rc != 0)
        goto out;
    const struct db_param iid[] = {DB_INT(instance_id)};
    rc = db_query(w->conn, "SELECT group_id FROM instance_groups WHERE instance_id = $1", iid, 1,
                  &res);
    if (rc != 0) {
        rc = db_refused(w, rc, path);
        goto out;
    }
    int rows = db_result_rows(res);
    have = xcalloc((size_t)rows + 1, sizeof(*have));
    for (int r = 0; r < rows; r++)
        have[r] = db_result_int(res, r, 0);
    for (int r = 0; r < rows && rc == 0; r++) {
        if (id_in(want, in->ngroups, have[r]))
            continue;
        const struct db_param p[] = {DB_INT(instance_id), DB_INT(have[r])};
        rc =
            db_exec(w->conn, "DELETE FROM instance_groups WHERE instance_id = $1 AND group_id = $2",
                    p, 2, NULL);
        *changed = true;
    }
    for (size_t g = 0; g < in->ngroups && rc == 0; g++) {
        if (id_in(have, (size_t)rows, want[g]))
            continue;
        const struct db_param p[] = {DB_INT(instance_id), DB_INT(want[g])};
        rc = db_exec(w->conn, "INSERT INTO instance_groups (instance_id, group_id) VALUES ($1, $2)",
                     p, 2, NULL);
        *changed = true;
    }
    if (rc != 0)
        rc = db_refused(w, rc, path);
out:
    db_result_free(res);
    free(have);
    free(want);
    return rc;
}

static int product_id_for(const struct wctx *w, const char *slug, int64_t *id)
{
    int fi = catalog_doc_find_product(w->d, slug);
    const struct known_product *k = fi < 0 ? known_by_slug(w, slug) : NULL;
    if (fi < 0 && !k)
        return USHER_ENOTFOUND; /* check_refs makes this unreachable */
    *id = fi >= 0 ? w->product_ids[fi] : k->id;
    return 0;
}

/* Lowering hard_cap below the seats already taken would break the seat invariant; say so
 * in the file's terms rather than as a CHECK failure. */
static int check_seats(struct wctx *w, size_t i, int64_t product_id)
{
    const struct catalog_instance *in = &w->d->instances[i];
    const struct db_param p[] = {DB_INT(product_id), DB_TEXT(in->name)};
    struct db_result *res = NULL;
    int rc = db_query(w->conn,
                      "SELECT allocated_seats FROM instances "
                      "WHERE product_id = $1 AND name = $2",
                      p, 2, &res);
    char path[48];
    snprintf(path, sizeof(path), "instances[%zu]", i);
    if (rc != 0)
        return db_refused(w, rc, path);
    int64_t seats = db_result_rows(res) ? db_result_int(res, 0, 0) : 0;
    db_result_free(res);
    if (seats > in->hard_cap)
        return werr(w, USHER_EINVAL,
                    "%s.hard_cap: %lld is below the %lld seats already allocated on \"%s\"", path,
                    (long long)in->hard_cap, (long long)seats, in->name);
    return 0;
}

static int write_instance(struct wctx *w, size_t i)
{
    const struct catalog_instance *in = &w->d->instances[i];
    int64_t product_id = 0, id = 0;
    enum outcome o;
    bool groups_changed = false;
    int rc = product_id_for(w, in->product, &product_id);
    if (rc != 0)
        return werr(w, USHER_EINVAL, "instances[%zu].product: unknown product", i);
    rc = check_seats(w, i, product_id);
    if (rc != 0)
        return rc;
    const struct col key[] = {{"product_id", DB_INT(product_id)}, {"name", DB_TEXT(in->name)}};
    struct col cols[8] = {
        {"base_url", DB_TEXT(in->base_url)},
        {"soft_cap", DB_INT(in->soft_cap)},
        {"allocation_cap", DB_INT(in->allocation_cap)},
        {"hard_cap", DB_INT(in->hard_cap)},
        {"is_active", DB_BOOL(in->is_active)},
        {"auto_allocate", DB_BOOL(in->auto_allocate)},
    };
    int ncols = 6;
    if (in->api_key_given)
        cols[ncols++] = (struct col){"api_key", DB_TEXT_OR_NULL(in->api_key)};
    const struct upsert u = {
        .table = "instances", .key = key, .nkey = 2, .cols = cols, .ncols = ncols, .stamped = true};
    rc = upsert(w->conn, &u, w->now, &id, &o);
    if (rc != 0) {
        char path[48];
        snprintf(path, sizeof(path), "instances[%zu]", i);
        return db_refused(w, rc, path);
    }
    rc = sync_instance_groups(w, i, id, &groups_changed);
    if (rc != 0)
        return rc;
    if (o == OUTCOME_UNCHANGED && groups_changed) {
        /* The row itself did not change, but the instance did: record when. */
        const struct db_param p[] = {DB_INT(id), DB_INT(w->now)};
        rc = db_exec(w->conn, "UPDATE instances SET updated_at = $2 WHERE id = $1", p, 2, NULL);
        if (rc != 0) {
            char path[48];
            snprintf(path, sizeof(path), "instances[%zu]", i);
            return db_refused(w, rc, path);
        }
        o = OUTCOME_UPDATED;
    }
    count(&w->report->instances, o);
    return 0;
}

/* ---- audit and the transaction ----------------------------------------------------------- */

static json_t *counts_json(const struct catalog_counts *c)
{
    return json_pack("{s:i, s:i, s:i}", "created", c->created, "updated", c->updated, "unchanged",
                     c->unchanged);
}

static int write_audit(struct wctx *w, const char *source)
{
    const struct catalog_apply_report *r = w->report;
    json_t *detail = json_pack("{s:o, s:o, s:o, s:o}", "groups", counts_json(&r->groups),
                               "products", counts_json(&r->products), "prices",
                               counts_json(&r->prices), "instances", counts_json(&r->instances));
    char *text = detail ? json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(detail);
    if (!text)
        return werr(w, USHER_EINVAL, "audit_log: cannot encode the report");
    const struct db_param p[] = {DB_INT(w->now), DB_TEXT_OR_NULL(source), DB_TEXT(text)};
    int rc = db_exec(w->conn,
                     "INSERT INTO audit_log (created_at, actor_user_id, actor, action, "
                     "target_type, target_id, detail) "
                     "VALUES ($1, NULL, 'cli', 'catalog.apply', 'catalog', $2, $3)",
                     p, DB_NPARAMS(p), NULL);
    free(text);
    if (rc != 0)
        return db_refused(w, rc, "audit_log");
    return 0;
}

static int write_all(struct wctx *w, const char *source)
{
    int rc = 0;
    if (db_conn_dialect(w->conn) == DB_POSTGRES) {
        struct db_result *res = NULL;
        rc = db_query(w->conn, APPLY_LOCK_SQL, NULL, 0, &res);
        db_result_free(res);
        if (rc != 0)
            return werr(w, rc, "locking the catalog: %s", usher_strerror(rc));
    }
    rc = load_known(w);
    if (rc == 0)
        rc = check_refs(w);
    if (rc == 0)
        rc = write_groups(w);
    if (rc == 0)
        rc = write_products(w);
    for (size_t i = 0; rc == 0 && i < w->d->nproducts; i++) {
        count(&w->report->products, w->product_outcome[i]);
        rc = write_prices(w, i);
    }
    for (size_t i = 0; rc == 0 && i < w->d->nproducts; i++)
        rc = check_sellable(w, i);
    for (size_t i = 0; rc == 0 && i < w->d->ninstances; i++)
        rc = write_instance(w, i);
    if (rc == 0)
        rc = write_audit(w, source);
    return rc;
}

int catalog_doc_write(struct db_pool *pool, const struct catalog_doc *d, const char *source,
                      struct catalog_apply_report *report)
{
    struct wctx w = {.d = d, .report = report, .now = clock_now()};
    int rc = db_acquire(pool, ACQUIRE_MS, &w.conn);
    if (rc != 0) {
        werr(&w, rc, "database: %s", usher_strerror(rc));
        goto out;
    }
    w.product_ids = xcalloc(d->nproducts + 1, sizeof(*w.product_ids));
    w.product_outcome = xcalloc(d->nproducts + 1, sizeof(*w.product_outcome));
    rc = db_begin(w.conn, DB_TX_WRITE);
    if (rc != 0) {
        werr(&w, rc, "database: cannot begin a transaction (%s)", usher_strerror(rc));
        goto out;
    }
    rc = write_all(&w, source);
    if (rc == 0) {
        rc = db_commit(w.conn);
        if (rc != 0)
            werr(&w, rc, "database: commit failed (%s)", usher_strerror(rc));
    }
out:
    if (rc != 0) {
        /* Nothing was written, so no count may claim otherwise. */
        char keep[sizeof(report->error)];
        memcpy(keep, report->error, sizeof(keep));
        memset(report, 0, sizeof(*report));
        memcpy(report->error, keep, sizeof(keep));
        if (w.conn)
            db_rollback(w.conn);
    }
    db_release(w.conn);
    known_cleanup(&w);
    free(w.product_ids);
    free(w.product_outcome);
    return rc;
}
