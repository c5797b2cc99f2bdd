"""Error handling and response headers (SPEC §2 "Error handling everywhere")."""

import json
import re
import select
import socket
import time

import pytest

WAITLIST = "/onboarding/waitlist/submit/"
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def test_unknown_route_is_an_html_404(server):
    r = server.get("/no/such/route/")
    assert r.status_code == 404
    assert r.headers["Content-Type"].startswith("text/html")
    assert "<html" in r.text.lower()


def test_wrong_method_is_405_with_allow(server):
    r = server.request("DELETE", "/health/")
    assert r.status_code == 405
    allow = {m.strip().upper() for m in r.headers.get("Allow", "").split(",")}
    assert {"GET", "HEAD"} <= allow, r.headers.get("Allow")
    assert "DELETE" not in allow


def test_get_on_a_json_endpoint_is_405(server):
    r = server.get(WAITLIST)
    assert r.status_code == 405
    assert "POST" in r.headers.get("Allow", "").upper()


def test_malformed_json_is_400(client):
    r = client.post_json(WAITLIST, "{bad")
    assert r.status_code == 400
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {"error": "Invalid request"}


def test_json_that_is_not_an_object_is_400(client):
    for body in ("[]", '"x"', "42", "null", ""):
        r = client.post_json(WAITLIST, body)
        assert r.status_code == 400, body
        assert "error" in r.json(), body


def test_missing_field_is_400_naming_it(client):
    r = client.post_json(WAITLIST, {})
    assert r.status_code == 400
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert "error" in body, body
    assert "email" in json.dumps(body["error"]), body


def raw_exchange(port, head, body=b"", chunk=65536, timeout=10):
    """Sends head + body over a raw socket, stopping early if the server answers or closes;
    returns everything the server sent."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    received = b""
    try:
        s.sendall(head)
        sent = 0
        while sent < len(body):
            r, _, _ = select.select([s], [], [], 0)
            if r:
                break  # the server answered (or closed) before taking the whole body
            try:
                s.sendall(body[sent:sent + chunk])
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += chunk
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = s.recv(65536)
            except ConnectionResetError:
                break
            except socket.timeout:
                break
            if not data:
                break
            received += data
            if b"\r\n\r\n" in received:
                head_part, _, rest = received.partition(b"\r\n\r\n")
                m = re.search(rb"(?i)content-length:\s*(\d+)", head_part)
                if m and len(rest) >= int(m.group(1)):
                    break
    finally:
        s.close()
    return received


def test_body_over_the_limit_is_413(server, client):
    token = client.csrf()
    size = 2 * 1024 * 1024
    body = b'{"email":"' + b"a" * (size - 20) + b'@x.io"}'
    head = (f"POST {WAITLIST} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Cookie: {'; '.join(f'{k}={v}' for k, v in client.cookies.items())}\r\n"
            f"X-CSRF-Token: {token}\r\nConnection: close\r\n\r\n").encode()
    resp = raw_exchange(server.port, head, body)
    assert resp.startswith(b"HTTP/1.1 413"), resp[:200]
    # and the server is still fine
    assert server.get("/health/").status_code == 200


def test_every_response_has_a_request_id(server):
    for path in ("/health/", "/no/such/route/", "/onboarding/", "/static/usher.css"):
        rid = server.get(path).headers.get("X-Request-Id")
        assert rid and REQUEST_ID.match(rid), (path, rid)


def test_request_ids_differ(server):
    a = server.get("/health/").headers.get("X-Request-Id")
    b = server.get("/health/").headers.get("X-Request-Id")
    assert a and b and a != b


def test_405_and_400_have_a_request_id(server, client):
    assert server.request("DELETE", "/health/").headers.get("X-Request-Id")
    assert client.post_json(WAITLIST, "{bad").headers.get("X-Request-Id")


def test_valid_client_request_id_is_echoed(server):
    for sent in ("abc-123", "A.b_C-9", "x" * 64):
        r = server.get("/health/", headers={"X-Request-Id": sent})
        assert r.headers.get("X-Request-Id") == sent


def test_invalid_client_request_id_is_replaced(server):
    for sent in ("bad id", "x" * 65, "a/b", "<script>", "é"):
        r = server.request("GET", "/health/", headers={"X-Request-Id": sent.encode("utf-8")})
        rid = r.headers.get("X-Request-Id")
        assert rid and rid != sent and REQUEST_ID.match(rid), (sent, rid)


def test_security_headers_on_pages(server):
    for path in ("/onboarding/", "/no/such/route/"):
        r = server.get(path)
        h = r.headers
        assert h.get("Content-Security-Policy"), path
        assert h.get("X-Frame-Options", "").upper() == "DENY", path
        assert h.get("Referrer-Policy"), path
        assert h.get("X-Content-Type-Options", "").lower() == "nosniff", path
        assert "Strict-Transport-Security" not in h, path


def test_hsts_only_behind_https(usher):
    s = usher({"PUBLIC_BASE_URL": "https://usher.example.test"})
    r = s.get("/onboarding/")
    hsts = r.headers.get("Strict-Transport-Security", "")
    assert "max-age=" in hsts, r.headers


@pytest.mark.backend("postgres")
def test_server_side_error_has_request_id_and_no_details(server, client, pg_cluster,
                                                        base_env, db_url):
    client.csrf()
    with pg_cluster.down():
        r = client.post_json(WAITLIST, {"email": "down@example.com"})
        # the database out of reach is "try again later" (test_db_outage.py), not a 500
        assert r.status_code == 503, (r.status_code, r.text[:500])
        assert r.headers["Content-Type"].startswith("application/json")
        body = r.json()
        rid = r.headers.get("X-Request-Id")
        assert rid and body.get("request_id") == rid, (body, rid)
        text = r.text
        for secret in (base_env["SECRET_KEY"], db_url, "Traceback", ".c:", "libpq", "sqlite",
                       "FATAL", "connection to server"):
            assert secret not in text, secret
