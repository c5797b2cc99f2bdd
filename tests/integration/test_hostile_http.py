"""Hostile HTTP against a running `usher serve` (issue 15, item 3), over raw sockets.

Never a 5xx, never a crash, never a hang, never a sanitizer report (under the ASan build,
USHER_SANITIZED=1, a report also stops the server with exit 86/87, which `check_alive`
and the fixture's clean-stop check catch). Where Usher itself answers, the answer is a 4xx
with the SPEC's error shape {"error": ...}.

What libmicrohttpd does on its own, before Usher sees a request, and why it is accepted:
- a request line or header block larger than its per-connection memory (32 KB) gets MHD's
  own 414 / 431 with a short HTML body (not Usher's JSON shape: no Usher code runs), or the
  connection is closed;
- a malformed chunk size, a malformed request line, a NUL in the head: MHD answers 400 with
  its own body or closes the connection;
- a client that sends nothing for CONNECTION_TIMEOUT_SECONDS (30 s) is disconnected.
Each test below states which of these may happen; a 5xx or no answer while the process is
alive and /health/ is slow is always a failure.
"""

import json
import re
import resource
import socket
import threading
import time

import pytest

HEALTH = "/health/"
WAITLIST = "/onboarding/waitlist/submit/"
SANITIZER = re.compile(r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:")

# 1,000 client sockets plus the server's own need more than the usual 1,024 descriptors; the
# server inherits this process's limit.
_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if _soft < 4096 and (_hard == resource.RLIM_INFINITY or _hard >= 4096):
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, _hard))


