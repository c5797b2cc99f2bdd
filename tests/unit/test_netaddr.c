/*
 * test_netaddr.c — address and CIDR parsing, rate-limit keys, and the X-Forwarded-For rule
 * of TRUSTED_PROXIES (core/netaddr.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/err.h"
#include "core/netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct net_addr addr(const char *text)
{
    struct net_addr a;
    assert_int_equal(net_addr_parse(text, strlen(text), &a), 0);
    return a;
}

static const char *text(const struct net_addr *a)
{
    static char out[NET_ADDR_TEXT_MAX];
    net_addr_format(a, out);
    return out;
}

static const char *key(const char *address)
{
    static char out[NET_ADDR_TEXT_MAX];
    struct net_addr a = addr(address);
    net_addr_rate_key(&a, out);
    return out;
}

static void test_parse_and_format(void **state)
{
    (void)state;
    struct net_addr a = addr("192.0.2.7");
    assert_int_equal(a.family, AF_INET);
    assert_string_equal(text(&a), "192.0.2.7");
    a = addr("2001:DB8:0:0:0:0:0:1");
    assert_int_equal(a.family, AF_INET6);
    assert_string_equal(text(&a), "2001:db8::1"); /* canonical: RFC 5952 */
    a = addr("::ffff:198.51.100.3"); /* what a dual-stack socket reports for IPv4 */
    assert_int_equal(a.family, AF_INET);
    assert_string_equal(text(&a), "198.51.100.3");

    static const char *const bad[] = {
        "",           "1.2.3",         "1.2.3.4.5",        "256.1.1.1", "01.2.3.4x", "example.com",
        "1.2.3.4:80", "[2001:db8::1]", "2001:db8::1%eth0", " 1.2.3.4",  "::g",       "1.2.3.4/32",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct net_addr b;
        assert_int_equal(net_addr_parse(bad[i], strlen(bad[i]), &b), USHER_EINVAL);
        assert_int_equal(b.family, 0);
    }
    char long_text[200];
    memset(long_text, '1', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    struct net_addr b;
    assert_int_equal(net_addr_parse(long_text, strlen(long_text), &b), USHER_EINVAL);
}

static void test_from_sockaddr(void **state)
{
    (void)state;
    struct sockaddr_in in = {.sin_family = AF_INET};
    assert_int_equal(inet_pton(AF_INET, "203.0.113.9", &in.sin_addr), 1);
    struct net_addr a;
    assert_int_equal(net_addr_from_sockaddr((const struct sockaddr *)&in, &a), 0);
    assert_string_equal(text(&a), "203.0.113.9");
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    assert_int_equal(inet_pton(AF_INET6, "2001:db8:0:1::42", &in6.sin6_addr), 1);
    assert_int_equal(net_addr_from_sockaddr((const struct sockaddr *)&in6, &a), 0);
    assert_string_equal(text(&a), "2001:db8:0:1::42");
    struct sockaddr other = {.sa_family = AF_UNIX};
    assert_int_equal(net_addr_from_sockaddr(&other, &a), USHER_EINVAL);
    assert_int_equal(net_addr_from_sockaddr(NULL, &a), USHER_EINVAL);
    assert_string_equal(text(&a), "");
}

