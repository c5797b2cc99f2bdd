/*
 * worker.c — `usher worker`: threads, leases, outcomes, graceful stop (see worker.h).
 *
 * Threads and what they own:
 * - main: signals (blocked everywhere else, taken with sigwait), start and stop;
 * - N handler threads: claim (database backend here, Redis in redis_broker.c), run, record;
 * - heartbeat: renews the lease of every task a slot holds, every lease/3;
 * - housekeeping: requeues expired leases, enqueues periodic jobs, runs the Redis relay.
 * A slot's task id is published under its mutex for the heartbeat, and cleared only after
 * the outcome is written, so the lease is renewed for as long as the worker holds the task.
 */
#include "tasks/worker.h"

#include "core/clock.h"
#include "core/config.h"
#include "core/crypto.h"
#include "core/err.h"
#include "core/log.h"
#include "core/signals.h"
#include "core/mem.h"
#include "db/db.h"
#include "db/migrate.h"
#include "db/task_store.h"
#include "tasks/redis_broker.h"
#include "tasks/retry.h"
#include "tasks/task.h"
#include "tasks/worker_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POLL_MS 500 /* idle database backend: look for due tasks this often */
#define ERROR_BACKOFF_MS 1000 /* after a database error */
#define HOUSEKEEPING_MS 1000
#define RELAY_MS 200
#define OUTCOME_TRIES 10 /* writing an outcome: tries, 100 ms doubling up to 2 s between */
#define STOP_POLL_MS 100

static atomic_bool stop_requested;

bool task_stop_requested(void)
{
    return atomic_load(&stop_requested);
}

/* ---- small helpers ---------------------------------------------------------------------- */

