"""GET /metrics (SPEC §2): bearer-protected Prometheus text format."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

KEY = "metrics-test-key-0123456789abcdef"


def families(text):
    return {f.name: f for f in text_string_to_metric_families(text)}


def scrape(server):
    r = server.get("/metrics", headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200, r.text
    return families(r.text)


def health_requests(fams):
    fam = fams.get("usher_http_requests") or fams.get("usher_http_requests_total")
    assert fam is not None, sorted(fams)
    return sum(s.value for s in fam.samples
               if s.name.endswith("_total") and "health" in s.labels.get("route", "")
               and s.labels.get("method") == "GET" and s.labels.get("status") == "200")


def test_metrics_disabled_without_key(server):
    assert server.get("/metrics").status_code == 404
    assert server.get("/metrics", headers={"Authorization": "Bearer x"}).status_code == 404


@pytest.fixture
def metrics_server(usher):
    return usher({"PROMETHEUS_METRICS_API_KEY": KEY})


def test_metrics_rejects_missing_or_wrong_token(metrics_server):
    for auth in (None, "Bearer wrong", f"Bearer {KEY}x", f"Bearer {KEY[:-1]}", "Bearer",
                 f"Basic {KEY}", KEY, f"bearer{KEY}"):
        headers = {"Authorization": auth} if auth is not None else {}
        r = metrics_server.get("/metrics", headers=headers)
        assert r.status_code == 401, (auth, r.status_code)
        assert "usher_http_requests" not in r.text


def test_metrics_content(metrics_server):
    metrics_server.get("/health/")
    r = metrics_server.get("/metrics", headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    fams = families(r.text)

    req = fams.get("usher_http_requests")
    assert req is not None and req.type == "counter", sorted(fams)
    labelled = [s for s in req.samples if s.name == "usher_http_requests_total"]
    assert labelled
    for s in labelled:
        assert {"route", "method", "status"} <= set(s.labels), s

    dur = fams.get("usher_http_request_duration_seconds")
    assert dur is not None and dur.type == "histogram", sorted(fams)
    names = {s.name for s in dur.samples}
    assert {"usher_http_request_duration_seconds_bucket", "usher_http_request_duration_seconds_sum",
            "usher_http_request_duration_seconds_count"} <= names
    assert all("route" in s.labels for s in dur.samples)
    assert any(s.labels.get("le") == "+Inf" for s in dur.samples)

    inflight = fams.get("usher_http_requests_in_flight")
    assert inflight is not None and inflight.type == "gauge", sorted(fams)

    pool = fams.get("usher_db_pool_connections")
    assert pool is not None and pool.type == "gauge", sorted(fams)
    assert {s.labels.get("state") for s in pool.samples} >= {"open", "in_use"}

    size = fams.get("usher_db_pool_size")
    assert size is not None and size.type == "gauge", sorted(fams)
    assert size.samples and size.samples[0].value >= 1


def test_request_counter_increases(metrics_server):
    metrics_server.get("/health/")
    before = health_requests(scrape(metrics_server))
    for _ in range(3):
        assert metrics_server.get("/health/").status_code == 200
    after = health_requests(scrape(metrics_server))
    assert after >= before + 3, (before, after)


def test_unknown_paths_do_not_create_label_values(metrics_server):
    """Routes are labelled by route pattern, not raw path, so scanners cannot blow up the
    series count."""
    for i in range(5):
        metrics_server.get(f"/no/such/page-{i}/")
    r = metrics_server.get("/metrics", headers={"Authorization": f"Bearer {KEY}"})
    assert "page-3" not in r.text
