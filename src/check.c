/*
 * check.c — `usher check` (see check.h): database and schema, the task broker, and the
 * Keycloak service account with the realm's handling of Usher's attributes and the groups
 * the catalog's instances grant.
 */
#include "check.h"

#include "core/config.h"
#include "core/err.h"
#include "core/mem.h"
#include "db/db.h"
#include "db/migrate.h"
#include "domain/entitlements.h"
#include "domain/provisioning.h"
#include "integrations/keycloak_admin.h"
#include "tasks/redis_broker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_POOL_SIZE 1

static int check_database(const struct usher_config *cfg, struct db_pool *pool)
{
    char *dir = xasprintf("%s/migrations", cfg->data_dir);
    int have = 0, latest = 0;
    int rc = db_ping(pool);
    if (rc == 0)
        rc = db_schema_version(pool, &have);
    if (rc == 0)
        rc = db_migrations_latest(pool, dir, &latest);
    free(dir);
    if (rc != 0) {
        printf("database: FAILED (%s)\n", usher_strerror(rc));
        return 1;
    }
    if (have > latest) {
        printf("database: FAILED (schema version %d is newer than this program's %d)\n", have,
               latest);
        return 1;
    }
    printf("database: ok (schema version %d of %d%s)\n", have, latest,
           have < latest ? "; run usher migrate" : "");
    return have < latest ? 1 : 0;
}

static int check_broker(const struct usher_config *cfg)
{
    if (strncmp(cfg->task_broker_url, "redis://", 8)) {
        printf("task broker: ok (the database)\n");
        return 0;
    }
    char detail[256] = "";
    int rc = task_redis_check(cfg->task_broker_url, detail, sizeof detail);
    printf("task broker: %s%s%s%s\n", rc == 0 ? "ok (redis)" : "FAILED", *detail ? " (" : "",
           detail, *detail ? ")" : "");
    return rc == 0 ? 0 : 1;
}

/* The attribute names a sync may write, NULL-terminated (for kc_profile_check). */
static char **attribute_names(struct db_pool *pool)
{
    struct db_conn *conn = NULL;
    json_t *list = NULL;
    if (db_acquire(pool, DB_WAIT_MS, &conn) != 0 || entitlements_attribute_names(conn, &list) != 0)
        list = json_array(); /* the database check above reports the failure */
    db_release(conn);
    char **names = xcalloc(json_array_size(list) + 1, sizeof *names);
    for (size_t i = 0; i < json_array_size(list); i++)
        names[i] = xstrdup(json_string_value(json_array_get(list, i)));
    json_decref(list);
    return names;
}

static void free_names(char **names)
{
    for (char **p = names; *p; p++)
        free(*p);
    free(names);
}

static int report_profile(struct kc_admin *kc, struct db_pool *pool)
{
    char **names = attribute_names(pool);
    char *policy = NULL;
    struct kc_attr_report dropped = {0};
    struct kc_error err = {0};
    int rc = kc_profile_check(kc, (const char *const *)names, &policy, &dropped, &err);
    if (rc < 0)
        printf("keycloak user profile: FAILED (%s)\n",
               *err.message ? err.message : usher_strerror(rc));
    else if (dropped.count)
        printf("warning: keycloak drops %zu Usher attribute(s) (unmanagedAttributePolicy=%s), "
               "e.g. %s; see README \"Keycloak realm setting\"\n",
               dropped.count, policy ? policy : "DISABLED", dropped.names[0]);
    else
        printf("keycloak user profile: ok (unmanagedAttributePolicy=%s)\n",
               policy ? policy : "DISABLED");
    free(policy);
    kc_attr_report_cleanup(&dropped);
    free_names(names);
    return rc < 0 ? 1 : 0;
}

/* Every group an instance grants must exist in the realm, or each new customer's sync fails
 * on it. */
static int report_groups(struct kc_admin *kc, struct db_pool *pool)
{
    json_t *groups = NULL;
    if (provisioning_required_groups(pool, &groups) != 0)
        return 0; /* the database check above reports the failure */
    size_t missing = 0, i;
    json_t *g;
    int failed = 0;
    json_array_foreach (groups, i, g) {
        const char *name = json_string_value(json_object_get(g, "group"));
        struct kc_error err = {0};
        char *id = NULL;
        int rc = kc_group_find(kc, name, &id, &err);
        free(id);
        if (rc == USHER_ENOTFOUND) {
            printf("keycloak group \"%s\" of instance \"%s\": MISSING (create it in the "
                   "realm, or customers on that instance are never granted access)\n",
                   name, json_string_value(json_object_get(g, "instance")));
            missing++;
        } else if (rc != 0) {
            printf("keycloak group \"%s\": FAILED (%s)\n", name,
                   *err.message ? err.message : usher_strerror(rc));
            failed = 1;
        }
    }
    if (missing == 0 && !failed)
        printf("keycloak groups: ok (%zu granted by instances)\n", json_array_size(groups));
    json_decref(groups);
    return failed || missing ? 1 : 0;
}

static int check_keycloak(const struct usher_config *cfg, struct db_pool *pool)
{
    struct kc_admin *kc = NULL;
    if (kc_admin_new(cfg, &kc) != 0) {
        printf("keycloak admin: not configured\n");
        return 0;
    }
    struct kc_error err = {0};
    int rc = kc_admin_token_check(kc, &err);
    if (rc != 0)
        printf("keycloak admin: FAILED (%s)\n", *err.message ? err.message : usher_strerror(rc));
    else
        printf("keycloak admin: ok (service account token)\n");
    int failed = rc != 0;
    if (rc == 0)
        failed = report_profile(kc, pool);
    if (rc == 0)
        failed |= report_groups(kc, pool);
    kc_admin_free(kc);
    return failed;
}

int usher_check(const struct usher_config *cfg)
{
    printf("configuration: ok\n");
    struct config_problems warnings;
    config_warnings(cfg, &warnings);
    for (size_t i = 0; i < warnings.count; i++)
        printf("warning: %s\n", warnings.items[i]);
    config_problems_cleanup(&warnings);
    struct db_pool *pool = NULL;
    int rc = db_pool_new(cfg->database_url, CHECK_POOL_SIZE, &pool);
    if (rc != 0) {
        printf("database: FAILED (%s)\n", usher_strerror(rc));
        return 1;
    }
    int failed = check_database(cfg, pool);
    failed |= check_broker(cfg);
    failed |= check_keycloak(cfg, pool);
    db_pool_free(pool);
    return failed;
}
