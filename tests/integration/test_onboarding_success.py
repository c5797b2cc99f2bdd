"""After payment (SPEC §2, §3): /onboarding/success/, its status endpoint, the "resend
password email" endpoint, and /onboarding/cancel/.

Checkout Sessions are created through Usher and paid through the Stripe double (as the
hosted page does); the account, its seats and the sync task are written to the database as
the webhook and the worker would, so each progress state is checked exactly. Every test runs
on SQLite and PostgreSQL.
"""

import hashlib
import html
import json
import re
import sys

import pytest
import requests

from conftest import REPO, mentions_old_brand

sys.path.insert(0, str(REPO))
from devstack.doubles.pytest_plugin import (  # noqa: E402,F401 - fixtures
    keycloak_double, mailgun_double, stripe_double, webhook_receiver)
from test_onboarding_checkout import (  # noqa: E402,F401 - fixtures and helpers
    EMAIL, SESSION, details, doubles, ready_client, shop)

SUCCESS = "/onboarding/success/"
STATUS = "/onboarding/success/status/"
RESEND = "/onboarding/success/resend-password/"
CHECKOUT = "/onboarding/checkout/"
NEUTRAL = ("If an account exists for this address, we've sent it an email with a link to set "
           "your password.")
READY = "Your account is ready"


# --- helpers -------------------------------------------------------------------------------

def session_data(db, client):
    id_hash = hashlib.sha256(client.session_cookie.encode()).hexdigest()
    return json.loads(db.scalar("SELECT data FROM sessions WHERE id_hash = ?", id_hash) or "{}")


def checkout(shop, mg):
    """A client whose order went to Stripe; returns (client, checkout session id)."""
    c = ready_client(shop, mg)
    r = c.post_json(SESSION, details())
    assert r.status_code == 200, r.text
    sid = re.search(r"/checkout/(cs_test_\w+)", r.json()["url"]).group(1)
    return c, sid


@pytest.fixture
def paid(shop, mailgun_double, stripe_double):
    """(client, paid session as Stripe renders it) after a completed hosted checkout."""
    c, sid = checkout(shop, mailgun_double)
    session, _ = stripe_double.pay(sid, deliver=False)
    return c, session


def add_user(db, username="grace", email=EMAIL, keycloak_id="kc-grace", customer=None,
             subscription=None, status="active"):
    db.exec("INSERT INTO users (username, email, date_joined, keycloak_id, stripe_customer_id, "
            "stripe_subscription_id, subscription_status) VALUES (?, ?, 0, ?, ?, ?, ?)",
            username, email, keycloak_id, customer, subscription, status)
    return db.scalar("SELECT id FROM users WHERE username = ?", username)


def product_id(db, slug):
    return db.scalar("SELECT id FROM products WHERE slug = ?", slug)


def add_item(db, user_id, slug, price):
    db.exec("INSERT INTO subscription_items (user_id, product_id, stripe_price_id, quantity) "
            "VALUES (?, ?, ?, 1)", user_id, product_id(db, slug), price)


def assign(db, user_id, slug, instance=None):
    if instance is None:
        db.exec("INSERT INTO instance_assignments (user_id, product_id, instance_id, state, "
                "created_at) VALUES (?, ?, NULL, 'waiting_capacity', 0)",
                user_id, product_id(db, slug))
        return
    iid = db.scalar("SELECT id FROM instances WHERE name = ? AND product_id = ?", instance,
                    product_id(db, slug))
    db.exec("INSERT INTO instance_assignments (user_id, product_id, instance_id, state, "
            "assigned_at, created_at) VALUES (?, ?, ?, 'active', 0, 0)",
            user_id, product_id(db, slug), iid)


def tasks(db, name="send_keycloak_password_reset_email"):
    return [json.loads(a) for (a,) in db.rows("SELECT args FROM tasks WHERE name = ?", name)]


def status(client):
    r = client.get(STATUS)
    assert r.status_code == 200, r.text
    return r.json()


# --- the page ------------------------------------------------------------------------------

def test_success_page_for_a_completed_checkout(shop, paid, db):
    c, session = paid
    assert session["status"] == "complete"
    r = c.get(SUCCESS + "?session_id=" + session["id"])
    assert r.status_code == 200, r.text[:500]
    page = r.text
    assert "Thank you, Grace!" in page
    assert EMAIL in page
    assert re.search(r"<button\b[^>]*>Resend password email</button>", page)
    assert 'role="status"' in page and "aria-live" in page
    assert 'data-state="pending"' in page  # the webhook has not been processed yet
    assert READY not in page
    assert not mentions_old_brand(page)
    data = session_data(db, c)
    assert "onboarding" not in data  # cleared
    signup = data["signup"]
    assert signup["checkout_session_id"] == session["id"]
    assert signup["customer_id"] == session["customer"]
    assert signup["subscription_id"] == session["subscription"]
    assert signup["email"] == EMAIL and signup["first_name"] == "Grace"
    # the onboarding is over: the checkout starts from step 1 again
    r = c.get(CHECKOUT)
    assert r.status_code == 303 and r.headers["Location"] == "/onboarding/"


