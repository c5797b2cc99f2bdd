/*
 * clients_driver.c — runs the integration clients (Stripe, Mailgun, Keycloak Admin, the HTTP
 * core) from the command line, for the pytest suites that point them at the devstack doubles
 * (tests/integration/test_clients_*.py) and at the real Keycloak and stripe-mock
 * (tests/conformance/test_clients_*.py).
 *
 *   clients_driver CMD JSON [CMD JSON …]
 *
 * Configuration comes from the environment as for `usher` (config_load). The commands run in
 * order in one process (one kc_admin, so its token cache lives across them); each prints one
 * line: {"cmd", "rc", "rc_name", "result", "error", "token_fetches"}. Exit status 0 unless
 * the arguments or the configuration are unusable (2).
 */
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "integrations/http_client.h"
#include "integrations/keycloak_admin.h"
#include "integrations/mailgun.h"
#include "integrations/stripe_client.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_ITEMS 32

struct ctx {
    struct usher_config cfg;
    struct kc_admin *kc;
    int kc_rc;
};

static const char *s(const json_t *args, const char *key)
{
    return json_string_value(json_object_get(args, key));
}

static int tri(const json_t *args, const char *key)
{
    const json_t *v = json_object_get(args, key);
    return json_is_boolean(v) ? json_is_true(v) : -1;
}

static json_t *http_error_json(const struct http_error *e)
{
    static const char *const kinds[] = {"none",      "connect",   "timeout", "tls",
                                        "transport", "too_large", "status",  "invalid"};
    return json_pack("{s:I, s:s, s:s}", "status", (json_int_t)e->status, "kind",
                     (unsigned)e->kind < 8 ? kinds[e->kind] : "?", "excerpt", e->excerpt);
}

static json_t *stripe_error_json(const struct stripe_error *e)
{
    json_t *j = http_error_json(&e->http);
    json_object_set_new(j, "type", json_string(e->type));
    json_object_set_new(j, "code", json_string(e->code));
    json_object_set_new(j, "param", json_string(e->param));
    json_object_set_new(j, "message", json_string(e->message));
    json_object_set_new(j, "request_id", json_string(e->request_id));
    json_object_set_new(j, "portal_not_configured", json_boolean(e->portal_not_configured));
    return j;
}

static json_t *kc_error_json(const struct kc_error *e)
{
    json_t *j = http_error_json(&e->http);
    json_object_set_new(j, "message", json_string(e->message));
    json_object_set_new(j, "field", json_string(e->field));
    return j;
}

static json_t *report_json(const struct kc_attr_report *r)
{
    json_t *a = json_array();
    for (size_t i = 0; i < r->count; i++)
        json_array_append_new(a, json_string(r->names[i]));
    return a;
}

/* ------------------------------------------------------------ stripe */

struct checkout_storage {
    struct stripe_line_item items[MAX_ITEMS];
    struct stripe_metadata meta[64];
    struct stripe_metadata sub_meta[64];
};

static size_t fill_meta(const json_t *obj, struct stripe_metadata *out, size_t max)
{
    size_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach ((json_t *)obj, k, v) {
        if (n == max)
            break;
        out[n++] = (struct stripe_metadata){k, json_string_value(v)};
    }
    return n;
}

static void checkout_params(const json_t *a, struct stripe_checkout_params *p,
                            struct checkout_storage *st)
{
    memset(p, 0, sizeof *p);
    size_t i;
    json_t *it;
    json_array_foreach (json_object_get(a, "items"), i, it) {
        if (i == MAX_ITEMS)
            break;
        json_t *q = json_object_get(it, "quantity");
        st->items[i] =
            (struct stripe_line_item){s(it, "price"), q ? (long)json_integer_value(q) : 1};
        p->item_count = i + 1;
    }
    p->items = st->items;
    p->customer = s(a, "customer");
    p->customer_email = s(a, "customer_email");
    p->metadata = st->meta;
    p->metadata_count = fill_meta(json_object_get(a, "metadata"), st->meta, 64);
    p->subscription_metadata = st->sub_meta;
    p->subscription_metadata_count =
        fill_meta(json_object_get(a, "subscription_metadata"), st->sub_meta, 64);
    p->client_reference_id = s(a, "client_reference_id");
    p->return_url = s(a, "return_url");
    p->cancel_url = s(a, "cancel_url");
    p->idempotency_key = s(a, "idempotency_key");
}

