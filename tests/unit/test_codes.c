/*
 * test_codes.c — email verification codes (SPEC §3): keyed-hash storage, expiry, single use,
 * the attempt limit (also under 50 concurrent wrong guesses), supersession, the resend
 * cooldown, the hourly limits per address and per client, session and purpose binding, and
 * invalidation. Runs over SQLite (a fresh temporary database per test) and over PostgreSQL
 * when USHER_TEST_PG_URL names a database (each test then works in a fresh schema,
 * usher_test_codes).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/crypto.h"
#include "core/err.h"
#include "core/mem.h"
#include "core/messages.h"
#include "db/db.h"
#include "db/migrate.h"
#include "testdb.h"
#include "domain/codes.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PG_SCHEMA "usher_test_codes"
#define T0 1790000000LL
#define KEY "test-secret-key-0123456789abcdef"
#define EMAIL "ada@example.com"
#define S1 "1111111111111111111111111111111111111111111111111111111111111111"
#define S2 "2222222222222222222222222222222222222222222222222222222222222222"
#define IP "192.0.2.7"

static struct db_pool *pool;
static bool use_pg;

/* ---- per-test databases ---- */

static struct testdb db;

static int setup(void **state)
{
    (void)state;
    testdb_open(&db, "codes", use_pg, PG_SCHEMA, 8);
    pool = db.pool;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    testdb_close(&db);
    pool = NULL;
    return 0;
}

/* ---- helpers ---- */

static struct code_subject subject(const char *purpose, const char *email, const char *session)
{
    return (struct code_subject){.purpose = purpose, .email = email, .session_hash = session};
}

static const struct code_subject *ada(const char *session)
{
    static struct code_subject s;
    s = subject("signup", EMAIL, session);
    return &s;
}

/* Issues a code that must be allowed; returns it. */
static struct code_issued issue_at(const struct code_subject *who, const char *ip, int64_t now)
{
    struct code_issued out;
    int rc = code_issue(pool, KEY, who, ip, now, &out);
    if (rc != 0)
        fail_msg("code_issue: %d (limit %d)", rc, (int)out.limit);
    assert_int_equal(strlen(out.code), CODE_DIGITS);
    for (int i = 0; i < CODE_DIGITS; i++)
        assert_true(out.code[i] >= '0' && out.code[i] <= '9');
    assert_true(out.id > 0);
    return out;
}

static enum code_limit refused_at(const struct code_subject *who, const char *ip, int64_t now,
                                  int64_t *retry_after)
{
    struct code_issued out;
    assert_int_equal(code_issue(pool, KEY, who, ip, now, &out), USHER_ELIMIT);
    assert_string_equal(out.code, "");
    assert_true(out.retry_after >= 1);
    if (retry_after)
        *retry_after = out.retry_after;
    return out.limit;
}

static enum code_outcome verify_at(const struct code_subject *who, const char *code, int64_t now)
{
    enum code_outcome o;
    assert_int_equal(code_verify(pool, KEY, who, code, now, &o), 0);
    return o;
}

/* A six-digit code that differs from code. */
static void wrong_code(const char *code, char out[CODE_DIGITS + 1])
{
    unsigned v = (unsigned)((strtol(code, NULL, 10) + 1) % 1000000);
    for (int i = CODE_DIGITS - 1; i >= 0; i--, v /= 10)
        out[i] = (char)('0' + v % 10);
    out[CODE_DIGITS] = '\0';
}

static int64_t scalar(const char *sql, const struct db_param *p, int n)
{
    struct db_conn *c = NULL;
    assert_int_equal(db_acquire(pool, 5000, &c), 0);
    struct db_result *res = NULL;
    assert_int_equal(db_query(c, sql, p, n, &res), 0);
    int64_t v = db_result_rows(res) ? db_result_int(res, 0, 0) : -1;
    db_result_free(res);
    db_release(c);
    return v;
}

static int64_t count_codes(void)
{
    return scalar("SELECT COUNT(*) FROM verification_codes", NULL, 0);
}

static int64_t attempts_of(int64_t id)
{
    const struct db_param p[] = {DB_INT(id)};
    return scalar("SELECT attempts FROM verification_codes WHERE id = $1", p, 1);
}

/* ---- storage ---- */

