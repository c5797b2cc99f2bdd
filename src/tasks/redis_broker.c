/*
 * redis_broker.c — relay and consumers of the Redis backend (see redis_broker.h).
 *
 * hiredis contexts are not thread-safe: each consumer thread owns one, and the relay (run by
 * the housekeeping thread) owns the one in struct task_redis. A context that failed at the
 * transport level is freed and reopened on the next pass, so a Redis restart costs a few
 * reconnects and nothing else.
 */
#include "tasks/redis_broker.h"

#include "core/clock.h"
#include "core/crypto.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "db/db.h"
#include "db/task_store.h"
#include "tasks/worker_internal.h"

#include <ctype.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONNECT_TIMEOUT_MS 2000
#define COMMAND_TIMEOUT_MS 5000 /* above BLOCK_MS */
#define BLOCK_MS 1000 /* XREADGROUP wait, so a stop is seen within a second */
#define RECONNECT_MS 500
#define AUTOCLAIM_COUNT 10
#define RELAY_BATCH 100
#define RELAY_BATCHES_PER_TICK 20
#define STALE_CHECK_NS (10LL * 1000000000LL)
#define STALE_MIN_SECONDS 60

struct task_redis {
    char host[256];
    int port;
    char user[128];
    char password[256];
    int db;
    /* relay state, housekeeping thread only */
    redisContext *relay;
    int64_t relay_retry_at; /* monotonic ns: no reconnect before */
    int64_t stale_check_at; /* monotonic ns */
    bool relay_trouble;
};

/* ---- URL and connection ----------------------------------------------------------------- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes in[0..len) into out (size bytes); false if malformed or too long. */
static bool decode(const char *in, size_t len, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)in[i];
        if (c == '%') {
            if (i + 2 >= len)
                return false;
            int h = hexval((unsigned char)in[i + 1]);
            int l = hexval((unsigned char)in[i + 2]);
            if (h < 0 || l < 0)
                return false;
            c = h * 16 + l;
            i += 2;
        }
        if (o + 1 >= size || c == 0)
            return false;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return true;
}

static int parse_url(const char *url, struct task_redis *r)
{
    static const char scheme[] = "redis://";
    if (!url || strncmp(url, scheme, sizeof scheme - 1))
        return USHER_ECONFIG;
    const char *p = url + sizeof scheme - 1;
    const char *end = p + strcspn(p, "/?#");
    const char *at = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == '@')
            at = q;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            if (!decode(p, (size_t)(colon - p), r->user, sizeof r->user) ||
                !decode(colon + 1, (size_t)(at - colon - 1), r->password, sizeof r->password))
                return USHER_ECONFIG;
        } else if (!decode(p, (size_t)(at - p), r->password, sizeof r->password)) {
            return USHER_ECONFIG;
        }
        p = at + 1;
    }
    const char *colon = memchr(p, ':', (size_t)(end - p));
    const char *host_end = colon ? colon : end;
    size_t host_len = (size_t)(host_end - p);
    if (host_len == 0 || host_len >= sizeof r->host)
        return USHER_ECONFIG;
    memcpy(r->host, p, host_len);
    r->host[host_len] = '\0';
    r->port = 6379;
    if (colon) {
        char *stop = NULL;
        long port = strtol(colon + 1, &stop, 10);
        if (stop != end || port < 1 || port > 65535)
            return USHER_ECONFIG;
        r->port = (int)port;
    }
    if (*end == '/' && end[1]) {
        char *stop = NULL;
        long db = strtol(end + 1, &stop, 10);
        if (*stop || db < 0 || db > 1000)
            return USHER_ECONFIG;
        r->db = (int)db;
    } else if (*end && strcmp(end, "/")) {
        return USHER_ECONFIG;
    }
    return 0;
}

int task_redis_new(const char *url, struct task_redis **out)
{
    struct task_redis *r = xcalloc(1, sizeof *r);
    int rc = parse_url(url, r);
    if (rc != 0) {
        free(r);
        *out = NULL;
        return rc;
    }
    *out = r;
    return 0;
}

void task_redis_free(struct task_redis *r)
{
    if (!r)
        return;
    if (r->relay)
        redisFree(r->relay);
    memset(r->password, 0, sizeof r->password);
    free(r);
}

static bool reply_ok(const redisReply *reply)
{
    return reply && reply->type != REDIS_REPLY_ERROR;
}

