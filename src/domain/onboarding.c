/*
 * onboarding.c — catalog listings for the onboarding steps and the checks on what a visitor
 * chose (see onboarding.h).
 */
#include "domain/onboarding.h"

#include "core/err.h"
#include "core/human_format.h"
#include "core/mem.h"
#include "core/messages.h"
#include "db/db.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

bool onboarding_cycle_valid(const char *cycle)
{
    return cycle && (!strcmp(cycle, "monthly") || !strcmp(cycle, "annual"));
}

static bool slug_valid(const char *slug)
{
    size_t n = slug ? strlen(slug) : 0;
    if (n == 0 || n > ONBOARDING_SLUG_MAX)
        return false;
    for (const char *p = slug; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
            return false;
    return true;
}

/* ---- listings -------------------------------------------------------------------------- */

#define PRODUCT_COLUMNS                                                              \
    "SELECT p.id, p.slug, p.name, p.description, p.tagline, p.icon, p.footer_text, " \
    "p.features, p.is_featured, p.is_coming_soon "                                   \
    "FROM products p LEFT JOIN products par ON par.id = p.parent_id "

static const char by_page_sql[] =
    PRODUCT_COLUMNS "WHERE p.is_active AND p.page = $1 ORDER BY p.page, p.display_order, p.name";
static const char by_parent_sql[] =
    PRODUCT_COLUMNS "WHERE p.is_active AND p.page = $1 AND par.slug = $2 "
                    "ORDER BY p.page, p.display_order, p.name";
static const char by_slug_sql[] = PRODUCT_COLUMNS "WHERE p.is_active AND p.slug = $1";

static const char prices_sql[] =
    "SELECT r.product_id, r.billing_period, r.amount, r.currency, r.stripe_price_id "
    "FROM product_prices r JOIN products p ON p.id = r.product_id "
    "WHERE r.is_active AND p.is_active ORDER BY r.id";

static const char *text_or_empty(const struct db_result *res, int row, int col)
{
    const char *s = db_result_text(res, row, col);
    return s ? s : "";
}

/* Feature lines, trimmed, without empty ones. */
static json_t *feature_lines(const char *text)
{
    json_t *lines = json_array();
    const char *p = text;
    while (*p) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *s = p;
        size_t n = len;
        while (n && (*s == ' ' || *s == '\t' || *s == '\r'))
            s++, n--;
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
            n--;
        if (n)
            json_array_append_new(lines, json_stringn(s, n));
        p += len;
        if (*p == '\n')
            p++;
    }
    return lines;
}

static json_t *product_object(const struct db_result *res, int row)
{
    json_t *o = json_object();
    json_object_set_new(o, "slug", json_string(text_or_empty(res, row, 1)));
    json_object_set_new(o, "name", json_string(text_or_empty(res, row, 2)));
    json_object_set_new(o, "description", json_string(text_or_empty(res, row, 3)));
    json_object_set_new(o, "tagline", json_string(text_or_empty(res, row, 4)));
    json_object_set_new(o, "icon", json_string(text_or_empty(res, row, 5)));
    json_object_set_new(o, "footer_text", json_string(text_or_empty(res, row, 6)));
    json_object_set_new(o, "features", feature_lines(text_or_empty(res, row, 7)));
    json_object_set_new(o, "is_featured", json_boolean(db_result_bool(res, row, 8)));
    json_object_set_new(o, "is_coming_soon", json_boolean(db_result_bool(res, row, 9)));
    json_object_set_new(o, "prices", json_object());
    return o;
}

/* Attaches each product's first active price per cycle. by_id maps "id" -> product. */
/* An annual price gets per_month ("$8.33") and, when it is cheaper than twelve monthly
 * payments in the same currency, saving ("$20.00" a year). */
static void annual_figures(json_t *prices)
{
    json_t *annual = json_object_get(prices, "annual");
    if (!annual)
        return;
    json_int_t amount = json_integer_value(json_object_get(annual, "amount"));
    const char *currency = json_string_value(json_object_get(annual, "currency"));
    char money[FORMAT_PRICE_MAX];
    format_money(amount / 12, currency, money, sizeof money);
    json_object_set_new(annual, "per_month", json_string(money));
    json_t *monthly = json_object_get(prices, "monthly");
    const char *monthly_currency = json_string_value(json_object_get(monthly, "currency"));
    json_int_t twelve = json_integer_value(json_object_get(monthly, "amount"));
    if (!monthly || !monthly_currency || strcmp(monthly_currency, currency) ||
        twelve > INT64_MAX / 12)
        return;
    twelve *= 12;
    if (twelve > amount) {
        format_money(twelve - amount, currency, money, sizeof money);
        json_object_set_new(annual, "saving", json_string(money));
    }
}

