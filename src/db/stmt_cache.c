/*
 * stmt_cache.c — the per-connection map from SQL text to a prepared statement.
 *
 * Open addressing with linear probing: lookups happen on every statement, entries are never
 * removed one by one (only all together when the connection closes), so there are no
 * tombstones to handle. The table doubles at 50% load up to DB_STMT_CACHE_MAX entries.
 */
#include "db/db_internal.h"

#include "core/mem.h"

#include <stdlib.h>
#include <string.h>

/* FNV-1a: SQL strings are short and not attacker-chosen, so a simple hash is enough. */
static uint64_t hash_sql(const char *s)
{
    uint64_t h = 14695981039346656037ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

void stmt_cache_init(struct stmt_cache *c)
{
    c->slots = NULL;
    c->cap = 0;
    c->count = 0;
}

void stmt_cache_cleanup(struct stmt_cache *c, stmt_free_fn free_stmt)
{
    for (size_t i = 0; i < c->cap; i++) {
        struct stmt_entry *e = &c->slots[i];
        if (!e->sql)
            continue;
        free_stmt(e->stmt);
        free(e->sql);
    }
    free(c->slots);
    stmt_cache_init(c);
}

static struct stmt_entry *find_slot(struct stmt_entry *slots, size_t cap, const char *sql,
                                    uint64_t hash)
{
    size_t i = (size_t)hash & (cap - 1);
    while (slots[i].sql && (slots[i].hash != hash || strcmp(slots[i].sql, sql) != 0))
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

void *stmt_cache_get(const struct stmt_cache *c, const char *sql)
{
    if (c->count == 0)
        return NULL;
    struct stmt_entry *e = find_slot(c->slots, c->cap, sql, hash_sql(sql));
    return e->sql ? e->stmt : NULL;
}

static void grow(struct stmt_cache *c)
{
    size_t cap = c->cap ? c->cap * 2 : 16;
    struct stmt_entry *slots = xcalloc(cap, sizeof *slots);
    for (size_t i = 0; i < c->cap; i++) {
        struct stmt_entry *old = &c->slots[i];
        if (old->sql)
            *find_slot(slots, cap, old->sql, old->hash) = *old;
    }
    free(c->slots);
    c->slots = slots;
    c->cap = cap;
}

bool stmt_cache_put(struct stmt_cache *c, const char *sql, void *stmt)
{
    if (c->count >= DB_STMT_CACHE_MAX)
        return false;
    if ((c->count + 1) * 2 > c->cap)
        grow(c);
    uint64_t hash = hash_sql(sql);
    struct stmt_entry *e = find_slot(c->slots, c->cap, sql, hash);
    if (e->sql)
        return false; /* already cached: callers look up first, so this is a bug upstream */
    e->sql = xstrdup(sql);
    e->hash = hash;
    e->stmt = stmt;
    c->count++;
    return true;
}

size_t db_conn_stmt_count(const struct db_conn *conn)
{
    return conn->stmts.count;
}
