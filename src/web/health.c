/*
 * health.c — GET /health/ (SPEC §2): 200 while the database answers, 503 otherwise.
 */
#include "db/db.h"
#include "web/app.h"
#include "web/handlers.h"
#include "web/response.h"

int web_health(struct web_request *r)
{
    static const char ok[] = "{\"status\":\"ok\"}";
    static const char down[] = "{\"status\":\"error\",\"detail\":\"database unavailable\"}";
    web_set_header(r, "Cache-Control", "no-store");
    if (db_ping(r->app->db) == 0)
        web_reply_bytes(r, 200, "application/json", ok, sizeof ok - 1);
    else
        web_reply_bytes(r, 503, "application/json", down, sizeof down - 1);
    return 0;
}
