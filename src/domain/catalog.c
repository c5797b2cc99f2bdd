/*
 * catalog.c — reading and validating catalog files (format: docs/catalog.md).
 *
 * Everything that can be checked without the database is checked here, before a
 * transaction is opened: JSON types, unknown keys, formats and lengths, enums, the caps
 * order, duplicates inside the file. Errors name the JSON path of the offending value so a
 * person can find it, e.g. `products[2].prices[0].billing_period: must be "monthly" or
 * "annual"`. Checks that need the database (parents and groups that live only there, name
 * clashes, seats already allocated) are in catalog_apply.c.
 *
 * The limits below bound memory and keep a typo (a huge pasted blob) from becoming a
 * catalog; they are far above any real catalog.
 */
#include "domain/catalog.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/fileio.h"
#include "core/mem.h"
#include "domain/catalog_internal.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_GROUPS 1000
#define MAX_PRODUCTS 1000
#define MAX_PRICES 50 /* per product */
#define MAX_INSTANCES 1000
#define MAX_INSTANCE_GROUPS 50
#define MAX_FEATURES 50
#define MAX_FEATURE_CHARS 256
#define MAX_ENTITLEMENTS 32
#define MAX_ENTITLEMENT_KEY 64
#define MAX_ENTITLEMENT_TEXT 256
#define MAX_LONG_TEXT 4096
#define MAX_URL 2048
#define MAX_STRIPE_ID 255
#define MAX_GROUP_NAME 255
#define MAX_CAP 1000000
#define MAX_AMOUNT 1000000000000LL /* ten billion in major units: a typo, not a price */

/* String field flags. */
#define F_REQUIRED 1u /* absent is an error */
#define F_NULLABLE 2u /* JSON null means "none" (NULL) */
#define F_NONEMPTY 4u /* "" is an error */
#define F_MULTILINE 8u /* newlines and tabs allowed */

struct vctx {
    char *err;
    size_t errsize;
};

__attribute__((format(printf, 4, 5))) static int fail(struct vctx *v, const char *base,
                                                      const char *key, const char *fmt, ...)
{
    size_t n = 0;
    if (base && *base && key)
        n = (size_t)snprintf(v->err, v->errsize, "%s.%s: ", base, key);
    else if (base && *base)
        n = (size_t)snprintf(v->err, v->errsize, "%s: ", base);
    else if (key)
        n = (size_t)snprintf(v->err, v->errsize, "%s: ", key);
    if (n < v->errsize) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(v->err + n, v->errsize - n, fmt, ap);
        va_end(ap);
    }
    return USHER_EINVAL;
}

/* Characters, not bytes: the database limits (length()) count characters, and jansson
 * guarantees valid UTF-8. */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

static bool has_control(const char *s, bool multiline)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (multiline && (c == '\n' || c == '\t'))
            continue;
        if (c < 0x20 || c == 0x7f)
            return true;
    }
    return false;
}

static bool all_chars_in(const char *s, const char *allowed)
{
    for (; *s; s++)
        if (!strchr(allowed, *s))
            return false;
    return true;
}

#define UPPER "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#define LOWER_DIGITS "abcdefghijklmnopqrstuvwxyz0123456789"
#define SLUG_CHARS LOWER_DIGITS "_-"
#define STRIPE_ID_CHARS LOWER_DIGITS UPPER "_-"

static int check_keys(struct vctx *v, const json_t *obj, const char *base,
                      const char *const *allowed)
{
    const char *key;
    json_t *val;
    json_object_foreach ((json_t *)obj, key, val) {
        (void)val;
        bool known = false;
        for (const char *const *a = allowed; *a && !known; a++)
            known = strcmp(*a, key) == 0;
        if (!known)
            return fail(v, base, key, "unknown key");
    }
    return 0;
}

