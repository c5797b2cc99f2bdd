"""Server-side sessions and CSRF (SPEC §6).

The session cookie is Secure, so `requests` would not send it back over plain HTTP: the
conftest Client keeps it and sends an explicit Cookie header.
"""

from urllib.parse import urlparse

import pytest

from conftest import csrf_from_inputs, csrf_from_meta, parse_set_cookie, set_cookie_headers

COOKIE = "__Host-usher_session"
DEBUG_COOKIE = "usher_session"
WAITLIST = "/onboarding/waitlist/submit/"
WEBHOOK = "/onboarding/webhook/"


def session_set_cookie(resp, name):
    for raw in set_cookie_headers(resp):
        n, v, attrs = parse_set_cookie(raw)
        if n == name:
            return v, attrs, raw
    raise AssertionError(f"no Set-Cookie {name} in {set_cookie_headers(resp)}")


def location_path(resp):
    return urlparse(resp.headers.get("Location", "")).path


def assert_redirect(resp, path):
    assert resp.status_code in (302, 303), (resp.status_code, resp.text[:300])
    assert location_path(resp) == path, resp.headers.get("Location")


def test_session_cookie_attributes(server):
    r = server.get("/onboarding/")
    assert r.status_code == 200
    value, attrs, raw = session_set_cookie(r, COOKIE)
    assert len(value) >= 32, raw
    assert attrs.get("secure") is True, raw
    assert attrs.get("httponly") is True, raw
    assert str(attrs.get("samesite", "")).lower() == "lax", raw
    assert attrs.get("path") == "/", raw
    assert "domain" not in attrs, raw
    assert all(not h.startswith(DEBUG_COOKIE + "=") for h in set_cookie_headers(r))


def test_debug_cookie_is_not_secure(usher):
    s = usher({"DEBUG": "true"})
    r = s.get("/onboarding/")
    value, attrs, raw = session_set_cookie(r, DEBUG_COOKIE)
    assert value
    assert "secure" not in attrs, raw
    assert attrs.get("httponly") is True, raw
    assert str(attrs.get("samesite", "")).lower() == "lax", raw
    assert attrs.get("path") == "/", raw
    assert all(not h.startswith(COOKIE + "=") for h in set_cookie_headers(r))


def test_forged_session_id_is_not_adopted(server):
    forged = "f" * 43
    r = server.get("/onboarding/", headers={"Cookie": f"{COOKIE}={forged}"})
    assert r.status_code == 200
    value, _, _ = session_set_cookie(r, COOKIE)
    assert value != forged


def test_session_persists_across_requests(client):
    client.csrf()
    first = client.session_cookie
    assert first
    r = client.get("/onboarding/")
    assert r.status_code == 200
    assert client.session_cookie == first


def test_csrf_token_in_meta_and_forms(client):
    r = client.get("/onboarding/")
    assert r.status_code == 200
    meta = csrf_from_meta(r.text)
    assert meta and len(meta) >= 16
    inputs = csrf_from_inputs(r.text)
    assert inputs, "no <input name=csrf_token> on /onboarding/"
    assert all(len(v) >= 16 for v in inputs)


def test_step_one_with_token_redirects_to_plan(client):
    r = client.post_form("/onboarding/", {"first_name": "Ada"})
    assert_redirect(r, "/onboarding/plan/")


def test_token_from_a_hidden_input_works(client):
    r = client.get("/onboarding/")
    token = csrf_from_inputs(r.text)[0]
    r = client.post_form("/onboarding/", {"first_name": "Ada", "csrf_token": token})
    assert_redirect(r, "/onboarding/plan/")


def test_post_without_token_is_403(client):
    client.csrf()
    r = client.post_form("/onboarding/", {"first_name": "Ada"}, csrf=False)
    assert r.status_code == 403


def test_post_with_wrong_token_is_403(client):
    token = client.csrf()
    wrong = ("A" if token[0] != "A" else "B") + token[1:]
    r = client.post_form("/onboarding/", {"first_name": "Ada", "csrf_token": wrong})
    assert r.status_code == 403
    r = client.post_form("/onboarding/", {"first_name": "Ada", "csrf_token": ""})
    assert r.status_code == 403


def test_token_of_another_session_is_403(server):
    alice, mallory = server.client(), server.client()
    alice.csrf()
    r = alice.post_form("/onboarding/", {"first_name": "Ada", "csrf_token": mallory.csrf()})
    assert r.status_code == 403


def test_token_without_session_cookie_is_403(server):
    c = server.client()
    token = c.csrf()
    c.cookies.clear()
    r = c.post_form("/onboarding/", {"first_name": "Ada", "csrf_token": token})
    assert r.status_code == 403


