/*
 * codes.h — email verification codes for signup and recovery (SPEC §3, §7).
 *
 * A code is 6 digits drawn from the CSPRNG (crypto_random_below, zero-padded). The database
 * keeps only HMAC-SHA256(SECRET_KEY, "purpose|email|code") in hex, so a leaked table reveals
 * no code; the digits exist in clear only in the caller's buffer between code_issue and the
 * email (never in a task, a log line or the session). Rules, all enforced here:
 *
 *  - valid CODE_TTL_SECONDS (10 minutes) on clock_now() time, so tests can move it;
 *  - bound to the browser session that asked for it (the session's id hash): another session
 *    finds no verification in progress;
 *  - single use: consuming is one conditional UPDATE whose affected-row count decides, so of
 *    many concurrent correct submissions exactly one succeeds;
 *  - at most CODE_MAX_ATTEMPTS wrong attempts, counted by one conditional
 *    UPDATE … SET attempts = attempts + 1 … WHERE attempts < max RETURNING: concurrent wrong
 *    guesses evaluate exactly max times, then the code is dead even for the right digits;
 *  - a new code supersedes the previous one for the same purpose + email + session;
 *  - issuing is limited: one code per purpose + email every CODE_RESEND_COOLDOWN_SECONDS,
 *    CODE_MAX_PER_EMAIL_PER_HOUR per purpose + email, and CODE_MAX_PER_IP_PER_HOUR per client
 *    address (rate_limits buckets). A refused request changes nothing and counts nothing.
 *
 * Emails must already be normalized (validate_email). Purposes are "signup" and "recovery".
 */
#ifndef USHER_DOMAIN_CODES_H
#define USHER_DOMAIN_CODES_H

#include <stdint.h>

struct db_conn;
struct db_pool;

#define CODE_DIGITS 6
#define CODE_TTL_SECONDS (10 * 60)
#define CODE_MAX_ATTEMPTS 5
#define CODE_RESEND_COOLDOWN_SECONDS 60
#define CODE_MAX_PER_EMAIL_PER_HOUR 5
#define CODE_MAX_PER_IP_PER_HOUR 20
#define CODE_LIMIT_WINDOW_SECONDS (60 * 60)
/* Rows are kept this long after they expire (cooldown and limits look back at most an
 * hour), then code_purge removes them. */
#define CODE_RETENTION_SECONDS (24 * 60 * 60)

/* Who a code is for. Borrowed strings. */
struct code_subject {
    const char *purpose; /* "signup" | "recovery" */
    const char *email; /* normalized */
    const char *session_hash; /* the asking session's id hash (never the raw cookie) */
};

enum code_limit {
    CODE_LIMIT_NONE = 0,
    CODE_LIMIT_COOLDOWN, /* a code for this address was sent less than a minute ago */
    CODE_LIMIT_EMAIL_HOURLY, /* too many codes for this address this hour */
    CODE_LIMIT_IP_HOURLY, /* too many codes from this client address this hour */
};

struct code_issued {
    char code[CODE_DIGITS + 1]; /* the digits, only when code_issue returned 0; wipe after use
                                 * (code_issued_wipe) */
    int64_t id; /* the row, for code_invalidate */
    enum code_limit limit; /* why code_issue returned USHER_ELIMIT */
    int64_t retry_after; /* seconds, with USHER_ELIMIT */
};

/*
 * Creates a code for who, superseding the previous one, unless a limit applies. client_ip is
 * what the per-client limit counts under (from the web: an IPv4 address or an IPv6 /64); NULL
 * or "" when unknown (then only the per-email limits apply).
 * Returns 0 with out->code and out->id; USHER_ELIMIT with out->limit and out->retry_after
 * (nothing changed); USHER_EINVAL for a bad purpose or missing field; or a database error.
 */
int code_issue(struct db_pool *pool, const char *secret_key, const struct code_subject *who,
               const char *client_ip, int64_t now, struct code_issued *out);

/* Zeroes the digits in out. */
void code_issued_wipe(struct code_issued *out);

/* Makes a code unusable at once (the email carrying it could not be sent). Idempotent. */
int code_invalidate(struct db_pool *pool, int64_t id);

enum code_outcome {
    CODE_VERIFIED = 0,
    CODE_INCORRECT, /* wrong digits; the attempt was counted */
    CODE_EXPIRED,
    CODE_NO_CODE, /* none for this subject, superseded, or already used */
    CODE_TOO_MANY, /* the attempts are used up */
};

/* The message for an outcome (NULL for CODE_VERIFIED). */
const char *code_outcome_message(enum code_outcome outcome);

/*
 * Checks code (surrounding white space ignored) against who's current code at now and
 * consumes it when right. Returns 0 with *outcome set, USHER_EINVAL for a bad purpose or
 * missing field, or a database error.
 */
int code_verify(struct db_pool *pool, const char *secret_key, const struct code_subject *who,
                const char *code, int64_t now, enum code_outcome *outcome);

/*
 * code_verify, and *attempts_left: the wrong attempts the code still takes after this one
 * (CODE_MAX_ATTEMPTS minus those counted, as the counting UPDATE returned them), meaningful
 * with CODE_INCORRECT; 0 for every other outcome.
 */
int code_verify_attempts(struct db_pool *pool, const char *secret_key,
                         const struct code_subject *who, const char *code, int64_t now,
                         enum code_outcome *outcome, int *attempts_left);

/* Deletes codes that expired more than CODE_RETENTION_SECONDS before now. */
int code_purge(struct db_conn *conn, int64_t now, int64_t *deleted);

#endif