static struct timeval ms_tv(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

/* Connects, authenticates and selects the database; NULL with a reason in why. */
static redisContext *open_redis(const struct task_redis *r, char *why, size_t size)
{
    redisContext *c = redisConnectWithTimeout(r->host, r->port, ms_tv(CONNECT_TIMEOUT_MS));
    if (!c || c->err) {
        snprintf(why, size, "%s", c ? c->errstr : "cannot allocate a connection");
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, ms_tv(COMMAND_TIMEOUT_MS));
    redisReply *reply = NULL;
    if (*r->password && *r->user)
        reply = redisCommand(c, "AUTH %s %s", r->user, r->password);
    else if (*r->password)
        reply = redisCommand(c, "AUTH %s", r->password);
    bool ok = !*r->password || reply_ok(reply);
    if (!ok)
        snprintf(why, size, "authentication refused");
    if (reply)
        freeReplyObject(reply);
    reply = NULL;
    if (ok && r->db) {
        reply = redisCommand(c, "SELECT %d", r->db);
        ok = reply_ok(reply);
        if (!ok)
            snprintf(why, size, "SELECT %d refused", r->db);
        if (reply)
            freeReplyObject(reply);
    }
    if (!ok) {
        redisFree(c);
        return NULL;
    }
    return c;
}

/* Logs the first failure of a streak and the recovery. */
static void note_redis(bool *trouble, bool ok, const char *who, const char *why)
{
    if (!ok && !*trouble) {
        char quoted[300];
        log_quote(quoted, sizeof quoted, why ? why : "");
        log_warn("msg=\"redis unavailable\" who=%s error=\"%s\"", who, quoted);
    } else if (ok && *trouble)
        log_info("msg=\"redis available again\" who=%s", who);
    *trouble = !ok;
}

int task_redis_check(const char *url, char *detail, size_t size)
{
    struct task_redis *r = NULL;
    if (task_redis_new(url, &r) != 0) {
        snprintf(detail, size, "TASK_BROKER_URL is not a redis://host[:port][/db] URL");
        return USHER_EUPSTREAM;
    }
    char why[256] = "";
    redisContext *c = open_redis(r, why, sizeof why);
    int rc = USHER_EUPSTREAM;
    if (c) {
        redisReply *reply = redisCommand(c, "PING");
        if (reply_ok(reply))
            rc = 0;
        else
            snprintf(why, sizeof why, "PING failed");
        if (reply)
            freeReplyObject(reply);
        redisFree(c);
    }
    snprintf(detail, size, "%s", rc == 0 ? "ok" : why);
    task_redis_free(r);
    return rc;
}

/* ---- consumers -------------------------------------------------------------------------- */

/* Creates the consumer group (and the stream) unless it exists. */
static bool ensure_group(redisContext *c)
{
    redisReply *reply =
        redisCommand(c, "XGROUP CREATE %s %s 0 MKSTREAM", TASK_REDIS_STREAM, TASK_REDIS_GROUP);
    bool ok = reply && (reply->type != REDIS_REPLY_ERROR || strstr(reply->str, "BUSYGROUP"));
    if (reply)
        freeReplyObject(reply);
    return ok;
}

/* XACK + XDEL of one entry; false when the connection failed. */
static bool ack(redisContext *c, const char *entry)
{
    /* Appending fails only when hiredis cannot allocate; every appended command's reply is
     * still read so the connection's replies stay in step. */
    int appended = 0;
    if (redisAppendCommand(c, "XACK %s %s %s", TASK_REDIS_STREAM, TASK_REDIS_GROUP, entry) ==
        REDIS_OK) {
        appended++;
        if (redisAppendCommand(c, "XDEL %s %s", TASK_REDIS_STREAM, entry) == REDIS_OK)
            appended++;
    }
    bool ok = appended == 2;
    for (int i = 0; i < appended; i++) {
        redisReply *reply = NULL;
        bool got = redisGetReply(c, (void **)&reply) == REDIS_OK;
        if (reply)
            freeReplyObject(reply);
        if (!got)
            return false; /* the connection is gone; so are the remaining replies */
    }
    return ok;
}

/*
 * Replaces a delivered entry by a new one for the same task at the end of the stream, which
 * any consumer can read at once: XADD, XACK and XDEL in one MULTI/EXEC, so the task never
 * drops out of the stream in between. (A task in the stream twice would be harmless: the
 * database claim decides who runs it.) False when the connection failed or the transaction did not
 * run; the entry then stays pending and XAUTOCLAIM delivers it after a lease.
 */
static bool requeue(redisContext *c, const char *entry, int64_t id)
{
    /* Appending fails only when hiredis cannot allocate. */
    int appended = 0;
    bool ok = redisAppendCommand(c, "MULTI") == REDIS_OK && ++appended;
    ok = ok &&
         redisAppendCommand(c, "XADD %s * id %lld", TASK_REDIS_STREAM, (long long)id) == REDIS_OK &&
         ++appended;
    ok = ok &&
         redisAppendCommand(c, "XACK %s %s %s", TASK_REDIS_STREAM, TASK_REDIS_GROUP, entry) ==
             REDIS_OK &&
         ++appended;
    ok = ok && redisAppendCommand(c, "XDEL %s %s", TASK_REDIS_STREAM, entry) == REDIS_OK &&
         ++appended;
    ok = ok && redisAppendCommand(c, "EXEC") == REDIS_OK && ++appended;
    /* Every appended command's reply is read so the replies stay in step. A MULTI without
     * its EXEC applies nothing, and the caller drops the connection when this fails. */
    for (int i = 0; i < appended; i++) {
        redisReply *reply = NULL;
        if (redisGetReply(c, (void **)&reply) != REDIS_OK)
            return false; /* the connection is gone; so are the remaining replies */
        if (i == 4) /* EXEC: the three results, or nil/error when the transaction failed */
            ok = ok && reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 3;
        if (reply)
            freeReplyObject(reply);
    }
    return ok;
}

/* The task id an entry [id, [field, value, …]] carries, or 0. */
static int64_t entry_task_id(const redisReply *entry)
{
    if (!entry || entry->type != REDIS_REPLY_ARRAY || entry->elements < 2)
        return 0;
    const redisReply *fields = entry->element[1];
    if (!fields || fields->type != REDIS_REPLY_ARRAY)
        return 0;
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i], *v = fields->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING || strcmp(k->str, "id"))
            continue;
        char *stop = NULL;
        long long id = strtoll(v->str, &stop, 10);
        return *stop || id <= 0 ? 0 : (int64_t)id;
    }
    return 0;
}

