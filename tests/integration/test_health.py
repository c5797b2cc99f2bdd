"""GET /health/ (SPEC §2): 200 while the database answers, 503 while it does not."""

import time

import pytest


def wait_for_status(server, status, timeout):
    deadline = time.monotonic() + timeout
    while True:
        r = server.get("/health/", timeout=10)
        if r.status_code == status or time.monotonic() > deadline:
            return r
        time.sleep(0.25)


def test_health_ok(server):
    r = server.get("/health/")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {"status": "ok"}


def test_health_head(server):
    r = server.request("HEAD", "/health/")
    assert r.status_code == 200
    assert r.content == b""


def test_health_without_trailing_slash_is_not_a_server_error(server):
    r = server.get("/health")
    assert r.status_code in (200, 301, 308, 404)


@pytest.mark.backend("postgres")
def test_health_follows_the_database(server, pg_cluster):
    assert server.get("/health/").status_code == 200
    with pg_cluster.down():
        r = wait_for_status(server, 503, timeout=10)
        assert r.status_code == 503, r.text
        assert r.headers["Content-Type"].startswith("application/json")
        assert r.json() == {"status": "error", "detail": "database unavailable"}
    # the cluster is back: the same process recovers without a restart
    r = wait_for_status(server, 200, timeout=20)
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ok"}
    assert server.proc.poll() is None
