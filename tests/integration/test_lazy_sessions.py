"""Lazy sessions (SPEC §6): page views never write; a row only when there is something to keep.

An anonymous visitor gets a cookie (a tagged id) on their first page view but no row in
`sessions`; the CSRF token of their forms is derived from that id, so a form POST verifies
with no row and writes the row only when it stores something. New rows are capped per
client IP and minute (SESSION_NEW_PER_IP_PER_MINUTE). Each test runs on SQLite and
PostgreSQL.

/oidc/authenticate/ is not among the pages flooded below: it keeps the pending login (state,
nonce, PKCE verifier) in the session, so it writes a row and is subject to the ceiling.
"""

import hashlib
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import REPO, csrf_from_meta, parse_set_cookie, set_cookie_headers

COOKIE = "__Host-usher_session"
CATALOG = REPO / "devstack" / "catalog.json"
METRICS_KEY = "lazy-sessions-metrics-key-0123456789"
PUBLIC_PAGES = [
    "/", "/onboarding/", "/onboarding/plan/", "/onboarding/addons/", "/onboarding/checkout/",
    "/onboarding/waitlist/", "/onboarding/cancel/", "/onboarding/success/",
    "/onboarding/success/status/",
]
VIEWS = 10_000
STEP1 = "/onboarding/"
WAITLIST = "/onboarding/waitlist/submit/"
SEND_CODE = "/onboarding/checkout/send-code/"


def rows(db, table="sessions"):
    return db.scalar(f"SELECT count(*) FROM {table}")


def id_hash(cookie):
    return hashlib.sha256(cookie.encode()).hexdigest()


def new_cookie(resp):
    for raw in set_cookie_headers(resp):
        name, value, _ = parse_set_cookie(raw)
        if name == COOKIE:
            return value
    return None


@pytest.fixture
def shop(usher, run_usher):
    server = usher({"PROMETHEUS_METRICS_API_KEY": METRICS_KEY})
    rc, out, err = run_usher(["catalog", "apply", str(CATALOG)])
    assert rc == 0, (out, err)
    return server


def test_anonymous_page_views_write_nothing(shop, db):
    """10,000 GETs over every public page — first visits, returning visitors with their
    cookie, forged cookies — leave sessions (and the rate-limit counters) as they were."""
    returning = new_cookie(shop.get(STEP1))
    assert returning and len(returning) == 64
    forged = "0" * 64
    before = (rows(db), rows(db, "rate_limits"))
    assert before == (0, 0)

    cookies = [None, returning, forged]

    def view(i):
        cookie = cookies[i % len(cookies)]
        path = PUBLIC_PAGES[i % len(PUBLIC_PAGES)]
        http = sessions[i % len(sessions)]
        headers = {"Cookie": f"{COOKIE}={cookie}"} if cookie else {}
        r = http.get(shop.url + path, headers=headers, allow_redirects=False, timeout=15)
        return path, r.status_code

    sessions = [requests.Session() for _ in range(4)]
    with ThreadPoolExecutor(max_workers=len(sessions)) as pool:
        answers = list(pool.map(view, range(VIEWS), chunksize=250))
    for s in sessions:
        s.close()
    assert len(answers) == VIEWS
    errors = [a for a in answers if a[1] >= 500]
    assert not errors, errors[:5]
    seen = {p for p, _ in answers}
    assert seen == set(PUBLIC_PAGES)
    assert (rows(db), rows(db, "rate_limits")) == before


def test_anonymous_form_post_works_with_no_prior_row(shop, db):
    c = shop.client()
    page = c.get(STEP1)
    assert page.status_code == 200
    token = csrf_from_meta(page.text)
    assert token and rows(db) == 0

    wrong = ("a" if token[0] != "a" else "b") + token[1:]
    r = c.post_form(STEP1, {"first_name": "Ada", "csrf_token": wrong})
    assert r.status_code == 403
    assert rows(db) == 0

    r = c.post_form(STEP1, {"first_name": "Ada", "csrf_token": token})
    assert r.status_code in (302, 303) and r.headers["Location"].endswith("/onboarding/plan/")
    # The row is written now, under the cookie's id and with the token the page showed.
    assert db.rows("SELECT csrf_token FROM sessions WHERE id_hash = ?",
                   id_hash(c.session_cookie)) == [(token,)]
    assert csrf_from_meta(c.get(STEP1).text) == token
    assert rows(db) == 1