/* Claims and runs one delivered entry. False when the Redis connection failed. */
static bool handle_entry(redisContext *c, struct worker_slot *slot, const redisReply *entry)
{
    if (!entry || entry->type != REDIS_REPLY_ARRAY || entry->elements < 1 ||
        entry->element[0]->type != REDIS_REPLY_STRING)
        return true; /* an entry deleted meanwhile */
    char entry_id[64];
    snprintf(entry_id, sizeof entry_id, "%s", entry->element[0]->str);
    int64_t id = entry_task_id(entry);
    if (id == 0)
        return ack(c, entry_id); /* not ours: nothing to run */
    struct worker *w = slot->w;
    struct db_conn *conn = NULL;
    struct task_claim claim;
    enum task_claim_result result = TASK_BUSY;
    int rc = db_acquire(w->pool, WORKER_DB_WAIT_MS, &conn);
    if (rc == 0)
        rc = task_claim_id(conn, id, slot->id, clock_now(), w->lease_seconds, &claim, &result);
    db_release(conn);
    if (rc != 0) {
        /* The database refused or failed the claim (unreachable, locked, out of
         * connections): nothing ran and nothing changed. Left pending, the entry would
         * wait a whole lease for XAUTOCLAIM; hand it back to the group at once instead, and
         * pause this consumer so an outage is not a tight loop. */
        log_warn("msg=\"task claim failed; entry handed back to the queue\" task=%lld "
                 "error=\"%s\"",
                 (long long)id, usher_strerror(rc));
        bool ok = requeue(c, entry_id, id);
        worker_sleep(w, RECONNECT_MS, false);
        return ok;
    }
    if (result == TASK_BUSY)
        return true; /* running under a live lease: its holder acknowledges it */
    if (result == TASK_CLAIMED)
        worker_execute(slot, &claim);
    return ack(c, entry_id);
}

/* Runs every entry of an entry list; false when the connection failed. */
static bool handle_entries(redisContext *c, struct worker_slot *slot, const redisReply *list)
{
    if (!list || list->type != REDIS_REPLY_ARRAY)
        return true;
    for (size_t i = 0; i < list->elements; i++)
        if (!handle_entry(c, slot, list->element[i]))
            return false;
    return true;
}

/* Takes over entries idle longer than a lease (their consumer died). */
static bool autoclaim(redisContext *c, struct worker_slot *slot)
{
    long long min_idle = (long long)slot->w->lease_seconds * 1000;
    redisReply *reply = redisCommand(c, "XAUTOCLAIM %s %s %s %lld 0-0 COUNT %d", TASK_REDIS_STREAM,
                                     TASK_REDIS_GROUP, slot->id, min_idle, AUTOCLAIM_COUNT);
    if (!reply)
        return false;
    bool ok = true;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2)
        ok = handle_entries(c, slot, reply->element[1]);
    else if (reply->type == REDIS_REPLY_ERROR && strstr(reply->str, "NOGROUP"))
        ensure_group(c);
    freeReplyObject(reply);
    return ok;
}

