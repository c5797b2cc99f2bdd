"""The client address behind a reverse proxy (TRUSTED_PROXIES, X-Forwarded-For).

Per-address limits (here the new-session ceiling, SESSION_NEW_PER_IP_PER_MINUTE) count per
client. Behind a proxy every connection comes from the proxy, so Usher reads the client from
X-Forwarded-For, but only when the socket peer is a trusted proxy: from anyone else the
header is ignored, so a client cannot pick its own address. Loopback stands in for the
network: 127.0.0.1 is the trusted proxy, 127.0.0.2 an untrusted client (Linux routes all of
127.0.0.0/8 to the loopback interface, so a connection can start from either). IPv6 clients
count per /64.
"""

import pytest
import requests

STEP1 = "/onboarding/"
LIMIT = 2
sqlite_only = pytest.mark.backend("sqlite")


class SourceAddress(requests.adapters.HTTPAdapter):
    """Makes every connection start from one local address."""

    def __init__(self, source):
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args, **kw):
        kw["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kw)


def new_session(server, forwarded_for=None, source=None):
    """A new visitor storing step 1 (a new session row): the answer's status."""
    c = server.client()
    if source:
        c.http.mount("http://", SourceAddress(source))
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for is not None else {}
    token = c.csrf()  # GET /onboarding/: a cookie and its token; a page view writes nothing
    r = c.post(STEP1, data={"first_name": "Ada", "csrf_token": token}, headers=headers)
    assert r.status_code in (302, 303, 429), (r.status_code, r.text[:300])
    return r.status_code


def admitted(server, n, **kw):
    return [new_session(server, **kw) != 429 for _ in range(n)]


def proxied(usher, trusted="127.0.0.1"):
    return usher({"SESSION_NEW_PER_IP_PER_MINUTE": LIMIT, "TRUSTED_PROXIES": trusted})


def test_clients_behind_a_trusted_proxy_get_separate_limits(usher):
    s = proxied(usher)
    # nginx's $proxy_add_x_forwarded_for: whatever the client sent, then the address it saw.
    assert admitted(s, LIMIT + 1, forwarded_for="198.51.100.1") == [True] * LIMIT + [False]
    # Another client behind the same proxy is not locked out by the first.
    assert admitted(s, LIMIT, forwarded_for="203.0.113.9, 198.51.100.2") == [True] * LIMIT
    assert admitted(s, 1, forwarded_for="198.51.100.2") == [False]
    # Nor is the proxy itself (its own requests, without the header).
    assert admitted(s, 1) == [True]
    # Log lines name the client, not the proxy.
    assert "ip=198.51.100.1" in s.log and "ip=198.51.100.2" in s.log


def test_a_client_cannot_escape_its_limit_through_the_header(usher):
    s = proxied(usher)
    # The client writes addresses of its own in front: nginx appends the real one after them,
    # and that is the one that counts.
    spoofed = [f"192.0.2.{i}, 198.51.100.3" for i in range(LIMIT + 1)]
    assert [new_session(s, forwarded_for=h) != 429 for h in spoofed] == [True] * LIMIT + [False]


def test_header_from_an_untrusted_peer_is_ignored(usher):
    s = proxied(usher)
    statuses = [new_session(s, forwarded_for=f"198.51.100.{10 + i}", source="127.0.0.2")
                for i in range(LIMIT + 1)]
    assert [x != 429 for x in statuses] == [True] * LIMIT + [False]
    assert "ip=127.0.0.2" in s.log and "ip=198.51.100.10" not in s.log


def test_header_is_ignored_when_no_proxy_is_trusted(usher):
    s = usher({"SESSION_NEW_PER_IP_PER_MINUTE": LIMIT})
    statuses = [new_session(s, forwarded_for=f"198.51.100.{20 + i}") for i in range(LIMIT + 1)]
    assert [x != 429 for x in statuses] == [True] * LIMIT + [False]


def test_malformed_header_from_the_proxy_counts_as_the_proxy(usher):
    s = proxied(usher)
    assert admitted(s, LIMIT + 1, forwarded_for="unknown") == [True] * LIMIT + [False]
    # The proxy's bucket is now full, clients named properly are not affected.
    assert admitted(s, 1, forwarded_for="198.51.100.4") == [True]
    assert admitted(s, 1, forwarded_for="198.51.100.4:5555") == [False]


def test_ipv6_clients_count_per_64(usher):
    s = proxied(usher, trusted="10.0.0.0/8, 127.0.0.1, fd00::/8")
    assert admitted(s, LIMIT, forwarded_for="2001:DB8:1:2:0:0:0:1") == [True] * LIMIT
    # Another address of the same /64: the same host rotating its address.
    assert admitted(s, 1, forwarded_for="2001:db8:1:2:ffff::99") == [False]
    # The next /64 is somebody else.
    assert admitted(s, 1, forwarded_for="2001:db8:1:3::1") == [True]
    # Logged canonically.
    assert "ip=2001:db8:1:2::1\n" in s.log


@sqlite_only
def test_check_names_a_bad_trusted_proxies_entry(run_usher):
    rc, out, err = run_usher(["check"], env={"TRUSTED_PROXIES": "127.0.0.1, nginx.internal"})
    assert rc == 2, (rc, out, err)
    assert 'TRUSTED_PROXIES: "nginx.internal" is not an IP address' in out + err
    rc, out, err = run_usher(["check"], env={"TRUSTED_PROXIES": "10.0.0.1/8"})
    assert rc == 2, (rc, out, err)
    assert "TRUSTED_PROXIES" in out + err and "host" in out + err
