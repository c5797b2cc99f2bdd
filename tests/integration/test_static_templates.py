"""Static files and page templates: caching, compression, traversal, brand, escaping."""

import codecs
import gzip
import http.client

import pytest

from conftest import mentions_old_brand

CSS = "/static/usher.css"

# Static files and pages do not depend on the database backend.
pytestmark = pytest.mark.backend("sqlite")


def raw_get(server, path, headers=None):
    """GET with the path sent exactly as written (requests would normalise dot segments)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def test_css_is_served_with_cache_headers(server):
    r = server.get(CSS, headers={"Accept-Encoding": "identity"})
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/css")
    assert r.headers.get("ETag")
    assert r.headers.get("Cache-Control")
    assert "Content-Encoding" not in r.headers
    assert len(r.content) > 0


def test_if_none_match_gives_304(server):
    etag = server.get(CSS).headers["ETag"]
    r = server.get(CSS, headers={"If-None-Match": etag})
    assert r.status_code == 304
    assert r.content == b""
    r = server.get(CSS, headers={"If-None-Match": '"something-else"'})
    assert r.status_code == 200


def test_gzip_when_accepted(server):
    status, headers, body = raw_get(server, CSS, {"Accept-Encoding": "gzip"})
    assert status == 200
    h = {k.lower(): v for k, v in headers.items()}
    assert h.get("content-encoding") == "gzip"
    assert "accept-encoding" in h.get("vary", "").lower()
    plain = server.get(CSS, headers={"Accept-Encoding": "identity"}).content
    assert gzip.decompress(body) == plain


TRAVERSALS = [
    "/static/../meson.build",
    "/static/%2e%2e/meson.build",
    "/static/%2E%2E/meson.build",
    "/static/..%2fmeson.build",
    "/static/%2e%2e%2fmeson.build",
    "/static//etc/passwd",
    "/static/../../../../etc/passwd",
    "/static/",
    "/static/nope.css",
]


def test_no_escape_from_static(server):
    for path in TRAVERSALS:
        status, _, body = raw_get(server, path)
        assert status == 404, (path, status)
        assert b"project(" not in body and b"root:" not in body


def test_site_name_on_pages(usher):
    s = usher({"SITE_NAME": "Acme Cloud"})
    r = s.get("/onboarding/")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    assert "Acme Cloud" in r.text


def test_site_name_is_html_escaped(usher):
    s = usher({"SITE_NAME": "<script>alert(1)</script>"})
    page = s.get("/onboarding/").text
    assert "&lt;script&gt;" in page
    assert "<script>alert(1)" not in page


def test_no_old_brand(server):
    assert mentions_old_brand("Welcome to " + codecs.encode("Fxlynagvk", "rot13") + "!")
    for path in ("/onboarding/", "/onboarding/waitlist/", "/no/such/page/", CSS):
        r = server.get(path)
        assert r.status_code in (200, 404), path
        assert not mentions_old_brand(r.text), path
