/* test_mailgun.c — the Mailgun client's checks before any request: configuration, message
 * fields, the From address. Sending against the double:
 * tests/integration/test_clients_mailgun.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "integrations/mailgun.h"

#include <stdlib.h>
#include <string.h>

static struct usher_config cfg(const char *key, const char *domain)
{
    struct usher_config c;
    memset(&c, 0, sizeof c);
    c.mailgun_api_key = (char *)key;
    c.mailgun_domain = (char *)domain;
    c.mailgun_api_base = "http://127.0.0.1:1";
    c.site_name = "Usher";
    return c;
}

static void test_from_address(void **state)
{
    (void)state;
    char *f = mailgun_from_address("Usher", "mg.example.test");
    assert_string_equal(f, "Usher <no-reply@mg.example.test>");
    free(f);
    f = mailgun_from_address("Acme, Inc. \"Cloud\"", "mg.example.test");
    assert_string_equal(f, "\"Acme, Inc. \\\"Cloud\\\"\" <no-reply@mg.example.test>");
    free(f);
    f = mailgun_from_address("Evil\r\nBcc: x@y", "d.test");
    assert_null(strpbrk(f, "\r\n"));
    free(f);
    f = mailgun_from_address(NULL, "d.test");
    assert_string_equal(f, "Usher <no-reply@d.test>");
    free(f);
}

static void test_unconfigured_is_econfig(void **state)
{
    (void)state;
    struct mailgun_message m = {"a@x.test", "Hi", "text", NULL, NULL};
    char *id = (char *)1;
    struct usher_config c = cfg("", "mg.test");
    assert_int_equal(mailgun_send(&c, &m, &id), USHER_ECONFIG);
    assert_null(id);
    assert_int_equal(mailgun_list_add_member(&c, "list@mg.test", "a@x.test"), USHER_ECONFIG);
    c = cfg("key-1", "");
    assert_int_equal(mailgun_send(&c, &m, NULL), USHER_ECONFIG);
    assert_int_equal(mailgun_list_add_member(&c, "list@mg.test", "a@x.test"), USHER_ECONFIG);
}

static void test_bad_messages_are_einval(void **state)
{
    (void)state;
    struct usher_config c = cfg("key-1", "mg.test");
    struct http_error err;
    struct mailgun_message m = {"a@x.test", "Hi", NULL, NULL, NULL}; /* no body */
    assert_int_equal(mailgun_send_ex(&c, &m, NULL, &err), USHER_EINVAL);
    assert_int_equal(err.kind, HTTP_ERR_INVALID);
    m = (struct mailgun_message){"a@x.test", "Hi\r\nBcc: victim@x.test", "t", NULL, NULL};
    assert_int_equal(mailgun_send(&c, &m, NULL), USHER_EINVAL);
    m = (struct mailgun_message){"not-an-address", "Hi", "t", NULL, NULL};
    assert_int_equal(mailgun_send(&c, &m, NULL), USHER_EINVAL);
    m = (struct mailgun_message){NULL, "Hi", "t", NULL, NULL};
    assert_int_equal(mailgun_send(&c, &m, NULL), USHER_EINVAL);
    m = (struct mailgun_message){"a@x.test", "", "t", NULL, NULL};
    assert_int_equal(mailgun_send(&c, &m, NULL), USHER_EINVAL);
    m = (struct mailgun_message){"a@x.test", "Hi", "t", NULL, "tag\nx"};
    assert_int_equal(mailgun_send(&c, &m, NULL), USHER_EINVAL);
    assert_int_equal(mailgun_list_add_member(&c, "list@mg.test", "nobody"), USHER_EINVAL);
    assert_int_equal(mailgun_list_add_member(&c, NULL, "a@x.test"), USHER_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_address),
        cmocka_unit_test(test_unconfigured_is_econfig),
        cmocka_unit_test(test_bad_messages_are_einval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