static int get_string(struct vctx *v, const json_t *obj, const char *base, const char *key,
                      unsigned flags, const char *def, size_t max_chars, const char **out)
{
    const json_t *j = json_object_get(obj, key);
    if (!j) {
        if (flags & F_REQUIRED)
            return fail(v, base, key, "is required");
        *out = def;
        return 0;
    }
    if (json_is_null(j) && (flags & F_NULLABLE)) {
        *out = NULL;
        return 0;
    }
    if (!json_is_string(j))
        return fail(v, base, key, "must be a string");
    const char *s = json_string_value(j);
    if ((flags & F_NONEMPTY) && !*s)
        return fail(v, base, key, "must not be empty");
    if (utf8_chars(s) > max_chars)
        return fail(v, base, key, "must be at most %zu characters", max_chars);
    if (has_control(s, flags & F_MULTILINE))
        return fail(v, base, key, "must not contain control characters");
    *out = s;
    return 0;
}

static int get_bool(struct vctx *v, const json_t *obj, const char *base, const char *key, bool def,
                    bool *out)
{
    const json_t *j = json_object_get(obj, key);
    if (!j) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean(j))
        return fail(v, base, key, "must be true or false");
    *out = json_is_true(j);
    return 0;
}

/* required: absent is an error; otherwise def is used. */
static int get_int(struct vctx *v, const json_t *obj, const char *base, const char *key,
                   bool required, int64_t def, int64_t min, int64_t max, int64_t *out)
{
    const json_t *j = json_object_get(obj, key);
    if (!j) {
        if (required)
            return fail(v, base, key, "is required");
        *out = def;
        return 0;
    }
    if (!json_is_integer(j))
        return fail(v, base, key, "must be an integer");
    json_int_t i = json_integer_value(j);
    if (i < min || i > max)
        return fail(v, base, key, "must be between %lld and %lld", (long long)min, (long long)max);
    *out = (int64_t)i;
    return 0;
}

/* An optional array member; absent gives NULL. */
static int get_array(struct vctx *v, const json_t *obj, const char *base, const char *key,
                     size_t max_items, const json_t **out)
{
    const json_t *j = json_object_get(obj, key);
    *out = NULL;
    if (!j)
        return 0;
    if (!json_is_array(j))
        return fail(v, base, key, "must be an array");
    if (json_array_size(j) > max_items)
        return fail(v, base, key, "must have at most %zu items", max_items);
    *out = j;
    return 0;
}

static bool is_slug(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= 128 && all_chars_in(s, SLUG_CHARS);
}

static int get_slug(struct vctx *v, const json_t *obj, const char *base, const char *key,
                    unsigned flags, const char **out)
{
    int rc = get_string(v, obj, base, key, flags, NULL, 128, out);
    if (rc == 0 && *out && !is_slug(*out))
        return fail(v, base, key, "must be 1-128 characters of a-z, 0-9, \"_\" and \"-\"");
    return rc;
}

static int get_stripe_id(struct vctx *v, const json_t *obj, const char *base, const char *key,
                         unsigned flags, const char **out)
{
    int rc = get_string(v, obj, base, key, flags, NULL, MAX_STRIPE_ID, out);
    if (rc == 0 && *out && (!**out || !all_chars_in(*out, STRIPE_ID_CHARS)))
        return fail(v, base, key, "must be a Stripe id (letters, digits, \"_\" and \"-\")");
    return rc;
}

/* http(s)://host… with no spaces; what the dashboard links to and Keycloak stores. */
static bool is_web_url(const char *s)
{
    const char *rest = NULL;
    if (strncmp(s, "https://", 8) == 0)
        rest = s + 8;
    else if (strncmp(s, "http://", 7) == 0)
        rest = s + 7;
    if (!rest || !*rest || *rest == '/' || *rest == ':' || *rest == '?' || *rest == '#')
        return false;
    for (const char *p = s; *p; p++)
        if (*p == ' ' || *p == '"' || *p == '<' || *p == '>' || *p == '\\')
            return false;
    return true;
}