static int run_stripe(struct ctx *c, const char *cmd, const json_t *a, json_t *out)
{
    struct stripe_error err;
    memset(&err, 0, sizeof err);
    json_t *result = NULL;
    int rc;
    if (!strcmp(cmd, "stripe.form") || !strcmp(cmd, "stripe.checkout")) {
        struct stripe_checkout_params p;
        struct checkout_storage st;
        checkout_params(a, &p, &st);
        if (!strcmp(cmd, "stripe.form")) {
            struct form f;
            form_init(&f);
            rc = stripe_checkout_form(&c->cfg, &p, &f);
            result = json_string(form_data(&f));
            form_cleanup(&f);
        } else {
            rc = stripe_checkout_session_create(&c->cfg, &p, &result, &err);
        }
    } else if (!strcmp(cmd, "stripe.session")) {
        rc = stripe_checkout_session_retrieve(&c->cfg, s(a, "id"), &result, &err);
        if (rc == 0) {
            const char *email = stripe_session_email(result);
            json_object_set_new(out, "email", email ? json_string(email) : json_null());
        }
    } else if (!strcmp(cmd, "stripe.subscription")) {
        rc = stripe_subscription_retrieve(&c->cfg, s(a, "id"), &result, &err);
        if (rc == 0) {
            json_t *items = json_array();
            for (size_t i = 0; i < stripe_subscription_item_count(result); i++) {
                struct stripe_sub_item it;
                if (stripe_subscription_item(result, i, &it) == 0)
                    json_array_append_new(
                        items, json_pack("{s:s?, s:s?, s:I, s:I}", "price", it.price_id, "product",
                                         it.product_id, "quantity", (json_int_t)it.quantity,
                                         "current_period_end", (json_int_t)it.current_period_end));
            }
            json_object_set_new(out, "items", items);
        }
    } else if (!strcmp(cmd, "stripe.cancel")) {
        rc = stripe_subscription_cancel(&c->cfg, s(a, "id"), &result, &err);
    } else if (!strcmp(cmd, "stripe.portal")) {
        char *url = NULL;
        rc = stripe_portal_session_create(&c->cfg, s(a, "customer"), s(a, "return_url"),
                                          s(a, "idempotency_key"), &url, &err);
        result = url ? json_string(url) : NULL;
        free(url);
    } else {
        return USHER_EINVAL - 1000;
    }
    json_object_set_new(out, "result", result ? result : json_null());
    json_object_set_new(out, "error", stripe_error_json(&err));
    return rc;
}

/* ------------------------------------------------------------ mailgun */

static int run_mailgun(struct ctx *c, const char *cmd, const json_t *a, json_t *out)
{
    struct http_error err;
    memset(&err, 0, sizeof err);
    int rc;
    if (!strcmp(cmd, "mailgun.send")) {
        struct mailgun_message m = {s(a, "to"), s(a, "subject"), s(a, "text"), s(a, "html"),
                                    s(a, "tag")};
        char *id = NULL;
        if (json_is_true(json_object_get(a, "plain")))
            rc = mailgun_send(&c->cfg, &m, &id); /* the contract's own entry point */
        else
            rc = mailgun_send_ex(&c->cfg, &m, &id, &err);
        json_object_set_new(out, "result", id ? json_string(id) : json_null());
        free(id);
    } else if (!strcmp(cmd, "mailgun.list_add")) {
        if (json_is_true(json_object_get(a, "plain")))
            rc = mailgun_list_add_member(&c->cfg, s(a, "list"), s(a, "member"));
        else
            rc = mailgun_list_add_member_ex(&c->cfg, s(a, "list"), s(a, "member"), &err);
        json_object_set_new(out, "result", json_null());
    } else if (!strcmp(cmd, "mailgun.from")) {
        char *from = mailgun_from_address(s(a, "site_name"), s(a, "domain"));
        json_object_set_new(out, "result", json_string(from));
        free(from);
        rc = 0;
    } else {
        return USHER_EINVAL - 1000;
    }
    json_object_set_new(out, "error", http_error_json(&err));
    return rc;
}

/* ------------------------------------------------------------ keycloak */

static const char **string_list(const json_t *arr)
{
    size_t n = json_array_size(arr);
    const char **list = xcalloc(n + 1, sizeof *list);
    for (size_t i = 0; i < n; i++)
        list[i] = json_string_value(json_array_get(arr, i));
    return list;
}

static int run_kc_attrs(struct ctx *c, const char *cmd, const json_t *a, json_t *out,
                        struct kc_error *err)
{
    struct kc_attr_report report = {0};
    int rc;
    if (!strcmp(cmd, "kc.attrs")) {
        const char **keys = string_list(json_object_get(a, "keys"));
        struct kc_owned_attrs owned = kc_owned_attrs_usher(keys);
        rc = kc_user_replace_attributes(c->kc, s(a, "id"), &owned, json_object_get(a, "desired"),
                                        &report, err);
        free(keys);
        json_object_set_new(out, "result", json_null());
    } else {
        const char **names = string_list(json_object_get(a, "names"));
        char *policy = NULL;
        rc = kc_profile_check(c->kc, names, &policy, &report, err);
        free(names);
        json_object_set_new(out, "result", policy ? json_string(policy) : json_null());
        free(policy);
    }
    json_object_set_new(out, "dropped", report_json(&report));
    kc_attr_report_cleanup(&report);
    return rc;
}