static int attach_prices(struct db_conn *conn, json_t *by_id)
{
    struct db_result *res = NULL;
    int rc = db_query(conn, prices_sql, NULL, 0, &res);
    if (rc != 0)
        return rc;
    for (int i = 0; i < db_result_rows(res); i++) {
        json_t *product = json_object_get(by_id, text_or_empty(res, i, 0));
        const char *cycle = text_or_empty(res, i, 1);
        if (!product || !onboarding_cycle_valid(cycle))
            continue;
        json_t *prices = json_object_get(product, "prices");
        if (json_object_get(prices, cycle))
            continue; /* an older price for this cycle came first */
        int64_t amount = db_result_int(res, i, 2);
        const char *currency = text_or_empty(res, i, 3);
        char label[FORMAT_PRICE_MAX + 16];
        format_price(amount, currency, cycle, label, sizeof label);
        json_object_set_new(prices, cycle,
                            json_pack("{s:I, s:s, s:s, s:s}", "amount", (json_int_t)amount,
                                      "currency", currency, "stripe_price_id",
                                      text_or_empty(res, i, 4), "label", label));
    }
    db_result_free(res);
    const char *id;
    json_t *product;
    json_object_foreach (by_id, id, product)
        annual_figures(json_object_get(product, "prices"));
    return 0;
}

static int list_on(struct db_conn *conn, const char *sql, const struct db_param *p, int n,
                   json_t *list)
{
    struct db_result *res = NULL;
    int rc = db_query(conn, sql, p, n, &res);
    if (rc != 0)
        return rc;
    json_t *by_id = json_object();
    for (int i = 0; i < db_result_rows(res); i++) {
        json_t *o = product_object(res, i);
        json_array_append_new(list, o);
        json_object_set(by_id, text_or_empty(res, i, 0), o);
    }
    db_result_free(res);
    if (json_array_size(list))
        rc = attach_prices(conn, by_id);
    json_decref(by_id);
    return rc;
}

static int run_listing(struct db_pool *pool, const char *sql, const struct db_param *p, int n,
                       json_t **out)
{
    *out = NULL;
    struct db_conn *conn = NULL;
    int rc = db_acquire(pool, DB_WAIT_MS, &conn);
    if (rc != 0)
        return rc;
    json_t *list = json_array();
    rc = list_on(conn, sql, p, n, list);
    db_release(conn);
    if (rc != 0) {
        json_decref(list);
        return rc;
    }
    *out = list;
    return 0;
}

int onboarding_list(struct db_pool *pool, const char *page, const char *parent_slug, json_t **out)
{
    *out = NULL;
    if (!page || (strcmp(page, "plan") && strcmp(page, "addon") && strcmp(page, "storage")))
        return USHER_EINVAL;
    if (parent_slug) {
        const struct db_param p[] = {DB_TEXT(page), DB_TEXT(parent_slug)};
        return run_listing(pool, by_parent_sql, p, DB_NPARAMS(p), out);
    }
    const struct db_param p[] = {DB_TEXT(page)};
    return run_listing(pool, by_page_sql, p, DB_NPARAMS(p), out);
}

int onboarding_product(struct db_pool *pool, const char *slug, json_t **out)
{
    *out = NULL;
    if (!slug_valid(slug))
        return USHER_ENOTFOUND;
    const struct db_param p[] = {DB_TEXT(slug)};
    json_t *list = NULL;
    int rc = run_listing(pool, by_slug_sql, p, DB_NPARAMS(p), &list);
    if (rc != 0)
        return rc;
    if (json_array_size(list) != 1) {
        json_decref(list);
        return USHER_ENOTFOUND;
    }
    *out = json_incref(json_array_get(list, 0));
    json_decref(list);
    return 0;
}

/* ---- checks ---------------------------------------------------------------------------- */

struct product_facts {
    bool found; /* active, with this slug */
    char name[129];
    char page[16];
    char parent[ONBOARDING_SLUG_MAX + 1]; /* "" without a parent */
    bool coming_soon;
    bool priced; /* an active price for the cycle */
};

