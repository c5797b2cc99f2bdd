/*
 * codes.c — email verification codes (see codes.h).
 *
 * Issuing runs in one write transaction. Its first statement counts the hit on the
 * address's hourly bucket, which also locks that bucket row until the end (PostgreSQL) or
 * holds the database write lock (SQLite): two requests for the same address are therefore
 * serialized, and the cooldown check that follows sees any code the other one created.
 * Buckets are always taken in the same order (address, then client), so two transactions
 * cannot wait for each other in a cycle. Any refusal rolls the whole transaction back.
 *
 * Verifying needs no transaction: every decision that matters is a single conditional
 * UPDATE, and its affected-row count (or RETURNING row) is the answer.
 */
#include "domain/codes.h"

#include "core/crypto.h"
#include "core/err.h"
#include "core/messages.h"
#include "db/db.h"
#include "domain/rate_limit.h"
#include "domain/validate.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define SESSION_HASH_MAX 128
/* "recovery|" + email + "|" + digits */
#define HMAC_INPUT_MAX (16 + EMAIL_MAX_LEN + CODE_DIGITS + 1)

static bool valid_purpose(const char *purpose)
{
    return purpose && (!strcmp(purpose, "signup") || !strcmp(purpose, "recovery"));
}

static int check_subject(const char *secret_key, const struct code_subject *who)
{
    if (!secret_key || !*secret_key)
        return USHER_ECONFIG;
    if (!who || !valid_purpose(who->purpose) || !who->email || !*who->email ||
        strlen(who->email) > EMAIL_MAX_LEN || !who->session_hash || !*who->session_hash ||
        strlen(who->session_hash) > SESSION_HASH_MAX)
        return USHER_EINVAL;
    return 0;
}

/* Wipes memory the compiler may not optimize away (explicit_bzero). */
static void wipe(void *p, size_t n)
{
    explicit_bzero(p, n);
}

static int code_hmac(const char *secret_key, const struct code_subject *who, const char *code,
                     char out[CRYPTO_SHA256_HEX_LEN + 1])
{
    char input[HMAC_INPUT_MAX + 1];
    int n = snprintf(input, sizeof input, "%s|%s|%s", who->purpose, who->email, code);
    int rc = USHER_EINVAL;
    if (n > 0 && (size_t)n < sizeof input)
        rc = crypto_hmac_sha256_hex(secret_key, input, (size_t)n, out);
    wipe(input, sizeof input);
    return rc == 0 ? 0 : USHER_EINVAL;
}

/* ---- issuing ------------------------------------------------------------------------- */

static int hit_bucket(struct db_conn *conn, const char *bucket, int64_t limit, int64_t now,
                      struct rate_limit_result *res)
{
    return rate_limit_hit(conn, bucket, limit, CODE_LIMIT_WINDOW_SECONDS, now, res);
}

/* Seconds left of the cooldown for who's address, 0 when none. */
static int cooldown_left(struct db_conn *conn, const struct code_subject *who, int64_t now,
                         int64_t *left)
{
    const struct db_param p[] = {DB_TEXT(who->purpose), DB_TEXT(who->email)};
    struct db_result *res = NULL;
    int rc = db_query(conn,
                      "SELECT created_at FROM verification_codes WHERE purpose = $1 AND "
                      "email = $2 ORDER BY created_at DESC LIMIT 1",
                      p, DB_NPARAMS(p), &res);
    if (rc != 0)
        return rc;
    *left = 0;
    if (db_result_rows(res) == 1) {
        int64_t until = db_result_int(res, 0, 0) + CODE_RESEND_COOLDOWN_SECONDS;
        if (until > now)
            *left = until - now;
    }
    db_result_free(res);
    return 0;
}

