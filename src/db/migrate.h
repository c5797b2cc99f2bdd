/*
 * migrate.h — versioned, per-dialect schema migrations.
 *
 * Migrations are files DATA_DIR/migrations/<sqlite|postgres>/NNNN_name.sql, applied in
 * order, each in its own transaction together with its row in schema_migrations. Applying
 * is idempotent; a database that records a version this program does not know is refused
 * with USHER_ESCHEMA (it was migrated by a newer Usher).
 */
#ifndef USHER_DB_MIGRATE_H
#define USHER_DB_MIGRATE_H

#include "db/db.h"

/* Applies pending migrations from dir (the dialect subdirectory is chosen here).
 * *applied (may be NULL) gets how many were applied now. */
int db_migrate(struct db_pool *pool, const char *migrations_dir, int *applied);
/* Latest applied version (0 for an empty database), without changing anything. */
int db_schema_version(struct db_pool *pool, int *version);
/* Highest version available in migrations_dir for this pool's dialect. */
int db_migrations_latest(struct db_pool *pool, const char *migrations_dir, int *version);

#endif