static int get_url(struct vctx *v, const json_t *obj, const char *base, const char *key,
                   unsigned flags, const char **out)
{
    int rc = get_string(v, obj, base, key, flags, NULL, MAX_URL, out);
    if (rc == 0 && *out && !is_web_url(*out))
        return fail(v, base, key, "must be an http:// or https:// URL with a host");
    return rc;
}

static int get_enum(struct vctx *v, const json_t *obj, const char *base, const char *key,
                    const char *def, const char *a, const char *b, const char **out)
{
    int rc = get_string(v, obj, base, key, def ? 0 : F_REQUIRED, def, 64, out);
    if (rc != 0)
        return rc;
    if (strcmp(*out, a) != 0 && strcmp(*out, b) != 0)
        return fail(v, base, key, "must be \"%s\" or \"%s\"", a, b);
    return 0;
}

static bool is_group_name(const char *s)
{
    /* Keycloak addresses groups by path, so a "/" inside a name would mean another group. */
    return *s && utf8_chars(s) <= MAX_GROUP_NAME && !has_control(s, false) && !strchr(s, '/');
}

/* ---- groups ------------------------------------------------------------------------------ */

static int parse_groups(struct vctx *v, const json_t *root, struct catalog_doc *d)
{
    const json_t *arr;
    int rc = get_array(v, root, "", "groups", MAX_GROUPS, &arr);
    if (rc != 0 || !arr)
        return rc;
    d->groups = xcalloc(json_array_size(arr) + 1, sizeof(*d->groups));
    size_t i;
    const json_t *g;
    json_array_foreach (arr, i, g) {
        char path[48];
        snprintf(path, sizeof(path), "groups[%zu]", i);
        if (!json_is_string(g))
            return fail(v, path, NULL, "must be a string (the group name)");
        const char *name = json_string_value(g);
        if (!is_group_name(name))
            return fail(v, path, NULL,
                        "must be 1-%d characters without \"/\" or control characters",
                        MAX_GROUP_NAME);
        for (size_t k = 0; k < d->ngroups; k++)
            if (strcmp(d->groups[k], name) == 0)
                return fail(v, path, NULL, "\"%s\" is listed twice (also groups[%zu])", name, k);
        d->groups[d->ngroups++] = name;
    }
    return 0;
}

/* ---- products ---------------------------------------------------------------------------- */

static const char *const product_keys[] = {"slug",
                                           "name",
                                           "stripe_product_id",
                                           "description",
                                           "dashboard_name",
                                           "dashboard_description",
                                           "icon",
                                           "parent",
                                           "is_addon",
                                           "requires_instance",
                                           "standalone_url",
                                           "page",
                                           "display_order",
                                           "is_coming_soon",
                                           "is_featured",
                                           "tagline",
                                           "features",
                                           "footer_text",
                                           "provisioner",
                                           "is_active",
                                           "prices",
                                           NULL};

static const char *const price_keys[] = {"stripe_price_id", "billing_period", "amount", "currency",
                                         "is_active",       "entitlements",   NULL};

/* Numeric grants are summed over a subscription and string grants copied, so only those two
 * kinds make sense; the text is stored canonical so re-applying compares equal. */
static int parse_entitlements(struct vctx *v, const json_t *price, const char *base, char **out)
{
    const json_t *e = json_object_get(price, "entitlements");
    *out = NULL;
    if (!e || json_is_null(e))
        return 0;
    if (!json_is_object(e))
        return fail(v, base, "entitlements", "must be an object such as {\"storage_gb\": 100}");
    if (json_object_size(e) > MAX_ENTITLEMENTS)
        return fail(v, base, "entitlements", "must have at most %d grants", MAX_ENTITLEMENTS);
    const char *key;
    json_t *val;
    json_object_foreach ((json_t *)e, key, val) {
        char path[160];
        snprintf(path, sizeof(path), "%s.entitlements", base);
        if (!*key || strlen(key) > MAX_ENTITLEMENT_KEY || !all_chars_in(key, LOWER_DIGITS "_"))
            return fail(v, path, key, "grant names must be 1-%d characters of a-z, 0-9 and \"_\"",
                        MAX_ENTITLEMENT_KEY);
        if (json_is_integer(val))
            continue;
        if (json_is_real(val) && isfinite(json_real_value(val)))
            continue;
        if (json_is_string(val) && utf8_chars(json_string_value(val)) <= MAX_ENTITLEMENT_TEXT &&
            !has_control(json_string_value(val), false))
            continue;
        return fail(v, path, key,
                    "must be a number or a single-line string of at most %d characters",
                    MAX_ENTITLEMENT_TEXT);
    }
    *out = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS);
    if (!*out)
        return fail(v, base, "entitlements", "cannot be encoded");
    return 0;
}