/* Checks the limits in order; USHER_ELIMIT with out->limit set when one applies. */
static int apply_limits(struct db_conn *conn, const struct code_subject *who, const char *client_ip,
                        int64_t now, struct code_issued *out)
{
    char email_hash[CRYPTO_SHA256_HEX_LEN + 1];
    crypto_sha256_hex(who->email, email_hash);
    char bucket[RATE_LIMIT_BUCKET_MAX + 1];
    snprintf(bucket, sizeof bucket, "code:email:%s:%s", who->purpose, email_hash);
    struct rate_limit_result email_hits;
    int rc = hit_bucket(conn, bucket, CODE_MAX_PER_EMAIL_PER_HOUR, now, &email_hits);
    if (rc != 0)
        return rc;
    int64_t left = 0;
    rc = cooldown_left(conn, who, now, &left);
    if (rc != 0)
        return rc;
    if (left > 0) {
        out->limit = CODE_LIMIT_COOLDOWN;
        out->retry_after = left;
        return USHER_ELIMIT;
    }
    if (!email_hits.allowed) {
        out->limit = CODE_LIMIT_EMAIL_HOURLY;
        out->retry_after = email_hits.retry_after;
        return USHER_ELIMIT;
    }
    if (!client_ip || !*client_ip)
        return 0;
    int n = snprintf(bucket, sizeof bucket, "code:ip:%s", client_ip);
    if (n < 0 || (size_t)n >= sizeof bucket)
        return USHER_EINVAL;
    struct rate_limit_result ip_hits;
    rc = hit_bucket(conn, bucket, CODE_MAX_PER_IP_PER_HOUR, now, &ip_hits);
    if (rc != 0)
        return rc;
    if (!ip_hits.allowed) {
        out->limit = CODE_LIMIT_IP_HOURLY;
        out->retry_after = ip_hits.retry_after;
        return USHER_ELIMIT;
    }
    return 0;
}

static int insert_code(struct db_conn *conn, const char *secret_key, const struct code_subject *who,
                       int64_t now, struct code_issued *out)
{
    const struct db_param sup[] = {DB_BOOL(true), DB_TEXT(who->purpose), DB_TEXT(who->email),
                                   DB_TEXT(who->session_hash)};
    int rc = db_exec(conn,
                     "UPDATE verification_codes SET superseded = $1 WHERE purpose = $2 AND "
                     "email = $3 AND session_hash = $4 AND NOT superseded AND "
                     "consumed_at IS NULL",
                     sup, DB_NPARAMS(sup), NULL);
    if (rc != 0)
        return rc;

    snprintf(out->code, sizeof out->code, "%06u", crypto_random_below(1000000));
    char hmac[CRYPTO_SHA256_HEX_LEN + 1];
    rc = code_hmac(secret_key, who, out->code, hmac);
    if (rc != 0)
        return rc;
    const struct db_param p[] = {
        DB_TEXT(who->purpose), DB_TEXT(who->email), DB_TEXT(who->session_hash),
        DB_TEXT(hmac),         DB_INT(now),         DB_INT(now + CODE_TTL_SECONDS)};
    struct db_result *res = NULL;
    rc = db_query(conn,
                  "INSERT INTO verification_codes (purpose, email, session_hash, code_hmac, "
                  "attempts, created_at, expires_at) VALUES ($1, $2, $3, $4, 0, $5, $6) "
                  "RETURNING id",
                  p, DB_NPARAMS(p), &res);
    if (rc != 0)
        return rc;
    out->id = db_result_rows(res) == 1 ? db_result_int(res, 0, 0) : 0;
    db_result_free(res);
    return out->id > 0 ? 0 : USHER_EDB;
}

int code_issue(struct db_pool *pool, const char *secret_key, const struct code_subject *who,
               const char *client_ip, int64_t now, struct code_issued *out)
{
    memset(out, 0, sizeof *out);
    int rc = check_subject(secret_key, who);
    if (rc != 0)
        return rc;
    struct db_conn *conn = NULL;
    rc = db_acquire(pool, DB_WAIT_MS, &conn);
    if (rc != 0)
        return rc;
    rc = db_begin(conn, DB_TX_WRITE);
    if (rc == 0)
        rc = apply_limits(conn, who, client_ip, now, out);
    if (rc == 0)
        rc = insert_code(conn, secret_key, who, now, out);
    if (rc == 0)
        rc = db_commit(conn);
    db_release(conn); /* rolls back a refusal or a failure */
    if (rc != 0) {
        enum code_limit limit = out->limit;
        int64_t retry_after = out->retry_after;
        code_issued_wipe(out);
        memset(out, 0, sizeof *out);
        if (rc == USHER_ELIMIT) {
            out->limit = limit;
            out->retry_after = retry_after;
        }
    }
    return rc;
}

void code_issued_wipe(struct code_issued *out)
{
    wipe(out->code, sizeof out->code);
}

