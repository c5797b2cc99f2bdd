/*
 * registry.c — the table of task handlers and periodic jobs (see task.h).
 *
 * A fixed array filled at start-up, before any worker thread exists, and only read after.
 */
#include "tasks/task.h"

#include "core/err.h"
#include "db/task_store.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct entry {
    char name[TASK_NAME_MAX + 1];
    task_handler_fn fn;
    int interval_seconds; /* 0: not periodic */
};

static struct entry entries[TASK_REGISTRY_MAX];
static int entry_count;
static struct task_periodic periodic[TASK_REGISTRY_MAX];
static int periodic_count;

void task_run_error(struct task_run *run, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(run->error, sizeof run->error, fmt, ap);
    va_end(ap);
}

static bool name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > TASK_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

static int add(const char *name, task_handler_fn fn, int interval_seconds)
{
    if (!name_ok(name) || !fn)
        return USHER_EINVAL;
    if (task_handler_find(name))
        return USHER_ECONFLICT;
    if (entry_count >= TASK_REGISTRY_MAX)
        return USHER_ELIMIT;
    struct entry *e = &entries[entry_count++];
    memcpy(e->name, name, strlen(name) + 1);
    e->fn = fn;
    e->interval_seconds = interval_seconds;
    if (interval_seconds > 0) {
        periodic[periodic_count].name = e->name;
        periodic[periodic_count].interval_seconds = interval_seconds;
        periodic_count++;
    }
    return 0;
}

int task_register(const char *name, task_handler_fn fn)
{
    return add(name, fn, 0);
}

int task_schedule_periodic(const char *name, int interval_seconds, task_handler_fn fn)
{
    if (interval_seconds < TASK_PERIODIC_MIN_INTERVAL)
        return USHER_EINVAL;
    return add(name, fn, interval_seconds);
}

task_handler_fn task_handler_find(const char *name)
{
    for (int i = 0; name && i < entry_count; i++)
        if (!strcmp(entries[i].name, name))
            return entries[i].fn;
    return NULL;
}

int task_periodic_count(void)
{
    return periodic_count;
}

const struct task_periodic *task_periodic_at(int i)
{
    return i >= 0 && i < periodic_count ? &periodic[i] : NULL;
}

void task_registry_reset(void)
{
    memset(entries, 0, sizeof entries);
    memset(periodic, 0, sizeof periodic);
    entry_count = 0;
    periodic_count = 0;
}
