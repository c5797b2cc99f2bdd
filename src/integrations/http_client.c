/*
 * http_client.c — one libcurl easy handle per thread, timeouts, limits, retries, metrics
 * (see http_client.h).
 */
#include "integrations/http_client.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/crypto.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"

#include <ctype.h>
#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define USER_AGENT "usher/" USHER_VERSION
#define HEADER_VALUE_MAX 2048

static const double upstream_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1,  0.25,
                                          0.5,   1.0,  2.5,   5.0,  10.0, 30.0};

const struct http_retry http_retry_default = {
    .max_attempts = 3,
    .base_delay_ms = 250,
    .max_delay_ms = 2000,
    .should_retry = http_retry_idempotent,
};
const struct http_retry http_retry_once_sent = {
    .max_attempts = 3,
    .base_delay_ms = 250,
    .max_delay_ms = 2000,
    .should_retry = http_retry_unsent,
};

/* ------------------------------------------------------------ per-thread handle */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_key_t handle_key;

static void free_handle(void *h)
{
    curl_easy_cleanup(h);
}

/* libcurl's global init calls libssh2_init(0) when libcurl is built with libssh2 (Debian's
 * is), for scp:// and sftp://, which Usher never enables (CURLOPT_PROTOCOLS_STR below is
 * "http,https"). That call initialises all of OpenSSL's libcrypto — its algorithm tables and
 * engines, about 2 MB of resident memory in every process — for a library Usher does not
 * otherwise use (core/crypto.c is on Nettle; libpq initialises OpenSSL itself, and only for a
 * TLS connection to PostgreSQL). libssh2 sets up its crypto only in the first libssh2_init,
 * so calling it first with LIBSSH2_INIT_NO_CRYPTO turns curl's call into a reference count.
 * Looked up by name: libssh2 is libcurl's dependency, not Usher's, and may be absent. */
#define LIBSSH2_INIT_NO_CRYPTO 0x0001

static void libssh2_init_without_crypto(void)
{
    int (*init)(int) = NULL;
    void *sym = dlsym(RTLD_DEFAULT, "libssh2_init");
    if (!sym)
        return;
    memcpy(&init, &sym, sizeof init); /* POSIX: a data pointer to a function pointer */
    if (init(LIBSSH2_INIT_NO_CRYPTO) != 0)
        log_warn("msg=\"libssh2_init failed\"");
}

static void global_init(void)
{
    libssh2_init_without_crypto();
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_error("msg=\"curl_global_init failed\"");
        abort();
    }
    if (pthread_key_create(&handle_key, free_handle) != 0)
        abort();
}

void http_global_init(void)
{
    pthread_once(&init_once, global_init);
}

static CURL *thread_handle(void)
{
    http_global_init();
    CURL *h = pthread_getspecific(handle_key);
    if (h) {
        curl_easy_reset(h); /* options only: live connections stay for keep-alive */
        return h;
    }
    h = curl_easy_init();
    if (h && pthread_setspecific(handle_key, h) != 0) {
        curl_easy_cleanup(h);
        h = NULL;
    }
    return h;
}

void http_thread_cleanup(void)
{
    http_global_init();
    CURL *h = pthread_getspecific(handle_key);
    if (h) {
        pthread_setspecific(handle_key, NULL);
        curl_easy_cleanup(h);
    }
}

/* ------------------------------------------------------------ responses, errors */

void http_response_init(struct http_response *resp)
{
    memset(resp, 0, sizeof *resp);
    resp->should_retry = -1;
    resp->retry_after = -1;
}

void http_response_cleanup(struct http_response *resp)
{
    free(resp->body);
    free(resp->location);
    free(resp->content_type);
    free(resp->request_id);
    http_response_init(resp);
}

void http_error_clear(struct http_error *err)
{
    if (err)
        memset(err, 0, sizeof *err);
}

static const char *const secret_prefixes[] = {
    "sk_live_", "sk_test_", "rk_live_", "rk_test_", "whsec_", "Bearer ", "eyJ", NULL,
};