int code_invalidate(struct db_pool *pool, int64_t id)
{
    struct db_conn *conn = NULL;
    int rc = db_acquire(pool, DB_WAIT_MS, &conn);
    if (rc != 0)
        return rc;
    const struct db_param p[] = {DB_BOOL(true), DB_INT(id)};
    rc = db_exec(conn, "UPDATE verification_codes SET superseded = $1 WHERE id = $2", p,
                 DB_NPARAMS(p), NULL);
    db_release(conn);
    return rc;
}

/* ---- verifying ----------------------------------------------------------------------- */

const char *code_outcome_message(enum code_outcome outcome)
{
    switch (outcome) {
    case CODE_VERIFIED: return NULL;
    case CODE_INCORRECT: return msg("code.incorrect");
    case CODE_EXPIRED: return msg("code.expired");
    case CODE_TOO_MANY: return msg("code.too_many_attempts");
    case CODE_NO_CODE: break;
    }
    return msg("code.none");
}

struct code_row {
    int64_t id;
    char hmac[CRYPTO_SHA256_HEX_LEN + 1];
    int64_t attempts;
    int64_t expires_at;
    bool consumed;
    bool superseded;
};

/* Loads a code row: by id when id > 0, else who's newest live (not superseded) one.
 * *found is false when there is none. */
static int load_row(struct db_conn *conn, const struct code_subject *who, int64_t id,
                    struct code_row *row, bool *found)
{
    struct db_result *res = NULL;
    int rc;
    if (id > 0) {
        const struct db_param p[] = {DB_INT(id)};
        rc = db_query(conn,
                      "SELECT id, code_hmac, attempts, expires_at, consumed_at, superseded "
                      "FROM verification_codes WHERE id = $1",
                      p, 1, &res);
    } else {
        const struct db_param p[] = {DB_TEXT(who->purpose), DB_TEXT(who->email),
                                     DB_TEXT(who->session_hash)};
        rc = db_query(conn,
                      "SELECT id, code_hmac, attempts, expires_at, consumed_at, superseded "
                      "FROM verification_codes WHERE purpose = $1 AND email = $2 AND "
                      "session_hash = $3 AND NOT superseded ORDER BY created_at DESC, id DESC "
                      "LIMIT 1",
                      p, DB_NPARAMS(p), &res);
    }
    if (rc != 0)
        return rc;
    *found = db_result_rows(res) == 1;
    if (*found) {
        row->id = db_result_int(res, 0, 0);
        const char *h = db_result_text(res, 0, 1);
        snprintf(row->hmac, sizeof row->hmac, "%s", h ? h : "");
        row->attempts = db_result_int(res, 0, 2);
        row->expires_at = db_result_int(res, 0, 3);
        row->consumed = !db_result_is_null(res, 0, 4);
        row->superseded = db_result_bool(res, 0, 5);
    }
    db_result_free(res);
    return 0;
}

/* Why a row cannot be used at now, or CODE_VERIFIED when it still can. */
static enum code_outcome row_state(const struct code_row *row, int64_t now)
{
    if (row->consumed || row->superseded)
        return CODE_NO_CODE;
    if (row->attempts >= CODE_MAX_ATTEMPTS)
        return CODE_TOO_MANY;
    if (row->expires_at <= now)
        return CODE_EXPIRED;
    return CODE_VERIFIED;
}

/* After a conditional UPDATE matched nothing: reads the row again to say why. */
static int explain(struct db_conn *conn, int64_t id, int64_t now, enum code_outcome *outcome)
{
    struct code_row row;
    bool found = false;
    int rc = load_row(conn, NULL, id, &row, &found);
    if (rc != 0)
        return rc;
    *outcome = found ? row_state(&row, now) : CODE_NO_CODE;
    if (*outcome == CODE_VERIFIED) /* changed back under us: cannot happen; refuse anyway */
        *outcome = CODE_NO_CODE;
    return 0;
}

