/*
 * admin_waitlist.c — /admin/waitlist/: the waitlist, searchable by part of an address, and
 * /admin/waitlist.csv: the same entries (the search applies) as a CSV download, streamed in
 * chunks so a long list never sits in memory (domain/admin_waitlist.h, web/stream.h).
 */
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "domain/admin_waitlist.h"
#include "integrations/form.h"
#include "web/admin_ops.h"
#include "web/app.h"
#include "web/handlers.h"
#include "web/response.h"
#include "web/stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int web_admin_waitlist(struct web_request *r)
{
    const char *q = NULL;
    int limit = 0;
    int64_t before = 0;
    if (web_admin_term(r, "q", &q) != 0 || web_ops_paging(r, "waitlist", &limit, &before))
        return 0;
    struct admin_page page = {0};
    int rc = admin_waitlist_list(r->app->db, q, before, limit, &page);
    if (rc == USHER_EINVAL) {
        web_admin_error(r, 400, "That search is not valid.");
        return 0;
    }
    if (rc != 0)
        return rc;
    json_t *ctx = web_admin_context(r, "Waitlist", "waitlist");
    json_object_set_new(ctx, "f", json_pack("{s:s}", "q", q));
    struct buf csv_url;
    buf_init(&csv_url);
    buf_puts(&csv_url, "/admin/waitlist.csv");
    if (*q)
        form_url_query(&csv_url, "q", q);
    json_object_set_new(ctx, "csv_url", json_string(csv_url.data));
    buf_cleanup(&csv_url);
    static const char *const keep[] = {"q", NULL};
    web_ops_list_ctx(r, ctx, "waitlist", &page, keep);
    web_reply_page(r, 200, "admin/waitlist", ctx);
    json_decref(ctx);
    return 0;
}

/* ---- CSV export --------------------------------------------------------------------------- */

struct export
{
    struct db_pool *pool; /* the server's pool: it outlives every reply (server.c) */
    char *q;
    int64_t after_id;
    bool header_sent;
};

static int export_next(void *ctx, struct buf *out, bool *done)
{
    struct export *e = ctx;
    if (!e->header_sent) {
        admin_waitlist_csv_header(out);
        e->header_sent = true;
        return 0;
    }
    int rows = 0;
    int rc = admin_waitlist_csv_chunk(e->pool, e->q, e->after_id, out, &e->after_id, &rows);
    if (rc != 0)
        log_error("msg=\"waitlist export failed\" error=\"%s\"", usher_strerror(rc));
    *done = rows == 0;
    return rc;
}

static void export_free(void *ctx)
{
    struct export *e = ctx;
    free(e->q);
    free(e);
}

int web_admin_waitlist_csv(struct web_request *r)
{
    const char *q = NULL;
    if (web_admin_term(r, "q", &q) != 0)
        return 0;
    if (admin_waitlist_check_query(q) != 0) {
        web_admin_error(r, 400, "That search is not valid.");
        return 0;
    }
    /* The file name is built from the date only: nothing the request sent reaches a header. */
    char date[40], disposition[96];
    clock_format_rfc3339(r->now, date, sizeof date);
    date[10] = '\0';
    snprintf(disposition, sizeof disposition, "attachment; filename=\"waitlist-%s.csv\"", date);
    web_set_header(r, "Content-Disposition", disposition);
    web_set_header(r, "Cache-Control", "no-store");
    struct export *e = xcalloc(1, sizeof *e);
    e->pool = r->app->db;
    e->q = xstrdup(q);
    web_reply_stream(r, 200, "text/csv; charset=utf-8", export_next, export_free, e);
    return 0;
}