static void test_stores_only_the_keyed_hash(void **state)
{
    (void)state;
    struct code_issued c = issue_at(ada(S1), IP, T0);
    struct db_conn *conn = NULL;
    assert_int_equal(db_acquire(pool, 5000, &conn), 0);
    struct db_result *res = NULL;
    assert_int_equal(db_query(conn,
                              "SELECT purpose, email, session_hash, code_hmac, attempts, "
                              "created_at, expires_at, consumed_at FROM verification_codes",
                              NULL, 0, &res),
                     0);
    assert_int_equal(db_result_rows(res), 1);
    assert_string_equal(db_result_text(res, 0, 0), "signup");
    assert_string_equal(db_result_text(res, 0, 1), EMAIL);
    assert_string_equal(db_result_text(res, 0, 2), S1);
    char *input = xasprintf("signup|%s|%s", EMAIL, c.code);
    char expected[CRYPTO_SHA256_HEX_LEN + 1];
    assert_int_equal(crypto_hmac_sha256_hex(KEY, input, strlen(input), expected), 0);
    free(input);
    assert_string_equal(db_result_text(res, 0, 3), expected);
    assert_int_equal(db_result_int(res, 0, 4), 0);
    assert_int_equal(db_result_int(res, 0, 5), T0);
    assert_int_equal(db_result_int(res, 0, 6), T0 + CODE_TTL_SECONDS);
    assert_true(db_result_is_null(res, 0, 7));
    db_result_free(res);
    /* The digits appear in no column of any row. */
    const struct db_param p[] = {DB_TEXT(c.code)};
    assert_int_equal(db_query(conn,
                              "SELECT COUNT(*) FROM verification_codes WHERE purpose = $1 OR "
                              "email = $1 OR session_hash = $1 OR code_hmac = $1",
                              p, 1, &res),
                     0);
    assert_int_equal(db_result_int(res, 0, 0), 0);
    db_result_free(res);
    db_release(conn);

    code_issued_wipe(&c);
    assert_int_equal(c.code[0], '\0');
}

static void test_codes_look_random(void **state)
{
    (void)state;
    /* Different sessions, so no cooldown or supersession interferes; 10 codes. */
    char seen[10][CODE_DIGITS + 1];
    int distinct = 0;
    for (int i = 0; i < 10; i++) {
        char email[32];
        snprintf(email, sizeof email, "u%d@example.com", i);
        struct code_subject who = subject("signup", email, S1);
        struct code_issued c = issue_at(&who, NULL, T0);
        bool dup = false;
        for (int j = 0; j < distinct; j++)
            dup |= !strcmp(seen[j], c.code);
        if (!dup)
            memcpy(seen[distinct++], c.code, CODE_DIGITS + 1);
    }
    assert_true(distinct >= 9); /* P(two equal pairs among 10) is about 1e-9 */
}

/* ---- verifying ---- */

static void test_right_code_verifies_once(void **state)
{
    (void)state;
    struct code_issued c = issue_at(ada(S1), IP, T0);
    assert_int_equal(verify_at(ada(S1), c.code, T0 + 5), CODE_VERIFIED);
    assert_int_equal(verify_at(ada(S1), c.code, T0 + 6), CODE_NO_CODE);
    const struct db_param p[] = {DB_INT(c.id)};
    assert_int_equal(scalar("SELECT consumed_at FROM verification_codes WHERE id = $1", p, 1),
                     T0 + 5);
}

static void test_white_space_around_the_code_is_ignored(void **state)
{
    (void)state;
    struct code_issued c = issue_at(ada(S1), IP, T0);
    char padded[32];
    snprintf(padded, sizeof padded, "  %s\n", c.code);
    assert_int_equal(verify_at(ada(S1), padded, T0 + 1), CODE_VERIFIED);
}

static void test_expiry(void **state)
{
    (void)state;
    struct code_issued c = issue_at(ada(S1), IP, T0);
    assert_int_equal(verify_at(ada(S1), c.code, T0 + CODE_TTL_SECONDS), CODE_EXPIRED);
    char wrong[CODE_DIGITS + 1];
    wrong_code(c.code, wrong);
    assert_int_equal(verify_at(ada(S1), wrong, T0 + CODE_TTL_SECONDS), CODE_EXPIRED);
    assert_int_equal(attempts_of(c.id), 0);

    struct code_issued d = issue_at(ada(S2), NULL, T0 + 3600);
    assert_int_equal(verify_at(ada(S2), d.code, T0 + 3600 + CODE_TTL_SECONDS - 1), CODE_VERIFIED);
}

