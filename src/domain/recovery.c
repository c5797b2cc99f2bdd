/*
 * recovery.c — finding and classifying the account a recovery names, and its previous plan
 * (see recovery.h).
 */
#include "domain/recovery.h"

#include "core/err.h"
#include "core/human_format.h"
#include "core/mem.h"
#include "db/db.h"
#include "db/task_store.h"
#include "domain/validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACCOUNT_COLUMNS                                                        \
    "SELECT id, username, email, first_name, last_name, subscription_status, " \
    "stripe_customer_id, access_expires_at FROM users "

void recovery_account_cleanup(struct recovery_account *a)
{
    free(a->username);
    free(a->email);
    free(a->first_name);
    free(a->last_name);
    free(a->status);
    free(a->stripe_customer_id);
    memset(a, 0, sizeof *a);
}

enum recovery_state recovery_classify(const char *status, int64_t access_expires_at, int64_t now)
{
    if (!status)
        return RECOVERY_NONE;
    if (!strcmp(status, "active") || !strcmp(status, "trialing"))
        return RECOVERY_ACTIVE;
    if (!strcmp(status, "expired"))
        return RECOVERY_CLOSED;
    if (!strcmp(status, "canceled") || !strcmp(status, "past_due")) {
        if (access_expires_at > now)
            return RECOVERY_RECOVERABLE;
        /* No date means the window never started (an event still on its way): nothing to
         * recover yet, and nothing closed either. */
        return access_expires_at ? RECOVERY_CLOSED : RECOVERY_NONE;
    }
    return RECOVERY_NONE;
}

static char *text_or_null(const struct db_result *res, int col)
{
    return db_result_is_null(res, 0, col) ? NULL : xstrdup(db_result_text(res, 0, col));
}

static int find_by(struct db_pool *pool, const char *sql, const struct db_param *p, int64_t now,
                   struct recovery_account *out)
{
    struct db_result *res = NULL;
    int rc = db_pool_query(pool, sql, p, 1, &res);
    if (rc == 0 && db_result_rows(res) > 0) {
        out->id = db_result_int(res, 0, 0);
        out->username = xstrdup(db_result_text(res, 0, 1));
        out->email = xstrdup(db_result_text(res, 0, 2));
        out->first_name = xstrdup(db_result_text(res, 0, 3));
        out->last_name = xstrdup(db_result_text(res, 0, 4));
        out->status = xstrdup(db_result_text(res, 0, 5));
        out->stripe_customer_id = text_or_null(res, 6);
        out->access_expires_at = db_result_is_null(res, 0, 7) ? 0 : db_result_int(res, 0, 7);
        out->state = recovery_classify(out->status, out->access_expires_at, now);
    }
    db_result_free(res);
    return rc;
}

int recovery_find(struct db_pool *pool, const char *identifier, int64_t now,
                  struct recovery_account *out)
{
    memset(out, 0, sizeof *out);
    char *normalized = NULL;
    const char *why = NULL;
    int rc = 0;
    if (validate_username(identifier, &normalized, &why) == 0) {
        const struct db_param p[] = {DB_TEXT(normalized)};
        rc = find_by(pool, ACCOUNT_COLUMNS "WHERE username = $1", p, now, out);
    } else if (validate_email(identifier, &normalized, &why) == 0) {
        /* The newest account with the address, should several share it. */
        const struct db_param p[] = {DB_TEXT(normalized)};
        rc = find_by(pool, ACCOUNT_COLUMNS "WHERE lower(email) = $1 ORDER BY id DESC LIMIT 1", p,
                     now, out);
    }
    free(normalized);
    return rc;
}

int recovery_find_id(struct db_pool *pool, int64_t user_id, int64_t now,
                     struct recovery_account *out)
{
    memset(out, 0, sizeof *out);
    const struct db_param p[] = {DB_INT(user_id)};
    return find_by(pool, ACCOUNT_COLUMNS "WHERE id = $1", p, now, out);
}

bool recovery_identifier_valid(const char *identifier)
{
    if (!identifier || strlen(identifier) > EMAIL_MAX_LEN)
        return false;
    char *normalized = NULL;
    const char *why = NULL;
    bool ok = validate_username(identifier, &normalized, &why) == 0 ||
              validate_email(identifier, &normalized, &why) == 0;
    free(normalized);
    return ok;
}