static int parse_price(struct vctx *v, const json_t *j, const char *base, struct catalog_price *p)
{
    if (!json_is_object(j))
        return fail(v, base, NULL, "must be an object");
    int rc = check_keys(v, j, base, price_keys);
    if (rc == 0)
        rc = get_stripe_id(v, j, base, "stripe_price_id", F_REQUIRED, &p->stripe_price_id);
    if (rc == 0)
        rc = get_enum(v, j, base, "billing_period", NULL, "monthly", "annual", &p->billing_period);
    if (rc == 0)
        rc = get_int(v, j, base, "amount", true, 0, 0, MAX_AMOUNT, &p->amount);
    if (rc == 0)
        rc = get_string(v, j, base, "currency", 0, "USD", 3, &p->currency);
    if (rc == 0 && (strlen(p->currency) != 3 || !all_chars_in(p->currency, UPPER)))
        rc = fail(v, base, "currency", "must be an ISO 4217 code in capitals, e.g. \"USD\"");
    if (rc == 0)
        rc = get_bool(v, j, base, "is_active", true, &p->is_active);
    if (rc == 0)
        rc = parse_entitlements(v, j, base, &p->entitlements);
    return rc;
}

static int parse_features(struct vctx *v, const json_t *j, const char *base, char **out)
{
    const json_t *arr;
    int rc = get_array(v, j, base, "features", MAX_FEATURES, &arr);
    if (rc != 0)
        return rc;
    size_t total = 1, i;
    const json_t *line;
    json_array_foreach (arr, i, line) {
        char path[96];
        snprintf(path, sizeof(path), "%s.features[%zu]", base, i);
        if (!json_is_string(line))
            return fail(v, path, NULL, "must be a string");
        const char *s = json_string_value(line);
        if (!*s || utf8_chars(s) > MAX_FEATURE_CHARS || has_control(s, false))
            return fail(v, path, NULL, "must be one line of 1-%d characters", MAX_FEATURE_CHARS);
        total += strlen(s) + 1;
    }
    char *text = xmalloc(total), *w = text;
    *w = '\0';
    json_array_foreach (arr, i, line) {
        size_t n = strlen(json_string_value(line));
        if (i > 0)
            *w++ = '\n';
        memcpy(w, json_string_value(line), n + 1);
        w += n;
    }
    *out = text;
    return 0;
}

/* Strings of a product; split from parse_product to keep each function readable. */
static int parse_product_text(struct vctx *v, const json_t *j, const char *base,
                              struct catalog_product *p)
{
    int rc = get_slug(v, j, base, "slug", F_REQUIRED, &p->slug);
    if (rc == 0)
        rc = get_string(v, j, base, "name", F_REQUIRED | F_NONEMPTY, NULL, 128, &p->name);
    if (rc == 0)
        rc = get_stripe_id(v, j, base, "stripe_product_id", F_NULLABLE, &p->stripe_product_id);
    if (rc == 0)
        rc = get_string(v, j, base, "description", F_MULTILINE, "", MAX_LONG_TEXT, &p->description);
    if (rc == 0)
        rc = get_string(v, j, base, "dashboard_name", 0, "", 128, &p->dashboard_name);
    if (rc == 0)
        rc = get_string(v, j, base, "dashboard_description", F_MULTILINE, "", MAX_LONG_TEXT,
                        &p->dashboard_description);
    if (rc == 0)
        rc = get_string(v, j, base, "icon", 0, "", 64, &p->icon);
    if (rc == 0)
        rc = get_slug(v, j, base, "parent", F_NULLABLE, &p->parent);
    if (rc == 0)
        rc = get_url(v, j, base, "standalone_url", F_NULLABLE, &p->standalone_url);
    if (rc == 0)
        rc = get_string(v, j, base, "tagline", 0, "", 128, &p->tagline);
    if (rc == 0)
        rc = get_string(v, j, base, "footer_text", 0, "", 256, &p->footer_text);
    if (rc == 0)
        rc = parse_features(v, j, base, &p->features);
    return rc;
}