static void test_five_wrong_attempts_kill_the_code(void **state)
{
    (void)state;
    struct code_issued c = issue_at(ada(S1), IP, T0);
    char wrong[CODE_DIGITS + 1];
    wrong_code(c.code, wrong);
    for (int i = 1; i <= CODE_MAX_ATTEMPTS; i++) {
        assert_int_equal(verify_at(ada(S1), wrong, T0 + i), CODE_INCORRECT);
        assert_int_equal(attempts_of(c.id), i);
    }
    assert_int_equal(verify_at(ada(S1), wrong, T0 + 10), CODE_TOO_MANY);
    assert_int_equal(verify_at(ada(S1), c.code, T0 + 11), CODE_TOO_MANY);
    assert_int_equal(attempts_of(c.id), CODE_MAX_ATTEMPTS);
}

static void test_attempts_left_counts_down(void **state)
{
    (void)state;
    struct code_issued c = issue_at(ada(S1), IP, T0);
    char bad[CODE_DIGITS + 1];
    wrong_code(c.code, bad);
    for (int i = 1; i <= CODE_MAX_ATTEMPTS; i++) {
        enum code_outcome o;
        int left = -1;
        assert_int_equal(code_verify_attempts(pool, KEY, ada(S1), bad, T0 + i, &o, &left), 0);
        assert_int_equal(o, CODE_INCORRECT);
        assert_int_equal(left, CODE_MAX_ATTEMPTS - i);
    }
    enum code_outcome o;
    int left = -1;
    assert_int_equal(code_verify_attempts(pool, KEY, ada(S1), c.code, T0 + 9, &o, &left), 0);
    assert_int_equal(o, CODE_TOO_MANY);
    assert_int_equal(left, 0);
}

static void test_right_code_after_four_wrong(void **state)
{
    (void)state;
    struct code_issued c = issue_at(ada(S1), IP, T0);
    char wrong[CODE_DIGITS + 1];
    wrong_code(c.code, wrong);
    for (int i = 1; i < CODE_MAX_ATTEMPTS; i++)
        assert_int_equal(verify_at(ada(S1), wrong, T0 + i), CODE_INCORRECT);
    assert_int_equal(verify_at(ada(S1), c.code, T0 + 10), CODE_VERIFIED);
}

static void test_malformed_codes_count_as_wrong(void **state)
{
    (void)state;
    struct code_issued c = issue_at(ada(S1), IP, T0);
    const char *bad[] = {"", "12345", "1234567", "12a456", "１２３４５６", " 12 345"};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(verify_at(ada(S1), bad[i], T0 + 1), CODE_INCORRECT);
    assert_int_equal(verify_at(ada(S1), bad[5], T0 + 1), CODE_TOO_MANY);
    assert_int_equal(verify_at(ada(S1), c.code, T0 + 1), CODE_TOO_MANY);
}

static void test_no_code_in_progress(void **state)
{
    (void)state;
    assert_int_equal(verify_at(ada(S1), "123456", T0), CODE_NO_CODE);
    assert_int_equal(count_codes(), 0);
}

static void test_bound_to_session_and_purpose(void **state)
{
    (void)state;
    struct code_issued c = issue_at(ada(S1), IP, T0);
    /* Another browser session, the right digits: nothing in progress there, nothing counted. */
    assert_int_equal(verify_at(ada(S2), c.code, T0 + 1), CODE_NO_CODE);
    struct code_subject recovery = subject("recovery", EMAIL, S1);
    assert_int_equal(verify_at(&recovery, c.code, T0 + 1), CODE_NO_CODE);
    struct code_subject other = subject("signup", "bob@example.com", S1);
    assert_int_equal(verify_at(&other, c.code, T0 + 1), CODE_NO_CODE);
    assert_int_equal(attempts_of(c.id), 0);
    assert_int_equal(verify_at(ada(S1), c.code, T0 + 2), CODE_VERIFIED);
}

static void test_new_code_supersedes_the_old(void **state)
{
    (void)state;
    struct code_issued old = issue_at(ada(S1), IP, T0);
    struct code_issued fresh = issue_at(ada(S1), IP, T0 + CODE_RESEND_COOLDOWN_SECONDS);
    const struct db_param p[] = {DB_INT(old.id)};
    assert_int_equal(scalar("SELECT COUNT(*) FROM verification_codes WHERE id = $1 AND "
                            "superseded",
                            p, 1),
                     1);
    if (strcmp(old.code, fresh.code)) /* equal with probability 1e-6 */
        assert_int_equal(verify_at(ada(S1), old.code, T0 + 61), CODE_INCORRECT);
    assert_int_equal(verify_at(ada(S1), fresh.code, T0 + 62), CODE_VERIFIED);
    assert_int_equal(verify_at(ada(S1), old.code, T0 + 63), CODE_NO_CODE);
}