static int lookup(struct db_conn *conn, const char *slug, const char *cycle,
                  struct product_facts *f)
{
    memset(f, 0, sizeof *f);
    if (!slug_valid(slug))
        return 0;
    const struct db_param p[] = {DB_TEXT(slug), DB_TEXT(cycle)};
    struct db_result *res = NULL;
    int rc = db_query(conn,
                      "SELECT p.name, p.page, p.is_coming_soon, par.slug, "
                      "(SELECT COUNT(*) FROM product_prices r WHERE r.product_id = p.id AND "
                      "r.is_active AND r.billing_period = $2) "
                      "FROM products p LEFT JOIN products par ON par.id = p.parent_id "
                      "WHERE p.slug = $1 AND p.is_active",
                      p, DB_NPARAMS(p), &res);
    if (rc != 0)
        return rc;
    if (db_result_rows(res) == 1) {
        f->found = true;
        snprintf(f->name, sizeof f->name, "%s", text_or_empty(res, 0, 0));
        snprintf(f->page, sizeof f->page, "%s", text_or_empty(res, 0, 1));
        f->coming_soon = db_result_bool(res, 0, 2);
        snprintf(f->parent, sizeof f->parent, "%s", text_or_empty(res, 0, 3));
        f->priced = db_result_int(res, 0, 4) > 0;
    }
    db_result_free(res);
    return 0;
}

/* Checks what every chosen product shares; *error set when refused. */
static void check_purchasable(const struct product_facts *f, const char *cycle, char **error)
{
    if (f->coming_soon)
        *error = xasprintf("%s is coming soon and can't be chosen yet.", f->name);
    else if (!f->priced)
        *error = xasprintf("%s is not available with %s billing.", f->name, cycle);
}

static int check_plan(struct db_conn *conn, const struct onboarding_choice *c, char **error)
{
    if (!c->plan || !*c->plan) {
        *error = xstrdup(msg("order.choose_plan"));
        return 0;
    }
    struct product_facts f;
    int rc = lookup(conn, c->plan, c->cycle, &f);
    if (rc != 0)
        return rc;
    if (!f.found || strcmp(f.page, "plan"))
        *error = xstrdup(msg("order.plan_unavailable"));
    else
        check_purchasable(&f, c->cycle, error);
    return 0;
}

/* Every slug of both lists, in order, or NULL (and *error) when one is not a string. */
static const char **all_slugs(const struct onboarding_choice *c, size_t *n, char **error)
{
    size_t na = json_array_size(c->addons), ns = json_array_size(c->storage);
    *n = na + ns;
    const char **slugs = xcalloc(*n + 1, sizeof *slugs);
    for (size_t i = 0; i < *n; i++) {
        slugs[i] =
            json_string_value(json_array_get(i < na ? c->addons : c->storage, i < na ? i : i - na));
        if (!slugs[i]) {
            *error = xstrdup(msg("order.addon_unavailable"));
            free(slugs);
            return NULL;
        }
    }
    return slugs;
}

static bool has_duplicates(const char *const *slugs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (!strcmp(slugs[i], slugs[j]))
                return true;
    return false;
}

/* Checks slugs[from, to): general add-ons, or the plan's storage add-ons. */
static int check_addons(struct db_conn *conn, const struct onboarding_choice *c,
                        const char *const *slugs, size_t from, size_t to, bool storage,
                        char **error)
{
    for (size_t i = from; i < to && !*error; i++) {
        struct product_facts f;
        int rc = lookup(conn, slugs[i], c->cycle, &f);
        if (rc != 0)
            return rc;
        bool fits = f.found && !strcmp(f.page, storage ? "storage" : "addon") &&
                    (!storage || !strcmp(f.parent, c->plan));
        if (!fits)
            *error = xstrdup(storage ? msg("order.storage_unavailable")
                                     : msg("order.addon_unavailable"));
        else
            check_purchasable(&f, c->cycle, error);
    }
    return 0;
}

static int check_on(struct db_conn *conn, const struct onboarding_choice *c, char **error)
{
    if (!onboarding_cycle_valid(c->cycle)) {
        *error = xstrdup(msg("order.choose_cycle"));
        return 0;
    }
    if ((c->addons && !json_is_array(c->addons)) || (c->storage && !json_is_array(c->storage))) {
        *error = xstrdup(msg("order.addon_unavailable"));
        return 0;
    }
    size_t n = 0;
    const char **slugs = all_slugs(c, &n, error);
    if (!slugs)
        return 0;
    int rc = 0;
    size_t na = json_array_size(c->addons);
    if (n > ONBOARDING_MAX_ADDONS)
        *error = xstrdup(msg("order.too_many_addons"));
    else if (has_duplicates(slugs, n))
        *error = xstrdup(msg("order.addon_twice"));
    else
        rc = check_plan(conn, c, error);
    if (rc == 0 && !*error)
        rc = check_addons(conn, c, slugs, 0, na, false, error);
    if (rc == 0 && !*error)
        rc = check_addons(conn, c, slugs, na, n, true, error);
    free(slugs);
    return rc;
}

int onboarding_check(struct db_pool *pool, const struct onboarding_choice *c, char **error)
{
    *error = NULL;
    struct db_conn *conn = NULL;
    int rc = db_acquire(pool, DB_WAIT_MS, &conn);
    if (rc != 0)
        return rc;
    rc = check_on(conn, c, error);
    db_release(conn);
    if (rc != 0) {
        free(*error);
        *error = NULL;
        return rc;
    }
    return *error ? USHER_EINVAL : 0;
}

