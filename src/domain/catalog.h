/*
 * catalog.h — `usher catalog apply FILE`: products, prices, instances and groups from one
 * JSON file (format: docs/catalog.md).
 *
 * Applying is an idempotent upsert by natural keys (group name, product slug, Stripe price
 * id, product slug + instance name) in one write transaction: either the whole file is in
 * the database afterwards or nothing changed. Items the file does not mention are left
 * alone, never deleted. Instance seat counts (allocated_seats) are never written by a file.
 * Every successful apply writes one audit_log row (actor "cli").
 *
 * This module owns the file format, its validation and the upsert; the CLI wiring lives in
 * main.c.
 */
#ifndef USHER_DOMAIN_CATALOG_H
#define USHER_DOMAIN_CATALOG_H

#include <jansson.h>
#include <stdio.h>

#include "db/db.h"

/* Files larger than this are refused before parsing: a catalog is a page of configuration. */
#define CATALOG_MAX_FILE_BYTES (1024 * 1024)

struct catalog_counts {
    int created;
    int updated;
    int unchanged;
};

struct catalog_apply_report {
    struct catalog_counts groups;
    struct catalog_counts products;
    struct catalog_counts prices;
    struct catalog_counts instances; /* a changed group set counts as an update */
    /* Empty on success. On failure, one line naming the JSON path at fault, e.g.
     * `products[2].prices[0].billing_period: must be "monthly" or "annual"`. Never contains
     * an api_key. */
    char error[512];
};

/*
 * Reads, validates and applies the catalog in the file at path. The report is cleared
 * first and always filled (counts on success, error on failure).
 * Returns 0; USHER_EINVAL for an unreadable-as-catalog file or a document that fails
 * validation (nothing written); USHER_EIO when the file cannot be read; USHER_ELIMIT when it
 * is larger than CATALOG_MAX_FILE_BYTES; USHER_ECONFLICT / USHER_EDB when the database
 * refused (nothing written).
 */
int catalog_apply_file(struct db_pool *pool, const char *path, struct catalog_apply_report *report);

/* Same as catalog_apply_file for an already parsed document (borrowed). */
int catalog_apply_json(struct db_pool *pool, const json_t *doc,
                       struct catalog_apply_report *report);

/* Prints the counts (or the error) for people, e.g.
 *   products:  created 2, updated 1, unchanged 4 */
void catalog_report_print(const struct catalog_apply_report *report, FILE *out);

#endif
