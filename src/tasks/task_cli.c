/*
 * task_cli.c — `usher task list | retry | probe` (see task_cli.h).
 */
#include "tasks/task_cli.h"

#include "core/clock.h"
#include "core/config.h"
#include "core/crypto.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "db/db.h"
#include "db/task_store.h"
#include "tasks/builtin.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define CLI_POOL_SIZE 2
#define LIST_DEFAULT 50
#define PROBE_MAX 10000
#define PROBE_POLL_MS 200
#define ERROR_COLUMN 80

void task_cli_usage(FILE *out)
{
    fputs("usage: usher task list [--failed | --state STATE] [--limit N]\n"
          "       usher task retry ID\n"
          "       usher task probe [--count N] [--sleep-ms MS] [--timeout SECONDS] "
          "[--no-wait]\n"
          "\n"
          "  list    tasks, newest first (STATE: queued, running, done, failed; N up to 1000,\n"
          "          default 50); --failed lists the tasks out of retries\n"
          "  retry   queue a failed task again with a fresh set of retries\n"
          "  probe   enqueue N probe tasks and wait until workers ran them (exit 0), or\n"
          "          only enqueue them (--no-wait): a smoke test of the workers\n",
          out);
}

static int usage(void)
{
    task_cli_usage(stderr);
    return EXIT_USAGE;
}

/* A whole number in [min, max] from text; false otherwise. */
static bool number(const char *text, long long min, long long max, long long *out)
{
    if (!text || !*text)
        return false;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static int with_conn(const struct usher_config *cfg, struct db_pool **pool, struct db_conn **conn)
{
    int rc = db_pool_new(cfg->database_url, CLI_POOL_SIZE, pool);
    if (rc == 0)
        rc = db_acquire(*pool, DB_WAIT_MS, conn);
    if (rc != 0)
        fprintf(stderr, "usher: cannot reach the database (%s)\n", usher_strerror(rc));
    return rc;
}

static void done_with(struct db_pool *pool, struct db_conn *conn)
{
    db_release(conn);
    db_pool_free(pool);
}

/* ---- list ------------------------------------------------------------------------------- */

static void print_task(const struct task_info *t)
{
    char run_at[32], updated[32], error[ERROR_COLUMN * 4 + 8] = "";
    clock_format_rfc3339(t->run_at, run_at, sizeof run_at);
    clock_format_rfc3339(t->updated_at, updated, sizeof updated);
    if (t->last_error) {
        char cut[ERROR_COLUMN + 1];
        snprintf(cut, sizeof cut, "%s", t->last_error);
        log_quote(error, sizeof error, cut);
    }
    char attempts[32];
    snprintf(attempts, sizeof attempts, "%d/%d", t->attempts, t->max_attempts);
    printf("%-8lld %-36s %-8s %-9s %-21s %-21s %s\n", (long long)t->id, t->name, t->state, attempts,
           run_at, updated, error);
}

static int cmd_list(const struct usher_config *cfg, int argc, char **argv)
{
    const char *state = NULL;
    long long limit = LIST_DEFAULT;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--failed"))
            state = "failed";
        else if (!strcmp(argv[i], "--state") && i + 1 < argc)
            state = argv[++i];
        else if (!strcmp(argv[i], "--limit") && i + 1 < argc &&
                 number(argv[i + 1], 1, 1000, &limit))
            i++;
        else
            return usage();
    }
    if (state && strcmp(state, "queued") && strcmp(state, "running") && strcmp(state, "done") &&
        strcmp(state, "failed")) {
        fprintf(stderr, "usher: --state must be queued, running, done or failed\n");
        return EXIT_USAGE;
    }
    struct db_pool *pool = NULL;
    struct db_conn *conn = NULL;
    if (with_conn(cfg, &pool, &conn) != 0) {
        done_with(pool, conn);
        return EXIT_FAIL;
    }
    struct task_info *items = NULL;
    int n = 0;
    int64_t total = -1;
    int rc = task_list(conn, state, (int)limit, &items, &n);
    if (rc == 0 && state)
        rc = task_count(conn, state, &total);
    done_with(pool, conn);
    if (rc != 0) {
        fprintf(stderr, "usher: task list failed: %s\n", usher_strerror(rc));
        task_info_free_array(items, n);
        return EXIT_FAIL;
    }
    printf("%-8s %-36s %-8s %-9s %-21s %-21s %s\n", "ID", "NAME", "STATE", "ATTEMPTS", "RUN_AT",
           "UPDATED_AT", "LAST_ERROR");
    for (int i = 0; i < n; i++)
        print_task(&items[i]);
    if (state)
        printf("%lld %s task%s (%d shown)\n", (long long)total, state, total == 1 ? "" : "s", n);
    else
        printf("%d task%s shown\n", n, n == 1 ? "" : "s");
    task_info_free_array(items, n);
    return 0;
}

/* ---- retry ------------------------------------------------------------------------------ */