static size_t secret_at(const char *p, size_t left)
{
    for (const char *const *s = secret_prefixes; *s; s++) {
        size_t n = strlen(*s);
        if (n > left || strncmp(p, *s, n))
            continue;
        size_t i = n;
        while (i < left && (isalnum((unsigned char)p[i]) || strchr("_-.~+/=", p[i])))
            i++;
        return i;
    }
    return 0;
}

void http_excerpt(char *out, size_t size, const char *body, size_t len)
{
    if (size == 0)
        return;
    size_t o = 0;
    bool space = false;
    for (size_t i = 0; i < len && o + 1 < size;) {
        size_t skip = secret_at(body + i, len - i);
        if (skip) {
            static const char red[] = "[redacted]";
            for (size_t k = 0; red[k] && o + 1 < size; k++)
                out[o++] = red[k];
            i += skip;
            space = false;
            continue;
        }
        unsigned char c = (unsigned char)body[i++];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            if (!space && o > 0)
                out[o++] = ' ';
            space = true;
            continue;
        }
        space = false;
        out[o++] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
    }
    while (o > 0 && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
}

void http_error_from_response(struct http_error *err, const struct http_response *resp)
{
    if (!err)
        return;
    err->status = resp->status;
    err->kind = HTTP_ERR_STATUS;
    http_excerpt(err->excerpt, sizeof err->excerpt, resp->body ? resp->body : "", resp->body_len);
}

static void set_error(struct http_error *err, enum http_error_kind kind, const char *reason)
{
    if (!err)
        return;
    err->status = 0;
    err->kind = kind;
    http_excerpt(err->excerpt, sizeof err->excerpt, reason, strlen(reason));
}

/* ------------------------------------------------------------ callbacks */

struct transfer {
    struct buf body;
    size_t limit;
    bool too_large;
    struct http_response *resp;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct transfer *t = arg;
    size_t n = size * nmemb;
    if (t->body.len + n > t->limit) {
        t->too_large = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    buf_append(&t->body, data, n);
    return n;
}

static void replace(char **slot, const char *v, size_t len)
{
    free(*slot);
    *slot = xstrndup(v, len);
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    struct transfer *t = arg;
    size_t n = size * nmemb;
    struct http_response *r = t->resp;
    if (n >= 5 && !strncmp(data, "HTTP/", 5)) {
        /* A new answer (e.g. after 100 Continue): forget headers of the previous one. */
        free(r->location), r->location = NULL;
        free(r->content_type), r->content_type = NULL;
        free(r->request_id), r->request_id = NULL;
        r->should_retry = -1;
        r->retry_after = -1;
        return n;
    }
    const char *colon = memchr(data, ':', n);
    if (!colon)
        return n;
    size_t name_len = (size_t)(colon - data);
    const char *v = colon + 1;
    size_t vlen = n - name_len - 1;
    while (vlen && (*v == ' ' || *v == '\t'))
        v++, vlen--;
    while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
        vlen--;
    if (vlen > HEADER_VALUE_MAX)
        return n;
#define IS(name) (name_len == sizeof(name) - 1 && !strncasecmp(data, name, name_len))
    if (IS("Location"))
        replace(&r->location, v, vlen);
    else if (IS("Content-Type"))
        replace(&r->content_type, v, vlen);
    else if (IS("Request-Id"))
        replace(&r->request_id, v, vlen);
    else if (IS("Stripe-Should-Retry"))
        r->should_retry = (vlen == 4 && !strncasecmp(v, "true", 4)) ? 1 : 0;
    else if (IS("Retry-After")) {
        char tmp[16];
        if (vlen > 0 && vlen < sizeof tmp) {
            memcpy(tmp, v, vlen);
            tmp[vlen] = '\0';
            char *end = NULL;
            errno = 0;
            long s = strtol(tmp, &end, 10);
            if (!errno && end && !*end && s >= 0)
                r->retry_after = s;
        }
    }
#undef IS
    return n;
}

/* ------------------------------------------------------------ sending */

static enum http_error_kind classify(CURLcode rc, CURL *h, bool too_large)
{
    if (too_large || rc == CURLE_FILESIZE_EXCEEDED)
        return HTTP_ERR_TOO_LARGE;
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT: return HTTP_ERR_CONNECT;
    case CURLE_OPERATION_TIMEDOUT: {
        curl_off_t connected = 0;
        curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &connected);
        return connected > 0 ? HTTP_ERR_TIMEOUT : HTTP_ERR_CONNECT;
    }
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE: return HTTP_ERR_TLS;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT: return HTTP_ERR_INVALID;
    default: return HTTP_ERR_TRANSPORT;
    }
}