static int run_kc(struct ctx *c, const char *cmd, const json_t *a, json_t *out)
{
    if (!c->kc && c->kc_rc == 0)
        c->kc_rc = kc_admin_new(&c->cfg, &c->kc);
    if (!c->kc)
        return c->kc_rc;
    struct kc_error err;
    memset(&err, 0, sizeof err);
    json_t *result = NULL;
    char *id = NULL;
    int rc;
    const char *uid = s(a, "id");
    if (!strcmp(cmd, "kc.token")) {
        rc = kc_admin_token_check(c->kc, &err);
    } else if (!strcmp(cmd, "kc.forget_token")) {
        kc_admin_forget_token(c->kc);
        rc = 0;
    } else if (!strcmp(cmd, "kc.find_email")) {
        rc = kc_user_find_by_email(c->kc, s(a, "email"), &result, &err);
    } else if (!strcmp(cmd, "kc.find_username")) {
        rc = kc_user_find_by_username(c->kc, s(a, "username"), &result, &err);
    } else if (!strcmp(cmd, "kc.create")) {
        struct kc_new_user u = {
            .username = s(a, "username"),
            .email = s(a, "email"),
            .first_name = s(a, "first_name"),
            .last_name = s(a, "last_name"),
            .enabled = tri(a, "enabled") != 0,
            .email_verified = tri(a, "email_verified") == 1,
            .attributes = json_object_get(a, "attributes"),
        };
        rc = kc_user_create(c->kc, &u, &id, &err);
    } else if (!strcmp(cmd, "kc.get")) {
        rc = kc_user_get(c->kc, uid, &result, &err);
    } else if (!strcmp(cmd, "kc.update")) {
        struct kc_user_changes ch = KC_USER_CHANGES_NONE;
        ch.email = s(a, "email");
        ch.first_name = s(a, "first_name");
        ch.last_name = s(a, "last_name");
        ch.enabled = tri(a, "enabled");
        ch.email_verified = tri(a, "email_verified");
        const char **actions = NULL;
        if (json_is_array(json_object_get(a, "required_actions")))
            ch.required_actions = actions = string_list(json_object_get(a, "required_actions"));
        rc = kc_user_update(c->kc, uid, &ch, &err);
        free(actions);
    } else if (!strcmp(cmd, "kc.set_enabled")) {
        rc = kc_user_set_enabled(c->kc, uid, tri(a, "enabled") == 1, &err);
    } else if (!strcmp(cmd, "kc.logout")) {
        rc = kc_user_logout(c->kc, uid, &err);
    } else if (!strcmp(cmd, "kc.update_password")) {
        json_t *l = json_object_get(a, "lifespan");
        rc = kc_user_send_update_password(c->kc, uid, s(a, "client_id"), s(a, "redirect_uri"),
                                          l ? (long)json_integer_value(l) : 0, &err);
    } else if (!strcmp(cmd, "kc.delete")) {
        rc = kc_user_delete(c->kc, uid, &err);
    } else if (!strcmp(cmd, "kc.group_find")) {
        rc = kc_group_find(c->kc, s(a, "ref"), &id, &err);
    } else if (!strcmp(cmd, "kc.group_add")) {
        rc = kc_user_group_add(c->kc, uid, s(a, "group"), &err);
    } else if (!strcmp(cmd, "kc.group_remove")) {
        rc = kc_user_group_remove(c->kc, uid, s(a, "group"), &err);
    } else if (!strcmp(cmd, "kc.user_groups")) {
        rc = kc_user_groups(c->kc, uid, &result, &err);
    } else if (!strcmp(cmd, "kc.user_groups_page")) {
        rc = kc_user_groups_page(c->kc, uid, s(a, "search"),
                                 (int)json_integer_value(json_object_get(a, "first")),
                                 (int)json_integer_value(json_object_get(a, "max")), &result, &err);
    } else if (!strcmp(cmd, "kc.attrs") || !strcmp(cmd, "kc.profile_check")) {
        rc = run_kc_attrs(c, cmd, a, out, &err);
    } else {
        return USHER_EINVAL - 1000;
    }
    if (id)
        result = json_string(id);
    free(id);
    if (!json_object_get(out, "result"))
        json_object_set_new(out, "result", result ? result : json_null());
    else
        json_decref(result);
    json_object_set_new(out, "error", kc_error_json(&err));
    json_object_set_new(out, "token_fetches", json_integer(kc_admin_token_fetches(c->kc)));
    return rc;
}

