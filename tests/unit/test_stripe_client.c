/* test_stripe_client.c — the Stripe client's pure parts: API version and ui_mode mapping,
 * checkout form encoding and validation, error parsing, accessors. Request shapes against
 * stripe-mock: tests/conformance/test_clients_stripe.py; flows against the double:
 * tests/integration/test_clients_stripe.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "integrations/stripe_client.h"

#include <string.h>

static struct usher_config cfg(enum checkout_ui ui, const char *version)
{
    struct usher_config c;
    memset(&c, 0, sizeof c);
    c.stripe_secret_key = "sk_test_unit";
    c.stripe_api_base = "http://127.0.0.1:1";
    c.stripe_checkout_ui = ui;
    c.stripe_api_version = (char *)version;
    return c;
}

static void test_version_and_ui_mode(void **state)
{
    (void)state;
    struct usher_config c = cfg(CHECKOUT_UI_EMBEDDED, "");
    assert_string_equal(stripe_api_version(&c), STRIPE_API_VERSION);
    assert_string_equal(stripe_api_version(NULL), "2026-06-24.dahlia");
    c.stripe_api_version = "2025-03-31.basil";
    assert_string_equal(stripe_api_version(&c), "2025-03-31.basil");

    assert_string_equal(stripe_checkout_ui_mode(STRIPE_API_VERSION, CHECKOUT_UI_EMBEDDED),
                        "embedded_page");
    assert_string_equal(stripe_checkout_ui_mode(STRIPE_API_VERSION, CHECKOUT_UI_HOSTED),
                        "hosted_page");
    assert_string_equal(stripe_checkout_ui_mode("2026-03-25.dahlia", CHECKOUT_UI_HOSTED),
                        "hosted_page");
    assert_string_equal(stripe_checkout_ui_mode("2026-02-25.clover", CHECKOUT_UI_HOSTED), "hosted");
    assert_string_equal(stripe_checkout_ui_mode("2025-03-31.basil", CHECKOUT_UI_EMBEDDED),
                        "embedded");
}

static const struct stripe_line_item items[] = {{"price_basic_monthly", 1},
                                                {"price_storage_monthly", 2}};
static const struct stripe_metadata meta[] = {{"first_name", "Zoë"}, {"username", "zoe"}};

static struct stripe_checkout_params params(void)
{
    return (struct stripe_checkout_params){
        .items = items,
        .item_count = 2,
        .customer_email = "zoe@example.test",
        .metadata = meta,
        .metadata_count = 2,
        .return_url = "https://usher.test/onboarding/success/?session_id={CHECKOUT_SESSION_ID}",
        .cancel_url = "https://usher.test/onboarding/cancel/",
        .idempotency_key = "checkout-42",
    };
}

static void test_checkout_form_hosted_and_embedded(void **state)
{
    (void)state;
    struct usher_config c = cfg(CHECKOUT_UI_HOSTED, "");
    struct stripe_checkout_params p = params();
    struct form f;
    form_init(&f);
    assert_int_equal(stripe_checkout_form(&c, &p, &f), 0);
    assert_string_equal(
        form_data(&f),
        "mode=subscription&ui_mode=hosted_page&line_items[0][price]=price_basic_monthly&"
        "line_items[0][quantity]=1&line_items[1][price]=price_storage_monthly&"
        "line_items[1][quantity]=2&customer_email=zoe%40example.test&"
        "metadata[first_name]=Zo%C3%AB&metadata[username]=zoe&"
        "success_url=https%3A%2F%2Fusher.test%2Fonboarding%2Fsuccess%2F%3Fsession_id%3D%7B"
        "CHECKOUT_SESSION_ID%7D&cancel_url=https%3A%2F%2Fusher.test%2Fonboarding%2Fcancel%2F");
    form_cleanup(&f);

    c = cfg(CHECKOUT_UI_EMBEDDED, "");
    p.customer_email = NULL;
    p.customer = "cus_123";
    p.subscription_metadata = meta + 1;
    p.subscription_metadata_count = 1;
    p.client_reference_id = "user-7";
    form_init(&f);
    assert_int_equal(stripe_checkout_form(&c, &p, &f), 0);
    const char *d = form_data(&f);
    assert_non_null(strstr(d, "ui_mode=embedded_page&"));
    assert_non_null(strstr(d, "&customer=cus_123&client_reference_id=user-7&"));
    assert_non_null(strstr(d, "&subscription_data[metadata][username]=zoe&"));
    assert_non_null(strstr(d, "&return_url=https%3A%2F%2Fusher.test%2F"));
    assert_null(strstr(d, "success_url"));
    assert_null(strstr(d, "cancel_url"));
    form_cleanup(&f);

    c = cfg(CHECKOUT_UI_EMBEDDED, "2025-03-31.basil");
    form_init(&f);
    assert_int_equal(stripe_checkout_form(&c, &p, &f), 0);
    assert_non_null(strstr(form_data(&f), "ui_mode=embedded&"));
    form_cleanup(&f);
}

static void expect_invalid(struct stripe_checkout_params p)
{
    struct usher_config c = cfg(CHECKOUT_UI_HOSTED, "");
    struct form f;
    form_init(&f);
    assert_int_equal(stripe_checkout_form(&c, &p, &f), USHER_EINVAL);
    form_cleanup(&f);
    json_t *session = (json_t *)1;
    struct stripe_error err;
    assert_int_equal(stripe_checkout_session_create(&c, &p, &session, &err), USHER_EINVAL);
    assert_null(session);
    assert_int_equal(err.http.kind, HTTP_ERR_INVALID);
}

static void test_checkout_validation(void **state)
{
    (void)state;
    struct stripe_checkout_params p = params();
    p.customer = "cus_123"; /* together with customer_email */
    expect_invalid(p);
    p = params();
    p.item_count = 0;
    expect_invalid(p);
    p = params();
    struct stripe_line_item bad_price[] = {{"price_1&mode=payment", 1}};
    p.items = bad_price, p.item_count = 1;
    expect_invalid(p);
    struct stripe_line_item zero[] = {{"price_1", 0}};
    p.items = zero;
    expect_invalid(p);
    p = params();
    p.return_url = "javascript:alert(1)";
    expect_invalid(p);
    p = params();
    p.return_url = NULL;
    expect_invalid(p);
    p = params();
    struct stripe_metadata long_key[] = {{"a_key_that_is_longer_than_forty_characters_x", "v"}};
    p.metadata = long_key, p.metadata_count = 1;
    expect_invalid(p);
    char big[STRIPE_METADATA_VALUE_MAX + 2];
    memset(big, 'v', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    struct stripe_metadata long_value[] = {{"k", big}};
    p.metadata = long_value;
    expect_invalid(p);
    struct stripe_metadata bracket[] = {{"a]b", "v"}};
    p.metadata = bracket;
    expect_invalid(p);
    struct stripe_metadata many[STRIPE_METADATA_MAX_KEYS + 1];
    for (size_t i = 0; i < STRIPE_METADATA_MAX_KEYS + 1; i++)
        many[i] = (struct stripe_metadata){"k", "v"};
    p.metadata = many, p.metadata_count = STRIPE_METADATA_MAX_KEYS + 1;
    expect_invalid(p);
    p = params();
    p.customer_email = "not an email\n";
    expect_invalid(p);
}

