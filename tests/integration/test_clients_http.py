"""The HTTP core under the integration clients (src/integrations/http_client.c), driven through
clients_driver against small local servers: keep-alive, timeouts, size limit, retries with
backoff, no redirects, TLS verification, metrics, and nothing secret in the logs."""

import datetime
import json
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from test_clients_support import ECONFIG, EINVAL, ELIMIT, EUPSTREAM, OK, Driver


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # keep pytest output quiet
        pass

    def _send(self, status, body=b"", headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 (stdlib name)
        srv = self.server.owner
        u = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        with srv.lock:
            srv.requests.append({"path": u.path, "headers": dict(self.headers.items())})
        if u.path == "/ok":
            self._send(200, b"hello")
        elif u.path == "/headers":
            self._send(200, json.dumps(dict(self.headers.items())).encode())
        elif u.path == "/big":
            self._send(200, b"x" * int(q["n"]))
        elif u.path == "/chunked":
            # No Content-Length: the limit must stop the transfer while it streams.
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"y" * 65536
            try:
                for _ in range(int(q["chunks"])):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
        elif u.path == "/slow":
            time.sleep(int(q["ms"]) / 1000)
            self._send(200, b"late")
        elif u.path == "/redirect":
            self._send(302, b"", {"Location": "/ok"})
        elif u.path.startswith("/flaky/"):
            key = u.path
            with srv.lock:
                n = srv.counters.get(key, 0)
                srv.counters[key] = n + 1
            if n < int(q.get("fail", "1")):
                headers = {}
                if "retry_after" in q:
                    headers["Retry-After"] = q["retry_after"]
                self._send(int(q.get("status", "503")), b'{"error":"try later"}', headers)
            else:
                self._send(200, b"recovered")
        else:
            self._send(404, b"no")

    do_POST = do_GET  # noqa: N815
    do_PUT = do_GET  # noqa: N815
    do_DELETE = do_GET  # noqa: N815


class LocalServer:
    def __init__(self, tls_context=None):
        self.requests = []
        self.counters = {}
        self.connections = 0
        self.lock = threading.Lock()
        outer = self

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self):
                sock, addr = super().get_request()
                with outer.lock:
                    outer.connections += 1
                if tls_context is not None:
                    sock = tls_context.wrap_socket(sock, server_side=True,
                                                   do_handshake_on_connect=False)
                return sock, addr

            def handle_error(self, request, client_address):
                pass  # TLS handshakes the client aborts on purpose

        self.httpd = Server(("127.0.0.1", 0), _Handler)
        self.httpd.owner = self
        self.port = self.httpd.server_address[1]
        scheme = "https" if tls_context else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = LocalServer()
    yield s
    s.stop()


@pytest.fixture
def tls_server(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    import ipaddress
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    s = LocalServer(tls_context=ctx)
    yield s
    s.stop()


def http(url, **extra):
    return ("http", {"url": url, "upstream": "test", **extra})


def test_one_connection_is_reused_for_consecutive_calls(server):
    out = Driver().run(http(server.url + "/ok"), http(server.url + "/ok"),
                       http(server.url + "/ok", method="POST", body="a=1",
                            content_type="application/x-www-form-urlencoded"))
    assert [o["rc"] for o in out] == [OK, OK, OK]
    assert [o["result"]["body"] for o in out] == ["hello"] * 3
    assert server.connections == 1


def test_request_headers(server):
    out = Driver().call("http", url=server.url + "/headers", upstream="test",
                        bearer="tok_123", headers=["X-Extra: 1"])
    assert out["rc"] == OK
    h = {k.lower(): v for k, v in json.loads(out["result"]["body"]).items()}
    assert h["authorization"] == "Bearer tok_123"
    assert h["user-agent"].startswith("usher/")
    assert h["accept"] == "application/json"
    assert h["x-extra"] == "1"
    assert "expect" not in h


def test_response_size_limit(server):
    d = Driver()
    out = d.run(http(server.url + "/big?n=100", max_response_bytes=100),
                http(server.url + "/big?n=101", max_response_bytes=100),
                http(server.url + f"/big?n={4 * 1024 * 1024 + 1}"),
                http(server.url + "/chunked?chunks=80"),
                http(server.url + "/chunked?chunks=2"))
    assert out[0]["rc"] == OK and len(out[0]["result"]["body"]) == 100
    for o in out[1:4]:
        assert o["rc"] == ELIMIT, o
        assert o["error"]["kind"] == "too_large"
        assert o["result"]["body"] is None
    assert out[4]["rc"] == OK and len(out[4]["result"]["body"]) == 2 * 65536


def test_total_timeout(server):
    t0 = time.monotonic()
    out = Driver().call("http", url=server.url + "/slow?ms=3000", upstream="test",
                        timeout_ms=300)
    assert time.monotonic() - t0 < 2.5
    assert out["rc"] == EUPSTREAM
    assert out["error"]["kind"] == "timeout"
    assert out["error"]["status"] == 0


def test_timeout_comes_from_configuration(server):
    out = Driver(HTTP_TIMEOUT_MS=300).call("stripe.session", id="cs_test_1")
    assert out["rc"] == ECONFIG  # no STRIPE_SECRET_KEY: no request at all
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)  # the kernel accepts, nobody answers
        port = s.getsockname()[1]
        t0 = time.monotonic()
        out = Driver(STRIPE_SECRET_KEY="sk_test_x", STRIPE_API_BASE=f"http://127.0.0.1:{port}",
                     HTTP_TIMEOUT_MS=300).call("stripe.subscription", id="sub_1")
        took = time.monotonic() - t0
    assert out["rc"] == EUPSTREAM
    assert out["error"]["kind"] == "timeout"
    # Stripe's client tries 3 times with 0.25-0.5 s and 0.5-1 s of backoff in between.
    assert took < 3.5, took


