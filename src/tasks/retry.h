/*
 * retry.h — when a failed task runs again (SPEC §8).
 *
 * Retry number r (1 after the first failed attempt) waits base * 2^(r-1) seconds, capped at
 * TASK_RETRY_CAP_SECONDS, then moved by a uniform ±20 % jitter so that tasks failing together
 * (an upstream outage) do not retry together. base is TASK_RETRY_DELAY (default 30).
 *
 * How many retries a task gets is fixed in its row (max_attempts, set at enqueue from
 * TASK_MAX_RETRIES, default 3: delays 30, 60, 120 s). The long schedule of
 * process_stripe_event and sync_user_post_checkout is 10 retries of the same formula:
 * 30 s, 1, 2, 4, 8, 16, 32 min, 1 h 4 min, 2 h 8 min, then 4 h (the cap) — about 8.3 hours
 * from the first failure to the last attempt, enough to outlast a long Keycloak outage.
 */
#ifndef USHER_TASKS_RETRY_H
#define USHER_TASKS_RETRY_H

#include <stdint.h>

#define TASK_RETRY_CAP_SECONDS (4 * 3600)
#define TASK_RETRY_JITTER_PERCENT 20

/* The delay before retry `retry` (>= 1) without jitter. */
int64_t task_retry_nominal(int retry, int base_seconds);
/* With jitter: unit in [0, 1) picks the point in [-20 %, +20 %]; result >= 1. */
int64_t task_retry_delay(int retry, int base_seconds, double unit);
/* A jitter unit from the CSPRNG. */
double task_retry_unit(void);

#endif