static int count_wrong(struct db_conn *conn, int64_t id, int64_t now, enum code_outcome *outcome,
                       int *attempts_left)
{
    const struct db_param p[] = {DB_INT(id), DB_INT(CODE_MAX_ATTEMPTS)};
    struct db_result *res = NULL;
    int rc = db_query(conn,
                      "UPDATE verification_codes SET attempts = attempts + 1 WHERE id = $1 AND "
                      "attempts < $2 AND consumed_at IS NULL AND NOT superseded "
                      "RETURNING attempts",
                      p, DB_NPARAMS(p), &res);
    if (rc != 0)
        return rc;
    bool counted = db_result_rows(res) == 1;
    int64_t attempts = counted ? db_result_int(res, 0, 0) : CODE_MAX_ATTEMPTS;
    db_result_free(res);
    if (counted) {
        *outcome = CODE_INCORRECT;
        *attempts_left = attempts < CODE_MAX_ATTEMPTS ? (int)(CODE_MAX_ATTEMPTS - attempts) : 0;
        return 0;
    }
    return explain(conn, id, now, outcome);
}

static int consume(struct db_conn *conn, int64_t id, int64_t now, enum code_outcome *outcome)
{
    const struct db_param p[] = {DB_INT(now), DB_INT(id), DB_INT(CODE_MAX_ATTEMPTS)};
    int64_t affected = 0;
    int rc = db_exec(conn,
                     "UPDATE verification_codes SET consumed_at = $1 WHERE id = $2 AND "
                     "consumed_at IS NULL AND NOT superseded AND attempts < $3 AND "
                     "expires_at > $1",
                     p, DB_NPARAMS(p), &affected);
    if (rc != 0)
        return rc;
    if (affected == 1) {
        *outcome = CODE_VERIFIED;
        return 0;
    }
    return explain(conn, id, now, outcome);
}

/* The submitted code without surrounding white space, if it is CODE_DIGITS digits. */
static bool digits_of(const char *in, char out[CODE_DIGITS + 1])
{
    while (*in && isspace((unsigned char)*in))
        in++;
    size_t n = 0;
    while (isdigit((unsigned char)in[n]) && n < CODE_DIGITS) {
        out[n] = in[n];
        n++;
    }
    out[n] = '\0';
    const char *rest = in + n;
    while (*rest && isspace((unsigned char)*rest))
        rest++;
    return n == CODE_DIGITS && !*rest;
}

static int verify_on(struct db_conn *conn, const char *secret_key, const struct code_subject *who,
                     const char *code, int64_t now, enum code_outcome *outcome, int *attempts_left)
{
    struct code_row row;
    bool found = false;
    int rc = load_row(conn, who, 0, &row, &found);
    if (rc != 0)
        return rc;
    if (!found) {
        *outcome = CODE_NO_CODE;
        return 0;
    }
    *outcome = row_state(&row, now);
    if (*outcome != CODE_VERIFIED)
        return 0;

    char digits[CODE_DIGITS + 1];
    bool right = false;
    if (digits_of(code, digits)) {
        char hmac[CRYPTO_SHA256_HEX_LEN + 1];
        rc = code_hmac(secret_key, who, digits, hmac);
        if (rc != 0)
            return rc;
        right = crypto_equal_str(hmac, row.hmac);
    }
    wipe(digits, sizeof digits);
    return right ? consume(conn, row.id, now, outcome)
                 : count_wrong(conn, row.id, now, outcome, attempts_left);
}

int code_verify(struct db_pool *pool, const char *secret_key, const struct code_subject *who,
                const char *code, int64_t now, enum code_outcome *outcome)
{
    int attempts_left = 0;
    return code_verify_attempts(pool, secret_key, who, code, now, outcome, &attempts_left);
}

int code_verify_attempts(struct db_pool *pool, const char *secret_key,
                         const struct code_subject *who, const char *code, int64_t now,
                         enum code_outcome *outcome, int *attempts_left)
{
    *outcome = CODE_NO_CODE;
    *attempts_left = 0;
    int rc = check_subject(secret_key, who);
    if (rc != 0)
        return rc;
    if (!code)
        return USHER_EINVAL;
    struct db_conn *conn = NULL;
    rc = db_acquire(pool, DB_WAIT_MS, &conn);
    if (rc != 0)
        return rc;
    rc = verify_on(conn, secret_key, who, code, now, outcome, attempts_left);
    db_release(conn);
    return rc;
}

int code_purge(struct db_conn *conn, int64_t now, int64_t *deleted)
{
    const struct db_param p[] = {DB_INT(now - CODE_RETENTION_SECONDS)};
    return db_exec(conn, "DELETE FROM verification_codes WHERE expires_at < $1", p, 1, deleted);
}