static int parse_product_flags(struct vctx *v, const json_t *j, const char *base,
                               struct catalog_product *p)
{
    int rc = get_string(v, j, base, "page", 0, "addon", 16, &p->page);
    if (rc == 0 && strcmp(p->page, "plan") != 0 && strcmp(p->page, "addon") != 0 &&
        strcmp(p->page, "storage") != 0)
        rc = fail(v, base, "page", "must be \"plan\", \"addon\" or \"storage\"");
    if (rc == 0)
        rc = get_int(v, j, base, "display_order", false, 0, -1000000, 1000000, &p->display_order);
    if (rc == 0)
        rc = get_bool(v, j, base, "is_addon", false, &p->is_addon);
    if (rc == 0)
        rc = get_bool(v, j, base, "requires_instance", true, &p->requires_instance);
    if (rc == 0)
        rc = get_bool(v, j, base, "is_coming_soon", false, &p->is_coming_soon);
    if (rc == 0)
        rc = get_bool(v, j, base, "is_featured", false, &p->is_featured);
    if (rc == 0)
        rc = get_bool(v, j, base, "is_active", true, &p->is_active);
    /* The natural default follows requires_instance: instance products are reached through
     * Keycloak groups, the rest need no provisioning beyond attributes. */
    if (rc == 0)
        rc = get_enum(v, j, base, "provisioner", p->requires_instance ? "group" : "standalone",
                      "group", "standalone", &p->provisioner);
    if (rc == 0 && strcmp(p->provisioner, "group") == 0 && !p->requires_instance)
        rc = fail(v, base, "provisioner",
                  "\"group\" grants access through an instance's groups, so it needs "
                  "requires_instance true");
    if (rc == 0 && p->parent && strcmp(p->parent, p->slug) == 0)
        rc = fail(v, base, "parent", "a product cannot be its own parent");
    return rc;
}

static int parse_prices(struct vctx *v, const json_t *j, const char *base,
                        struct catalog_product *p)
{
    const json_t *arr;
    int rc = get_array(v, j, base, "prices", MAX_PRICES, &arr);
    if (rc != 0 || !arr)
        return rc;
    p->prices = xcalloc(json_array_size(arr) + 1, sizeof(*p->prices));
    size_t i;
    const json_t *pj;
    json_array_foreach (arr, i, pj) {
        char path[96];
        snprintf(path, sizeof(path), "%s.prices[%zu]", base, i);
        struct catalog_price *pr = &p->prices[p->nprices++];
        rc = parse_price(v, pj, path, pr);
        if (rc != 0)
            return rc;
        /* Onboarding offers one monthly and one annual price per product and currency; two
         * active ones would make the choice arbitrary. */
        for (size_t k = 0; k + 1 < p->nprices && pr->is_active; k++) {
            const struct catalog_price *o = &p->prices[k];
            if (o->is_active && strcmp(o->billing_period, pr->billing_period) == 0 &&
                strcmp(o->currency, pr->currency) == 0)
                return fail(v, path, NULL,
                            "a second active %s %s price (deactivate prices[%zu] or this one)",
                            pr->billing_period, pr->currency, k);
        }
    }
    return 0;
}