def test_a_post_that_stores_nothing_writes_no_row(shop, db):
    c = shop.client()
    r = c.post_form(STEP1, {"first_name": ""})  # refused by validation: nothing to keep
    assert r.status_code == 400
    r = c.post_json(WAITLIST, {"email": "lazy@example.com"})  # the waitlist, not the session
    assert r.status_code == 200, r.text
    assert rows(db) == 0


def assert_fresh_visit(shop, db, cookie_value):
    r = shop.get(STEP1, headers={"Cookie": f"{COOKIE}={cookie_value}"})
    assert r.status_code == 200, (r.status_code, r.text[:300])
    fresh = new_cookie(r)
    assert fresh and fresh != cookie_value
    assert 'value="Ada"' not in r.text
    assert rows(db) == 0


def test_forged_oversized_and_garbage_cookies_are_a_fresh_visit(shop, db):
    real = new_cookie(shop.get(STEP1))
    forged = real[:-1] + ("0" if real[-1] != "0" else "1")  # the tag no longer matches
    for value in [forged, "f" * 43, "Z" * 64, real.upper(), real + "00", "x" * 4000,
                  "%00%ff", "a" * 64]:
        assert_fresh_visit(shop, db, value)


def test_stale_cookies_are_a_fresh_visit(shop, db):
    # A session that stored something, then idled past the timeout: its row goes, and the
    # cookie starts over.
    c = shop.client()
    assert c.post_form(STEP1, {"first_name": "Ada"}).status_code in (302, 303)
    stored = c.session_cookie
    assert rows(db) == 1
    # An id that never got a row, older than a session may live.
    unstored = new_cookie(shop.get(STEP1))
    shop.advance_clock(31 * 60)
    assert_fresh_visit(shop, db, stored)
    shop.advance_clock(8 * 3600)
    assert_fresh_visit(shop, db, unstored)


def test_flood_of_writing_posts_is_capped_per_ip(usher, db):
    limit = 5
    s = usher({"SESSION_NEW_PER_IP_PER_MINUTE": limit,
               "PROMETHEUS_METRICS_API_KEY": METRICS_KEY})
    first = s.client()
    statuses = []
    for i in range(4 * limit):
        c = first if i == 0 else s.client()
        r = c.post_form(STEP1, {"first_name": f"Flood{i}"})
        statuses.append(r.status_code)
        if r.status_code == 429:
            assert int(r.headers["Retry-After"]) >= 1
            assert "text/html" in r.headers["Content-Type"]
            assert "Too many requests" in r.text
    assert all(x in (302, 303) for x in statuses[:limit]), statuses
    assert statuses[limit:] == [429] * (3 * limit)
    assert rows(db) == limit

    # JSON routes answer in their own shape, and a refused request does nothing at all.
    c = s.client()
    r = c.post_json(SEND_CODE, {"email": "flood@example.com"})
    assert r.status_code == 429 and "error" in r.json()
    assert int(r.headers["Retry-After"]) >= 1
    assert rows(db, "verification_codes") == 0
    # Page views still work and still write nothing.
    assert s.get(STEP1).status_code == 200
    # A visitor who already has a row is not a new session: not counted, not refused.
    r = first.post_form(STEP1, {"first_name": "Again"})
    assert r.status_code in (302, 303)
    assert rows(db) == limit

    m = s.get("/metrics", headers={"Authorization": f"Bearer {METRICS_KEY}"}).text
    refused = [ln for ln in m.splitlines() if ln.startswith("usher_sessions_refused_total")]
    assert refused and float(refused[0].split()[-1]) >= 3 * limit

    # The next minute admits new sessions again.
    s.advance_clock(61)
    assert s.client().post_form(STEP1, {"first_name": "Later"}).status_code in (302, 303)
    assert rows(db) == limit + 1


def test_cleanup_totals_are_in_metrics(shop, db):
    db.exec("INSERT INTO cleanup_totals (kind, total) VALUES ('sessions', 42)")
    m = shop.get("/metrics", headers={"Authorization": f"Bearer {METRICS_KEY}"}).text
    assert 'usher_cleanup_deleted_total{kind="sessions"} 42' in m
