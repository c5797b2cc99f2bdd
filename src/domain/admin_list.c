/*
 * admin_list.c — search patterns, rows as JSON and edit fingerprints (see admin_list.h).
 */
#include "domain/admin_list.h"

#include "core/buf.h"
#include "core/crypto.h"
#include "core/mem.h"
#include "domain/audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *admin_like_pattern(const char *term)
{
    if (!term || !*term)
        return xstrdup("");
    struct buf b;
    buf_init(&b);
    buf_putc(&b, '%');
    for (const char *p = term; *p; p++) {
        if (*p == '\\' || *p == '%' || *p == '_')
            buf_putc(&b, '\\');
        buf_putc(&b, *p);
    }
    buf_putc(&b, '%');
    char *out = buf_detach(&b);
    buf_cleanup(&b); /* buf_detach leaves a fresh empty buffer behind */
    return out;
}

json_t *admin_row_json(const struct db_result *res, int row, const char *types)
{
    json_t *o = json_object();
    int cols = db_result_cols(res);
    for (int c = 0; c < cols && types[c]; c++) {
        json_t *v;
        if (db_result_is_null(res, row, c))
            v = json_null();
        else if (types[c] == 'i')
            v = json_integer((json_int_t)db_result_int(res, row, c));
        else if (types[c] == 'b')
            v = json_boolean(db_result_bool(res, row, c));
        else
            v = json_string(db_result_text(res, row, c));
        const char *name = db_result_colname(res, c);
        if (name)
            json_object_set_new(o, name, v ? v : json_null());
        else
            json_decref(v);
    }
    return o;
}

void admin_fingerprint(const json_t *state, char out[ADMIN_FINGERPRINT_LEN + 1])
{
    char *text = json_dumps(state, JSON_COMPACT | JSON_SORT_KEYS);
    unsigned char digest[CRYPTO_SHA256_LEN];
    crypto_sha256(text ? text : "", text ? strlen(text) : 0, digest);
    free(text);
    crypto_hex(digest, ADMIN_FINGERPRINT_LEN / 2, out);
}

bool admin_fingerprint_matches(const json_t *state, const char *fp)
{
    char now[ADMIN_FINGERPRINT_LEN + 1];
    admin_fingerprint(state, now);
    return fp && !strcmp(now, fp);
}

int admin_list_rows(struct db_pool *pool, const char *sql, const struct db_param *p, int n,
                    const char *types, int limit, json_t **rows, bool *more)
{
    *rows = NULL;
    *more = false;
    struct db_result *res = NULL;
    int rc = db_pool_query(pool, sql, p, n, &res);
    if (rc != 0)
        return rc;
    json_t *out = json_array();
    for (int i = 0; i < db_result_rows(res) && i < limit; i++)
        json_array_append_new(out, admin_row_json(res, i, types));
    *more = db_result_rows(res) > limit;
    db_result_free(res);
    *rows = out;
    return 0;
}

int admin_audit(struct db_conn *conn, const struct admin_actor *who, const char *action,
                const char *type, int64_t id, const json_t *before, const json_t *after,
                int64_t now)
{
    char target[24];
    snprintf(target, sizeof target, "%lld", (long long)id);
    const struct audit_entry e = {.actor_user_id = who->user_id,
                                  .actor = who->username,
                                  .action = action,
                                  .target_type = type,
                                  .target_id = target,
                                  .before = before,
                                  .after = after};
    return audit_record(conn, now, &e);
}