def test_success_page_in_another_browser(shop, paid):
    _, session = paid
    other = shop.client()
    r = other.get(SUCCESS + "?session_id=" + session["id"])
    assert r.status_code == 200
    assert "Thank you, Grace!" in r.text and EMAIL in r.text
    assert status(other)["state"] == "pending"


def test_open_session_goes_back_to_checkout(shop, mailgun_double, db):
    c, sid = checkout(shop, mailgun_double)
    r = c.get(SUCCESS + "?session_id=" + sid)
    assert r.status_code == 303 and r.headers["Location"] == CHECKOUT
    assert session_data(db, c)["onboarding"]["plan"] == "nextcloud"  # nothing cleared
    assert "signup" not in session_data(db, c)


@pytest.mark.parametrize("query", ["", "?session_id=", "?session_id=cs_test_unknown123",
                                   "?session_id=pi_123", "?session_id=cs_..%2F..%2Fx",
                                   "?session_id=" + "cs_" + "a" * 300])
def test_bad_session_ids_go_back_to_checkout(shop, query):
    r = shop.client().get(SUCCESS + query)
    assert r.status_code == 303 and r.headers["Location"] == CHECKOUT


def test_success_page_when_stripe_is_down(shop, paid, stripe_double):
    c, session = paid
    requests.post(stripe_double.url + "/_control/faults",
                  json={"status": 500, "count": -1, "path": "/v1/checkout"}, timeout=10)
    r = c.get(SUCCESS + "?session_id=" + session["id"])
    assert r.status_code == 502
    assert "couldn't confirm your payment" in html.unescape(r.text)
    requests.post(stripe_double.url + "/_control/faults", json={"clear": True}, timeout=10)
    assert c.get(SUCCESS + "?session_id=" + session["id"]).status_code == 200


# --- progress ------------------------------------------------------------------------------

def test_status_without_a_signup(shop):
    c = shop.client()
    r = c.get(STATUS)
    assert r.status_code == 404 and "error" in r.json()
    c.csrf()
    assert c.get(STATUS).status_code == 404


def test_status_follows_provisioning(shop, paid, db):
    c, session = paid
    assert c.get(SUCCESS + "?session_id=" + session["id"]).status_code == 200
    assert status(c)["state"] == "pending"

    # the webhook created the user, but not in Keycloak yet
    uid = add_user(db, keycloak_id=None, customer=session["customer"],
                   subscription=session["subscription"])
    assert status(c)["state"] == "pending"

    # linked to Keycloak, items stored, the post-checkout sync queued
    db.exec("UPDATE users SET keycloak_id = 'kc-grace' WHERE id = ?", uid)
    add_item(db, uid, "nextcloud", "price_demo_nextcloud_monthly")
    add_item(db, uid, "bitwarden", "price_demo_bitwarden_monthly")
    add_item(db, uid, "storage-100", "price_demo_storage_100_monthly")
    db.exec("INSERT INTO tasks (name, args, state, attempts, max_attempts, run_at, created_at, "
            "updated_at) VALUES ('sync_user_post_checkout', ?, 'queued', 0, 11, 0, 0, 0)",
            json.dumps({"user_id": uid}, separators=(",", ":")))
    body = status(c)
    assert body["state"] == "account_created" and body["ready"] is False
    assert "created" in body["message"]

    # a seat, but the sync is still queued
    assign(db, uid, "nextcloud", "foggy")
    assert status(c)["state"] == "account_created"
    # another user's sync does not count
    db.exec("UPDATE tasks SET args = ? WHERE name = 'sync_user_post_checkout'",
            json.dumps({"user_id": uid + 1000}, separators=(",", ":")))
    body = status(c)
    assert body["state"] == "ready" and body["ready"] is True
    assert body["message"].startswith(READY)
    page = c.get(SUCCESS + "?session_id=" + session["id"]).text
    assert READY in page and 'data-state="ready"' in page
    assert re.search(r'<p id="provisioning-login">\s*<a[^>]*href="/dashboard/"', page)


def test_status_running_sync_and_missing_seat(shop, paid, db):
    c, session = paid
    c.get(SUCCESS + "?session_id=" + session["id"])
    uid = add_user(db, subscription=session["subscription"])
    add_item(db, uid, "nextcloud", "price_demo_nextcloud_monthly")
    add_item(db, uid, "immich", "price_demo_immich_monthly")
    assign(db, uid, "nextcloud", "foggy")
    assert status(c)["state"] == "account_created"  # immich holds no seat
    assign(db, uid, "immich", "main")
    assert status(c)["state"] == "ready"
    db.exec("INSERT INTO tasks (name, args, state, attempts, max_attempts, run_at, created_at, "
            "updated_at, worker, lease_until) VALUES ('sync_user_post_checkout', ?, 'running', "
            "1, 11, 0, 0, 0, 'w1', 9999999999)", json.dumps({"user_id": uid}).replace(" ", ""))
    assert status(c)["state"] == "account_created"
    db.exec("UPDATE tasks SET state = 'done'")
    assert status(c)["state"] == "ready"
    db.exec("UPDATE instances SET is_active = FALSE WHERE name = 'main'")
    assert status(c)["state"] == "account_created"