def test_cross_site_fetch_is_403(client):
    r = client.post_form("/onboarding/", {"first_name": "Ada"},
                         headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403


def test_foreign_origin_is_403(client):
    r = client.post_form("/onboarding/", {"first_name": "Ada"},
                         headers={"Origin": "https://evil.example"})
    assert r.status_code == 403


def test_same_origin_is_accepted(server, client):
    r = client.post_form("/onboarding/", {"first_name": "Ada"},
                         headers={"Origin": server.url, "Sec-Fetch-Site": "same-origin"})
    assert_redirect(r, "/onboarding/plan/")


def test_json_post_needs_the_header_token(client):
    r = client.post_json(WAITLIST, {"email": "csrf@example.com"}, csrf=False)
    assert r.status_code == 403
    r = client.post_json(WAITLIST, {"email": "csrf@example.com"},
                         headers={"X-CSRF-Token": "nope"}, csrf=False)
    assert r.status_code == 403
    r = client.post_json(WAITLIST, {"email": "csrf@example.com"})
    assert r.status_code == 200, r.text


def test_webhook_is_exempt_from_csrf(server):
    r = server.request("POST", WEBHOOK, data='{"id":"evt_1"}',
                       headers={"Content-Type": "application/json"})
    assert r.status_code != 403
    assert r.status_code in (400, 500), r.status_code  # no secret configured, no signature


def test_webhook_with_secret_and_no_signature_is_400(usher):
    s = usher({"STRIPE_WEBHOOK_SECRET": "whsec_test_0123456789"})
    r = s.request("POST", WEBHOOK, data='{"id":"evt_1"}',
                  headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    r = s.request("POST", WEBHOOK, data='{"id":"evt_1"}',
                  headers={"Content-Type": "application/json",
                           "Stripe-Signature": "t=1,v1=deadbeef"})
    assert r.status_code == 400


def test_cookie_value_is_not_stored_in_clear(client, db):
    r = client.post_form("/onboarding/", {"first_name": "Ada"})
    assert_redirect(r, "/onboarding/plan/")
    cookie = client.session_cookie
    rows = db.dict_rows("SELECT * FROM sessions")
    assert rows, "no row in sessions after a session was used"
    needles = {cookie} | {p for p in cookie.split(".") if len(p) >= 16}
    for row in rows:
        for col, val in row.items():
            text = val.hex() if isinstance(val, (bytes, memoryview)) else str(val)
            raw = bytes(val).decode("latin-1") if isinstance(val, (bytes, memoryview)) else ""
            for n in needles:
                assert n not in text and n not in raw, f"cookie value stored in sessions.{col}"


def _remembers(client, name):
    """Step 1 shows the stored first name while the session lives."""
    page = client.get("/onboarding/")
    assert page.status_code == 200
    return f'value="{name}"' in page.text


def test_idle_timeout(server, client):
    name = "Adalinde"
    assert_redirect(client.post_form("/onboarding/", {"first_name": name}), "/onboarding/plan/")
    assert _remembers(client, name)

    server.advance_clock(29 * 60)
    assert _remembers(client, name), "session expired before the idle timeout"

    server.advance_clock(31 * 60)
    assert not _remembers(client, name), "session outlived the 30-minute idle timeout"


@pytest.mark.backend("sqlite")
def test_absolute_timeout(server, client):
    """Touched every 29 minutes, a session lives until 8 h after its creation, not longer."""
    name = "Adalinde"
    assert_redirect(client.post_form("/onboarding/", {"first_name": name}), "/onboarding/plan/")
    elapsed = 0
    for step in [29 * 60] * 16 + [15 * 60]:  # up to 479 minutes
        server.advance_clock(step)
        elapsed += step
        assert _remembers(client, name), f"session gone after {elapsed // 60} min"
    server.advance_clock(2 * 60)  # 481 minutes
    assert not _remembers(client, name), "session outlived the 8-hour absolute timeout"


def test_pages_of_a_session_are_kept_by_no_cache(server, client):
    """A first visit hands out a cookie; later pages show what the visitor typed: neither may
    be stored by a browser or proxy cache."""
    r = client.get("/onboarding/")
    assert r.headers.get("Cache-Control") == "no-store", dict(r.headers)
    assert client.post_form("/onboarding/", {"first_name": "Ada"}).status_code == 303
    r = client.get("/onboarding/plan/")
    assert r.status_code == 200 and "Ada" in r.text
    assert r.headers.get("Cache-Control") == "no-store", dict(r.headers)

