"""Step 4 as the browser uses it (issue 18): typed fields kept in the session and pre-filled,
the verified email locked until "change" drops the verification, attempts left and the
resend countdown in the JSON answers, and no session row for a visitor with nothing stored.

Runs on SQLite and PostgreSQL with the demo catalog and the doubles, like
test_onboarding_checkout.py, whose helpers it reuses.
"""

import requests

from test_onboarding_checkout import (  # noqa: F401 - fixtures
    CHECKOUT, CODE_RE, EMAIL, SESSION, details, doubles, keycloak_double, mailgun_double,
    onboarding_state, ordered, shop, stripe_double, verify_email, webhook_receiver)

FIELDS = "/onboarding/checkout/fields/"
CHANGE = "/onboarding/checkout/change-email/"
SEND = "/onboarding/checkout/send-code/"
VERIFY = "/onboarding/checkout/verify-code/"
NOT_VERIFIED = "Please verify your email address first."


def rows(db):
    return db.scalar("SELECT count(*) FROM sessions")


def email_input(page):
    start = page.index('id="checkout-email"')
    return page[page.rindex("<input", 0, start):page.index(">", start) + 1]


def test_typed_fields_are_kept_and_prefilled(shop, db):
    c = shop.client()
    ordered(c)
    r = c.post_json(FIELDS, {"last_name": "  Hopper ", "username": "grace.h",
                             "email": "Grace@Example.com", "code": "123456"})
    assert r.status_code == 200 and r.json() == {"saved": True}, r.text
    state = onboarding_state(db, c)
    assert (state["last_name"], state["username"], state["email"]) == (
        "Hopper", "grace.h", "Grace@Example.com")
    assert "code" not in state  # only the three fields, never the code
    page = c.get(CHECKOUT).text  # a reload, or Back from Stripe
    assert 'value="Hopper"' in page and 'value="grace.h"' in page
    assert 'value="Grace@Example.com"' in email_input(page)
    assert "readonly" not in email_input(page)
    # One field at a time (on blur) leaves the others alone.
    assert c.post_json(FIELDS, {"username": "grace"}).json() == {"saved": True}
    state = onboarding_state(db, c)
    assert (state["last_name"], state["username"]) == ("Hopper", "grace")


def test_kept_fields_are_escaped(shop):
    c = shop.client()
    ordered(c)
    assert c.post_json(FIELDS, {"last_name": '"><script>x</script>'}).status_code == 200
    page = c.get(CHECKOUT).text
    assert "<script>x</script>" not in page
    assert "&quot;&gt;&lt;script&gt;" in page


def test_fields_refuses_bad_values(shop, db):
    c = shop.client()
    ordered(c)
    for body in ({"last_name": "x" * 151}, {"username": "u" * 65}, {"email": "e" * 255},
                 {"last_name": 5}):
        r = c.post_json(FIELDS, body)
        assert r.status_code == 400 and r.json() == {"error": "Invalid request"}, body
    assert c.post_json(FIELDS, "not json").status_code == 400
    assert "last_name" not in onboarding_state(db, c)


def test_fields_needs_csrf_and_an_onboarding(shop, db):
    c = shop.client()
    c.csrf()
    r = c.post_json(FIELDS, {"last_name": "Hopper"}, csrf=False)
    assert r.status_code == 403
    # A visitor with nothing in progress: nothing to keep, no row written.
    r = c.post_json(FIELDS, {"last_name": "Hopper"})
    assert r.status_code == 200 and r.json() == {"saved": False}
    assert rows(db) == 0


def test_plain_get_writes_no_session_row(shop, db):
    c = shop.client()
    r = c.get(CHECKOUT)
    assert r.status_code in (302, 303) and r.headers["Location"] == "/onboarding/"
    c.get(CHECKOUT)
    assert rows(db) == 0


def test_verified_email_is_locked_and_change_unlocks_it(shop, mailgun_double, stripe_double, db):
    c = shop.client()
    ordered(c)
    verify_email(c, mailgun_double)
    page = c.get(CHECKOUT).text
    assert "readonly" in email_input(page)
    assert 'id="checkout-change-email"' in page

    # Without the CSRF token (or with a wrong one) nothing changes.
    assert c.post_json(CHANGE, {}, csrf=False).status_code == 403
    assert c.post_json(CHANGE, {}, headers={"X-CSRF-Token": "0" * 64}).status_code == 403
    assert onboarding_state(db, c)["email_verified"] == EMAIL

    r = c.post_json(CHANGE, {})
    assert r.status_code == 200 and r.json() == {"verified": False}
    state = onboarding_state(db, c)
    assert "email_verified" not in state and state["email"] == EMAIL
    page = c.get(CHECKOUT).text
    assert "readonly" not in email_input(page) and f'value="{EMAIL}"' in email_input(page)
    assert 'data-verified-email=""' in page
    r = c.post_json(SESSION, details())
    assert r.status_code in (400, 403) and NOT_VERIFIED in r.text
    # Verifying again works as the first time.
    shop.advance_clock(61)
    verify_email(c, mailgun_double)
    assert c.post_json(SESSION, details()).status_code == 200


def test_send_code_says_when_to_resend(shop, mailgun_double):
    c = shop.client()
    ordered(c)
    r = c.post_json(SEND, {"email": EMAIL})
    assert r.status_code == 200 and r.json() == {"sent": True, "resend_after": 60}
    shop.advance_clock(20)
    r = c.post_json(SEND, {"email": EMAIL})
    assert r.status_code == 429
    assert r.json()["retry_after"] == int(r.headers["Retry-After"])
    assert 35 <= r.json()["retry_after"] <= 40  # the cooldown's rest, real seconds passing


def test_wrong_code_reports_attempts_left(shop, mailgun_double, db):
    c = shop.client()
    ordered(c)
    assert c.post_json(SEND, {"email": EMAIL}).status_code == 200
    msgs = requests.get(mailgun_double.url + "/_control/messages", params={"to": EMAIL},
                        timeout=10).json()
    code = CODE_RE.search(msgs[-1]["text"]).group(1)
    wrong = f"{(int(code) + 1) % 1000000:06d}"
    lefts = [c.post_json(VERIFY, {"email": EMAIL, "code": wrong}).json()["attempts_left"]
             for _ in range(5)]
    assert lefts == [4, 3, 2, 1, 0]
    r = c.post_json(VERIFY, {"email": EMAIL, "code": code})
    assert r.status_code == 400
    assert r.json() == {"verified": False, "attempts_left": 0,
                        "error": "Too many attempts. Please request a new code."}
    assert "email_verified" not in onboarding_state(db, c)
