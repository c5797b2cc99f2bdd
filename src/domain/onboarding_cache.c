/*
 * onboarding_cache.c — listings by (page, parent) and the catalog version they were built at
 * (see onboarding_cache.h).
 *
 * A handful of listings exist (the plans, the general add-ons, the storage add-ons of each
 * plan), so the entries are a short array searched linearly, bounded so a stream of unknown
 * parent slugs cannot grow it: past the bound the oldest entry is replaced.
 */
#include "domain/onboarding_cache.h"

#include "core/clock.h"
#include "core/mem.h"
#include "db/db.h"
#include "domain/onboarding.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_ENTRIES 32

struct entry {
    char *key; /* "page\nparent" */
    int64_t version;
    json_t *list;
};

struct onboarding_cache {
    pthread_mutex_t lock;
    struct entry entries[CACHE_ENTRIES];
    size_t next_victim;
    int64_t version_read_ns; /* clock_mono_ns() of the last reading of the version; 0: none */
    int64_t version;
};

struct onboarding_cache *onboarding_cache_new(void)
{
    struct onboarding_cache *c = xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

void onboarding_cache_free(struct onboarding_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < CACHE_ENTRIES; i++) {
        free(c->entries[i].key);
        json_decref(c->entries[i].list);
    }
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static int read_version(struct db_pool *pool, int64_t *version)
{
    struct db_result *res = NULL;
    int rc = db_pool_query(pool, "SELECT version FROM catalog_version WHERE id = 1", NULL, 0, &res);
    if (rc == 0)
        *version = db_result_rows(res) == 1 ? db_result_int(res, 0, 0) : -1;
    db_result_free(res);
    return rc;
}

/* The catalog version, read from the database unless a reading younger than
 * ONBOARDING_CACHE_VERSION_REUSE_NS exists. */
static int catalog_version(struct onboarding_cache *c, struct db_pool *pool, int64_t *version)
{
    int64_t now = clock_mono_ns();
    pthread_mutex_lock(&c->lock);
    bool fresh =
        c->version_read_ns != 0 && now - c->version_read_ns < ONBOARDING_CACHE_VERSION_REUSE_NS;
    *version = c->version;
    pthread_mutex_unlock(&c->lock);
    if (fresh)
        return 0;
    int rc = read_version(pool, version);
    if (rc == 0 && *version >= 0) {
        pthread_mutex_lock(&c->lock);
        if (now >= c->version_read_ns) { /* a later reading already stored wins */
            c->version_read_ns = now;
            c->version = *version;
        }
        pthread_mutex_unlock(&c->lock);
    }
    return rc;
}

static struct entry *find(struct onboarding_cache *c, const char *key)
{
    for (size_t i = 0; i < CACHE_ENTRIES; i++)
        if (c->entries[i].key && !strcmp(c->entries[i].key, key))
            return &c->entries[i];
    return NULL;
}

static void store(struct onboarding_cache *c, const char *key, int64_t version, json_t *list)
{
    struct entry *e = find(c, key);
    if (!e) {
        for (size_t i = 0; i < CACHE_ENTRIES && !e; i++)
            if (!c->entries[i].key)
                e = &c->entries[i];
        if (!e) {
            e = &c->entries[c->next_victim];
            c->next_victim = (c->next_victim + 1) % CACHE_ENTRIES;
        }
        free(e->key);
        e->key = xstrdup(key);
    }
    if (e->version > version && e->list)
        return; /* a slower builder of an older version must not replace a newer listing */
    json_decref(e->list);
    e->list = json_incref(list);
    e->version = version;
}

int onboarding_list_cached(struct onboarding_cache *c, struct db_pool *pool, const char *page,
                           const char *parent_slug, json_t **out)
{
    *out = NULL;
    int64_t version = -1;
    /* No cache, or no version to compare (a schema before migration 0003, which `usher
     * serve` tolerates with a warning, or a database that just went away): the listing
     * straight from the database, which reports its own errors. */
    if (!c || catalog_version(c, pool, &version) != 0 || version < 0)
        return onboarding_list(pool, page, parent_slug, out);

    char *key = xasprintf("%s\n%s", page ? page : "", parent_slug ? parent_slug : "");
    pthread_mutex_lock(&c->lock);
    struct entry *e = find(c, key);
    if (e && e->version == version && e->list)
        *out = json_incref(e->list);
    pthread_mutex_unlock(&c->lock);
    if (*out) {
        free(key);
        return 0;
    }

    /* Built outside the lock: a slow database must not stall every other page view. */
    json_t *list = NULL;
    int rc = onboarding_list(pool, page, parent_slug, &list);
    if (rc == 0) {
        pthread_mutex_lock(&c->lock);
        store(c, key, version, list);
        pthread_mutex_unlock(&c->lock);
        *out = json_incref(list);
    }
    json_decref(list);
    free(key);
    return rc;
}