static struct timespec deadline_in(int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static bool should_stop(struct worker *w, bool until_halt)
{
    return until_halt ? atomic_load(&w->halted) : atomic_load(&w->stopping);
}

bool worker_sleep(struct worker *w, int ms, bool until_halt)
{
    struct timespec until = deadline_in(ms);
    pthread_mutex_lock(&w->lock);
    while (!should_stop(w, until_halt)) {
        int rc = pthread_cond_timedwait(&w->wake, &w->lock, &until);
        if (rc == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&w->lock);
    return !should_stop(w, until_halt);
}

static void wake_all(struct worker *w)
{
    pthread_mutex_lock(&w->lock);
    pthread_cond_broadcast(&w->wake);
    pthread_mutex_unlock(&w->lock);
}

static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Logs the first database error of a streak, and the recovery. */
static void note_db(bool *trouble, int rc, const char *what)
{
    if (rc != 0 && !*trouble)
        log_warn("msg=\"worker: database unavailable\" during=%s error=\"%s\"", what,
                 usher_strerror(rc));
    else if (rc == 0 && *trouble)
        log_info("msg=\"worker: database available again\" during=%s", what);
    *trouble = rc != 0;
}

/* ---- running one task ------------------------------------------------------------------- */

static void slot_set(struct worker_slot *slot, int64_t id, int attempt)
{
    pthread_mutex_lock(&slot->lock);
    slot->task_id = id;
    slot->attempt = attempt;
    slot->lost = false;
    pthread_mutex_unlock(&slot->lock);
}

static int write_outcome(struct worker_slot *slot, const struct task_claim *claim, int rc,
                         const struct task_run *run, int64_t retry_delay, bool *held)
{
    struct worker *w = slot->w;
    int wrc = USHER_EDB;
    int backoff = 100;
    for (int i = 0; i < OUTCOME_TRIES; i++) {
        struct db_conn *conn = NULL;
        wrc = db_acquire(w->pool, WORKER_DB_WAIT_MS, &conn);
        int64_t now = clock_now();
        if (wrc == 0 && rc == 0)
            wrc = task_complete(conn, claim->id, slot->id, claim->attempt, now, held);
        else if (wrc == 0)
            wrc = task_fail(conn, claim->id, slot->id, claim->attempt, now, claim->max_attempts,
                            retry_delay > 0 ? now + retry_delay : 0, run->error, held);
        db_release(conn);
        if (wrc == 0)
            return 0;
        pause_ms(backoff);
        backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
    }
    return wrc;
}

static void log_outcome(const struct worker_slot *slot, const struct task_claim *claim, int rc,
                        const struct task_run *run, int64_t retry_delay, bool held, int wrc,
                        int64_t ms)
{
    char name[2 * TASK_NAME_MAX + 8];
    char error[2 * TASK_RUN_ERROR_MAX + 8];
    log_quote(name, sizeof name, claim->name);
    log_quote(error, sizeof error, run->error);
    long long id = (long long)claim->id;
    int a = claim->attempt, m = claim->max_attempts;
    if (wrc != 0)
        log_error("msg=\"task outcome not recorded; it runs again after its lease expires\" "
                  "id=%lld name=\"%s\" attempt=%d/%d result=%s db_error=\"%s\"",
                  id, name, a, m, rc == 0 ? "done" : "error", usher_strerror(wrc));
    else if (!held)
        log_warn("msg=\"task outcome discarded: another worker took the task over\" id=%lld "
                 "name=\"%s\" attempt=%d/%d result=%s worker=%s",
                 id, name, a, m, rc == 0 ? "done" : "error", slot->id);
    else if (rc == 0)
        log_info("msg=\"task done\" id=%lld name=\"%s\" attempt=%d/%d ms=%lld worker=%s", id, name,
                 a, m, (long long)ms, slot->id);
    else if (retry_delay > 0)
        log_warn("msg=\"task failed; will retry\" id=%lld name=\"%s\" attempt=%d/%d "
                 "retry_in=%llds ms=%lld error=\"%s\"",
                 id, name, a, m, (long long)retry_delay, (long long)ms, error);
    else
        log_error("msg=\"task failed for good\" id=%lld name=\"%s\" attempt=%d/%d ms=%lld "
                  "error=\"%s\"%s",
                  id, name, a, m, (long long)ms, error, run->permanent ? " permanent=true" : "");
}

/* Calls the handler; rc and run->error describe the result. */
static int call_handler(struct task_run *run, const struct task_claim *claim, json_t **args)
{
    task_handler_fn fn = task_handler_find(claim->name);
    if (!fn) {
        task_run_error(run, "no handler registered for this task name (unknown, or known only "
                            "to a newer version of Usher)");
        return USHER_ENOTFOUND;
    }
    *args = json_loads(claim->args, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(*args)) {
        task_run_error(run, "arguments are not a JSON object");
        run->permanent = true;
        return USHER_EINVAL;
    }
    run->args = *args;
    int rc = fn(run);
    if (rc > 0)
        rc = USHER_EINVAL; /* a contract breach still counts as a failure */
    if (rc != 0 && !run->error[0])
        task_run_error(run, "%s", usher_strerror(rc));
    return rc;
}

void worker_execute(struct worker_slot *slot, struct task_claim *claim)
{
    struct worker *w = slot->w;
    slot_set(slot, claim->id, claim->attempt);
    if (claim->takeover) {
        char name[2 * TASK_NAME_MAX + 8];
        log_quote(name, sizeof name, claim->name);
        log_warn("msg=\"task taken over from a worker whose lease expired\" id=%lld "
                 "name=\"%s\" attempt=%d/%d",
                 (long long)claim->id, name, claim->attempt, claim->max_attempts);
    }
    struct task_run run = {.pool = w->pool,
                           .cfg = w->cfg,
                           .id = claim->id,
                           .name = claim->name,
                           .attempt = claim->attempt,
                           .max_attempts = claim->max_attempts};
    json_t *args = NULL;
    int64_t t0 = clock_mono_ns();
    int rc = call_handler(&run, claim, &args);
    int64_t ms = (clock_mono_ns() - t0) / 1000000;
    json_decref(args);
    run.args = NULL;

    int64_t delay = 0;
    if (rc != 0 && !run.permanent && claim->attempt < claim->max_attempts)
        delay = task_retry_delay(claim->attempt, w->cfg->task_retry_delay, task_retry_unit());
    /* Detach the task from the heartbeat before writing its outcome: a renewal that then
     * finds the row done sees the slot changed and does not report a lost lease that was
     * never lost (renew). */
    slot_set(slot, 0, 0);
    bool held = false;
    int wrc = write_outcome(slot, claim, rc, &run, delay, &held);
    log_outcome(slot, claim, rc, &run, delay, held, wrc, ms);
    task_claim_cleanup(claim);
}

/* ---- database backend ------------------------------------------------------------------- */

/* Claims one due task; *found false when there is none. */
static int claim_from_db(struct worker_slot *slot, struct task_claim *claim, bool *found)
{
    struct worker *w = slot->w;
    *found = false;
    struct db_conn *conn = NULL;
    int rc = db_acquire(w->pool, WORKER_DB_WAIT_MS, &conn);
    bool due = true;
    /* SQLite: a read first, so an idle worker never takes the write lock. */
    if (rc == 0 && db_conn_dialect(conn) == DB_SQLITE)
        rc = task_any_due(conn, clock_now(), false, &due);
    if (rc == 0 && due)
        rc = task_claim_next(conn, slot->id, clock_now(), w->lease_seconds, claim, found);
    db_release(conn);
    return rc;
}

static void *db_consume(void *arg)
{
    struct worker_slot *slot = arg;
    struct worker *w = slot->w;
    bool trouble = false;
    while (!atomic_load(&w->stopping)) {
        struct task_claim claim;
        bool found = false;
        int rc = claim_from_db(slot, &claim, &found);
        note_db(&trouble, rc, "claim");
        if (found)
            worker_execute(slot, &claim);
        else
            worker_sleep(w, rc == 0 ? POLL_MS : ERROR_BACKOFF_MS, false);
    }
    atomic_fetch_sub(&w->busy_threads, 1);
    return NULL;
}

/* ---- heartbeat and housekeeping --------------------------------------------------------- */

/* A renewal that finds the row no longer running under this slot's claim is checked against
 * the slot afterwards: the task's own thread detaches the task (slot_set to 0) before it writes
 * the outcome, so if the slot still holds the same claim, its outcome was not written by this
 * worker and another worker (or the reaper, after the lease ran out) really has the task. A
 * renewal that raced the task's own completion finds the slot detached and says nothing. */
static void renew(struct worker *w, struct db_conn *conn)
{
    for (int i = 0; i < w->concurrency; i++) {
        struct worker_slot *slot = &w->slots[i];
        pthread_mutex_lock(&slot->lock);
        int64_t id = slot->lost ? 0 : slot->task_id;
        int attempt = slot->attempt;
        pthread_mutex_unlock(&slot->lock);
        if (id == 0)
            continue;
        bool held = true;
        int rc = task_heartbeat(conn, id, slot->id, attempt, clock_now() + w->lease_seconds, &held);
        if (rc != 0 || held)
            continue;
        pthread_mutex_lock(&slot->lock);
        bool lost = slot->task_id == id && slot->attempt == attempt;
        if (lost)
            slot->lost = true;
        pthread_mutex_unlock(&slot->lock);
        if (!lost)
            continue;
        log_warn("msg=\"task lease lost; another worker may run it\" id=%lld attempt=%d "
                 "worker=%s",
                 (long long)id, attempt, slot->id);
    }
}

static void *heartbeat_main(void *arg)
{
    struct worker *w = arg;
    int interval = w->lease_seconds * 1000 / 3;
    bool trouble = false;
    while (worker_sleep(w, interval, true)) {
        struct db_conn *conn = NULL;
        int rc = db_acquire(w->pool, WORKER_DB_WAIT_MS, &conn);
        if (rc == 0)
            renew(w, conn);
        db_release(conn);
        note_db(&trouble, rc, "heartbeat");
    }
    return NULL;
}

static void expired(void *ctx, int64_t id, const char *name, int attempts, bool failed)
{
    (void)ctx;
    char q[2 * TASK_NAME_MAX + 8];
    log_quote(q, sizeof q, name);
    if (failed)
        log_error("msg=\"task failed for good: lease expired on its last attempt\" id=%lld "
                  "name=\"%s\" attempt=%d/%d",
                  (long long)id, q, attempts, attempts);
    else
        log_warn("msg=\"task lease expired; queued again\" id=%lld name=\"%s\" attempts=%d",
                 (long long)id, q, attempts);
}

static void *housekeeping_main(void *arg)
{
    struct worker *w = arg;
    bool trouble = false;
    int64_t last = 0;
    do {
        int64_t mono = clock_mono_ns();
        if (last == 0 || mono - last >= (int64_t)HOUSEKEEPING_MS * 1000000) {
            last = mono;
            struct db_conn *conn = NULL;
            int rc = db_acquire(w->pool, WORKER_DB_WAIT_MS, &conn);
            if (rc == 0)
                rc = task_requeue_expired(conn, clock_now(), expired, NULL, NULL);
            db_release(conn);
            note_db(&trouble, rc, "requeue");
            task_scheduler_tick(w, clock_now());
            mem_trim(); /* every HOUSEKEEPING_MS, about MEM_TRIM_INTERVAL_MS (mem.h) */
        }
        if (w->redis)
            task_redis_relay_tick(w, clock_now());
    } while (worker_sleep(w, w->redis ? RELAY_MS : HOUSEKEEPING_MS, false));
    return NULL;
}

/* ---- start and stop --------------------------------------------------------------------- */

static int check_schema(struct worker *w)
{
    char *dir = xasprintf("%s/migrations", w->cfg->data_dir);
    int have = 0, latest = 0;
    int rc = db_schema_version(w->pool, &have);
    if (rc == 0)
        rc = db_migrations_latest(w->pool, dir, &latest);
    free(dir);
    if (USHER_IS_DB_ERROR(rc)) {
        log_warn("msg=\"database unreachable at start; the worker retries\"");
        return 0;
    }
    if (rc == 0 && have != latest) {
        log_error("msg=\"database schema is at version %d, this program needs %d%s\"", have, latest,
                  have < latest ? ": run usher migrate" : "");
        return USHER_ESCHEMA;
    }
    return rc;
}

static void name_slots(struct worker *w)
{
    char host[64] = "host";
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "host");
    host[sizeof host - 1] = '\0';
    for (char *p = host; *p; p++)
        if (*p == ':' || *p == ' ' || (unsigned char)*p < 0x21)
            *p = '-';
    char *rnd = crypto_random_hex(4);
    for (int i = 0; i < w->concurrency; i++) {
        struct worker_slot *slot = &w->slots[i];
        slot->w = w;
        slot->index = i + 1;
        snprintf(slot->id, sizeof slot->id, "%s:%ld:%s:%d", host, (long)getpid(), rnd, i + 1);
        pthread_mutex_init(&slot->lock, NULL);
    }
    free(rnd);
}

static int init_worker(struct worker *w, const struct usher_config *cfg)
{
    memset(w, 0, sizeof *w);
    w->cfg = cfg;
    w->concurrency = cfg->worker_concurrency;
    w->lease_seconds = cfg->task_lease_seconds;
    pthread_mutex_init(&w->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->wake, &attr);
    pthread_condattr_destroy(&attr);
    w->slots = xcalloc((size_t)w->concurrency, sizeof *w->slots);
    name_slots(w);
    int rc = 0;
    if (strcmp(cfg->task_broker_url, "database") != 0) {
        rc = task_redis_new(cfg->task_broker_url, &w->redis);
        if (rc != 0)
            log_error("msg=\"TASK_BROKER_URL is not a usable redis:// URL\"");
    }
    /* Each handler thread may hold a claim connection and its handler one more; the
     * heartbeat and housekeeping threads one each. */
    if (rc == 0)
        rc = db_pool_new(cfg->database_url, 2 * w->concurrency + 2, &w->pool);
    if (rc == 0)
        rc = check_schema(w);
    return rc;
}

static void free_worker(struct worker *w)
{
    for (int i = 0; w->slots && i < w->concurrency; i++)
        pthread_mutex_destroy(&w->slots[i].lock);
    free(w->slots);
    db_pool_free(w->pool);
    task_redis_free(w->redis);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
}

struct service_threads {
    pthread_t heartbeat, housekeeping;
    bool heartbeat_started, housekeeping_started;
};

static int start_threads(struct worker *w, struct service_threads *st)
{
    st->heartbeat_started = pthread_create(&st->heartbeat, NULL, heartbeat_main, w) == 0;
    if (!st->heartbeat_started)
        return USHER_EIO;
    st->housekeeping_started = pthread_create(&st->housekeeping, NULL, housekeeping_main, w) == 0;
    if (!st->housekeeping_started)
        return USHER_EIO;
    for (int i = 0; i < w->concurrency; i++) {
        struct worker_slot *slot = &w->slots[i];
        atomic_fetch_add(&w->busy_threads, 1);
        if (pthread_create(&slot->thread, NULL, w->redis ? task_redis_consume : db_consume, slot) !=
            0) {
            atomic_fetch_sub(&w->busy_threads, 1);
            return USHER_EIO;
        }
        slot->started = true;
    }
    return 0;
}

/* After the first stop signal: waits for handler threads; a second signal exits at once. */
static void drain(struct worker *w, const sigset_t *set)
{
    struct timespec tick = {0, STOP_POLL_MS * 1000000L};
    while (atomic_load(&w->busy_threads) > 0) {
        int sig = sigtimedwait(set, NULL, &tick);
        if (sig == SIGTERM || sig == SIGINT) {
            log_warn("msg=\"second stop signal: exiting now; the tasks held run again after "
                     "their leases expire\"");
            _exit(1);
        }
    }
}

struct task_worker {
    struct worker w;
    struct service_threads st;
};

/* Stops claiming, waits for the handler threads (a second stop signal exits at once), then
 * the service threads; frees everything. */
static void halt(struct task_worker *tw, const sigset_t *stop)
{
    struct worker *w = &tw->w;
    atomic_store(&stop_requested, true);
    atomic_store(&w->stopping, true);
    wake_all(w);
    drain(w, stop);
    for (int i = 0; i < w->concurrency; i++)
        if (w->slots[i].started)
            pthread_join(w->slots[i].thread, NULL);
    atomic_store(&w->halted, true);
    wake_all(w);
    if (tw->st.heartbeat_started)
        pthread_join(tw->st.heartbeat, NULL);
    if (tw->st.housekeeping_started)
        pthread_join(tw->st.housekeeping, NULL);
    free_worker(w);
    free(tw);
}

int task_worker_start(const struct usher_config *cfg, const sigset_t *stop,
                      struct task_worker **out)
{
    *out = NULL;
    task_store_set_default_max_attempts(cfg->task_max_retries + 1);
    task_register_all();
    struct task_worker *tw = xcalloc(1, sizeof *tw);
    int rc = init_worker(&tw->w, cfg);
    if (rc == 0)
        rc = start_threads(&tw->w, &tw->st);
    if (rc != 0) {
        halt(tw, stop);
        return rc;
    }
    char id[WORKER_ID_MAX];
    snprintf(id, sizeof id, "%s", tw->w.slots[0].id);
    char *thread = strrchr(id, ':');
    if (thread)
        *thread = '\0';
    log_info("msg=\"worker started\" backend=%s concurrency=%d lease=%ds worker=%s",
             tw->w.redis ? "redis" : "database", tw->w.concurrency, tw->w.lease_seconds, id);
    *out = tw;
    return 0;
}

void task_worker_stop(struct task_worker *tw, const sigset_t *stop)
{
    if (!tw)
        return;
    log_info("msg=\"worker stopping: finishing running tasks\"");
    halt(tw, stop);
    log_info("msg=\"worker stopped\"");
}

int task_worker_run(const struct usher_config *cfg)
{
    sigset_t set;
    signals_block_stop(&set);
    struct task_worker *tw = NULL;
    int rc = task_worker_start(cfg, &set, &tw);
    if (rc != 0)
        return rc;
    int sig = 0;
    if (sigwait(&set, &sig) != 0)
        rc = USHER_EIO;
    log_info("msg=\"stopping: finishing running tasks\" signal=%s",
             sig == SIGINT ? "SIGINT" : "SIGTERM");
    halt(tw, &set);
    if (rc == 0)
        log_info("msg=\"worker stopped\"");
    return rc;
}
