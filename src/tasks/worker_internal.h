/*
 * worker_internal.h — what worker.c shares with the Redis backend and the scheduler; not for
 * other modules.
 */
#ifndef USHER_TASKS_WORKER_INTERNAL_H
#define USHER_TASKS_WORKER_INTERNAL_H

#include "db/task_store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct db_pool;
struct usher_config;
struct task_redis;

#define WORKER_ID_MAX 128
#define WORKER_DB_WAIT_MS 5000

struct worker;

/* One handler thread. task_id/attempt (guarded by lock) are what the heartbeat renews. */
struct worker_slot {
    struct worker *w;
    int index;
    char id[WORKER_ID_MAX]; /* written to tasks.worker: host:pid:random:thread */
    pthread_t thread;
    bool started;
    pthread_mutex_t lock; /* guards the three fields below */
    int64_t task_id; /* 0 when idle or writing the outcome */
    int attempt;
    bool lost; /* the heartbeat found the lease taken over */
};

struct worker {
    const struct usher_config *cfg;
    struct db_pool *pool;
    int concurrency;
    int lease_seconds;
    struct task_redis *redis; /* NULL: database backend */
    struct worker_slot *slots;
    atomic_bool stopping; /* stop claiming */
    atomic_bool halted; /* handler threads are done: stop heartbeat and housekeeping */
    atomic_int busy_threads;
    pthread_mutex_t lock;
    pthread_cond_t wake;
};

/* Sleeps up to ms, waking early when the worker stops claiming (or halts, for the service
 * threads: pass until_halt). Returns false if it should stop. */
bool worker_sleep(struct worker *w, int ms, bool until_halt);
/* Runs a claimed task's handler and records the outcome; takes ownership of claim. */
void worker_execute(struct worker_slot *slot, struct task_claim *claim);

/* Enqueues periodic jobs whose current slot has no task yet (housekeeping, once a second). */
void task_scheduler_tick(struct worker *w, int64_t now);

#endif
