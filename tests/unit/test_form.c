/* test_form.c — form bodies with Stripe-style nested keys, percent-encoding, URL pieces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "integrations/form.h"

#include <string.h>

static void test_escape_unreserved_and_reserved(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    form_escape(&b, "AZaz09-._~ +&=/?#[]@é\x01", NULL);
    assert_string_equal(b.data, "AZaz09-._~%20%2B%26%3D%2F%3F%23%5B%5D%40%C3%A9%01");
    buf_reset(&b);
    form_escape(&b, "a[b]@c", "[]");
    assert_string_equal(b.data, "a[b]%40c");
    buf_cleanup(&b);
}

static void test_pairs_and_nested_keys(void **state)
{
    (void)state;
    struct form f;
    form_init(&f);
    form_add(&f, "mode", "subscription");
    form_add_keyf(&f, "price_1", "line_items[%d][price]", 0);
    form_add_long(&f, "line_items[0][quantity]", 2);
    form_add(&f, "metadata[first name]", "Zoë & co");
    form_add(&f, "success_url", "https://x.test/s/?session_id={CHECKOUT_SESSION_ID}");
    form_add(&f, "expand[]", "customer");
    form_add(&f, "empty", NULL);
    assert_string_equal(form_data(&f),
                        "mode=subscription&line_items[0][price]=price_1&"
                        "line_items[0][quantity]=2&metadata[first%20name]=Zo%C3%AB%20%26%20co&"
                        "success_url=https%3A%2F%2Fx.test%2Fs%2F%3Fsession_id%3D%7B"
                        "CHECKOUT_SESSION_ID%7D&expand[]=customer&empty=");
    assert_int_equal(form_len(&f), strlen(form_data(&f)));
    form_cleanup(&f);
}

static void test_json_encoding(void **state)
{
    (void)state;
    json_t *v = json_loads("{\"line_items\":[{\"price\":\"p1\",\"quantity\":1},"
                           "{\"price\":\"p2\",\"quantity\":3}],"
                           "\"expand\":[\"subscription\",\"customer\"],"
                           "\"metadata\":{\"k\":\"v\"},\"flag\":true,\"off\":false,"
                           "\"n\":null,\"r\":1.5}",
                           JSON_PRESERVE_ORDER, NULL);
    assert_non_null(v);
    struct form f;
    form_init(&f);
    const char *k;
    json_t *child;
    json_object_foreach (v, k, child)
        assert_int_equal(form_add_json(&f, k, child), 0);
    assert_string_equal(form_data(&f),
                        "line_items[0][price]=p1&line_items[0][quantity]=1&"
                        "line_items[1][price]=p2&line_items[1][quantity]=3&"
                        "expand[]=subscription&expand[]=customer&metadata[k]=v&flag=true&"
                        "off=false&n=&r=1.5");
    form_cleanup(&f);
    json_decref(v);
}

static void test_json_depth_limit(void **state)
{
    (void)state;
    json_t *deep = json_string("x");
    for (int i = 0; i < FORM_MAX_DEPTH + 2; i++)
        deep = json_pack("{s:o}", "a", deep);
    struct form f;
    form_init(&f);
    assert_int_equal(form_add_json(&f, "k", deep), USHER_EINVAL);
    assert_int_equal(form_add_json(&f, NULL, deep), USHER_EINVAL);
    form_cleanup(&f);
    json_decref(deep);
}

static void test_url_segment_and_query(void **state)
{
    (void)state;
    struct buf u;
    buf_init(&u);
    buf_puts(&u, "https://kc.test/admin/realms");
    form_url_segment(&u, "my realm/../x");
    buf_puts(&u, "/users");
    form_url_query(&u, "email", "a+b@x.test");
    form_url_query(&u, "exact", "true");
    form_url_query(&u, "expand[]", "customer");
    assert_string_equal(u.data, "https://kc.test/admin/realms/my%20realm%2F..%2Fx/users"
                                "?email=a%2Bb%40x.test&exact=true&expand%5B%5D=customer");
    buf_reset(&u);
    buf_puts(&u, "/v3/lists");
    form_url_segment(&u, "news@mg.example.com");
    assert_string_equal(u.data, "/v3/lists/news@mg.example.com");
    buf_cleanup(&u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_unreserved_and_reserved),
        cmocka_unit_test(test_pairs_and_nested_keys),
        cmocka_unit_test(test_json_encoding),
        cmocka_unit_test(test_json_depth_limit),
        cmocka_unit_test(test_url_segment_and_query),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
