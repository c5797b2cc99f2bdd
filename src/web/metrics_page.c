/*
 * metrics_page.c — GET /metrics (SPEC §2): Prometheus text behind a bearer key.
 *
 * No key configured → 404, as if the route did not exist; a missing or wrong key → 401. The
 * key is compared in constant time.
 */
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/crypto.h"
#include "core/messages.h"
#include "core/metrics.h"
#include "db/cleanup_totals.h"
#include "db/db.h"
#include "db/task_store.h"
#include "domain/allocation.h"
#include "domain/expiry.h"
#include "web/app.h"
#include "web/dispatch.h"
#include "web/handlers.h"
#include "web/http_error.h"
#include "web/response.h"

#include <string.h>

static void refresh_gauges(struct web_request *r)
{
    struct db_pool_stats st;
    db_pool_stats(r->app->db, &st);
    metrics_gauge_set("usher_http_requests_in_flight", "HTTP requests being handled.", "",
                      (double)web_in_flight());
    metrics_gauge_set("usher_db_pool_size", "Connections the database pool may hold.", "", st.size);
    metrics_gauge_set("usher_db_pool_connections", "Database connections by state.",
                      "state=\"open\"", st.open);
    metrics_gauge_set("usher_db_pool_connections", "Database connections by state.",
                      "state=\"in_use\"", st.in_use);
    metrics_counter_set("usher_db_pool_acquires_total", "Connections handed out.", "",
                        (double)st.acquires);
    metrics_counter_set("usher_db_pool_waits_total", "Acquires that waited for a connection.", "",
                        (double)st.waits);
    metrics_counter_set("usher_db_pool_timeouts_total", "Acquires that gave up.", "",
                        (double)st.timeouts);
    metrics_counter_set("usher_db_errors_total", "Statements that failed.", "", (double)st.errors);
    web_count_db_unavailable(0); /* the series exists at 0 before the first outage */
    struct db_conn *conn = NULL;
    if (db_acquire(r->app->db, 1000, &conn) == 0) {
        task_store_metrics(conn); /* usher_tasks_{queued,running,failed}, usher_tasks_total */
        cleanup_totals_metrics(conn); /* usher_cleanup_deleted_total{kind} */
    }
    db_release(conn);
    int64_t waiting = 0;
    if (alloc_count_waiting(r->app->db, &waiting) == 0)
        metrics_gauge_set("usher_seats_waiting_capacity",
                          "Paid seats waiting for instance capacity.", "", (double)waiting);
    int64_t closed = 0, pending = 0;
    if (expiry_counts(r->app->db, clock_now(), &closed, &pending) == 0) {
        metrics_counter_set("usher_accounts_expired_total",
                            "Accounts closed for good after their final expiry.", "",
                            (double)closed);
        metrics_gauge_set("usher_accounts_expiry_pending",
                          "Accounts past their final expiry whose closure is not complete.", "",
                          (double)pending);
    }
}

int web_metrics(struct web_request *r)
{
    const char *key = r->app->cfg->prometheus_metrics_api_key;
    if (!*key) {
        web_reply_error(r, 404, msg("http.not_found"));
        return 0;
    }
    const char *auth = web_header(r, "Authorization");
    static const char prefix[] = "Bearer ";
    if (!auth || strncmp(auth, prefix, sizeof prefix - 1) ||
        !crypto_equal_str(auth + sizeof prefix - 1, key)) {
        web_set_header(r, "WWW-Authenticate", "Bearer");
        web_reply_error(r, 401, "Unauthorized");
        return 0;
    }
    refresh_gauges(r);
    struct buf out;
    buf_init(&out);
    metrics_render(&out);
    web_set_header(r, "Cache-Control", "no-store");
    web_reply_bytes(r, 200, "text/plain; version=0.0.4; charset=utf-8", out.data, out.len);
    buf_cleanup(&out);
    return 0;
}
