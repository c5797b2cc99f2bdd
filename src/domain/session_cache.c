/*
 * session_cache.c — the in-memory copies of anonymous sessions (see session_cache.h).
 *
 * A fixed table of slots indexed by the id hash: a new copy takes its id's slot, so the memory
 * is bounded whatever the number of visitors (SESSION_CACHE_SLOTS copies of a few hundred bytes
 * to a couple of kilobytes: a megabyte or two when all are taken), and a collision only costs
 * a database read. A copy is only useful for 30 s, so a thousand visitors in the onboarding
 * pages of one process at once is already a busy day.
 */
#include "domain/session_cache.h"

#include "core/mem.h"

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct slot {
    char id_hash[CRYPTO_SHA256_HEX_LEN + 1]; /* "": empty */
    char state_tag[SESSION_STATE_TAG_HEX_LEN + 1];
    char csrf_token[CRYPTO_SHA256_HEX_LEN + 1];
    json_t *data; /* never changed once held: readers copy it */
    int64_t created_at;
    int64_t last_seen_at;
    int64_t read_at;
};

struct session_cache {
    pthread_mutex_t lock;
    struct slot slots[SESSION_CACHE_SLOTS];
};

struct session_cache *session_cache_new(void)
{
    struct session_cache *c = xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

void session_cache_free(struct session_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < SESSION_CACHE_SLOTS; i++)
        json_decref(c->slots[i].data);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* The id hash is SHA-256 output, so its first hex digits are already uniformly spread. */
static struct slot *slot_for(struct session_cache *c, const char *id_hash)
{
    unsigned index = 0;
    for (size_t i = 0; i < 6 && id_hash[i]; i++)
        index = index * 16 + (unsigned)crypto_hex_value(id_hash[i]);
    return &c->slots[index % SESSION_CACHE_SLOTS];
}

static void slot_clear(struct slot *slot)
{
    json_decref(slot->data);
    memset(slot, 0, sizeof *slot);
}

struct session *session_cache_get(struct session_cache *c, const char *id_hash,
                                  const char *state_tag, int64_t now)
{
    if (strlen(id_hash) != CRYPTO_SHA256_HEX_LEN || strlen(state_tag) != SESSION_STATE_TAG_HEX_LEN)
        return NULL;
    json_t *data = NULL;
    struct session *s = xcalloc(1, sizeof *s);
    pthread_mutex_lock(&c->lock);
    struct slot *slot = slot_for(c, id_hash);
    if (!strcmp(slot->id_hash, id_hash) && crypto_equal_str(slot->state_tag, state_tag) &&
        now - slot->read_at < SESSION_CACHE_TTL_SECONDS && now >= slot->read_at &&
        session_is_live(slot->created_at, slot->last_seen_at, now)) {
        data = json_incref(slot->data);
        memcpy(s->id_hash, slot->id_hash, sizeof s->id_hash);
        memcpy(s->state_tag, slot->state_tag, sizeof s->state_tag);
        memcpy(s->csrf_token, slot->csrf_token, sizeof s->csrf_token);
        s->created_at = slot->created_at;
        s->last_seen_at = slot->last_seen_at;
    }
    pthread_mutex_unlock(&c->lock);
    if (!data) {
        free(s);
        return NULL;
    }
    /* The held object is shared by every request that copies it; this one may change its own. */
    s->data = json_deep_copy(data);
    json_decref(data);
    if (!s->data) {
        free(s);
        return NULL;
    }
    s->stored = true;
    return s;
}

void session_cache_put(struct session_cache *c, const struct session *s, int64_t now)
{
    bool keep = s->stored && s->user_id == 0 && !s->dirty &&
                strlen(s->state_tag) == SESSION_STATE_TAG_HEX_LEN;
    json_t *copy = keep ? json_deep_copy(s->data) : NULL;
    pthread_mutex_lock(&c->lock);
    struct slot *slot = slot_for(c, s->id_hash);
    if (copy || !strcmp(slot->id_hash, s->id_hash))
        slot_clear(slot);
    if (copy) {
        memcpy(slot->id_hash, s->id_hash, sizeof slot->id_hash);
        memcpy(slot->state_tag, s->state_tag, sizeof slot->state_tag);
        memcpy(slot->csrf_token, s->csrf_token, sizeof slot->csrf_token);
        slot->data = copy;
        slot->created_at = s->created_at;
        slot->last_seen_at = s->last_seen_at;
        slot->read_at = now;
    }
    pthread_mutex_unlock(&c->lock);
}

void session_cache_touched(struct session_cache *c, const char *id_hash, const char *state_tag,
                           int64_t last_seen_at)
{
    pthread_mutex_lock(&c->lock);
    struct slot *slot = slot_for(c, id_hash);
    if (!strcmp(slot->id_hash, id_hash) && !strcmp(slot->state_tag, state_tag) &&
        last_seen_at > slot->last_seen_at)
        slot->last_seen_at = last_seen_at;
    pthread_mutex_unlock(&c->lock);
}

void session_cache_forget(struct session_cache *c, const char *id_hash)
{
    pthread_mutex_lock(&c->lock);
    struct slot *slot = slot_for(c, id_hash);
    if (!strcmp(slot->id_hash, id_hash))
        slot_clear(slot);
    pthread_mutex_unlock(&c->lock);
}