static const char *kind_label(enum http_error_kind k)
{
    switch (k) {
    case HTTP_ERR_CONNECT: return "connect";
    case HTTP_ERR_TIMEOUT: return "timeout";
    case HTTP_ERR_TLS: return "tls";
    case HTTP_ERR_TOO_LARGE: return "too_large";
    case HTTP_ERR_INVALID: return "invalid";
    default: return "transport";
    }
}

static void count_error(const char *upstream, const char *kind)
{
    struct buf l;
    buf_init(&l);
    metrics_labels(&l, 2, "upstream", upstream, "kind", kind);
    metrics_counter_add("usher_upstream_errors_total", "Failed calls to external systems, by kind.",
                        l.data, 1);
    buf_cleanup(&l);
}

static void record(const char *upstream, long status, double seconds)
{
    struct buf l;
    buf_init(&l);
    if (status > 0) {
        char st[24];
        snprintf(st, sizeof st, "%ld", status);
        metrics_labels(&l, 2, "upstream", upstream, "status", st);
        metrics_counter_add("usher_upstream_requests_total",
                            "Answers received from external systems, by HTTP status.", l.data, 1);
        if (status == 429)
            count_error(upstream, "rate_limited");
        else if (status >= 500)
            count_error(upstream, "status_5xx");
        buf_reset(&l);
    }
    metrics_labels(&l, 1, "upstream", upstream);
    metrics_observe("usher_upstream_request_duration_seconds",
                    "Time of each attempt to call an external system.", l.data, seconds,
                    upstream_buckets, (int)(sizeof upstream_buckets / sizeof upstream_buckets[0]));
    buf_cleanup(&l);
}

/* host and path of url for a log line: no userinfo, no query string, no fragment. */
static void loggable_url(char *out, size_t size, const char *url)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    const char *at = strchr(p, '@');
    const char *slash = strchr(p, '/');
    if (at && (!slash || at < slash))
        p = at + 1;
    size_t n = strcspn(p, "?#");
    char tmp[512];
    if (n >= sizeof tmp)
        n = sizeof tmp - 1;
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    log_quote(out, size, tmp);
}

static bool url_ok(const char *url)
{
    if (!url || strlen(url) > HTTP_URL_MAX)
        return false;
    if (strncmp(url, "https://", 8) && strncmp(url, "http://", 7))
        return false;
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return false;
    return true;
}