int recovery_request_code(struct db_pool *pool, const char *identifier, const char *session_hash,
                          int64_t now)
{
    struct db_conn *conn = NULL;
    int rc = db_acquire(pool, DB_WAIT_MS, &conn);
    if (rc != 0)
        return rc;
    json_t *args = json_pack("{s:s, s:s}", "identifier", identifier, "session_hash", session_hash);
    rc = task_enqueue(conn, RECOVERY_CODE_TASK, args, 0, now, NULL, NULL);
    json_decref(args);
    db_release(conn);
    return rc;
}

/* ---- the previous plan ------------------------------------------------------------------- */

/* [{price, quantity}]: the items kept at cancellation, else the cached subscription items. */
static int plan_items(struct db_pool *pool, int64_t user_id, json_t **items)
{
    const struct db_param p[] = {DB_INT(user_id)};
    struct db_result *res = NULL;
    int rc = db_pool_query(pool, "SELECT previous_items FROM users WHERE id = $1", p, 1, &res);
    if (rc != 0)
        return rc;
    json_t *kept = NULL;
    if (db_result_rows(res) && !db_result_is_null(res, 0, 0))
        kept = json_loads(db_result_text(res, 0, 0), 0, NULL);
    db_result_free(res);
    if (json_is_array(kept) && json_array_size(kept)) {
        *items = kept;
        return 0;
    }
    json_decref(kept);
    rc = db_pool_query(pool,
                       "SELECT stripe_price_id, quantity FROM subscription_items "
                       "WHERE user_id = $1 ORDER BY id",
                       p, 1, &res);
    if (rc != 0)
        return rc;
    *items = json_array();
    for (int r = 0; r < db_result_rows(res); r++)
        json_array_append_new(*items, json_pack("{s:s, s:I}", "price", db_result_text(res, r, 0),
                                                "quantity", (json_int_t)db_result_int(res, r, 1)));
    db_result_free(res);
    return 0;
}

/* Prices one item with today's catalog into lines; *amount and *currency accumulate the
 * total (a mixed-currency plan cannot happen through Checkout, so the first one wins). */
static int price_item(struct db_pool *pool, const json_t *item, json_t *lines, int64_t *total,
                      char *currency, char *cycle)
{
    const char *price = json_string_value(json_object_get(item, "price"));
    json_int_t quantity = json_integer_value(json_object_get(item, "quantity"));
    if (!price)
        return 0;
    if (quantity < 1)
        quantity = 1;
    const struct db_param p[] = {DB_TEXT(price)};
    struct db_result *res = NULL;
    int rc = db_pool_query(pool,
                           "SELECT p.name, pp.amount, pp.currency, pp.billing_period "
                           "FROM product_prices pp JOIN products p ON p.id = pp.product_id "
                           "WHERE pp.stripe_price_id = $1 AND pp.is_active AND p.is_active",
                           p, 1, &res);
    if (rc != 0 || db_result_rows(res) == 0) {
        db_result_free(res);
        return rc;
    }
    int64_t amount = db_result_int(res, 0, 1);
    if (!*currency)
        snprintf(currency, 4, "%s", db_result_text(res, 0, 2));
    if (!*cycle)
        snprintf(cycle, 8, "%s", db_result_text(res, 0, 3));
    char label[FORMAT_PRICE_MAX];
    format_price(amount * quantity, db_result_text(res, 0, 2), db_result_text(res, 0, 3), label,
                 sizeof label);
    json_array_append_new(lines,
                          json_pack("{s:s, s:I, s:s, s:s}", "name", db_result_text(res, 0, 0),
                                    "quantity", quantity, "price_id", price, "label", label));
    *total += amount * quantity;
    db_result_free(res);
    return 0;
}

int recovery_previous_plan(struct db_pool *pool, int64_t user_id, json_t **out)
{
    json_t *items = NULL;
    int rc = plan_items(pool, user_id, &items);
    if (rc != 0)
        return rc;
    json_t *lines = json_array();
    int64_t total = 0;
    char currency[4] = "", cycle[8] = "";
    size_t i;
    json_t *item;
    json_array_foreach (items, i, item) {
        rc = price_item(pool, item, lines, &total, currency, cycle);
        if (rc != 0)
            break;
    }
    json_decref(items);
    if (rc == 0 && json_array_size(lines) == 0)
        rc = USHER_ENOTFOUND;
    if (rc != 0) {
        json_decref(lines);
        return rc;
    }
    char total_label[FORMAT_PRICE_MAX];
    format_price(total, currency, cycle, total_label, sizeof total_label);
    *out = json_pack("{s:o, s:s, s:s}", "lines", lines, "total_label", total_label, "cycle", cycle);
    return 0;
}
