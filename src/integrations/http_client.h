/*
 * http_client.h — the libcurl core every integration client sends through.
 *
 * One curl easy handle per thread, created on first use and reused (curl_easy_reset keeps
 * its connection cache, so calls to the same host use keep-alive). Each request gets a
 * connect timeout and a total timeout, TLS verification is always on (peer and host; there
 * is no switch to turn it off), redirects are never followed (a Location header is handed
 * to the caller instead), only http:// and https:// URLs are accepted, and a response body
 * larger than the limit aborts the transfer (USHER_ELIMIT).
 *
 * http_send returns 0 as soon as an answer arrived, whatever its status: the clients decide
 * what a status means. Transport failures are USHER_EUPSTREAM with the kind in struct
 * http_error. Nothing secret reaches the logs: the debug line per request names the
 * upstream, method, host and path (never the query string, headers or bodies), and body
 * excerpts kept for callers are cut short, stripped of control characters and of anything
 * shaped like a Stripe key.
 *
 * Metrics (core/metrics.h), per attempt:
 *   usher_upstream_requests_total{upstream,status}     answers received, by HTTP status
 *   usher_upstream_errors_total{upstream,kind}         connect, timeout, tls, transport,
 *                                                      too_large, status_5xx, rate_limited
 *   usher_upstream_request_duration_seconds{upstream}  histogram of every attempt
 *
 * Threads: everything here is thread-safe; http_global_init is optional (the first request
 * runs it) but belongs in main() before threads start, and before anything else initialises
 * libcurl (ulfius_global_init does), so that libcurl's start-up leaves OpenSSL alone;
 * http_thread_cleanup frees the calling thread's handle (threads that exit have theirs freed
 * automatically).
 */
#ifndef USHER_INTEGRATIONS_HTTP_CLIENT_H
#define USHER_INTEGRATIONS_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_DEFAULT_CONNECT_TIMEOUT_MS 3000
#define HTTP_DEFAULT_TIMEOUT_MS 10000
#define HTTP_MAX_RESPONSE_BYTES ((size_t)4 * 1024 * 1024)
#define HTTP_EXCERPT_MAX 200
#define HTTP_URL_MAX 8192

enum http_error_kind {
    HTTP_ERR_NONE = 0,
    HTTP_ERR_CONNECT, /* no connection (DNS, refused, connect timeout): nothing was sent */
    HTTP_ERR_TIMEOUT, /* the total timeout expired; the request may have been processed */
    HTTP_ERR_TLS, /* handshake or certificate verification failed */
    HTTP_ERR_TRANSPORT, /* any other transport failure (reset, malformed answer) */
    HTTP_ERR_TOO_LARGE, /* the answer exceeded the size limit */
    HTTP_ERR_STATUS, /* an answer arrived with a status the client treats as failure */
    HTTP_ERR_INVALID, /* the request itself was unusable (URL, method) */
};

/* What a caller may show or log about a failed call: no secrets, bounded. */
struct http_error {
    long status; /* HTTP status; 0 when no answer arrived */
    enum http_error_kind kind;
    char excerpt[HTTP_EXCERPT_MAX + 1]; /* sanitized start of the body, or curl's reason */
};

/* One multipart/form-data text field (Mailgun). */
struct http_part {
    const char *name;
    const char *value;
};

/* Everything is borrowed for the duration of the call. */
struct http_request {
    const char *method; /* "GET" when NULL */
    const char *url; /* http:// or https:// */
    const char *const *headers; /* NULL-terminated "Name: value" list, or NULL */
    const char *body; /* sent as is, body_len bytes */
    size_t body_len;
    const char *content_type; /* of body */
    const struct http_part *parts; /* multipart/form-data instead of body */
    size_t part_count;
    const char *basic_user; /* HTTP Basic when set */
    const char *basic_password;
    const char *bearer_token; /* Authorization: Bearer when set */
    const char *upstream; /* metrics and log label: "stripe", "keycloak", "mailgun" */
    long connect_timeout_ms; /* 0: HTTP_DEFAULT_CONNECT_TIMEOUT_MS */
    long timeout_ms; /* 0: HTTP_DEFAULT_TIMEOUT_MS */
    size_t max_response_bytes; /* 0: HTTP_MAX_RESPONSE_BYTES */
};