static bool method_ok(const char *m)
{
    static const char *const ok[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", NULL};
    for (const char *const *p = ok; *p; p++)
        if (!strcmp(m, *p))
            return true;
    return false;
}

/* Builds the header list; returns NULL only if curl could not allocate. */
static struct curl_slist *build_headers(const struct http_request *req, char **bearer)
{
    struct curl_slist *list = NULL, *tmp;
#define ADD(s)                              \
    do {                                    \
        tmp = curl_slist_append(list, (s)); \
        if (!tmp)                           \
            goto fail;                      \
        list = tmp;                         \
    } while (0)
    ADD("Expect:"); /* no 100-continue round trip for larger bodies */
    ADD("Accept: application/json");
    if (req->bearer_token) {
        *bearer = xasprintf("Authorization: Bearer %s", req->bearer_token);
        ADD(*bearer);
    }
    if (req->body && req->content_type) {
        char *ct = xasprintf("Content-Type: %s", req->content_type);
        tmp = curl_slist_append(list, ct);
        free(ct);
        if (!tmp)
            goto fail;
        list = tmp;
    }
    for (const char *const *h = req->headers; h && *h; h++)
        ADD(*h);
#undef ADD
    return list;
fail:
    curl_slist_free_all(list);
    return NULL;
}

static curl_mime *build_mime(CURL *h, const struct http_request *req)
{
    curl_mime *mime = curl_mime_init(h);
    if (!mime)
        return NULL;
    for (size_t i = 0; i < req->part_count; i++) {
        curl_mimepart *part = curl_mime_addpart(mime);
        if (!part || curl_mime_name(part, req->parts[i].name) != CURLE_OK ||
            curl_mime_data(part, req->parts[i].value, CURL_ZERO_TERMINATED) != CURLE_OK) {
            curl_mime_free(mime);
            return NULL;
        }
    }
    return mime;
}

static void wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

int http_send(const struct http_request *req, struct http_response *resp, struct http_error *err)
{
    http_response_cleanup(resp);
    http_error_clear(err);
    const char *method = req->method ? req->method : "GET";
    const char *upstream = req->upstream ? req->upstream : "other";
    if (!url_ok(req->url) || !method_ok(method)) {
        set_error(err, HTTP_ERR_INVALID, "unusable URL or method");
        return USHER_EINVAL;
    }
    CURL *h = thread_handle();
    if (!h) {
        set_error(err, HTTP_ERR_TRANSPORT, "curl_easy_init failed");
        count_error(upstream, "transport");
        return USHER_EUPSTREAM;
    }
    struct transfer t = {.limit = req->max_response_bytes ? req->max_response_bytes
                                                          : HTTP_MAX_RESPONSE_BYTES,
                         .resp = resp};
    buf_init(&t.body);
    char *bearer = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_mime *mime = NULL;
    struct curl_slist *headers = build_headers(req, &bearer);
    int rc = USHER_EUPSTREAM;
    if (!headers) {
        set_error(err, HTTP_ERR_TRANSPORT, "out of memory building headers");
        goto out;
    }

    curl_easy_setopt(h, CURLOPT_URL, req->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     req->connect_timeout_ms > 0 ? req->connect_timeout_ms
                                                 : (long)HTTP_DEFAULT_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
                     req->timeout_ms > 0 ? req->timeout_ms : (long)HTTP_DEFAULT_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)t.limit);
    curl_easy_setopt(h, CURLOPT_USERAGENT, USER_AGENT);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, ""); /* whatever curl can decode */
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    if (req->basic_user) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERNAME, req->basic_user);
        curl_easy_setopt(h, CURLOPT_PASSWORD, req->basic_password ? req->basic_password : "");
    }
    if (req->parts) {
        mime = build_mime(h, req);
        if (!mime) {
            set_error(err, HTTP_ERR_TRANSPORT, "out of memory building multipart body");
            goto out;
        }
        curl_easy_setopt(h, CURLOPT_MIMEPOST, mime);
    } else if (req->body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body);
    }
    if (!strcmp(method, "HEAD"))
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") && strcmp(method, "POST"))
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    else if (!strcmp(method, "POST") && !req->body && !req->parts) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    }

    int64_t start = clock_mono_ns();
    CURLcode cc = curl_easy_perform(h);
    double seconds = (double)(clock_mono_ns() - start) / 1e9;
    char where[256];
    loggable_url(where, sizeof where, req->url);
    if (cc != CURLE_OK) {
        enum http_error_kind kind = classify(cc, h, t.too_large);
        const char *why = errbuf[0] ? errbuf : curl_easy_strerror(cc);
        set_error(err, kind, t.too_large ? "response too large" : why);
        count_error(upstream, kind_label(kind));
        record(upstream, 0, seconds);
        log_debug("msg=\"upstream call failed\" upstream=%s method=%s url=%s kind=%s ms=%.0f",
                  upstream, method, where, kind_label(kind), seconds * 1000);
        rc = kind == HTTP_ERR_TOO_LARGE ? USHER_ELIMIT
             : kind == HTTP_ERR_INVALID ? USHER_EINVAL
                                        : USHER_EUPSTREAM;
        if (kind == HTTP_ERR_TOO_LARGE)
            http_response_cleanup(resp);
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    resp->body_len = t.body.len;
    resp->body = buf_detach(&t.body);
    record(upstream, resp->status, seconds);
    log_debug("msg=\"upstream call\" upstream=%s method=%s url=%s status=%ld ms=%.0f", upstream,
              method, where, resp->status, seconds * 1000);
    rc = 0;
out:
    /* Detach everything that points into this frame before the handle is reused. */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_MIMEPOST, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(h, CURLOPT_USERNAME, NULL);
    curl_easy_setopt(h, CURLOPT_PASSWORD, NULL);
    curl_mime_free(mime);
    curl_slist_free_all(headers);
    wipe_free(bearer);
    buf_cleanup(&t.body);
    return rc;
}

