/*
 * netaddr.c — addresses, CIDR lists and the X-Forwarded-For rule (see netaddr.h).
 */
#include "core/netaddr.h"

#include "core/err.h"
#include "core/mem.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const unsigned char v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* ::ffff:a.b.c.d is a.b.c.d. */
static void unmap(struct net_addr *a)
{
    if (a->family != AF_INET6 || memcmp(a->bytes, v4_mapped_prefix, sizeof v4_mapped_prefix))
        return;
    memmove(a->bytes, a->bytes + 12, 4);
    memset(a->bytes + 4, 0, 12);
    a->family = AF_INET;
}

int net_addr_parse(const char *text, size_t len, struct net_addr *out)
{
    memset(out, 0, sizeof *out);
    char buf[NET_ADDR_TEXT_MAX];
    if (!text || len == 0 || len >= sizeof buf)
        return USHER_EINVAL;
    memcpy(buf, text, len);
    buf[len] = '\0';
    /* inet_pton takes only dotted quads for AF_INET and only IPv6 text (with an optional
     * dotted-quad tail) for AF_INET6: no hostnames, no octal, no zone ids. */
    int family = memchr(buf, ':', len) ? AF_INET6 : AF_INET;
    if (inet_pton(family, buf, out->bytes) != 1) {
        memset(out, 0, sizeof *out);
        return USHER_EINVAL;
    }
    out->family = family;
    unmap(out);
    return 0;
}

int net_addr_from_sockaddr(const struct sockaddr *sa, struct net_addr *out)
{
    memset(out, 0, sizeof *out);
    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        memcpy(out->bytes, &in->sin_addr, 4);
        out->family = AF_INET;
        return 0;
    }
    if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        memcpy(out->bytes, &in6->sin6_addr, 16);
        out->family = AF_INET6;
        unmap(out);
        return 0;
    }
    return USHER_EINVAL;
}

void net_addr_format(const struct net_addr *a, char out[NET_ADDR_TEXT_MAX])
{
    out[0] = '\0';
    if ((a->family == AF_INET || a->family == AF_INET6) &&
        !inet_ntop(a->family, a->bytes, out, NET_ADDR_TEXT_MAX))
        out[0] = '\0';
}

static void mask(struct net_addr *a, unsigned prefix_len)
{
    size_t total = a->family == AF_INET ? 4 : 16;
    for (size_t i = 0; i < total; i++) {
        unsigned bits = prefix_len > 8 * i ? prefix_len - 8 * (unsigned)i : 0;
        if (bits < 8)
            a->bytes[i] &= (unsigned char)(0xff00u >> bits);
    }
}

void net_addr_rate_key(const struct net_addr *a, char out[NET_ADDR_TEXT_MAX])
{
    if (a->family != AF_INET6) {
        net_addr_format(a, out);
        return;
    }
    struct net_addr prefix = *a;
    mask(&prefix, 64);
    net_addr_format(&prefix, out);
    size_t len = strlen(out);
    if (len + 4 <= NET_ADDR_TEXT_MAX)
        memcpy(out + len, "/64", 4);
}