static void test_requests_refused_before_sending(void **state)
{
    (void)state;
    struct usher_config c = cfg(CHECKOUT_UI_HOSTED, "");
    struct stripe_checkout_params p = params();
    json_t *out = NULL;
    struct stripe_error err;
    p.idempotency_key = NULL;
    assert_int_equal(stripe_checkout_session_create(&c, &p, &out, &err), USHER_EINVAL);
    char long_key[STRIPE_IDEMPOTENCY_KEY_MAX + 2];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    p.idempotency_key = long_key;
    assert_int_equal(stripe_checkout_session_create(&c, &p, &out, &err), USHER_EINVAL);
    p.idempotency_key = "has space";
    assert_int_equal(stripe_checkout_session_create(&c, &p, &out, &err), USHER_EINVAL);
    assert_int_equal(stripe_checkout_session_retrieve(&c, "cs_1/../../v1/charges", &out, &err),
                     USHER_EINVAL);
    assert_int_equal(stripe_subscription_retrieve(&c, "", &out, &err), USHER_EINVAL);
    char *url = NULL;
    assert_int_equal(stripe_portal_session_create(&c, "cus 1", NULL, "k", &url, &err),
                     USHER_EINVAL);
    c.stripe_secret_key = "";
    p = params();
    assert_int_equal(stripe_checkout_session_create(&c, &p, &out, &err), USHER_ECONFIG);
    assert_int_equal(stripe_subscription_retrieve(&c, "sub_1", &out, &err), USHER_ECONFIG);
    assert_null(out);
}

static void test_error_parse(void **state)
{
    (void)state;
    struct stripe_error e;
    const char body[] = "{\"error\":{\"type\":\"invalid_request_error\",\"code\":\"resource_"
                        "missing\",\"param\":\"customer\",\"message\":\"No such customer: "
                        "'cus_x'\",\"request_id\":\"req_1\",\"doc_url\":\"https://x\"}}";
    assert_int_equal(stripe_error_parse(400, body, strlen(body), &e), 0);
    assert_int_equal(e.http.status, 400);
    assert_int_equal(e.http.kind, HTTP_ERR_STATUS);
    assert_string_equal(e.type, "invalid_request_error");
    assert_string_equal(e.code, "resource_missing");
    assert_string_equal(e.param, "customer");
    assert_string_equal(e.message, "No such customer: 'cus_x'");
    assert_string_equal(e.request_id, "req_1");
    assert_non_null(strstr(e.http.excerpt, "resource_missing"));

    const char partial[] = "{\"error\":{\"message\":\"Invalid API Key provided: sk_test_*1234\","
                           "\"type\":\"invalid_request_error\"}}";
    assert_int_equal(stripe_error_parse(401, partial, strlen(partial), &e), 0);
    assert_string_equal(e.code, "");
    assert_string_equal(e.param, "");
    assert_null(strstr(e.message, "sk_test_"));

    assert_int_equal(stripe_error_parse(502, "<html>bad gateway</html>", 24, &e), USHER_EINVAL);
    assert_int_equal(e.http.status, 502);
    assert_string_equal(e.http.excerpt, "<html>bad gateway</html>");
    assert_int_equal(stripe_error_parse(500, "{\"error\":\"x\"}", 13, &e), USHER_EINVAL);
    assert_int_equal(stripe_error_parse(500, NULL, 0, &e), USHER_EINVAL);
}

