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
#include "core/messages.h"
#include "core/signals.h"
#include "db/db.h"
#include "db/migrate.h"
#include "db/task_store.h"
#include "domain/catalog.h"
#include "integrations/http_client.h"
#include "tasks/task_cli.h"
#include "tasks/worker.h"
#include "user_cli.h"
#include "web/server.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ulfius.h>

#define EXIT_USAGE 2
#define CLI_POOL_SIZE 2

/* One command: its name, its usage line(s) and what --help says about it. */
struct command {
    const char *name;
    const char *synopsis; /* the top-level usage's line */
    const char *help;
};

static const struct command commands[] = {
    {"serve", "serve                  run the web server",
     "usage: usher serve\n"
     "\n"
     "Runs the web server on BIND (default 127.0.0.1:8000) until SIGTERM or SIGINT, then\n"
     "finishes the requests in flight. Refuses to start on a database whose schema is\n"
     "newer than this program and warns when it is older (run usher migrate).\n"
     "With WORKER_IN_SERVE=true it also runs the background tasks, as usher worker does,\n"
     "and at a stop finishes the tasks in hand after the requests.\n"},
    {"worker", "worker                 run background tasks until SIGTERM",
     "usage: usher worker\n"
     "\n"
     "Runs background tasks (WORKER_CONCURRENCY at once) and the periodic jobs until SIGTERM\n"
     "or SIGINT, then finishes the tasks in hand. Run as many workers as you like, on one\n"
     "machine or several: they share the task queue in the database (or Redis, with\n"
     "TASK_BROKER_URL=redis://...).\n"},
    {"migrate", "migrate                apply pending database migrations",
     "usage: usher migrate\n"
     "\n"
     "Applies the pending migrations of USHER_DATA_DIR/migrations to DATABASE_URL, each in\n"
     "its own transaction, and prints the schema version. Idempotent; safe to run while\n"
     "older processes still serve. Exit status 2 when the database is newer than this\n"
     "program.\n"},
    {"check", "check                  validate the configuration and reach the database",
     "usage: usher check [--list-variables]\n"
     "\n"
     "Validates the configuration, then reaches the database, the task broker and the\n"
     "configured Keycloak realm without changing anything. Exit status 0 when all is well,\n"
     "1 when something failed, 2 on a configuration error.\n"
     "\n"
     "  --list-variables   print every configuration variable with its default and meaning\n"
     "                     (a Markdown table) and exit; reads no configuration\n"},
    {"catalog", "catalog apply FILE     create or update products, prices, instances, groups",
     "usage: usher catalog apply FILE\n"
     "\n"
     "Creates or updates the groups, products, prices and instances FILE (JSON) describes, in\n"
     "one transaction, and prints what was created, updated and unchanged. Idempotent;\n"
     "deletes nothing. Exit status 2 when the file is invalid (the message names the JSON\n"
     "path).\n"},
    {"task", "task list|retry|probe  inspect and retry background tasks", NULL},
    {"user", "user VERB USERNAME     sync, refresh or expire one user now", NULL},
    {"version", "version                print the version",
     "usage: usher version\n"
     "\n"
     "Prints the program's version.\n"},
};

#define COMMAND_COUNT (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    fputs("usage: usher <command> [arguments]\n"
          "       usher <command> --help\n"
          "\n"
          "commands:\n",
          out);
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        fprintf(out, "  %s\n", commands[i].synopsis);
    fputs("\n"
          "Configuration comes from the environment and ./.env (USHER_ENV_FILE); the variables\n"
          "are listed by `usher check --list-variables`. Exit statuses: 0 success, 1 failure,\n"
          "2 bad usage or configuration.\n",
          out);
}

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        if (!strcmp(commands[i].name, name))
            return &commands[i];
    return NULL;
}

/* `usher COMMAND ... --help`: the command's usage on stdout. */
static int command_help(const struct command *c)
{
    if (!strcmp(c->name, "task"))
        task_cli_usage(stdout);
    else if (!strcmp(c->name, "user"))
        user_cli_usage(stdout);
    else
        fputs(c->help, stdout);
    return 0;
}

static bool wants_help(int argc, char **argv)
{
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return true;
    return false;
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

/* `usher serve`, with the worker's threads beside the web server's when WORKER_IN_SERVE. */
static int cmd_serve(const struct usher_config *cfg)
{
    sigset_t stop;
    signals_block_stop(&stop); /* before the worker's threads: they inherit the mask */
    struct task_worker *worker = NULL;
    int rc = cfg->worker_in_serve ? task_worker_start(cfg, &stop, &worker) : 0;
    if (rc == 0)
        rc = web_serve(cfg);
    task_worker_stop(worker, &stop);
    return rc == 0 ? 0 : (rc == USHER_ESCHEMA || rc == USHER_ECONFIG) ? EXIT_USAGE : 1;
}

int main(int argc, char **argv)
{
    mem_init();
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
        !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    const char *cmd = argv[1];
    const struct command *command = find_command(cmd);
    if (!command) {
        fprintf(stderr, "usher: unknown command '%s'\n", cmd);
        usage(stderr);
        return EXIT_USAGE;
    }
    if (wants_help(argc, argv))
        return command_help(command);
    if (!strcmp(cmd, "version")) {
        printf("usher %s\n", USHER_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "check") && argc == 3 && !strcmp(argv[2], "--list-variables")) {
        config_print_variables(stdout);
        return 0;
    }
    struct usher_config cfg;
    if (load_config(&cfg) != 0) {
        config_cleanup(&cfg);
        return EXIT_USAGE;
    }
    if (cfg.debug)
        log_set_level(LOG_DEBUG);
    char *messages_error = NULL;
    if (messages_load(cfg.data_dir, &messages_error) != 0) {
        fprintf(stderr, "usher: %s\n", messages_error);
        free(messages_error);
        config_cleanup(&cfg);
        return EXIT_USAGE;
    }
    task_store_set_default_max_attempts(cfg.task_max_retries + 1);
    int status;
    http_global_init(); /* first: see http_client.h */
    if (ulfius_global_init() != U_OK) {
        fprintf(stderr, "usher: cannot initialise the HTTP library\n");
        config_cleanup(&cfg);
        return 1;
    }
    if (!strcmp(cmd, "serve")) {
        status = cmd_serve(&cfg);
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