static int parse_product(struct vctx *v, const json_t *j, const char *base,
                         struct catalog_product *p)
{
    if (!json_is_object(j))
        return fail(v, base, NULL, "must be an object");
    int rc = check_keys(v, j, base, product_keys);
    if (rc == 0)
        rc = parse_product_text(v, j, base, p);
    if (rc == 0)
        rc = parse_product_flags(v, j, base, p);
    if (rc == 0)
        rc = parse_prices(v, j, base, p);
    return rc;
}

static int check_product_duplicates(struct vctx *v, const struct catalog_doc *d)
{
    for (size_t i = 0; i < d->nproducts; i++) {
        const struct catalog_product *p = &d->products[i];
        char path[48];
        snprintf(path, sizeof(path), "products[%zu]", i);
        for (size_t k = 0; k < i; k++) {
            if (strcmp(d->products[k].slug, p->slug) == 0)
                return fail(v, path, "slug", "\"%s\" is also products[%zu]", p->slug, k);
            if (strcmp(d->products[k].name, p->name) == 0)
                return fail(v, path, "name", "\"%s\" is also the name of products[%zu]", p->name,
                            k);
        }
        for (size_t a = 0; a < p->nprices; a++) {
            for (size_t k = 0; k <= i; k++) {
                const struct catalog_product *q = &d->products[k];
                size_t upto = k == i ? a : q->nprices;
                for (size_t b = 0; b < upto; b++) {
                    if (strcmp(q->prices[b].stripe_price_id, p->prices[a].stripe_price_id) != 0)
                        continue;
                    char ppath[96];
                    snprintf(ppath, sizeof(ppath), "%s.prices[%zu]", path, a);
                    return fail(v, ppath, "stripe_price_id",
                                "\"%s\" is also products[%zu].prices[%zu]",
                                p->prices[a].stripe_price_id, k, b);
                }
            }
        }
    }
    return 0;
}

static int parse_products(struct vctx *v, const json_t *root, struct catalog_doc *d)
{
    const json_t *arr;
    int rc = get_array(v, root, "", "products", MAX_PRODUCTS, &arr);
    if (rc != 0 || !arr)
        return rc;
    d->products = xcalloc(json_array_size(arr) + 1, sizeof(*d->products));
    size_t i;
    const json_t *pj;
    json_array_foreach (arr, i, pj) {
        char path[48];
        snprintf(path, sizeof(path), "products[%zu]", i);
        rc = parse_product(v, pj, path, &d->products[d->nproducts++]);
        if (rc != 0)
            return rc;
    }
    return check_product_duplicates(v, d);
}

/* ---- instances --------------------------------------------------------------------------- */

static const char *const instance_keys[] = {
    "product",        "name",     "base_url",  "api_key",       "groups", "soft_cap",
    "allocation_cap", "hard_cap", "is_active", "auto_allocate", NULL};

static int parse_instance_groups(struct vctx *v, const json_t *j, const char *base,
                                 struct catalog_instance *in)
{
    const json_t *arr;
    int rc = get_array(v, j, base, "groups", MAX_INSTANCE_GROUPS, &arr);
    if (rc != 0 || !arr)
        return rc;
    in->groups = xcalloc(json_array_size(arr) + 1, sizeof(*in->groups));
    size_t i;
    const json_t *g;
    json_array_foreach (arr, i, g) {
        char path[96];
        snprintf(path, sizeof(path), "%s.groups[%zu]", base, i);
        if (!json_is_string(g) || !is_group_name(json_string_value(g)))
            return fail(v, path, NULL, "must be a group name");
        const char *name = json_string_value(g);
        for (size_t k = 0; k < in->ngroups; k++)
            if (strcmp(in->groups[k], name) == 0)
                return fail(v, path, NULL, "\"%s\" is listed twice", name);
        in->groups[in->ngroups++] = name;
    }
    return 0;
}