/* Owned by the caller: http_response_init before, http_response_cleanup after. */
struct http_response {
    long status;
    char *body; /* NUL-terminated (never NULL after a successful send) */
    size_t body_len;
    char *location; /* Location header, or NULL */
    char *content_type; /* Content-Type header, or NULL */
    char *request_id; /* Request-Id header (Stripe), or NULL */
    int should_retry; /* Stripe-Should-Retry: 1 true, 0 false, -1 absent */
    long retry_after; /* Retry-After in seconds, -1 absent */
    int attempts; /* how many attempts http_send_retry made */
};

void http_global_init(void);
void http_thread_cleanup(void);

void http_response_init(struct http_response *resp);
void http_response_cleanup(struct http_response *resp);

/*
 * Sends one request. Returns 0 when an answer arrived (any status; resp filled),
 * USHER_EUPSTREAM on a transport failure, USHER_ELIMIT when the answer was too large,
 * USHER_EINVAL for an unusable request. err (may be NULL) gets the kind and a reason.
 * resp is reset first, so it may be reused.
 */
int http_send(const struct http_request *req, struct http_response *resp, struct http_error *err);

/*
 * Fills err for an answer the caller considers a failure: status, kind HTTP_ERR_STATUS and
 * a sanitized excerpt of the body.
 */
void http_error_from_response(struct http_error *err, const struct http_response *resp);
void http_error_clear(struct http_error *err);

/*
 * Copies at most size-1 bytes of body into out for logs and messages: control characters
 * and non-ASCII become '?', runs of whitespace one space, and what looks like a Stripe
 * secret (sk_live_…, sk_test_…, rk_…, whsec_…) or a bearer token is replaced by
 * "[redacted]". Pure.
 */
void http_excerpt(char *out, size_t size, const char *body, size_t len);

/* ------------------------------------------------------------------ retries */

/* Decides whether to try again after attempt with result rc (0: resp holds an answer). */
typedef bool (*http_retry_fn)(int rc, const struct http_error *err,
                              const struct http_response *resp, void *arg);

struct http_retry {
    int max_attempts; /* total attempts, at least 1 */
    int base_delay_ms; /* backoff before the first retry */
    int max_delay_ms; /* cap of one backoff */
    http_retry_fn should_retry;
    void *arg;
};

/* For idempotent calls (GET, PUT of a whole representation, DELETE): transport failures
 * (not TLS, not too large), 429 and 5xx are retried. */
bool http_retry_idempotent(int rc, const struct http_error *err, const struct http_response *resp,
                           void *arg);
/* For calls that must not run twice: only a failure to connect (nothing was sent). */
bool http_retry_unsent(int rc, const struct http_error *err, const struct http_response *resp,
                       void *arg);

/* 3 attempts, 250 ms then 500 ms (±jitter), idempotent rule. */
extern const struct http_retry http_retry_default;
/* 3 attempts, connect failures only. */
extern const struct http_retry http_retry_once_sent;

/*
 * The backoff before retry number n (1 = the first retry): base * 2^(n-1), capped at max,
 * then jittered into [delay/2, delay]. A Retry-After answer longer than that is honoured up
 * to the cap.
 */
long http_backoff_ms(const struct http_retry *policy, int n);

/*
 * http_send, repeated per policy with backoff between attempts. Returns what the last
 * attempt returned; resp->attempts says how many were made.
 */
int http_send_retry(const struct http_request *req, struct http_response *resp,
                    struct http_error *err, const struct http_retry *policy);

#endif
