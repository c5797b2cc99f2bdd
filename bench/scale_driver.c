/*
 * scale_driver.c — times two hot operations of the domain and queue layers directly against a
 * seeded database, for bench/cost_growth.sh: taking a seat (alloc_assign) and claiming the
 * next task (task_claim_next). Neither has an HTTP route to put wrk on: the worker runs them.
 *
 *   bench_scale DATABASE_URL alloc PRODUCT_ID FIRST_USER LAST_USER COUNT
 *   bench_scale DATABASE_URL claim COUNT
 *
 * alloc: for COUNT user ids spread evenly over [FIRST_USER, LAST_USER], gives the seat back
 * (untimed) and takes it again (timed). claim: COUNT times, enqueues a probe task (untimed),
 * claims the next due task (timed) and completes it (untimed). Prints one line,
 * "p50_ms=… p99_ms=… n=…". Bench code, not shipped: it lives beside the scripts.
 */
#include "core/clock.h"
#include "core/err.h"
#include "db/db.h"
#include "db/task_store.h"
#include "domain/allocation.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void report(int64_t *ns, long n)
{
    qsort(ns, (size_t)n, sizeof *ns, cmp_i64);
    printf("p50_ms=%.3f p99_ms=%.3f n=%ld\n", (double)ns[n / 2] / 1e6,
           (double)ns[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1] / 1e6, n);
}

static int run_alloc(struct db_pool *pool, int64_t product, int64_t first, int64_t last, long n,
                     int64_t *ns)
{
    for (long i = 0; i < n; i++) {
        int64_t user = first + (last - first) * i / (n > 1 ? n - 1 : 1);
        int rc = alloc_release(pool, user, product);
        if (rc != 0)
            return rc;
        struct alloc_result r;
        int64_t t0 = clock_mono_ns();
        rc = alloc_assign(pool, user, product, clock_now(), &r);
        ns[i] = clock_mono_ns() - t0;
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int run_claim(struct db_conn *conn, long n, int64_t *ns)
{
    json_t *args = json_pack("{s:i}", "sleep_ms", 0);
    int rc = 0;
    for (long i = 0; rc == 0 && i < n; i++) {
        int64_t now = clock_now();
        rc = task_enqueue(conn, "queue_probe", args, 1, now, NULL, NULL);
        if (rc != 0)
            break;
        struct task_claim c = {0};
        bool found = false;
        int64_t t0 = clock_mono_ns();
        rc = task_claim_next(conn, "bench", now, 60, &c, &found);
        ns[i] = clock_mono_ns() - t0;
        if (rc == 0 && !found)
            rc = USHER_ENOTFOUND;
        bool held = false;
        if (rc == 0)
            rc = task_complete(conn, c.id, "bench", c.attempt, now, &held);
        task_claim_cleanup(&c);
    }
    json_decref(args);
    return rc;
}

int main(int argc, char **argv)
{
    bool alloc = argc == 7 && !strcmp(argv[2], "alloc");
    bool claim = argc == 4 && !strcmp(argv[2], "claim");
    if (!alloc && !claim) {
        fputs("usage: bench_scale URL alloc PRODUCT FIRST_USER LAST_USER COUNT\n"
              "       bench_scale URL claim COUNT\n",
              stderr);
        return 2;
    }
    long n = atol(argv[argc - 1]);
    if (n < 1 || n > 1000000)
        return 2;
    struct db_pool *pool = NULL;
    int rc = db_pool_new(argv[1], 1, &pool);
    if (rc != 0) {
        fprintf(stderr, "bench_scale: cannot open the database: %s\n", usher_strerror(rc));
        return 1;
    }
    int64_t *ns = calloc((size_t)n, sizeof *ns);
    if (!ns)
        return 1;
    if (alloc) {
        rc = run_alloc(pool, atoll(argv[3]), atoll(argv[4]), atoll(argv[5]), n, ns);
    } else {
        struct db_conn *conn = NULL;
        rc = db_acquire(pool, 5000, &conn);
        if (rc == 0) {
            rc = run_claim(conn, n, ns);
            db_release(conn);
        }
    }
    if (rc == 0)
        report(ns, n);
    else
        fprintf(stderr, "bench_scale: %s failed: %s\n", argv[2], usher_strerror(rc));
    free(ns);
    db_pool_free(pool);
    return rc == 0 ? 0 : 1;
}