/* "addr" or "addr/len": len is decimal, within the family's width. */
static int parse_cidr(const char *text, size_t len, struct net_cidr *out)
{
    const char *slash = memchr(text, '/', len);
    size_t addr_len = slash ? (size_t)(slash - text) : len;
    if (net_addr_parse(text, addr_len, &out->base) != 0)
        return USHER_EINVAL;
    /* A mapped IPv6 block (::ffff:10.0.0.0/104) arrives here as IPv4: its prefix counts
     * from the end of the mapping prefix. */
    bool was_mapped = out->base.family == AF_INET && memchr(text, ':', addr_len);
    unsigned width = out->base.family == AF_INET ? 32 : 128;
    unsigned prefix = width;
    if (slash) {
        const char *digits = slash + 1;
        size_t n = len - addr_len - 1;
        if (n == 0 || n > 3)
            return USHER_EINVAL;
        prefix = 0;
        for (size_t i = 0; i < n; i++) {
            if (digits[i] < '0' || digits[i] > '9')
                return USHER_EINVAL;
            prefix = prefix * 10 + (unsigned)(digits[i] - '0');
        }
        if (was_mapped) {
            if (prefix < 96)
                return USHER_EINVAL;
            prefix -= 96;
        }
        if (prefix > width)
            return USHER_EINVAL;
    }
    struct net_addr masked = out->base;
    mask(&masked, prefix);
    if (memcmp(masked.bytes, out->base.bytes, sizeof masked.bytes))
        return USHER_EINVAL; /* host bits set */
    out->prefix_len = prefix;
    return 0;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Trims spaces and tabs around [*start, *end). */
static void trim(const char **start, const char **end)
{
    while (*start < *end && is_space(**start))
        (*start)++;
    while (*end > *start && is_space((*end)[-1]))
        (*end)--;
}

int net_cidr_list_parse(const char *spec, struct net_cidr_list *out, char **bad)
{
    memset(out, 0, sizeof *out);
    *bad = NULL;
    const char *p = spec ? spec : "";
    const char *all_end = p + strlen(p);
    const char *s = p, *e = all_end;
    trim(&s, &e);
    if (s == e)
        return 0;
    while (p <= all_end) {
        const char *comma = memchr(p, ',', (size_t)(all_end - p));
        const char *item_end = comma ? comma : all_end;
        const char *start = p, *end = item_end;
        trim(&start, &end);
        struct net_cidr cidr;
        if (parse_cidr(start, (size_t)(end - start), &cidr) != 0) {
            *bad = xstrndup(start, (size_t)(end - start));
            net_cidr_list_cleanup(out);
            return USHER_EINVAL;
        }
        out->items = xrealloc(out->items, (out->count + 1) * sizeof *out->items);
        out->items[out->count++] = cidr;
        if (!comma)
            break;
        p = comma + 1;
    }
    return 0;
}

void net_cidr_list_cleanup(struct net_cidr_list *list)
{
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

bool net_cidr_list_contains(const struct net_cidr_list *list, const struct net_addr *a)
{
    if (!list || a->family == 0)
        return false;
    for (size_t i = 0; i < list->count; i++) {
        const struct net_cidr *c = &list->items[i];
        if (c->base.family != a->family)
            continue;
        struct net_addr masked = *a;
        mask(&masked, c->prefix_len);
        if (!memcmp(masked.bytes, c->base.bytes, sizeof masked.bytes))
            return true;
    }
    return false;
}

void net_client_addr(const struct net_addr *peer, const char *forwarded_for,
                     const struct net_cidr_list *trusted, struct net_addr *out)
{
    *out = *peer;
    if (!forwarded_for || !net_cidr_list_contains(trusted, peer))
        return;
    size_t len = strnlen(forwarded_for, NET_FORWARDED_FOR_MAX + 1);
    if (len == 0 || len > NET_FORWARDED_FOR_MAX)
        return;
    struct net_addr found = {0};
    const char *end = forwarded_for + len;
    for (int hops = 0; hops < NET_FORWARDED_HOPS_MAX; hops++) {
        const char *start = end;
        while (start > forwarded_for && start[-1] != ',')
            start--;
        const char *s = start, *e = end;
        trim(&s, &e);
        struct net_addr hop;
        if (net_addr_parse(s, (size_t)(e - s), &hop) != 0)
            return; /* a proxy we trust wrote something we cannot read: use the peer */
        found = hop;
        if (!net_cidr_list_contains(trusted, &hop))
            break;
        if (start == forwarded_for)
            break; /* all trusted: the leftmost is the client */
        end = start - 1;
        if (hops + 1 == NET_FORWARDED_HOPS_MAX)
            return;
    }
    *out = found;
}