def exchange(port, data, timeout=10, shut=True):
    """Sends data, half-closes, returns everything the server sent until it closes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    received = b""
    try:
        try:
            s.sendall(data)
            if shut:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server answered and closed before taking everything: fine
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            received += chunk
    finally:
        s.close()
    return received


def statuses(raw):
    return [int(m) for m in re.findall(rb"HTTP/1\.[01] (\d{3})", raw)]


def body_of(raw):
    head, _, rest = raw.partition(b"\r\n\r\n")
    if re.search(rb"(?i)transfer-encoding:\s*chunked", head):
        out, rest_ = b"", rest
        while rest_:
            size_line, _, rest_ = rest_.partition(b"\r\n")
            n = int(size_line.split(b";")[0] or b"0", 16)
            if n == 0:
                break
            out, rest_ = out + rest_[:n], rest_[n + 2:]
        return out
    return rest


def check_answer(raw, allow_closed=True, usher_json=False):
    """No 5xx; a 4xx from Usher (usher_json) has the {"error": ...} shape."""
    codes = statuses(raw)
    if not codes:
        assert allow_closed, "the server closed without an answer"
        return None
    assert all(c < 500 for c in codes), raw[:400]
    if usher_json and 400 <= codes[0] < 500:
        body = json.loads(body_of(raw))
        assert isinstance(body.get("error"), str), body
    return codes[0]


def check_alive(server):
    assert server.proc.poll() is None, f"usher serve died:\n{server.log[-4000:]}"
    r = server.get(HEALTH, timeout=5)
    assert r.status_code == 200
    assert not SANITIZER.search(server.log), server.log[-4000:]


def head(server, method, path, extra="", body=b""):
    return (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Accept: application/json\r\n{extra}Connection: close\r\n\r\n").encode() + body


def test_over_long_request_line(server):
    # MHD: 414 (its own body) or a close; never Usher code, never a 5xx.
    for n in (8 * 1024, 64 * 1024, 1024 * 1024):
        raw = exchange(server.port, head(server, "GET", "/" + "a" * n))
        code = check_answer(raw)
        assert code is None or 400 <= code < 500, code
    check_alive(server)


def test_over_long_and_thousands_of_headers(server):
    raw = exchange(server.port, head(server, "GET", HEALTH, f"X-Long: {'b' * 200_000}\r\n"))
    code = check_answer(raw)
    assert code is None or 400 <= code < 500
    many = "".join(f"X-H{i}: {i}\r\n" for i in range(5000))
    raw = exchange(server.port, head(server, "GET", HEALTH, many))
    code = check_answer(raw)
    assert code is None or code == 200 or 400 <= code < 500
    # within MHD's memory, many headers are fine
    few = "".join(f"X-H{i}: {i}\r\n" for i in range(500))
    assert check_answer(exchange(server.port, head(server, "GET", HEALTH, few))) in (200, 431)
    check_alive(server)


def test_invalid_utf8_and_nul_in_paths(server):
    for path in ("/%ff%fe/", "/%c3%28/", "/%00/", "/health/%00", "/static/%00usher.css",
                 "/static/../../etc/passwd", "/static/%2e%2e/%2e%2e/etc/passwd", "/\xff\xfe"):
        raw = exchange(server.port, head(server, "GET", path).replace(
            path.encode(), path.encode("latin-1")))
        code = check_answer(raw, usher_json=True)
        assert code is None or 400 <= code < 500, (path, code)
    # a raw NUL in the request line: MHD refuses (400) or closes
    raw = exchange(server.port, b"GET /he\x00alth/ HTTP/1.1\r\nHost: x\r\n\r\n")
    assert check_answer(raw) in (None, 400, 404)
    check_alive(server)


def test_invalid_utf8_and_nul_in_forms_and_json(server):
    client = server.client()
    client.csrf()
    cookies = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    token = client.csrf()
    for body, ctype in ((b"email=%ff%fe%00&x=\xff", "application/x-www-form-urlencoded"),
                        (b'{"email":"\xff\xfe@x.io"}', "application/json"),
                        (b'{"email":"a\\u0000b@x.io"}', "application/json"),
                        (b'{"email":"\x00"}', "application/json"),
                        (b"\xff" * 100, "application/json")):
        raw = exchange(server.port, head(
            server, "POST", WAITLIST,
            f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\nCookie: {cookies}\r\n"
            f"X-CSRF-Token: {token}\r\n", body))
        code = check_answer(raw, allow_closed=False, usher_json=True)
        assert 400 <= code < 500, (body, code)
    check_alive(server)


def test_duplicate_and_conflicting_cookies(server):
    client = server.client()
    token = client.csrf()
    name, value = next(iter(client.cookies.items()))
    for cookie in (f"{name}={value}; {name}=forged", f"{name}=forged; {name}={value}",
                   f"{name}=; {name}=" + "0" * 64, f'{name}="{value}"',
                   f"{name}={value}, {name}=x", "a=" + "b" * 3000 + "; " * 200):
        raw = exchange(server.port, head(
            server, "POST", WAITLIST,
            f"Content-Type: application/json\r\nContent-Length: 2\r\nCookie: {cookie}\r\n"
            f"X-CSRF-Token: {token}\r\n", b"{}"))
        code = check_answer(raw, allow_closed=False, usher_json=True)
        assert 400 <= code < 500, (cookie, code)
    # two Cookie headers
    raw = exchange(server.port, head(server, "GET", HEALTH,
                                     f"Cookie: {name}=x\r\nCookie: {name}={value}\r\n"))
    assert check_answer(raw, allow_closed=False) == 200
    check_alive(server)


def test_chunked_bodies_with_bad_sizes(server):
    te = "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
    for chunks in (b"zz\r\n{}\r\n0\r\n\r\n", b"-1\r\n{}\r\n0\r\n\r\n",
                   b"ffffffffffffffffff\r\n{}\r\n0\r\n\r\n", b"2\r\n{}}}}}\r\n0\r\n\r\n",
                   b"10\r\n{}\r\n", b"7fffffffffffffff\r\n{}"):
        raw = exchange(server.port, head(server, "POST", WAITLIST, te, chunks))
        code = check_answer(raw)
        assert code is None or 400 <= code < 500, (chunks[:40], code)
    # both Content-Length and chunked: never smuggled into a second request
    raw = exchange(server.port, head(server, "POST", WAITLIST, te + "Content-Length: 3\r\n",
                                     b"0\r\n\r\nGET /health/ HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert all(c < 500 for c in statuses(raw))
    check_alive(server)


def test_bodies_larger_than_max_body_bytes(server):
    limit = 1048576
    big = b'{"email":"' + b"a" * (limit + 10) + b'@x.io"}'
    raw = exchange(server.port, head(server, "POST", WAITLIST,
                                     "Content-Type: application/json\r\n"
                                     f"Content-Length: {len(big)}\r\n", big), timeout=30)
    assert check_answer(raw, usher_json=True) in (None, 413)
    # chunked, no length announced: Usher stops reading at the limit
    chunks = b"".join(b"%x\r\n%s\r\n" % (65536, b"a" * 65536) for _ in range(20)) + b"0\r\n\r\n"
    raw = exchange(server.port, head(server, "POST", WAITLIST,
                                     "Content-Type: application/json\r\n"
                                     "Transfer-Encoding: chunked\r\n", chunks), timeout=30)
    assert check_answer(raw, usher_json=True) in (None, 413)
    # a Content-Length beyond 64 bits: MHD's own 413 (HTML body, no Usher code runs)
    raw = exchange(server.port, head(server, "POST", WAITLIST,
                                     "Content-Type: application/json\r\n"
                                     "Content-Length: 99999999999999999999\r\n", b"{}"))
    assert check_answer(raw) in (None, 400, 413)
    check_alive(server)


def test_slowloris_keeps_health_fast(server):
    """200 connections dribbling a header byte every half second; /health/ stays < 1 s."""
    stop = threading.Event()
    socks = []
    for _ in range(200):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        s.sendall(b"POST " + WAITLIST.encode() + b" HTTP/1.1\r\nHost: x\r\n")
        socks.append(s)

    def dribble():
        i = 0
        while not stop.is_set():
            for s in socks:
                try:
                    s.sendall(b"X-%d: a\r\n" % i)
                except OSError:
                    pass
            i += 1
            stop.wait(0.5)

    t = threading.Thread(target=dribble, daemon=True)
    t.start()
    worst = 0.0
    try:
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            started = time.monotonic()
            r = server.get(HEALTH, timeout=5)
            worst = max(worst, time.monotonic() - started)
            assert r.status_code == 200
            time.sleep(0.2)
    finally:
        stop.set()
        t.join(5)
        for s in socks:
            s.close()
    assert worst < 1.0, f"/health/ took {worst:.2f} s during the slowloris"
    check_alive(server)


def test_thousand_concurrent_connections(server):
    n = 1000
    socks = []
    for _ in range(n):
        socks.append(socket.create_connection(("127.0.0.1", server.port), timeout=30))
    request = head(server, "GET", HEALTH)
    results = [b""] * n

    def talk(i):
        s = socks[i]
        try:
            s.sendall(request)
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                results[i] += chunk
        except OSError:
            pass
        finally:
            s.close()

    threads = [threading.Thread(target=talk, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    answered = [statuses(r) for r in results]
    assert all(all(c < 500 for c in codes) for codes in answered)
    ok = sum(1 for codes in answered if codes and codes[0] == 200)
    # MHD's default connection limit is about 1,020: every one of these must be served.
    assert ok == n, f"only {ok} of {n} connections answered 200"
    check_alive(server)


@pytest.mark.xfail(strict=True, reason=(
    "libmicrohttpd 0.9.75 (Debian 12) answers a chunk-size line longer than its connection "
    "buffer (a 70 KB chunk extension) with its own 500 'read the documentation about "
    "connection management and blocking' before any Usher code runs; newer MHD answers 4xx. "
    "Not fixable inside Usher short of a front proxy; tracked in fuzz/README.md."))
def test_huge_chunk_extension_is_not_a_5xx(server):
    te = "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
    raw = exchange(server.port, head(server, "POST", WAITLIST, te,
                                     b"2;" + b"x" * 70000 + b"\r\n{}\r\n0\r\n\r\n"))
    check_answer(raw)
    check_alive(server)