/* One XREADGROUP; false when the connection failed. */
static bool read_new(redisContext *c, struct worker_slot *slot, bool *trouble)
{
    redisReply *reply = redisCommand(c, "XREADGROUP GROUP %s %s COUNT 1 BLOCK %d STREAMS %s >",
                                     TASK_REDIS_GROUP, slot->id, BLOCK_MS, TASK_REDIS_STREAM);
    if (!reply)
        return false;
    bool ok = true, pause = false;
    if (reply->type == REDIS_REPLY_ERROR) {
        /* NOGROUP: Redis lost the group (restart without persistence, flush). */
        if (strstr(reply->str, "NOGROUP")) {
            ensure_group(c);
        } else {
            /* Other errors (READONLY after a failover, WRONGTYPE, UNBLOCKED by a DEL) come
             * back at once and may persist: without a pause this thread spins on Redis. */
            note_redis(trouble, false, slot->id, reply->str);
            pause = true;
        }
    } else {
        note_redis(trouble, true, slot->id, NULL);
        if (reply->type == REDIS_REPLY_ARRAY) {
            for (size_t i = 0; ok && i < reply->elements; i++) {
                const redisReply *stream = reply->element[i];
                if (stream->type == REDIS_REPLY_ARRAY && stream->elements >= 2)
                    ok = handle_entries(c, slot, stream->element[1]);
            }
        }
    }
    freeReplyObject(reply);
    if (pause)
        worker_sleep(slot->w, RECONNECT_MS, false);
    return ok;
}

/* A clean stop: a consumer with nothing pending is removed from the group, so the group
 * does not collect the names of every worker thread that ever ran. One with deliveries still
 * pending (left for a live lease elsewhere, or not handed back after a failed claim) stays, so that
 * XAUTOCLAIM can hand them to another consumer. */
static void forget_consumer(redisContext *c, const char *consumer)
{
    redisReply *reply =
        redisCommand(c, "XPENDING %s %s - + 1 %s", TASK_REDIS_STREAM, TASK_REDIS_GROUP, consumer);
    bool idle = reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 0;
    if (reply)
        freeReplyObject(reply);
    if (!idle)
        return;
    reply = redisCommand(c, "XGROUP DELCONSUMER %s %s %s", TASK_REDIS_STREAM, TASK_REDIS_GROUP,
                         consumer);
    if (reply)
        freeReplyObject(reply);
}

void *task_redis_consume(void *arg)
{
    struct worker_slot *slot = arg;
    struct worker *w = slot->w;
    redisContext *c = NULL;
    bool trouble = false;
    int64_t next_autoclaim = 0;
    int64_t autoclaim_every = (int64_t)w->lease_seconds * 1000000000LL / 2;
    while (!atomic_load(&w->stopping)) {
        if (!c) {
            char why[256] = "";
            c = open_redis(w->redis, why, sizeof why);
            if (c && !ensure_group(c)) {
                snprintf(why, sizeof why, "cannot create the consumer group");
                redisFree(c);
                c = NULL;
            }
            note_redis(&trouble, c != NULL, slot->id, why);
            if (!c) {
                worker_sleep(w, RECONNECT_MS, false);
                continue;
            }
        }
        bool ok = true;
        if (clock_mono_ns() >= next_autoclaim) {
            next_autoclaim = clock_mono_ns() + autoclaim_every;
            ok = autoclaim(c, slot);
        }
        if (ok)
            ok = read_new(c, slot, &trouble);
        if (!ok) {
            note_redis(&trouble, false, slot->id, c->errstr[0] ? c->errstr : "connection lost");
            redisFree(c);
            c = NULL;
        }
    }
    if (c) {
        forget_consumer(c, slot->id);
        redisFree(c);
    }
    atomic_fetch_sub(&w->busy_threads, 1);
    return NULL;
}

/* ---- relay ------------------------------------------------------------------------------ */

static void drop_relay(struct task_redis *r, const char *why)
{
    note_redis(&r->relay_trouble, false, "relay", why);
    if (r->relay)
        redisFree(r->relay);
    r->relay = NULL;
    r->relay_retry_at = clock_mono_ns() + (int64_t)RECONNECT_MS * 1000000;
}