/* ------------------------------------------------------------ retries */

bool http_retry_idempotent(int rc, const struct http_error *err, const struct http_response *resp,
                           void *arg)
{
    (void)arg;
    if (rc == 0)
        return resp->status == 429 || resp->status >= 500;
    if (rc != USHER_EUPSTREAM || !err)
        return false;
    return err->kind == HTTP_ERR_CONNECT || err->kind == HTTP_ERR_TIMEOUT ||
           err->kind == HTTP_ERR_TRANSPORT;
}

bool http_retry_unsent(int rc, const struct http_error *err, const struct http_response *resp,
                       void *arg)
{
    (void)resp, (void)arg;
    return rc == USHER_EUPSTREAM && err && err->kind == HTTP_ERR_CONNECT;
}

long http_backoff_ms(const struct http_retry *policy, int n)
{
    long base = policy->base_delay_ms > 0 ? policy->base_delay_ms : 0;
    long cap = policy->max_delay_ms > 0 ? policy->max_delay_ms : base;
    long delay = base;
    for (int i = 1; i < n && delay < cap; i++)
        delay *= 2;
    if (delay > cap)
        delay = cap;
    if (delay < 2)
        return delay;
    long half = delay / 2;
    return half + (long)crypto_random_below((unsigned)(delay - half + 1));
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static const char *retry_reason(int rc, const struct http_error *err,
                                const struct http_response *resp, char *tmp, size_t size)
{
    if (rc == 0) {
        snprintf(tmp, size, "status_%ld", resp->status);
        return tmp;
    }
    return err ? kind_label(err->kind) : "transport";
}

int http_send_retry(const struct http_request *req, struct http_response *resp,
                    struct http_error *err, const struct http_retry *policy)
{
    if (!policy)
        policy = &http_retry_default;
    http_retry_fn should = policy->should_retry ? policy->should_retry : http_retry_idempotent;
    int max = policy->max_attempts > 0 ? policy->max_attempts : 1;
    struct http_error local;
    struct http_error *e = err ? err : &local;
    int rc = 0;
    for (int attempt = 1;; attempt++) {
        rc = http_send(req, resp, e);
        resp->attempts = attempt;
        if (attempt >= max || !should(rc, e, resp, policy->arg))
            break;
        long delay = http_backoff_ms(policy, attempt);
        if (rc == 0 && resp->retry_after >= 0 && resp->retry_after * 1000 > delay)
            delay = resp->retry_after * 1000 < policy->max_delay_ms ? resp->retry_after * 1000
                                                                    : policy->max_delay_ms;
        char tmp[32];
        log_warn("msg=\"upstream retry\" upstream=%s attempt=%d reason=%s delay_ms=%ld",
                 req->upstream ? req->upstream : "other", attempt,
                 retry_reason(rc, e, resp, tmp, sizeof tmp), delay);
        sleep_ms(delay);
    }
    return rc;
}
