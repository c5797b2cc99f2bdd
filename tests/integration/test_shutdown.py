"""Graceful shutdown: SIGTERM finishes the requests in flight, refuses new ones, exits 0."""

import re
import signal
import socket
import time

import pytest

WAITLIST = "/onboarding/waitlist/submit/"

pytestmark = pytest.mark.backend("sqlite")


def read_response(sock, timeout=10):
    """Reads one complete HTTP response (Content-Length framed); returns (status, body)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a complete response head: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    m = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
    assert m, f"no Content-Length in {head!r}"
    need = int(m.group(1))
    while len(body) < need:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {len(body)} of {need} body bytes"
        body += chunk
    status = int(head.split(b" ", 2)[1])
    return status, body[:need]


def connection_is_served(port):
    """True if a new connection to port gets an HTTP response."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
    except (ConnectionRefusedError, ConnectionResetError, socket.timeout):
        return False
    try:
        s.sendall(b"GET /health/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        s.settimeout(3)
        return s.recv(16).startswith(b"HTTP/")
    except (OSError, socket.timeout):
        return False
    finally:
        s.close()


def test_sigterm_finishes_the_request_in_flight(server, client):
    token = client.csrf()
    body = b'{"email":"shutdown@example.com"}'
    body = body + b" " * (100 - len(body))
    assert len(body) == 100
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    head = (f"POST {WAITLIST} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: 100\r\n"
            f"Cookie: {cookie}\r\nX-CSRF-Token: {token}\r\nConnection: close\r\n\r\n").encode()

    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        sock.sendall(head + body[:50])
        time.sleep(0.3)  # the server has the request head and is waiting for the body
        server.signal(signal.SIGTERM)
        time.sleep(0.5)
        assert server.proc.poll() is None, "usher exited with a request in flight"
        assert not connection_is_served(server.port), "a new connection was served after SIGTERM"
        sock.sendall(body[50:])
        status, resp = read_response(sock)
    finally:
        sock.close()
    assert status == 200, (status, resp)
    assert b"on the list" in resp
    rc = server.wait(timeout=10)
    assert rc == 0, server.log[-4000:]


def test_sigterm_when_idle_exits_promptly(server):
    t0 = time.monotonic()
    server.stop(timeout=10)
    assert time.monotonic() - t0 < 10


def test_sigint_exits_cleanly(server):
    server.signal(signal.SIGINT)
    assert server.wait(timeout=10) == 0