/* ---- step 4: username and order -------------------------------------------------------- */

int onboarding_order_total(const json_t *lines, int64_t *total, const char **currency)
{
    *total = 0;
    *currency = NULL;
    if (!json_is_array(lines) || json_array_size(lines) == 0)
        return USHER_EINVAL;
    size_t i;
    const json_t *line;
    int64_t sum = 0;
    json_array_foreach (lines, i, line) {
        const json_t *amount = json_object_get(line, "amount");
        const char *cur = json_string_value(json_object_get(line, "currency"));
        if (!json_is_integer(amount) || !cur || strlen(cur) != 3)
            return USHER_EINVAL;
        json_int_t a = json_integer_value(amount);
        if (a < 0 || sum > INT64_MAX - a)
            return USHER_EINVAL;
        if (*currency && strcasecmp(*currency, cur)) {
            *currency = NULL;
            return USHER_EINVAL;
        }
        if (!*currency)
            *currency = cur;
        sum += a;
    }
    *total = sum;
    return 0;
}

static int days_in_month(int year, int month0)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month0 == 1 && leap ? 29 : days[month0];
}

int64_t onboarding_renews_at(int64_t now, const char *cycle)
{
    time_t t = (time_t)now;
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        return now;
    int year = tm.tm_year + 1900;
    int month0 = tm.tm_mon;
    if (cycle && !strcmp(cycle, "annual")) {
        year++;
    } else if (++month0 == 12) {
        month0 = 0;
        year++;
    }
    int dim = days_in_month(year, month0);
    int64_t day = tm.tm_mday > dim ? dim : tm.tm_mday;
    /* Days since 1970-01-01 of year-month-day (civil calendar, proleptic Gregorian). */
    int64_t y = month0 < 2 ? year - 1 : year;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t mp = (month0 + 10) % 12; /* March = 0 */
    int64_t doy = (153 * mp + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = era * 146097 + doe - 719468;
    return days * 86400 + tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
}

/* Appends slug's line at its price for cycle; *error when the product or price is gone. */
static int add_line(struct db_pool *pool, const char *slug, const char *cycle, json_t *lines,
                    char **error)
{
    json_t *product = NULL;
    int rc = onboarding_product(pool, slug, &product);
    if (rc == USHER_ENOTFOUND) {
        *error = xstrdup(msg("order.no_longer_available"));
        return USHER_EINVAL;
    }
    if (rc != 0)
        return rc;
    json_t *price = json_object_get(json_object_get(product, "prices"), cycle);
    if (!price || json_is_true(json_object_get(product, "is_coming_soon"))) {
        json_decref(product);
        *error = xstrdup(msg("order.no_longer_available"));
        return USHER_EINVAL;
    }
    json_t *line = json_deep_copy(price);
    json_object_set(line, "slug", json_object_get(product, "slug"));
    json_object_set(line, "name", json_object_get(product, "name"));
    json_array_append_new(lines, line);
    json_decref(product);
    return 0;
}

int onboarding_order(struct db_pool *pool, const struct onboarding_choice *c, json_t **out,
                     char **error)
{
    *out = NULL;
    *error = NULL;
    if (!onboarding_cycle_valid(c->cycle) || !c->plan) {
        *error = xstrdup(msg("order.choose_plan_and_cycle"));
        return USHER_EINVAL;
    }
    json_t *lines = json_array();
    int rc = add_line(pool, c->plan, c->cycle, lines, error);
    const json_t *lists[] = {c->addons, c->storage};
    for (size_t l = 0; l < 2 && rc == 0; l++) {
        size_t i;
        const json_t *slug;
        json_array_foreach (lists[l], i, slug) {
            rc = add_line(pool, json_string_value(slug), c->cycle, lines, error);
            if (rc != 0)
                break;
        }
    }
    int64_t total = 0;
    const char *currency = NULL;
    if (rc == 0 && onboarding_order_total(lines, &total, &currency) != 0) {
        *error = xstrdup(msg("order.incompatible"));
        rc = USHER_EINVAL;
    }
    if (rc != 0) {
        json_decref(lines);
        return rc;
    }
    char label[FORMAT_PRICE_MAX + 16];
    format_price(total, currency, c->cycle, label, sizeof label);
    *out = json_pack("{s:s, s:O, s:I, s:s, s:s}", "cycle", c->cycle, "lines", lines, "total",
                     (json_int_t)total, "currency", currency, "total_label", label);
    json_decref(lines);
    return 0;
}