static void test_other_sessions_codes_are_not_superseded(void **state)
{
    (void)state;
    struct code_issued a = issue_at(ada(S1), IP, T0);
    struct code_issued b = issue_at(ada(S2), IP, T0 + CODE_RESEND_COOLDOWN_SECONDS);
    assert_int_equal(verify_at(ada(S1), a.code, T0 + 70), CODE_VERIFIED);
    assert_int_equal(verify_at(ada(S2), b.code, T0 + 70), CODE_VERIFIED);
}

static void test_invalidated_code_is_dead(void **state)
{
    (void)state;
    struct code_issued c = issue_at(ada(S1), IP, T0);
    assert_int_equal(code_invalidate(pool, c.id), 0);
    assert_int_equal(code_invalidate(pool, c.id), 0);
    assert_int_equal(verify_at(ada(S1), c.code, T0 + 1), CODE_NO_CODE);
}

/* ---- issuing limits ---- */

static void test_resend_cooldown(void **state)
{
    (void)state;
    issue_at(ada(S1), IP, T0);
    int64_t retry = 0;
    assert_int_equal(refused_at(ada(S1), IP, T0 + 1, &retry), CODE_LIMIT_COOLDOWN);
    assert_int_equal(retry, CODE_RESEND_COOLDOWN_SECONDS - 1);
    /* The cooldown is per address, whichever session asks. */
    assert_int_equal(refused_at(ada(S2), IP, T0 + 59, &retry), CODE_LIMIT_COOLDOWN);
    assert_int_equal(retry, 1);
    issue_at(ada(S2), IP, T0 + CODE_RESEND_COOLDOWN_SECONDS);
    /* Other addresses are not held up. */
    struct code_subject bob = subject("signup", "bob@example.com", S1);
    issue_at(&bob, IP, T0 + 1);
}

static void test_refusal_changes_nothing(void **state)
{
    (void)state;
    struct code_issued c = issue_at(ada(S1), IP, T0);
    int64_t rows = count_codes();
    int64_t hits = scalar("SELECT SUM(count) FROM rate_limits", NULL, 0);
    refused_at(ada(S1), IP, T0 + 10, NULL);
    assert_int_equal(count_codes(), rows);
    assert_int_equal(scalar("SELECT SUM(count) FROM rate_limits", NULL, 0), hits);
    /* The earlier code still works: a refused request supersedes nothing. */
    assert_int_equal(verify_at(ada(S1), c.code, T0 + 11), CODE_VERIFIED);
}

static void test_hourly_limit_per_address(void **state)
{
    (void)state;
    int64_t t = T0;
    for (int i = 0; i < CODE_MAX_PER_EMAIL_PER_HOUR; i++, t += CODE_RESEND_COOLDOWN_SECONDS)
        issue_at(ada(i % 2 ? S1 : S2), NULL, t);
    int64_t retry = 0;
    assert_int_equal(refused_at(ada(S1), NULL, t, &retry), CODE_LIMIT_EMAIL_HOURLY);
    assert_int_equal(retry, T0 + CODE_LIMIT_WINDOW_SECONDS - t);
    assert_int_equal(refused_at(ada(S1), IP, T0 + CODE_LIMIT_WINDOW_SECONDS - 1, NULL),
                     CODE_LIMIT_EMAIL_HOURLY);
    /* Per purpose: recovery for the same address has its own budget. */
    struct code_subject recovery = subject("recovery", EMAIL, S1);
    issue_at(&recovery, NULL, t);
    /* A new hour. */
    issue_at(ada(S1), NULL, T0 + CODE_LIMIT_WINDOW_SECONDS);
}

static void test_hourly_limit_per_client(void **state)
{
    (void)state;
    char email[32];
    for (int i = 0; i < CODE_MAX_PER_IP_PER_HOUR; i++) {
        snprintf(email, sizeof email, "u%d@example.com", i);
        struct code_subject who = subject(i % 2 ? "signup" : "recovery", email, S1);
        issue_at(&who, IP, T0 + i);
    }
    struct code_subject next = subject("signup", "late@example.com", S1);
    assert_int_equal(refused_at(&next, IP, T0 + 100, NULL), CODE_LIMIT_IP_HOURLY);
    /* A refused request did not use up the address's own budget or leave a code. */
    assert_int_equal(count_codes(), CODE_MAX_PER_IP_PER_HOUR);
    issue_at(&next, "198.51.100.1", T0 + 101); /* another client */
    struct code_subject other = subject("signup", "other@example.com", S1);
    issue_at(&other, NULL, T0 + 102); /* client unknown: only the per-address limits */
    struct code_subject again = subject("signup", "again@example.com", S1);
    issue_at(&again, IP, T0 + CODE_LIMIT_WINDOW_SECONDS); /* a new hour */
}