static int parse_instance(struct vctx *v, const json_t *j, const char *base,
                          struct catalog_instance *in)
{
    if (!json_is_object(j))
        return fail(v, base, NULL, "must be an object");
    int rc = check_keys(v, j, base, instance_keys);
    if (rc == 0)
        rc = get_slug(v, j, base, "product", F_REQUIRED, &in->product);
    if (rc == 0)
        rc = get_string(v, j, base, "name", F_REQUIRED | F_NONEMPTY, NULL, 128, &in->name);
    if (rc == 0)
        rc = get_url(v, j, base, "base_url", F_REQUIRED, &in->base_url);
    in->api_key_given = json_object_get(j, "api_key") != NULL;
    if (rc == 0)
        rc = get_string(v, j, base, "api_key", F_NULLABLE, NULL, 4096, &in->api_key);
    if (rc == 0)
        rc = parse_instance_groups(v, j, base, in);
    if (rc == 0)
        rc = get_int(v, j, base, "soft_cap", false, 70, 0, MAX_CAP, &in->soft_cap);
    if (rc == 0)
        rc = get_int(v, j, base, "allocation_cap", false, 90, 0, MAX_CAP, &in->allocation_cap);
    if (rc == 0)
        rc = get_int(v, j, base, "hard_cap", false, 100, 0, MAX_CAP, &in->hard_cap);
    if (rc == 0 && in->soft_cap > in->allocation_cap)
        rc = fail(v, base, "soft_cap", "%lld must not exceed allocation_cap (%lld)",
                  (long long)in->soft_cap, (long long)in->allocation_cap);
    if (rc == 0 && in->allocation_cap > in->hard_cap)
        rc = fail(v, base, "allocation_cap", "%lld must not exceed hard_cap (%lld)",
                  (long long)in->allocation_cap, (long long)in->hard_cap);
    if (rc == 0)
        rc = get_bool(v, j, base, "is_active", true, &in->is_active);
    if (rc == 0)
        rc = get_bool(v, j, base, "auto_allocate", true, &in->auto_allocate);
    return rc;
}

static int parse_instances(struct vctx *v, const json_t *root, struct catalog_doc *d)
{
    const json_t *arr;
    int rc = get_array(v, root, "", "instances", MAX_INSTANCES, &arr);
    if (rc != 0 || !arr)
        return rc;
    d->instances = xcalloc(json_array_size(arr) + 1, sizeof(*d->instances));
    size_t i;
    const json_t *ij;
    json_array_foreach (arr, i, ij) {
        char path[48];
        snprintf(path, sizeof(path), "instances[%zu]", i);
        struct catalog_instance *in = &d->instances[d->ninstances++];
        rc = parse_instance(v, ij, path, in);
        if (rc != 0)
            return rc;
        for (size_t k = 0; k < i; k++) {
            const struct catalog_instance *o = &d->instances[k];
            if (strcmp(o->product, in->product) == 0 && strcmp(o->name, in->name) == 0)
                return fail(v, path, "name", "\"%s\" of product \"%s\" is also instances[%zu]",
                            in->name, in->product, k);
        }
    }
    return 0;
}

/* ---- document ---------------------------------------------------------------------------- */

int catalog_doc_find_product(const struct catalog_doc *d, const char *slug)
{
    for (size_t i = 0; i < d->nproducts; i++)
        if (strcmp(d->products[i].slug, slug) == 0)
            return (int)i;
    return -1;
}

int catalog_doc_parse(const json_t *doc, struct catalog_doc *out, char *err, size_t errsize)
{
    static const char *const top_keys[] = {"version", "groups", "products", "instances", NULL};
    struct vctx v = {.err = err, .errsize = errsize};
    memset(out, 0, sizeof(*out));
    if (!json_is_object(doc))
        return fail(&v, "", "(document)", "must be a JSON object");
    int rc = check_keys(&v, doc, "", top_keys);
    /* Only one format so far; the key exists so a later format can be told apart. */
    const json_t *version = json_object_get(doc, "version");
    if (rc == 0 && version && !(json_is_integer(version) && json_integer_value(version) == 1))
        rc = fail(&v, "", "version", "must be 1");
    if (rc == 0)
        rc = parse_groups(&v, doc, out);
    if (rc == 0)
        rc = parse_products(&v, doc, out);
    if (rc == 0)
        rc = parse_instances(&v, doc, out);
    return rc;
}

