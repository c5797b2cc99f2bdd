/*
 * catalog_internal.h — the validated in-memory form of a catalog file, shared by the parser
 * (catalog.c) and the database writer (catalog_apply.c). Not for other modules: they use
 * catalog.h.
 *
 * Strings marked "borrowed" point into the jansson document that was parsed, so the
 * document must outlive the catalog_doc. Everything the parser had to build itself
 * (features text, canonical entitlements JSON, arrays) is owned and released by
 * catalog_doc_cleanup.
 */
#ifndef USHER_DOMAIN_CATALOG_INTERNAL_H
#define USHER_DOMAIN_CATALOG_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "domain/catalog.h"

struct catalog_price {
    const char *stripe_price_id; /* borrowed */
    const char *billing_period; /* borrowed; "monthly" | "annual" */
    int64_t amount; /* minor units */
    const char *currency; /* borrowed; three uppercase letters */
    bool is_active;
    char *entitlements; /* owned; canonical JSON (compact, sorted keys) or NULL */
};

struct catalog_product {
    const char *slug; /* borrowed, like every const char * below; NULL = SQL NULL */
    const char *name;
    const char *stripe_product_id;
    const char *description;
    const char *dashboard_name;
    const char *dashboard_description;
    const char *icon;
    const char *parent; /* slug, or NULL */
    const char *standalone_url;
    const char *page;
    const char *tagline;
    const char *footer_text;
    const char *provisioner;
    char *features; /* owned; the feature lines joined with '\n' */
    int64_t display_order;
    bool is_addon;
    bool requires_instance;
    bool is_coming_soon;
    bool is_featured;
    bool is_active;
    struct catalog_price *prices; /* owned array */
    size_t nprices;
};

struct catalog_instance {
    const char *product; /* borrowed slug */
    const char *name;
    const char *base_url;
    const char **groups; /* owned array of borrowed names */
    size_t ngroups;
    int64_t soft_cap;
    int64_t allocation_cap;
    int64_t hard_cap;
    bool is_active;
    bool auto_allocate;
    /* An absent api_key leaves the stored one alone (secrets need not live in the file);
     * null clears it. */
    bool api_key_given;
    const char *api_key;
};

struct catalog_doc {
    const char **groups; /* owned array of borrowed names */
    size_t ngroups;
    struct catalog_product *products; /* owned array; index = position in the file */
    size_t nproducts;
    struct catalog_instance *instances; /* owned array; index = position in the file */
    size_t ninstances;
};

/* Validates doc completely (types, unknown keys, formats, limits, duplicates, caps order,
 * references inside the file) without touching any database. On USHER_EINVAL, err gets one
 * line naming the JSON path. *out must be released with catalog_doc_cleanup either way. */
int catalog_doc_parse(const json_t *doc, struct catalog_doc *out, char *err, size_t errsize);
void catalog_doc_cleanup(struct catalog_doc *d);

/* Index of the product with this slug in d, or -1. */
int catalog_doc_find_product(const struct catalog_doc *d, const char *slug);

/* Writes a parsed document in one transaction (catalog_apply.c). source (may be NULL) is
 * recorded in the audit row. Fills report's counts, or report->error on failure. */
int catalog_doc_write(struct db_pool *pool, const struct catalog_doc *d, const char *source,
                      struct catalog_apply_report *report);

#endif