def test_status_waiting_for_capacity(shop, paid, db):
    c, session = paid
    c.get(SUCCESS + "?session_id=" + session["id"])
    uid = add_user(db, customer=session["customer"])  # found by the customer id too
    add_item(db, uid, "nextcloud", "price_demo_nextcloud_monthly")
    assign(db, uid, "nextcloud")
    body = status(c)
    assert body["state"] == "waiting_capacity" and body["ready"] is False
    assert "as soon as a seat frees up" in body["message"]
    page = c.get(SUCCESS + "?session_id=" + session["id"]).text
    assert "as soon as a seat frees up" in page and READY not in page


def test_status_until_the_subscription_is_in_effect(shop, paid, db):
    c, session = paid
    c.get(SUCCESS + "?session_id=" + session["id"])
    uid = add_user(db, subscription=session["subscription"], status="incomplete")
    add_item(db, uid, "bitwarden", "price_demo_bitwarden_monthly")  # needs no instance
    assert status(c)["state"] == "account_created"
    db.exec("UPDATE users SET subscription_status = 'active' WHERE id = ?", uid)
    assert status(c)["state"] == "ready"


# --- resend password email -----------------------------------------------------------------

def test_resend_is_neutral_and_enqueues_only_for_a_known_user(shop, db):
    add_user(db, "known", "known@example.com", keycloak_id="kc-known")
    add_user(db, "unlinked", "unlinked@example.com", keycloak_id=None)
    answers = []
    for email in ("nobody@example.com", "unlinked@example.com", " Known@Example.com "):
        r = shop.client().post_json(RESEND, {"email": email})
        assert r.status_code == 200, r.text
        answers.append(r.json())
    assert answers[0] == answers[1] == answers[2] == {"sent": True, "message": NEUTRAL}
    assert tasks(db) == [{"keycloak_id": "kc-known"}]


def test_resend_once_a_minute_per_session(shop, db):
    add_user(db, "known", "known@example.com", keycloak_id="kc-known")
    c = shop.client()
    assert c.post_json(RESEND, {"email": "nobody@example.com"}).status_code == 200
    r = c.post_json(RESEND, {"email": "known@example.com"})
    assert r.status_code == 429
    assert "seconds" in r.json()["error"] and int(r.headers["Retry-After"]) > 0
    assert tasks(db) == []
    shop.advance_clock(61)
    assert c.post_json(RESEND, {"email": "known@example.com"}).status_code == 200
    assert tasks(db) == [{"keycloak_id": "kc-known"}]


def test_resend_once_a_minute_per_address(shop, db):
    """Fresh sessions cannot turn the endpoint into a mail cannon: the answer stays neutral,
    but a second email to the same address within the minute is not enqueued."""
    add_user(db, "known", "known@example.com", keycloak_id="kc-known")
    for _ in range(3):
        r = shop.client().post_json(RESEND, {"email": "known@example.com"})
        assert r.status_code == 200 and r.json()["sent"] is True
    assert len(tasks(db)) == 1


def test_resend_bad_requests(shop, db):
    c = shop.client()
    r = c.post_json(RESEND, "nope")
    assert r.status_code == 400 and r.json() == {"error": "Invalid request"}
    r = c.post_json(RESEND, {})
    assert r.status_code == 400 and "email" in r.json()["error"]
    r = c.post_json(RESEND, {"email": "not-an-email"})
    assert r.status_code == 400
    c.csrf()
    r = c.post_json(RESEND, {"email": EMAIL}, csrf=False)
    assert r.status_code == 403
    assert tasks(db) == []


# --- cancel ----------------------------------------------------------------------------------

def test_cancel_page_leads_back(shop, mailgun_double):
    c, _ = checkout(shop, mailgun_double)
    r = c.get("/onboarding/cancel/")
    assert r.status_code == 200
    assert "Checkout canceled" in r.text and "nothing was charged" in r.text
    assert 'href="/onboarding/checkout/"' in r.text and 'href="/onboarding/plan/"' in r.text
    assert c.get(CHECKOUT).status_code == 200  # the order is still there


def test_cancel_page_without_an_order(shop):
    r = shop.client().get("/onboarding/cancel/")
    assert r.status_code == 200
    assert 'href="/onboarding/"' in r.text and 'href="/onboarding/checkout/"' not in r.text