def test_refused_connection(server):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = Driver().call("http", url=f"http://127.0.0.1:{port}/", upstream="test")
    assert out["rc"] == EUPSTREAM
    assert out["error"]["kind"] == "connect"


def test_redirects_are_not_followed(server):
    out = Driver().call("http", url=server.url + "/redirect", upstream="test")
    assert out["rc"] == OK
    assert out["result"]["status"] == 302
    assert out["result"]["location"] == "/ok"
    assert [r["path"] for r in server.requests] == ["/redirect"]


def test_retries_with_backoff_then_gives_up(server):
    d = Driver()
    t0 = time.monotonic()
    out = d.run(http(server.url + "/flaky/a?fail=2&status=503", retry=True),
                http(server.url + "/flaky/b?fail=5&status=502", retry=True),
                http(server.url + "/flaky/c?fail=1&status=404", retry=True),
                http(server.url + "/flaky/d?fail=1&status=429&retry_after=1", retry=True))
    took = time.monotonic() - t0
    assert out[0]["rc"] == OK and out[0]["result"]["status"] == 200
    assert out[0]["result"]["attempts"] == 3
    assert out[1]["result"]["status"] == 502 and out[1]["result"]["attempts"] == 3
    assert out[2]["result"]["status"] == 404 and out[2]["result"]["attempts"] == 1
    assert out[3]["result"]["status"] == 200 and out[3]["result"]["attempts"] == 2
    assert server.counters == {"/flaky/a": 3, "/flaky/b": 3, "/flaky/c": 1, "/flaky/d": 2}
    # backoff: a and b wait 125-250 + 250-500 ms each, d honours Retry-After (1 s)
    assert 1.7 <= took < 6, took
    assert "upstream retry" in d.stderr


def test_tls_verification_is_always_on(tls_server):
    out = Driver().call("http", url=tls_server.url + "/ok", upstream="test", retry=True)
    assert out["rc"] == EUPSTREAM
    assert out["error"]["kind"] == "tls"
    assert out["result"]["attempts"] == 1  # a certificate problem is not retried
    assert tls_server.requests == []


def test_unusable_urls():
    d = Driver()
    out = d.run(http("ftp://127.0.0.1/"), http("http://127.0.0.1/a b"))
    assert [o["rc"] for o in out] == [EINVAL, EINVAL]


def test_metrics_per_upstream(server):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = Driver().run(http(server.url + "/ok"), http(server.url + "/ok"),
                       http(server.url + "/flaky/m?fail=1&status=500"),
                       http(server.url + "/big?n=20", max_response_bytes=10),
                       ("http", {"url": f"http://127.0.0.1:{port}/", "upstream": "other"}),
                       ("metrics", {}))
    text = out[-1]["result"]
    from prometheus_client.parser import text_string_to_metric_families
    samples = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value

    def get(name, **labels):
        return samples.get((name, tuple(sorted(labels.items()))))

    assert get("usher_upstream_requests_total", upstream="test", status="200") == 2
    assert get("usher_upstream_requests_total", upstream="test", status="500") == 1
    assert get("usher_upstream_errors_total", upstream="test", kind="status_5xx") == 1
    assert get("usher_upstream_errors_total", upstream="test", kind="too_large") == 1
    assert get("usher_upstream_errors_total", upstream="other", kind="connect") == 1
    assert get("usher_upstream_request_duration_seconds_count", upstream="test") == 4
    assert get("usher_upstream_request_duration_seconds_bucket", upstream="test",
               le="+Inf") == 4


def test_nothing_secret_in_logs(server):
    d = Driver(CLIENTS_DRIVER_DEBUG="1")
    out = d.run(http(server.url + "/ok?token=QUERY_SECRET", bearer="sk_test_BEARER_SECRET"),
                http(server.url + "/flaky/s?fail=1&status=503&key=QSECRET2", retry=True,
                     bearer="BEARER2"))
    assert out[0]["rc"] == OK
    assert "upstream call" in d.stderr and "upstream retry" in d.stderr
    assert "/ok" in d.stderr
    for secret in ("QUERY_SECRET", "BEARER_SECRET", "QSECRET2", "BEARER2", "hello"):
        assert secret not in d.stderr