/*
 * The epoch marker: missing means Redis lost its data (or is new), so every queued row is
 * marked unrelayed before the marker is set again. Returns false on a Redis failure.
 */
static bool check_epoch(struct task_redis *r, struct db_conn *conn)
{
    redisReply *reply = redisCommand(r->relay, "GET %s", TASK_REDIS_EPOCH);
    if (!reply)
        return false;
    bool missing = reply->type == REDIS_REPLY_NIL;
    bool ok = reply->type != REDIS_REPLY_ERROR;
    freeReplyObject(reply);
    if (!ok || !missing)
        return ok;
    int64_t count = 0;
    if (task_relay_reset(conn, INT64_MAX, &count) != 0)
        return true; /* a database problem: try again next tick */
    char *value = crypto_random_hex(8);
    reply = redisCommand(r->relay, "SET %s %s NX", TASK_REDIS_EPOCH, value);
    free(value);
    if (!reply)
        return false;
    freeReplyObject(reply);
    log_info("msg=\"redis holds no queue marker (new, flushed, or restarted without its data): "
             "relaying queued tasks again\" tasks=%lld",
             (long long)count);
    return true;
}

/* One batch: pick, XADD, mark, commit. Returns rows relayed, 0 for none, -1 on failure. */
static int relay_batch(struct worker *w, struct db_conn *conn, int64_t now)
{
    struct task_redis *r = w->redis;
    bool due = true;
    if (db_conn_dialect(conn) == DB_SQLITE && (task_any_due(conn, now, true, &due) != 0 || !due))
        return 0;
    if (db_begin(conn, DB_TX_WRITE) != 0)
        return -1;
    int64_t ids[RELAY_BATCH];
    int n = 0;
    if (task_relay_pick(conn, now, RELAY_BATCH, ids, &n) != 0 || n == 0) {
        db_rollback(conn);
        return n == 0 ? 0 : -1;
    }
    int appended = 0; /* appending fails only when hiredis cannot allocate */
    while (appended < n && redisAppendCommand(r->relay, "XADD %s * id %lld", TASK_REDIS_STREAM,
                                              (long long)ids[appended]) == REDIS_OK)
        appended++;
    bool ok = appended == n;
    for (int i = 0; i < appended; i++) {
        redisReply *reply = NULL;
        if (redisGetReply(r->relay, (void **)&reply) != REDIS_OK) {
            ok = false;
            break; /* the connection is gone; so are the remaining replies */
        }
        ok = ok && reply_ok(reply);
        freeReplyObject(reply);
    }
    if (!ok) {
        db_rollback(conn);
        drop_relay(r, r->relay->errstr[0] ? r->relay->errstr : "XADD failed");
        return -1;
    }
    if (task_relay_mark(conn, ids, n, now) != 0 || db_commit(conn) != 0) {
        db_rollback(conn); /* the entries are duplicates now: harmless */
        return -1;
    }
    return n;
}

void task_redis_relay_tick(struct worker *w, int64_t now)
{
    struct task_redis *r = w->redis;
    if (!r->relay) {
        if (clock_mono_ns() < r->relay_retry_at)
            return;
        char why[256] = "";
        r->relay = open_redis(r, why, sizeof why);
        if (!r->relay) {
            drop_relay(r, why);
            return;
        }
    }
    struct db_conn *conn = NULL;
    if (db_acquire(w->pool, WORKER_DB_WAIT_MS, &conn) != 0)
        return; /* the housekeeping's requeue step logs database trouble */
    if (!check_epoch(r, conn)) {
        db_release(conn);
        drop_relay(r, r->relay->errstr[0] ? r->relay->errstr : "GET failed");
        return;
    }
    int64_t mono = clock_mono_ns();
    if (mono >= r->stale_check_at) {
        r->stale_check_at = mono + STALE_CHECK_NS;
        int64_t after = (int64_t)w->lease_seconds * 10;
        if (after < STALE_MIN_SECONDS)
            after = STALE_MIN_SECONDS;
        int64_t count = 0;
        if (task_relay_reset(conn, now - after, &count) == 0 && count > 0)
            log_warn("msg=\"queued tasks relayed long ago but never claimed; relaying again\" "
                     "tasks=%lld",
                     (long long)count);
    }
    int n = 0;
    for (int i = 0; i < RELAY_BATCHES_PER_TICK && r->relay; i++) {
        n = relay_batch(w, conn, now);
        if (n <= 0)
            break;
    }
    if (n >= 0 && r->relay)
        note_redis(&r->relay_trouble, true, "relay", NULL);
    db_release(conn);
}