void catalog_doc_cleanup(struct catalog_doc *d)
{
    for (size_t i = 0; i < d->nproducts; i++) {
        struct catalog_product *p = &d->products[i];
        for (size_t k = 0; k < p->nprices; k++)
            free(p->prices[k].entitlements);
        free(p->prices);
        free(p->features);
    }
    for (size_t i = 0; i < d->ninstances; i++)
        free(d->instances[i].groups);
    free(d->products);
    free(d->instances);
    free(d->groups);
    memset(d, 0, sizeof(*d));
}

/* ---- entry points ------------------------------------------------------------------------ */

static int apply(struct db_pool *pool, const json_t *doc, const char *source,
                 struct catalog_apply_report *report)
{
    struct catalog_doc d;
    int rc = catalog_doc_parse(doc, &d, report->error, sizeof(report->error));
    if (rc == 0)
        rc = catalog_doc_write(pool, &d, source, report);
    catalog_doc_cleanup(&d);
    return rc;
}

int catalog_apply_json(struct db_pool *pool, const json_t *doc, struct catalog_apply_report *report)
{
    memset(report, 0, sizeof(*report));
    return apply(pool, doc, NULL, report);
}

static int read_file(const char *path, struct catalog_apply_report *report, char **data,
                     size_t *len)
{
    struct buf text;
    buf_init(&text);
    int rc = file_read_all(path, CATALOG_MAX_FILE_BYTES, &text);
    if (rc == USHER_ELIMIT)
        snprintf(report->error, sizeof(report->error), "%s: larger than %d bytes", path,
                 CATALOG_MAX_FILE_BYTES);
    else if (rc < 0)
        snprintf(report->error, sizeof(report->error), "%s: %s", path, strerror(errno));
    if (rc < 0) {
        buf_cleanup(&text);
        return rc == USHER_ELIMIT ? rc : USHER_EIO;
    }
    *len = text.len;
    *data = buf_detach(&text);
    buf_cleanup(&text);
    return 0;
}

int catalog_apply_file(struct db_pool *pool, const char *path, struct catalog_apply_report *report)
{
    char *data = NULL;
    size_t len = 0;
    json_t *doc = NULL;
    memset(report, 0, sizeof(*report));
    int rc = read_file(path, report, &data, &len);
    if (rc != 0)
        goto out;
    json_error_t jerr;
    /* A key given twice is almost always a paste mistake; jansson would keep the last. */
    doc = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        /* jansson quotes the text "near" the error, which could be part of an api_key; the
         * line and column locate it well enough. */
        char *near = strstr(jerr.text, " near ");
        if (near)
            *near = '\0';
        snprintf(report->error, sizeof(report->error), "%s:%d:%d: invalid JSON: %s", path,
                 jerr.line, jerr.column, jerr.text);
        rc = USHER_EINVAL;
        goto out;
    }
    rc = apply(pool, doc, path, report);
out:
    json_decref(doc);
    free(data);
    return rc;
}

static void print_counts(FILE *out, const char *label, const struct catalog_counts *c)
{
    fprintf(out, "  %-10s created %d, updated %d, unchanged %d\n", label, c->created, c->updated,
            c->unchanged);
}

void catalog_report_print(const struct catalog_apply_report *report, FILE *out)
{
    if (report->error[0]) {
        fprintf(out, "catalog not applied (nothing changed): %s\n", report->error);
        return;
    }
    fprintf(out, "catalog applied:\n");
    print_counts(out, "groups:", &report->groups);
    print_counts(out, "products:", &report->products);
    print_counts(out, "prices:", &report->prices);
    print_counts(out, "instances:", &report->instances);
}