static void test_bad_arguments(void **state)
{
    (void)state;
    struct code_issued out;
    enum code_outcome o;
    struct code_subject bad = subject("login", EMAIL, S1);
    assert_int_equal(code_issue(pool, KEY, &bad, IP, T0, &out), USHER_EINVAL);
    assert_int_equal(code_verify(pool, KEY, &bad, "123456", T0, &o), USHER_EINVAL);
    struct code_subject no_session = subject("signup", EMAIL, "");
    assert_int_equal(code_issue(pool, KEY, &no_session, IP, T0, &out), USHER_EINVAL);
    struct code_subject no_email = subject("signup", NULL, S1);
    assert_int_equal(code_issue(pool, KEY, &no_email, IP, T0, &out), USHER_EINVAL);
    assert_int_equal(code_issue(pool, "", ada(S1), IP, T0, &out), USHER_ECONFIG);
    assert_int_equal(code_verify(pool, KEY, ada(S1), NULL, T0, &o), USHER_EINVAL);
    assert_int_equal(count_codes(), 0);
}

static void test_purge(void **state)
{
    (void)state;
    issue_at(ada(S1), IP, T0);
    struct code_subject bob = subject("signup", "bob@example.com", S1);
    issue_at(&bob, IP, T0 + CODE_RETENTION_SECONDS);
    struct db_conn *c = NULL;
    assert_int_equal(db_acquire(pool, 5000, &c), 0);
    int64_t deleted = 0;
    assert_int_equal(code_purge(c, T0 + CODE_TTL_SECONDS + CODE_RETENTION_SECONDS + 1, &deleted),
                     0);
    db_release(c);
    assert_int_equal(deleted, 1);
    assert_int_equal(count_codes(), 1);
}

/* ---- concurrency ---- */

struct guesser {
    const char *code;
    int result; /* enum code_outcome, or -1 on error */
};

static void *guess(void *arg)
{
    struct guesser *g = arg;
    enum code_outcome o;
    g->result = code_verify(pool, KEY, ada(S1), g->code, T0 + 5, &o) == 0 ? (int)o : -1;
    return NULL;
}

/* Runs the guessers at once. While they start, the test holds a write lock on the code's
 * row (PostgreSQL) or the database (SQLite) for a second: every guesser that got a
 * connection has read the row by then and waits in its UPDATE, so all of them decide on the
 * same stale read, and only the conditions inside the UPDATE can keep the count right. */
static void run_guessers(struct guesser *g, int n, int64_t code_id)
{
    struct db_conn *holder = NULL;
    assert_int_equal(db_acquire(pool, 5000, &holder), 0);
    assert_int_equal(db_begin(holder, DB_TX_WRITE), 0);
    const struct db_param p[] = {DB_INT(code_id)};
    assert_int_equal(db_exec(holder,
                             "UPDATE verification_codes SET attempts = attempts WHERE id = $1", p,
                             1, NULL),
                     0);
    pthread_t *threads = xcalloc((size_t)n, sizeof *threads);
    for (int i = 0; i < n; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, guess, &g[i]), 0);
    sleep(1);
    assert_int_equal(db_commit(holder), 0);
    db_release(holder);
    for (int i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
    free(threads);
}

static void test_fifty_concurrent_wrong_guesses_evaluate_five(void **state)
{
    (void)state;
    struct code_issued c = issue_at(ada(S1), IP, T0);
    char wrong[CODE_DIGITS + 1];
    wrong_code(c.code, wrong);
    enum { N = 50 };
    struct guesser g[N];
    for (int i = 0; i < N; i++)
        g[i] = (struct guesser){.code = wrong, .result = -1};
    run_guessers(g, N, c.id);
    int incorrect = 0, too_many = 0;
    for (int i = 0; i < N; i++) {
        incorrect += g[i].result == CODE_INCORRECT;
        too_many += g[i].result == CODE_TOO_MANY;
    }
    assert_int_equal(incorrect, CODE_MAX_ATTEMPTS);
    assert_int_equal(too_many, N - CODE_MAX_ATTEMPTS);
    assert_int_equal(attempts_of(c.id), CODE_MAX_ATTEMPTS);
    assert_int_equal(verify_at(ada(S1), c.code, T0 + 6), CODE_TOO_MANY);
}

