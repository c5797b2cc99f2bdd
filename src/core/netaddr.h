/*
 * netaddr.h — IP addresses, CIDR lists, and which address a request comes from.
 *
 * Owns the client-address rule behind TRUSTED_PROXIES: the socket peer is the client unless
 * it is a trusted proxy, in which case X-Forwarded-For is read from the right, skipping
 * trusted addresses, and the first untrusted one is the client. Parsing goes through
 * inet_pton only. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d, what a dual-stack socket
 * reports for an IPv4 peer) are treated as the IPv4 address everywhere, so a list entry,
 * a log line and a rate-limit bucket mean one thing whichever way the peer connected.
 */
#ifndef USHER_CORE_NETADDR_H
#define USHER_CORE_NETADDR_H

#include <stdbool.h>
#include <stddef.h>

struct sockaddr;

/* Bytes enough for any text below (an IPv6 address is at most 45 characters, plus "/64"). */
#define NET_ADDR_TEXT_MAX 64
/* X-Forwarded-For values longer than this, or with more hops, are ignored (the peer is
 * the client): a real chain of proxies is a handful of addresses. */
#define NET_FORWARDED_FOR_MAX 1024
#define NET_FORWARDED_HOPS_MAX 16

struct net_addr {
    int family; /* AF_INET, AF_INET6, or 0 for none */
    unsigned char bytes[16]; /* network order; the first 4 for AF_INET */
};

struct net_cidr {
    struct net_addr base; /* host bits zero */
    unsigned prefix_len; /* 0..32 or 0..128 */
};

struct net_cidr_list {
    size_t count;
    struct net_cidr *items; /* owned */
};

/* One address, IPv4 or IPv6, of exactly len bytes of text (no brackets, no port, no spaces).
 * Returns 0, or USHER_EINVAL. */
int net_addr_parse(const char *text, size_t len, struct net_addr *out);

/* The address of an AF_INET or AF_INET6 socket address; USHER_EINVAL (and family 0) for
 * anything else, e.g. a Unix socket or NULL. */
int net_addr_from_sockaddr(const struct sockaddr *sa, struct net_addr *out);

/* Canonical text (inet_ntop: RFC 5952 for IPv6); "" for family 0. */
void net_addr_format(const struct net_addr *a, char out[NET_ADDR_TEXT_MAX]);

/*
 * The key per-address rate limits count under: an IPv4 address as itself, an IPv6 address
 * as its /64 ("2001:db8:1:2::/64"). One IPv6 host usually holds a whole /64 and can rotate
 * through it freely, so counting single IPv6 addresses would let it escape every limit.
 * "" for family 0.
 */
void net_addr_rate_key(const struct net_addr *a, char out[NET_ADDR_TEXT_MAX]);

/*
 * Parses a comma-separated list of addresses and CIDR blocks ("10.0.0.0/8, ::1,
 * fd00::/8"); spaces around items are ignored and an empty spec is an empty list. A block
 * with host bits set (10.0.0.1/8) is refused as most likely a typo. Returns 0, or
 * USHER_EINVAL with *bad (caller frees) set to the first item refused.
 */
int net_cidr_list_parse(const char *spec, struct net_cidr_list *out, char **bad);
void net_cidr_list_cleanup(struct net_cidr_list *list);
bool net_cidr_list_contains(const struct net_cidr_list *list, const struct net_addr *a);

/*
 * The client of a request from its socket peer and its X-Forwarded-For value (NULL when
 * absent). The header is read only when the peer is in trusted; then from the right, each
 * trusted address is skipped and the first untrusted one is the client (one the client
 * wrote itself further left is never reached). When every address is trusted the leftmost
 * is the client. A value that is too long, has too many hops, or has an item that is not a
 * bare address where the walk reaches it, is ignored: the peer is the client.
 */
void net_client_addr(const struct net_addr *peer, const char *forwarded_for,
                     const struct net_cidr_list *trusted, struct net_addr *out);

#endif