/* IPv4 counts per address; IPv6 per /64, which one host can rotate through. */
static void test_rate_key(void **state)
{
    (void)state;
    assert_string_equal(key("192.0.2.7"), "192.0.2.7");
    assert_string_equal(key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::/64");
    assert_string_equal(key("2001:db8:1:2::1"), "2001:db8:1:2::/64");
    assert_string_equal(key("2001:db8:1:3::1"), "2001:db8:1:3::/64");
    assert_string_equal(key("::1"), "::/64");
    struct net_addr none = {0};
    char out[NET_ADDR_TEXT_MAX];
    net_addr_rate_key(&none, out);
    assert_string_equal(out, "");
}

static void test_cidr_list(void **state)
{
    (void)state;
    struct net_cidr_list list;
    char *bad = NULL;
    assert_int_equal(net_cidr_list_parse(" 10.0.0.0/8 ,192.0.2.7,\tfd00::/8, ::1, "
                                         "::ffff:198.51.100.0/120, 0.0.0.0/0",
                                         &list, &bad),
                     0);
    assert_null(bad);
    assert_int_equal(list.count, 6);
    struct net_addr a = addr("10.200.3.4");
    assert_true(net_cidr_list_contains(&list, &a));
    a = addr("192.0.2.7");
    assert_true(net_cidr_list_contains(&list, &a));
    a = addr("fd12:3456::1");
    assert_true(net_cidr_list_contains(&list, &a));
    a = addr("::1");
    assert_true(net_cidr_list_contains(&list, &a));
    a = addr("::2");
    assert_false(net_cidr_list_contains(&list, &a));
    a = addr("2001:db8::1");
    assert_false(net_cidr_list_contains(&list, &a));
    net_cidr_list_cleanup(&list);

    /* A mapped IPv6 block is the IPv4 block; a list of one address is exact. */
    assert_int_equal(net_cidr_list_parse("::ffff:198.51.100.0/120", &list, &bad), 0);
    assert_int_equal(list.items[0].base.family, AF_INET);
    assert_int_equal(list.items[0].prefix_len, 24);
    a = addr("198.51.100.77");
    assert_true(net_cidr_list_contains(&list, &a));
    a = addr("198.51.101.1");
    assert_false(net_cidr_list_contains(&list, &a));
    net_cidr_list_cleanup(&list);

    assert_int_equal(net_cidr_list_parse("", &list, &bad), 0);
    assert_int_equal(list.count, 0);
    assert_int_equal(net_cidr_list_parse(NULL, &list, &bad), 0);
    assert_int_equal(net_cidr_list_parse("   ", &list, &bad), 0);
    assert_int_equal(list.count, 0);
    a = addr("127.0.0.1");
    assert_false(net_cidr_list_contains(&list, &a));

    static const char *const refused[][2] = {
        {"10.0.0.1/8", "10.0.0.1/8"}, /* host bits set */
        {"10.0.0.0/33", "10.0.0.0/33"},
        {"fd00::/129", "fd00::/129"},
        {"10.0.0.0/", "10.0.0.0/"},
        {"10.0.0.0/-1", "10.0.0.0/-1"},
        {"10.0.0.0/8x", "10.0.0.0/8x"},
        {"10.0.0.0/0008", "10.0.0.0/0008"},
        {"::ffff:10.0.0.0/95", "::ffff:10.0.0.0/95"},
        {"192.0.2.1, nginx", "nginx"},
        {"192.0.2.1,,192.0.2.2", ""},
        {"192.0.2.1,", ""},
        {"10.0.0.0/8 10.1.0.0/16", "10.0.0.0/8 10.1.0.0/16"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        assert_int_equal(net_cidr_list_parse(refused[i][0], &list, &bad), USHER_EINVAL);
        assert_non_null(bad);
        assert_string_equal(bad, refused[i][1]);
        assert_int_equal(list.count, 0);
        assert_null(list.items);
        free(bad);
    }
}

/* The client named by a peer (text) and an X-Forwarded-For value, under trusted (a spec). */
static const char *client(const char *peer_text, const char *xff, const char *trusted_spec)
{
    static char out[NET_ADDR_TEXT_MAX];
    struct net_cidr_list trusted;
    char *bad = NULL;
    assert_int_equal(net_cidr_list_parse(trusted_spec, &trusted, &bad), 0);
    struct net_addr peer = addr(peer_text), found;
    net_client_addr(&peer, xff, &trusted, &found);
    net_addr_format(&found, out);
    net_cidr_list_cleanup(&trusted);
    return out;
}

static void test_client_from_trusted_proxy(void **state)
{
    (void)state;
    const char *proxies = "10.0.0.0/8, 2001:db8:ffff::/48";
    /* nginx appends the address it saw: the rightmost untrusted one is the client. */
    assert_string_equal(client("10.0.0.5", "198.51.100.7", proxies), "198.51.100.7");
    assert_string_equal(client("10.0.0.5", " 2001:DB8:1::7 ", proxies), "2001:db8:1::7");
    /* A chain of trusted proxies is skipped. */
    assert_string_equal(client("10.0.0.5", "198.51.100.7, 10.1.1.1,10.2.2.2", proxies),
                        "198.51.100.7");
    assert_string_equal(client("10.0.0.5", "198.51.100.7, 2001:db8:ffff:1::1", proxies),
                        "198.51.100.7");
    /* Whatever the client wrote itself is left of its real address and never read. */
    assert_string_equal(client("10.0.0.5", "1.1.1.1, evil, 10.9.9.9, 198.51.100.7", proxies),
                        "198.51.100.7");
    /* Everything trusted (a proxy's own health check): the leftmost. */
    assert_string_equal(client("10.0.0.5", "10.3.3.3, 10.4.4.4", proxies), "10.3.3.3");
    /* Mapped IPv4 in the header is IPv4. */
    assert_string_equal(client("10.0.0.5", "::ffff:198.51.100.8", proxies), "198.51.100.8");
    /* Ulfius joins repeated headers with ','; the rule reads them as one list. */
    assert_string_equal(client("10.0.0.5", "203.0.113.1,198.51.100.9", proxies), "198.51.100.9");
}

static void test_header_ignored(void **state)
{
    (void)state;
    const char *proxies = "10.0.0.0/8";
    /* An untrusted peer's header is never believed: a client cannot choose its address. */
    assert_string_equal(client("198.51.100.7", "203.0.113.5", proxies), "198.51.100.7");
    assert_string_equal(client("198.51.100.7", "203.0.113.5", ""), "198.51.100.7");
    assert_string_equal(client("10.0.0.5", "203.0.113.5", ""), "10.0.0.5");
    /* No header, an empty one, or one a trusted proxy wrote badly: the peer. */
    assert_string_equal(client("10.0.0.5", NULL, proxies), "10.0.0.5");
    assert_string_equal(client("10.0.0.5", "", proxies), "10.0.0.5");
    static const char *const malformed[] = {
        "unknown",       "198.51.100.7:4711",     "[2001:db8::1]", "198.51.100.7,",
        "203.0.113.5, ", "203.0.113.5,,10.1.1.1", "_hidden",       "203.0.113.5 10.1.1.1",
    };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++)
        assert_string_equal(client("10.0.0.5", malformed[i], proxies), "10.0.0.5");

    /* Oversized: longer than NET_FORWARDED_FOR_MAX, or more trusted hops than
     * NET_FORWARDED_HOPS_MAX before an untrusted one. */
    char big[NET_FORWARDED_FOR_MAX + 64] = "";
    size_t len = 0;
    while (len + 32 < sizeof big)
        len += (size_t)snprintf(big + len, sizeof big - len, "203.0.113.5, ");
    snprintf(big + len, sizeof big - len, "198.51.100.7");
    assert_true(strlen(big) > NET_FORWARDED_FOR_MAX);
    assert_string_equal(client("10.0.0.5", big, proxies), "10.0.0.5");
    char hops[NET_FORWARDED_FOR_MAX] = "198.51.100.7";
    len = strlen(hops);
    for (int i = 0; i < NET_FORWARDED_HOPS_MAX; i++)
        len += (size_t)snprintf(hops + len, sizeof hops - len, ", 10.0.0.9");
    assert_string_equal(client("10.0.0.5", hops, proxies), "10.0.0.5");
    /* One hop fewer is fine. */
    char *last = strrchr(hops, ',');
    *last = '\0';
    assert_string_equal(client("10.0.0.5", hops, proxies), "198.51.100.7");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_format),
        cmocka_unit_test(test_from_sockaddr),
        cmocka_unit_test(test_rate_key),
        cmocka_unit_test(test_cidr_list),
        cmocka_unit_test(test_client_from_trusted_proxy),
        cmocka_unit_test(test_header_ignored),
    };
    return cmocka_run_group_tests_name("netaddr", tests, NULL, NULL);
}