static int cmd_retry(const struct usher_config *cfg, int argc, char **argv)
{
    long long id = 0;
    if (argc != 4 || !number(argv[3], 1, INT64_MAX, &id))
        return usage();
    struct db_pool *pool = NULL;
    struct db_conn *conn = NULL;
    if (with_conn(cfg, &pool, &conn) != 0) {
        done_with(pool, conn);
        return EXIT_FAIL;
    }
    int rc = task_retry(conn, id, clock_now());
    done_with(pool, conn);
    if (rc == USHER_ENOTFOUND) {
        fprintf(stderr, "usher: task %lld not found\n", id);
        return EXIT_FAIL;
    }
    if (rc == USHER_ECONFLICT) {
        fprintf(stderr,
                "usher: task %lld is running or done; only failed or waiting tasks "
                "can be retried\n",
                id);
        return EXIT_FAIL;
    }
    if (rc != 0) {
        fprintf(stderr, "usher: task retry failed: %s\n", usher_strerror(rc));
        return EXIT_FAIL;
    }
    printf("task %lld queued to run now\n", id);
    return 0;
}

/* ---- probe ------------------------------------------------------------------------------ */

struct probe_opts {
    long long count, sleep_ms, timeout;
    bool wait;
};

static bool probe_opts(int argc, char **argv, struct probe_opts *o)
{
    *o = (struct probe_opts){.count = 1, .sleep_ms = 0, .timeout = 30, .wait = true};
    for (int i = 3; i < argc; i++) {
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--no-wait"))
            o->wait = false;
        else if (!strcmp(argv[i], "--count") && number(next, 1, PROBE_MAX, &o->count))
            i++;
        else if (!strcmp(argv[i], "--sleep-ms") &&
                 number(next, 0, TASK_PROBE_SLEEP_MAX_MS, &o->sleep_ms))
            i++;
        else if (!strcmp(argv[i], "--timeout") && number(next, 1, 86400, &o->timeout))
            i++;
        else
            return false;
    }
    return true;
}

/* Enqueues the probes in one transaction; ids in [*first, *last]. */
static int enqueue_probes(struct db_conn *conn, const struct probe_opts *o, const char *prefix,
                          int64_t *first, int64_t *last)
{
    json_t *args = json_pack("{s:I}", "sleep_ms", (json_int_t)o->sleep_ms);
    int64_t now = clock_now();
    int rc = db_begin(conn, DB_TX_WRITE);
    for (long long i = 0; rc == 0 && i < o->count; i++) {
        char key[96];
        snprintf(key, sizeof key, "%s%lld", prefix, i);
        int64_t id = 0;
        rc = task_enqueue(conn, TASK_PROBE_NAME, args, TASK_DEFAULT_MAX_ATTEMPTS, now, key, &id);
        if (rc == 0 && (i == 0 || id < *first))
            *first = id;
        if (rc == 0 && (i == 0 || id > *last))
            *last = id;
    }
    rc = rc == 0 ? db_commit(conn) : rc;
    if (rc != 0)
        db_rollback(conn);
    json_decref(args);
    return rc;
}

static int wait_probes(struct db_conn *conn, const struct probe_opts *o, const char *prefix,
                       int64_t first, int64_t last)
{
    int64_t deadline = clock_mono_ns() + o->timeout * 1000000000LL;
    int64_t done = 0, failed = 0, pending = o->count;
    int rc = 0;
    while (clock_mono_ns() < deadline) {
        rc = task_batch_progress(conn, prefix, first, last, &done, &failed, &pending);
        if (rc != 0 || pending == 0)
            break;
        struct timespec ts = {0, PROBE_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (rc != 0) {
        fprintf(stderr, "usher: cannot read the probes' progress: %s\n", usher_strerror(rc));
        return EXIT_FAIL;
    }
    if (pending > 0) {
        printf("probe: %lld of %lld done after %lld s; is `usher worker` running?\n",
               (long long)done, o->count, o->timeout);
        return EXIT_FAIL;
    }
    if (failed > 0) {
        printf("probe: %lld done, %lld failed (see usher task list --failed)\n", (long long)done,
               (long long)failed);
        return EXIT_FAIL;
    }
    printf("probe: %lld done\n", (long long)done);
    return 0;
}

static int cmd_probe(const struct usher_config *cfg, int argc, char **argv)
{
    struct probe_opts o;
    if (!probe_opts(argc, argv, &o))
        return usage();
    struct db_pool *pool = NULL;
    struct db_conn *conn = NULL;
    if (with_conn(cfg, &pool, &conn) != 0) {
        done_with(pool, conn);
        return EXIT_FAIL;
    }
    char *token = crypto_random_hex(8);
    char *prefix = xasprintf("%s:%s:", TASK_PROBE_NAME, token);
    int64_t first = 0, last = 0;
    int status = 0;
    int rc = enqueue_probes(conn, &o, prefix, &first, &last);
    if (rc != 0) {
        fprintf(stderr, "usher: cannot enqueue the probe: %s\n", usher_strerror(rc));
        status = EXIT_FAIL;
    } else {
        printf("enqueued %lld probe task%s (ids %lld..%lld)\n", o.count, o.count == 1 ? "" : "s",
               (long long)first, (long long)last);
        fflush(stdout);
        if (o.wait)
            status = wait_probes(conn, &o, prefix, first, last);
    }
    free(prefix);
    free(token);
    done_with(pool, conn);
    return status;
}

int task_cli_main(const struct usher_config *cfg, int argc, char **argv)
{
    if (argc < 3)
        return usage();
    task_store_set_default_max_attempts(cfg->task_max_retries + 1);
    if (!strcmp(argv[2], "list"))
        return cmd_list(cfg, argc, argv);
    if (!strcmp(argv[2], "retry"))
        return cmd_retry(cfg, argc, argv);
    if (!strcmp(argv[2], "probe"))
        return cmd_probe(cfg, argc, argv);
    return usage();
}