static void test_session_email_order(void **state)
{
    (void)state;
    json_t *s = json_loads("{\"customer_details\":{\"email\":\"a@x.test\"},"
                           "\"customer_email\":\"b@x.test\",\"customer\":{\"id\":\"cus_1\","
                           "\"email\":\"c@x.test\"},\"metadata\":{\"email\":\"d@x.test\"}}",
                           0, NULL);
    assert_string_equal(stripe_session_email(s), "a@x.test");
    json_object_set_new(json_object_get(s, "customer_details"), "email", json_null());
    assert_string_equal(stripe_session_email(s), "b@x.test");
    json_object_set_new(s, "customer_email", json_string(""));
    assert_string_equal(stripe_session_email(s), "c@x.test");
    assert_string_equal(stripe_expandable_id(json_object_get(s, "customer")), "cus_1");
    json_object_set_new(s, "customer", json_string("cus_2"));
    assert_string_equal(stripe_expandable_id(json_object_get(s, "customer")), "cus_2");
    assert_string_equal(stripe_session_email(s), "d@x.test");
    json_object_del(s, "metadata");
    assert_null(stripe_session_email(s));
    assert_null(stripe_expandable_id(json_object_get(s, "nothing")));
    json_decref(s);
}

static void test_subscription_items_and_invoice_shapes(void **state)
{
    (void)state;
    json_t *sub = json_loads(
        "{\"id\":\"sub_1\",\"current_period_end\":1700000000,\"items\":{\"data\":["
        "{\"id\":\"si_1\",\"quantity\":2,\"current_period_end\":1800000000,"
        "\"price\":{\"id\":\"price_a\",\"product\":\"prod_a\"}},"
        "{\"id\":\"si_2\",\"price\":{\"id\":\"price_b\",\"product\":{\"id\":\"prod_b\"}}},"
        "{\"id\":\"si_3\"}]}}",
        0, NULL);
    assert_int_equal(stripe_subscription_item_count(sub), 3);
    struct stripe_sub_item it;
    assert_int_equal(stripe_subscription_item(sub, 0, &it), 0);
    assert_string_equal(it.id, "si_1");
    assert_string_equal(it.price_id, "price_a");
    assert_string_equal(it.product_id, "prod_a");
    assert_int_equal(it.quantity, 2);
    assert_int_equal(it.current_period_end, 1800000000);
    assert_int_equal(stripe_subscription_item(sub, 1, &it), 0);
    assert_string_equal(it.product_id, "prod_b");
    assert_int_equal(it.quantity, 1);
    assert_int_equal(it.current_period_end, 1700000000); /* older shape: on the subscription */
    assert_int_equal(stripe_subscription_item(sub, 2, &it), USHER_EINVAL);
    assert_int_equal(stripe_subscription_item(sub, 3, &it), USHER_ENOTFOUND);
    assert_int_equal(stripe_subscription_item_count(NULL), 0);
    json_decref(sub);

    json_t *old = json_loads("{\"subscription\":\"sub_old\"}", 0, NULL);
    json_t *neu = json_loads("{\"subscription\":null,\"parent\":{\"subscription_details\":"
                             "{\"subscription\":\"sub_new\"}}}",
                             0, NULL);
    assert_string_equal(stripe_invoice_subscription_id(old), "sub_old");
    assert_string_equal(stripe_invoice_subscription_id(neu), "sub_new");
    assert_null(stripe_invoice_subscription_id(NULL));
    json_decref(old);
    json_decref(neu);
}

static void test_id_valid(void **state)
{
    (void)state;
    assert_true(stripe_id_valid("cs_test_a1B2"));
    assert_false(stripe_id_valid(""));
    assert_false(stripe_id_valid(NULL));
    assert_false(stripe_id_valid("cs_1?expand[]=x"));
    assert_false(stripe_id_valid("../x"));
    char long_id[STRIPE_ID_MAX + 2];
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    assert_false(stripe_id_valid(long_id));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_and_ui_mode),
        cmocka_unit_test(test_checkout_form_hosted_and_embedded),
        cmocka_unit_test(test_checkout_validation),
        cmocka_unit_test(test_requests_refused_before_sending),
        cmocka_unit_test(test_error_parse),
        cmocka_unit_test(test_session_email_order),
        cmocka_unit_test(test_subscription_items_and_invoice_shapes),
        cmocka_unit_test(test_id_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