static void test_sixteen_concurrent_right_submissions_verify_once(void **state)
{
    (void)state;
    struct code_issued c = issue_at(ada(S1), IP, T0);
    enum { N = 16 };
    struct guesser g[N];
    for (int i = 0; i < N; i++)
        g[i] = (struct guesser){.code = c.code, .result = -1};
    run_guessers(g, N, c.id);
    int verified = 0, none = 0;
    for (int i = 0; i < N; i++) {
        verified += g[i].result == CODE_VERIFIED;
        none += g[i].result == CODE_NO_CODE;
    }
    assert_int_equal(verified, 1);
    assert_int_equal(none, N - 1);
}

struct issuer {
    int rc;
    enum code_limit limit;
};

static void *issue_one(void *arg)
{
    struct issuer *is = arg;
    struct code_issued out;
    is->rc = code_issue(pool, KEY, ada(S1), IP, T0, &out);
    is->limit = out.limit;
    return NULL;
}

static void test_concurrent_requests_issue_one_code(void **state)
{
    (void)state;
    enum { N = 8 };
    struct issuer is[N];
    pthread_t threads[N];
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, issue_one, &is[i]), 0);
    for (int i = 0; i < N; i++)
        pthread_join(threads[i], NULL);
    int issued = 0, cooldown = 0;
    for (int i = 0; i < N; i++) {
        issued += is[i].rc == 0;
        cooldown += is[i].rc == USHER_ELIMIT && is[i].limit == CODE_LIMIT_COOLDOWN;
    }
    assert_int_equal(issued, 1);
    assert_int_equal(cooldown, N - 1);
    assert_int_equal(count_codes(), 1);
    assert_int_equal(scalar("SELECT SUM(count) FROM rate_limits", NULL, 0), 2);
}

static void test_messages(void **state)
{
    (void)state;
    assert_null(code_outcome_message(CODE_VERIFIED));
    assert_string_equal(code_outcome_message(CODE_INCORRECT), "Incorrect code");
    assert_string_equal(code_outcome_message(CODE_EXPIRED),
                        "Code expired. Please request a new code.");
    assert_string_equal(code_outcome_message(CODE_NO_CODE),
                        "No verification in progress. Please request a new code.");
    assert_string_equal(code_outcome_message(CODE_TOO_MANY),
                        "Too many attempts. Please request a new code.");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

static const struct CMUnitTest tests[] = {
    T(test_stores_only_the_keyed_hash),
    T(test_codes_look_random),
    T(test_right_code_verifies_once),
    T(test_white_space_around_the_code_is_ignored),
    T(test_expiry),
    T(test_five_wrong_attempts_kill_the_code),
    T(test_attempts_left_counts_down),
    T(test_right_code_after_four_wrong),
    T(test_malformed_codes_count_as_wrong),
    T(test_no_code_in_progress),
    T(test_bound_to_session_and_purpose),
    T(test_new_code_supersedes_the_old),
    T(test_other_sessions_codes_are_not_superseded),
    T(test_invalidated_code_is_dead),
    T(test_resend_cooldown),
    T(test_refusal_changes_nothing),
    T(test_hourly_limit_per_address),
    T(test_hourly_limit_per_client),
    T(test_bad_arguments),
    T(test_purge),
    T(test_fifty_concurrent_wrong_guesses_evaluate_five),
    T(test_sixteen_concurrent_right_submissions_verify_once),
    T(test_concurrent_requests_issue_one_code),
    cmocka_unit_test(test_messages),
};

int main(void)
{
    if (messages_load(getenv("USHER_DATA_DIR"), NULL) != 0) /* the texts asserted below */
        return 1;
    use_pg = false;
    int failed = cmocka_run_group_tests_name("codes/sqlite", tests, NULL, NULL);
    const char *pg = getenv("USHER_TEST_PG_URL");
    if (!pg || !*pg) {
        printf("skipped: USHER_TEST_PG_URL unset (PostgreSQL half of test_codes)\n");
        return failed;
    }
    use_pg = true;
    failed += cmocka_run_group_tests_name("codes/postgres", tests, NULL, NULL);
    return failed;
}
