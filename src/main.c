/*
 * main.c — `usher` subcommand dispatch and wiring.
 *
 * Exit statuses: 0 success, 1 failure at run time, 2 bad usage or configuration.
 */
#include "check.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "db/db.h"
#include "db/migrate.h"
#include "db/task_store.h"
#include "domain/catalog.h"
#include "tasks/task_cli.h"
#include "tasks/worker.h"
#include "user_cli.h"
#include "web/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ulfius.h>

#define EXIT_USAGE 2
#define CLI_POOL_SIZE 2

static void usage(FILE *out)
{
    fputs("usage: usher <command>\n"
          "\n"
          "commands:\n"
          "  serve                  run the web server\n"
          "  migrate                apply pending database migrations\n"
          "  check                  validate the configuration and reach the database\n"
          "  catalog apply FILE     create or update products, prices, instances, groups\n"
          "  worker                 run background tasks until SIGTERM\n"
          "  task list [--failed]   show tasks, newest first\n"
          "  task retry ID          run a failed task again\n"
          "  task probe             enqueue a probe task and wait for a worker to run it\n"
          "  user sync USERNAME     sync one user's seats, groups and Keycloak attributes now\n"
          "  user refresh USERNAME  re-read one user's subscription status and items from Stripe\n"
          "  version                print the version\n"
          "\n"
          "Configuration comes from the environment and ./.env (see README.md).\n",
          out);
}

static int load_config(struct usher_config *cfg)
{
    struct config_problems problems;
    int rc = config_load(cfg, &problems);
    for (size_t i = 0; i < problems.count; i++)
        fprintf(stderr, "usher: configuration error: %s\n", problems.items[i]);
    config_problems_cleanup(&problems);
    return rc;
}

static int open_pool(const struct usher_config *cfg, struct db_pool **pool)
{
    int rc = db_pool_new(cfg->database_url, CLI_POOL_SIZE, pool);
    if (rc != 0)
        fprintf(stderr, "usher: cannot open the database (%s)\n", usher_strerror(rc));
    return rc;
}

static int cmd_migrate(const struct usher_config *cfg)
{
    struct db_pool *pool = NULL;
    if (open_pool(cfg, &pool) != 0)
        return 1;
    char *dir = xasprintf("%s/migrations", cfg->data_dir);
    int applied = 0, version = 0;
    int rc = db_migrate(pool, dir, &applied);
    if (rc == 0)
        rc = db_schema_version(pool, &version);
    free(dir);
    db_pool_free(pool);
    if (rc != 0) {
        fprintf(stderr, "usher: migrate failed: %s\n", usher_strerror(rc));
        return rc == USHER_ESCHEMA ? EXIT_USAGE : 1;
    }
    printf("applied %d migration%s (schema version %d)\n", applied, applied == 1 ? "" : "s",
           version);
    return 0;
}

static int cmd_catalog(const struct usher_config *cfg, int argc, char **argv)
{
    if (argc != 4 || strcmp(argv[2], "apply")) {
        usage(stderr);
        return EXIT_USAGE;
    }
    struct db_pool *pool = NULL;
    if (open_pool(cfg, &pool) != 0)
        return 1;
    struct catalog_apply_report report;
    int rc = catalog_apply_file(pool, argv[3], &report);
    db_pool_free(pool);
    if (rc != 0) {
        fprintf(stderr, "usher: catalog apply failed: %s: %s\n", argv[3],
                report.error[0] ? report.error : usher_strerror(rc));
        return rc == USHER_EINVAL || rc == USHER_EIO || rc == USHER_ELIMIT ? EXIT_USAGE : 1;
    }
    catalog_report_print(&report, stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
        !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "version")) {
        printf("usher %s\n", USHER_VERSION);
        return 0;
    }
    if (strcmp(cmd, "serve") && strcmp(cmd, "migrate") && strcmp(cmd, "check") &&
        strcmp(cmd, "catalog") && strcmp(cmd, "worker") && strcmp(cmd, "task") &&
        strcmp(cmd, "user")) {
        fprintf(stderr, "usher: unknown command '%s'\n", cmd);
        usage(stderr);
        return EXIT_USAGE;
    }
    struct usher_config cfg;
    if (load_config(&cfg) != 0) {
        config_cleanup(&cfg);
        return EXIT_USAGE;
    }
    if (cfg.debug)
        log_set_level(LOG_DEBUG);
    task_store_set_default_max_attempts(cfg.task_max_retries + 1);
    int status;
    if (ulfius_global_init() != U_OK) {
        fprintf(stderr, "usher: cannot initialise the HTTP library\n");
        config_cleanup(&cfg);
        return 1;
    }
    if (!strcmp(cmd, "serve")) {
        int rc = web_serve(&cfg);
        status = rc == 0 ? 0 : (rc == USHER_ESCHEMA || rc == USHER_ECONFIG) ? EXIT_USAGE : 1;
    } else if (!strcmp(cmd, "migrate")) {
        status = cmd_migrate(&cfg);
    } else if (!strcmp(cmd, "worker")) {
        int rc = task_worker_run(&cfg);
        status = rc == 0 ? 0 : (rc == USHER_ESCHEMA || rc == USHER_ECONFIG) ? EXIT_USAGE : 1;
    } else if (!strcmp(cmd, "task")) {
        status = task_cli_main(&cfg, argc, argv);
    } else if (!strcmp(cmd, "user")) {
        status = user_cli_main(&cfg, argc, argv);
    } else if (!strcmp(cmd, "check")) {
        status = usher_check(&cfg);
    } else {
        status = cmd_catalog(&cfg, argc, argv);
    }
    ulfius_global_close();
    config_cleanup(&cfg);
    return status;
}
