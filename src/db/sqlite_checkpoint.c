/*
 * sqlite_checkpoint.c — the pool's checkpointer thread (see sqlite_checkpoint.h).
 */
#include "db/sqlite_checkpoint.h"

#include "core/log.h"
#include "core/mem.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#define CHECKPOINT_INTERVAL_MS 20 /* at most 50 background checkpoints a second */
#define RESTART_WAIT_MS 100 /* a restart waits this long for the write lock and readers */
#define RESTART_POLL_US 100

struct sqlite_checkpointer {
    char *filename;
    int flags;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    /* guarded by lock */
    bool started; /* the thread runs (or ran): join it at free */
    bool failed; /* it could not be started: commits checkpoint themselves */
    bool due;
    bool stop;
    unsigned long runs;
    unsigned long restarts;
};

struct sqlite_checkpointer *sqlite_checkpointer_new(const char *filename, int flags)
{
    struct sqlite_checkpointer *cp = xcalloc(1, sizeof *cp);
    if (pthread_mutex_init(&cp->lock, NULL) != 0) {
        free(cp);
        return NULL;
    }
    if (pthread_cond_init(&cp->wake, NULL) != 0) {
        pthread_mutex_destroy(&cp->lock);
        free(cp);
        return NULL;
    }
    cp->filename = xstrdup(filename);
    cp->flags = flags;
    return cp;
}

/* A handle for checkpointing, or NULL. A fresh handle does not know the file is in WAL mode
 * until it reads it, and until then a checkpoint does nothing and reports success: the
 * PRAGMA reads it (and the mode is the file's already, so it changes nothing). */
static sqlite3 *open_wal(const struct sqlite_checkpointer *cp)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(cp->filename, &db, cp->flags, NULL) == SQLITE_OK &&
        sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) == SQLITE_OK)
        return db;
    sqlite3_close_v2(db);
    return NULL;
}

/* The checkpointer's handle waits for the write lock and for readers in short steps, for at
 * most RESTART_WAIT_MS: a restart that cannot happen now is tried again at the next wake. */
static int restart_wait(void *arg, int tries)
{
    (void)arg;
    if (tries * RESTART_POLL_US >= RESTART_WAIT_MS * 1000)
        return 0;
    struct timespec pause = {0, RESTART_POLL_US * 1000L};
    nanosleep(&pause, NULL);
    return 1;
}

/* A passive checkpoint; when it leaves the WAL past SQLITE_WAL_RESTART_PAGES, a restart.
 * SQLITE_OK, or what failed. */
static int checkpoint(sqlite3 *db, unsigned long *restarts)
{
    int wal_pages = -1;
    /* PASSIVE: copies what no reader still needs, waits for nobody. */
    int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &wal_pages, NULL);
    if (rc == SQLITE_OK && wal_pages < 0)
        return SQLITE_ERROR; /* not in WAL mode after all: nothing was done */
    if (rc != SQLITE_OK || wal_pages < SQLITE_WAL_RESTART_PAGES)
        return rc;
    /* A passive checkpoint never rewinds the WAL: the next writer starts it over only if
     * every frame was copied before its transaction began, which under steady writes never
     * happens, and the WAL (and its index, mapped by every handle) grew by gigabytes in a
     * minute of webhooks. RESTART holds new writers back while it copies the last frames
     * (few: passive runs copied the rest) and waits for readers to leave the WAL, so the
     * next commit writes from its start (and journal_size_limit trims the file). */
    rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_RESTART, NULL, NULL);
    if (rc == SQLITE_OK)
        (*restarts)++;
    return (rc & 0xff) == SQLITE_BUSY ? SQLITE_OK : rc;
}

/* Waits for a wake, checkpoints, again, until stopped. Its handle is opened on first need. */
static void *run(void *arg)
{
    struct sqlite_checkpointer *cp = arg;
    sqlite3 *db = NULL;
    bool warned = false;
    unsigned long restarts = 0;
    pthread_mutex_lock(&cp->lock);
    for (;;) {
        while (!cp->due && !cp->stop)
            pthread_cond_wait(&cp->wake, &cp->lock);
        if (cp->stop)
            break;
        cp->due = false;
        pthread_mutex_unlock(&cp->lock);
        if (!db && (db = open_wal(cp)) != NULL)
            sqlite3_busy_handler(db, restart_wait, NULL);
        int rc = db ? checkpoint(db, &restarts) : SQLITE_CANTOPEN;
        if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY && !warned) {
            log_warn("msg=\"sqlite background checkpoint failed\" code=%d", rc);
            warned = true;
        }
        /* Wakes meanwhile are folded into the next run: each checkpoint that copies
         * anything syncs both files, so checkpointing after every commit past the threshold
         * would only multiply the syncs. */
        struct timespec pause = {0, CHECKPOINT_INTERVAL_MS * 1000000L};
        nanosleep(&pause, NULL);
        pthread_mutex_lock(&cp->lock);
        if (rc == SQLITE_OK)
            cp->runs++;
        cp->restarts = restarts;
    }
    pthread_mutex_unlock(&cp->lock);
    sqlite3_close_v2(db);
    return NULL;
}

/* Asks the thread for a checkpoint, starting it if need be; false when it cannot run. */
static bool wake(struct sqlite_checkpointer *cp)
{
    pthread_mutex_lock(&cp->lock);
    if (!cp->started && !cp->failed) {
        if (pthread_create(&cp->thread, NULL, run, cp) == 0) {
            cp->started = true;
        } else {
            cp->failed = true;
            log_warn("msg=\"cannot start the sqlite checkpointer; commits checkpoint\"");
        }
    }
    bool running = cp->started && !cp->stop;
    if (running) {
        cp->due = true;
        pthread_cond_signal(&cp->wake);
    }
    pthread_mutex_unlock(&cp->lock);
    return running;
}

/* Called by SQLite after each commit with the WAL's size in pages. Without a thread the
 * committing handle checkpoints itself, as SQLite's auto-checkpoint would. */
static int wal_hook(void *arg, sqlite3 *db, const char *schema, int pages)
{
    struct sqlite_checkpointer *cp = arg;
    if (pages >= SQLITE_CHECKPOINT_PAGES && !wake(cp))
        sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return SQLITE_OK;
}

void sqlite_checkpointer_attach(struct sqlite_checkpointer *cp, sqlite3 *db)
{
    sqlite3_wal_hook(db, wal_hook, cp);
}

unsigned long sqlite_checkpointer_runs(struct sqlite_checkpointer *cp)
{
    pthread_mutex_lock(&cp->lock);
    unsigned long n = cp->runs;
    pthread_mutex_unlock(&cp->lock);
    return n;
}

unsigned long sqlite_checkpointer_restarts(struct sqlite_checkpointer *cp)
{
    pthread_mutex_lock(&cp->lock);
    unsigned long n = cp->restarts;
    pthread_mutex_unlock(&cp->lock);
    return n;
}

void sqlite_checkpointer_free(struct sqlite_checkpointer *cp)
{
    if (!cp)
        return;
    pthread_mutex_lock(&cp->lock);
    cp->stop = true;
    bool join = cp->started;
    pthread_cond_signal(&cp->wake);
    pthread_mutex_unlock(&cp->lock);
    if (join)
        pthread_join(cp->thread, NULL);
    pthread_cond_destroy(&cp->wake);
    pthread_mutex_destroy(&cp->lock);
    free(cp->filename);
    free(cp);
}