/* ------------------------------------------------------------ raw HTTP, misc */

static int run_misc(struct ctx *c, const char *cmd, const json_t *a, json_t *out)
{
    (void)c;
    if (!strcmp(cmd, "metrics")) {
        struct buf b;
        buf_init(&b);
        metrics_render(&b);
        json_object_set_new(out, "result", json_string(b.data));
        buf_cleanup(&b);
        return 0;
    }
    if (!strcmp(cmd, "sleep")) {
        long ms = (long)json_integer_value(json_object_get(a, "ms"));
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        return 0;
    }
    if (!strcmp(cmd, "http")) {
        const char *body = s(a, "body");
        const char *headers[9] = {0};
        size_t i;
        json_t *h;
        json_array_foreach (json_object_get(a, "headers"), i, h)
            if (i < 8)
                headers[i] = json_string_value(h);
        struct http_request req = {
            .headers = headers,
            .body = body,
            .body_len = body ? strlen(body) : 0,
            .content_type = s(a, "content_type"),
            .method = s(a, "method"),
            .url = s(a, "url"),
            .upstream = s(a, "upstream"),
            .timeout_ms = (long)json_integer_value(json_object_get(a, "timeout_ms")),
            .max_response_bytes =
                (size_t)json_integer_value(json_object_get(a, "max_response_bytes")),
            .bearer_token = s(a, "bearer"),
        };
        struct http_response resp;
        struct http_error err;
        http_response_init(&resp);
        int rc = json_is_true(json_object_get(a, "retry"))
                     ? http_send_retry(&req, &resp, &err, &http_retry_default)
                     : http_send(&req, &resp, &err);
        json_object_set_new(out, "result",
                            json_pack("{s:I, s:s?, s:i, s:s?}", "status", (json_int_t)resp.status,
                                      "body", resp.body, "attempts", resp.attempts, "location",
                                      resp.location));
        json_object_set_new(out, "error", http_error_json(&err));
        http_response_cleanup(&resp);
        return rc;
    }
    return USHER_EINVAL - 1000;
}

static int run(struct ctx *c, const char *cmd, const json_t *args, json_t *out)
{
    if (!strncmp(cmd, "stripe.", 7))
        return run_stripe(c, cmd, args, out);
    if (!strncmp(cmd, "mailgun.", 8))
        return run_mailgun(c, cmd, args, out);
    if (!strncmp(cmd, "kc.", 3))
        return run_kc(c, cmd, args, out);
    return run_misc(c, cmd, args, out);
}

int main(int argc, char **argv)
{
    if (argc < 3 || (argc - 1) % 2) {
        fputs("usage: clients_driver CMD JSON [CMD JSON …]\n", stderr);
        return 2;
    }
    struct ctx c = {0};
    struct config_problems problems;
    if (config_load(&c.cfg, &problems) != 0) {
        for (size_t i = 0; i < problems.count; i++)
            fprintf(stderr, "clients_driver: configuration error: %s\n", problems.items[i]);
        config_problems_cleanup(&problems);
        config_cleanup(&c.cfg);
        return 2;
    }
    config_problems_cleanup(&problems);
    http_global_init();
    if (getenv("CLIENTS_DRIVER_DEBUG"))
        log_set_level(LOG_DEBUG);
    int status = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        json_error_t jerr;
        json_t *args = json_loads(argv[i + 1], 0, &jerr);
        if (!json_is_object(args)) {
            fprintf(stderr, "clients_driver: %s: arguments are not a JSON object\n", argv[i]);
            json_decref(args);
            status = 2;
            break;
        }
        json_t *out = json_pack("{s:s}", "cmd", argv[i]);
        int rc = run(&c, argv[i], args, out);
        if (rc == USHER_EINVAL - 1000) {
            fprintf(stderr, "clients_driver: unknown command %s\n", argv[i]);
            json_decref(out);
            json_decref(args);
            status = 2;
            break;
        }
        json_object_set_new(out, "rc", json_integer(rc));
        json_object_set_new(out, "rc_name", json_string(rc > 0 ? "dropped" : usher_strerror(rc)));
        char *line = json_dumps(out, JSON_COMPACT);
        puts(line);
        fflush(stdout);
        free(line);
        json_decref(out);
        json_decref(args);
    }
    kc_admin_free(c.kc);
    http_thread_cleanup();
    config_cleanup(&c.cfg);
    return status;
}
