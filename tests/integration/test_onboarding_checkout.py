"""Onboarding step 4 (SPEC §2, §3): the checkout page, /onboarding/checkout/validate/ and
/onboarding/checkout/session/, against the Stripe, Keycloak and Mailgun doubles.

Every test runs on SQLite and PostgreSQL with the demo catalog (devstack/catalog.json, whose
prices the Stripe double also knows). Verification codes are read from the Mailgun double's
inbox; what Stripe received is read from the Stripe double's request log.
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

CATALOG = REPO / "devstack" / "catalog.json"
CHECKOUT = "/onboarding/checkout/"
VALIDATE = "/onboarding/checkout/validate/"
SESSION = "/onboarding/checkout/session/"
KC_DOWN = "We couldn't check your details right now. Please try again in a moment."
STRIPE_FAILED = "We couldn't start the payment right now. Please try again in a minute."
USERNAME_TAKEN = "This username is already taken. Please choose another one."
CODE_RE = re.compile(r"(?<!\d)(\d{6})(?!\d)")
EMAIL = "grace@example.com"


# --- fixtures and helpers ------------------------------------------------------------------

def doubles_env(st, kc, mg, ui="hosted"):
    return {
        "STRIPE_API_BASE": st.url, "STRIPE_SECRET_KEY": "sk_test_checkout",
        "STRIPE_PUBLISHABLE_KEY": "pk_test_checkout", "STRIPE_CHECKOUT_UI": ui,
        "KEYCLOAK_SERVER_URL": kc.url, "KEYCLOAK_REALM": kc.realm,
        "KEYCLOAK_ADMIN_CLIENT_ID": "usher-admin", "KEYCLOAK_ADMIN_CLIENT_SECRET": "usher-admin-secret",
        "OIDC_RP_CLIENT_ID": "usher", "OIDC_RP_CLIENT_SECRET": "usher-secret",
        "MAILGUN_API_BASE": mg.url, "MAILGUN_API_KEY": "key-devstack",
        "MAILGUN_DOMAIN": "mg.example.test",
    }


def apply_catalog(run_usher, path=CATALOG):
    rc, out, err = run_usher(["catalog", "apply", str(path)])
    assert rc == 0, (out, err)


@pytest.fixture
def doubles(stripe_double, keycloak_double, mailgun_double):
    stripe_double.load_catalog(CATALOG)
    keycloak_double.add_user("alice", password="alice-pw", email="alice@usher.test",
                             firstName="Alice", lastName="Liddell")
    return stripe_double, keycloak_double, mailgun_double


def serving(server):
    """Yields server, then insists on a clean exit: under ASan+UBSan a leak or a runtime
    error found on the way changes the exit status."""
    yield server
    server.stop()
    assert "Sanitizer" not in server.log and "runtime error" not in server.log, server.log[-4000:]


@pytest.fixture
def shop(usher, run_usher, doubles):
    """A server in hosted mode with the demo catalog."""
    server = usher(doubles_env(*doubles))
    apply_catalog(run_usher)
    yield from serving(server)


@pytest.fixture
def embedded_shop(usher, run_usher, doubles):
    server = usher(doubles_env(*doubles, ui="embedded"))
    apply_catalog(run_usher)
    yield from serving(server)


def onboarding_state(db, client):
    id_hash = hashlib.sha256(client.session_cookie.encode()).hexdigest()
    raw = db.scalar("SELECT data FROM sessions WHERE id_hash = ?", id_hash)
    return json.loads(raw or "{}").get("onboarding", {})


def step1(client, name="Grace"):
    r = client.post_form("/onboarding/", {"first_name": name})
    assert r.status_code == 303, r.text[:300]


def choose_plan(client, plan="nextcloud", cycle="monthly", addons=()):
    fields = [("csrf_token", client.csrf()), ("plan", plan), ("billing_cycle", cycle)]
    fields += [("addons", a) for a in addons]
    r = client.post("/onboarding/plan/", data=fields)
    assert r.status_code == 303, r.text[:500]
    return r


def choose_storage(client, addons=()):
    fields = [("csrf_token", client.csrf())] + [("addons", a) for a in addons]
    r = client.post("/onboarding/addons/", data=fields)
    assert r.status_code == 303 and r.headers["Location"] == CHECKOUT, r.text[:500]


def ordered(client, plan="nextcloud", cycle="monthly", addons=("bitwarden",),
            storage=("storage-100",)):
    step1(client)
    choose_plan(client, plan, cycle, addons)
    choose_storage(client, storage)


def verify_email(client, mg, email=EMAIL):
    r = client.post_json("/onboarding/checkout/send-code/", {"email": email})
    assert r.status_code == 200, r.text
    msgs = requests.get(mg.url + "/_control/messages", params={"to": email.strip().lower()},
                        timeout=10).json()
    code = CODE_RE.search(msgs[-1]["text"]).group(1)
    r = client.post_json("/onboarding/checkout/verify-code/", {"email": email, "code": code})
    assert r.status_code == 200 and r.json() == {"verified": True}, r.text


def ready_client(server, mg, **order):
    c = server.client()
    ordered(c, **order)
    verify_email(c, mg)
    return c


def details(email=EMAIL, last_name="Hopper", username="grace"):
    return {"email": email, "last_name": last_name, "username": username}


def session_requests(st):
    return [r for r in st.requests
            if r["method"] == "POST" and r["path"] == "/v1/checkout/sessions"]


def alert_text(page):
    m = re.search(r'<[^>]+role="alert"[^>]*>(.*?)</', page, re.S)
    return html.unescape(m.group(1)).strip() if m else None


def label_for(page, text):
    """The id a <label> with exactly this text points at, or None."""
    for m in re.finditer(r'<label for="([^"]+)">([^<]*)</label>', page):
        if m.group(2).strip() == text:
            return m.group(1)
    return None


# --- the page ------------------------------------------------------------------------------

def test_checkout_needs_the_earlier_steps(shop):
    c = shop.client()
    r = c.get(CHECKOUT)
    assert r.status_code == 303 and r.headers["Location"] == "/onboarding/"
    step1(c)
    r = c.get(CHECKOUT)
    assert r.status_code == 303 and r.headers["Location"] == "/onboarding/plan/"


def test_steps_lead_to_the_checkout(shop):
    c = shop.client()
    step1(c)
    r = choose_plan(c, "essentials")  # a plan without storage add-ons
    assert r.headers["Location"] == "/onboarding/addons/"
    r = c.get("/onboarding/addons/")
    assert r.status_code == 303 and r.headers["Location"] == CHECKOUT
    r = c.get(CHECKOUT)
    assert r.status_code == 200
    assert 'href="/onboarding/plan/">Back</a>' in r.text  # step 3 skipped itself


def test_page_shows_the_order_from_the_database(shop):
    c = shop.client()
    ordered(c)
    r = c.get(CHECKOUT)
    assert r.status_code == 200, r.text[:500]
    page = r.text
    for name, price in (("Nextcloud", "$10.00 / month"), ("Bitwarden", "$3.00 / month"),
                        ("Extra Storage 100 GB", "$3.00 / month")):
        assert re.search(rf"<td>[^<]*{re.escape(name.split()[0])}[^<]*</td><td>{re.escape(price)}</td>",
                         page), (name, price)
    total = re.search(r'id="order-total">([^<]+)<', page).group(1)
    assert total == "$16.00 / month"
    assert 'href="/onboarding/addons/">Back</a>' in page
    assert not mentions_old_brand(page)


def test_page_follows_the_billing_cycle(shop):
    c = shop.client()
    ordered(c, cycle="annual", addons=(), storage=())
    page = c.get(CHECKOUT).text
    assert re.search(r'id="order-total">\$100\.00 / year<', page)
    assert "$10.00 / month" not in page


def test_page_dom_contract_and_accessibility(shop):
    c = shop.client()
    ordered(c)
    page = c.get(CHECKOUT).text
    for text in ("Last name", "Username", "Email", "Verification code"):
        ident = label_for(page, text)
        assert ident, f"no <label> {text!r}"
        assert re.search(rf'<input id="{ident}"', page), text
    for text in ("Send code", "Verify", "Continue to payment"):
        assert re.search(rf"<button\b[^>]*>{re.escape(text)}</button>", page), text
    assert re.search(r'role="alert"[^>]*aria-live=', page)
    assert 'id="order-total"' in page
    # the CSP forbids inline code: scripts by src only, no style or handler attributes
    assert not re.search(r"\bstyle=|<style|\son[a-z]+=", page)
    for m in re.finditer(r"<script\b[^>]*>", page):
        assert "src=" in m.group(0)
    # hosted mode: Stripe.js is not loaded
    assert "js.stripe.com" not in page
    assert 'data-ui-mode="hosted"' in page


def test_page_loads_stripe_js_only_when_embedded(embedded_shop):
    c = embedded_shop.client()
    ordered(c)
    r = c.get(CHECKOUT)
    assert '<script src="https://js.stripe.com/v3/"></script>' in r.text
    assert 'data-ui-mode="embedded"' in r.text
    assert 'data-publishable-key="pk_test_checkout"' in r.text
    assert "https://js.stripe.com" in r.headers["Content-Security-Policy"]


def test_page_prefills_verified_email_and_details(shop, mailgun_double, db):
    c = shop.client()
    ordered(c)
    page = c.get(CHECKOUT).text
    assert 'data-verified-email=""' in page
    verify_email(c, mailgun_double)
    page = c.get(CHECKOUT).text
    assert f'id="checkout-email" name="email" type="email" autocomplete="email" ' \
           f'maxlength="254" required value="{EMAIL}"' in page
    assert f'data-verified-email="{EMAIL}"' in page  # back from Stripe: no second code
    assert c.post_json(SESSION, details()).status_code == 200
    page = c.get(CHECKOUT).text
    assert 'value="Hopper"' in page and 'value="grace"' in page


def test_page_refuses_an_order_the_catalog_no_longer_sells(shop, db):
    c = shop.client()
    ordered(c)
    db.exec("UPDATE products SET is_active = FALSE WHERE slug = 'bitwarden'")
    r = c.get(CHECKOUT)
    assert r.status_code == 409
    assert "not available" in alert_text(r.text)
    assert 'href="/onboarding/plan/"' in r.text
    assert 'id="checkout-form"' not in r.text


# --- validate ------------------------------------------------------------------------------

def test_validate_accepts_free_details(shop):
    c = shop.client()
    r = c.post_json(VALIDATE, {"email": " Grace@Example.com ", "username": "Grace.H"})
    assert r.status_code == 200, r.text
    assert r.json() == {"valid": True}


@pytest.mark.parametrize("username", ["ab", "-grace", "gr ace", "grâce", "g" * 65, "   "])
def test_validate_refuses_bad_usernames(shop, username):
    r = shop.client().post_json(VALIDATE, {"email": EMAIL, "username": username})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["valid"] is False and set(body["errors"]) == {"username"}


def test_validate_refuses_a_bad_email(shop):
    r = shop.client().post_json(VALIDATE, {"email": "grace@", "username": "grace"})
    body = r.json()
    assert body["valid"] is False and set(body["errors"]) == {"email"}


def test_validate_refuses_details_keycloak_has(shop):
    c = shop.client()
    body = c.post_json(VALIDATE, {"email": "ALICE@usher.test", "username": "Alice"}).json()
    assert body["valid"] is False
    assert body["errors"]["username"] == USERNAME_TAKEN
    assert "already exists" in body["errors"]["email"]
    body = c.post_json(VALIDATE, {"email": "alice@usher.test", "username": "grace"}).json()
    assert body["valid"] is False and set(body["errors"]) == {"email"}


def test_validate_refuses_details_a_local_user_has(shop, db):
    db.exec("INSERT INTO users (username, email, date_joined) VALUES ('localgrace', "
            "'Local@Example.com', 0)")
    body = shop.client().post_json(VALIDATE, {"email": "local@example.com",
                                              "username": "LocalGrace"}).json()
    assert body["valid"] is False and set(body["errors"]) == {"email", "username"}


def test_validate_bad_json_and_missing_fields(shop):
    c = shop.client()
    r = c.post_json(VALIDATE, "{not json")
    assert r.status_code == 400 and r.json() == {"error": "Invalid request"}
    r = c.post_json(VALIDATE, {"email": EMAIL})
    assert r.status_code == 400 and "username" in r.json()["error"]
    r = c.post_json(VALIDATE, {})
    assert r.status_code == 400
    assert "email" in r.json()["error"] and "username" in r.json()["error"]


def test_validate_needs_csrf(shop):
    c = shop.client()
    c.csrf()
    r = c.post_json(VALIDATE, {"email": EMAIL, "username": "grace"}, csrf=False)
    assert r.status_code == 403


@pytest.mark.parametrize("mode", ["503", "refuse"])
def test_validate_when_keycloak_is_down(shop, keycloak_double, mode):
    keycloak_double.down(mode)
    try:
        r = shop.client().post_json(VALIDATE, {"email": EMAIL, "username": "grace"})
    finally:
        keycloak_double.up()
    assert r.status_code == 503, r.text
    assert r.json() == {"error": KC_DOWN}


# --- session: success ----------------------------------------------------------------------

def test_session_hosted_sends_the_order_to_stripe(shop, stripe_double, mailgun_double, db):
    c = ready_client(shop, mailgun_double)
    r = c.post_json(SESSION, details(email=" Grace@Example.com ", username="Grace"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"url"}
    assert body["url"].startswith(stripe_double.url + "/checkout/cs_test_")
    reqs = session_requests(stripe_double)
    assert len(reqs) == 1
    p = reqs[0]["params"]
    assert p["mode"] == "subscription"
    assert p["ui_mode"] == "hosted_page"
    assert p["line_items"] == [
        {"price": "price_demo_nextcloud_monthly", "quantity": "1"},
        {"price": "price_demo_bitwarden_monthly", "quantity": "1"},
        {"price": "price_demo_storage_100_monthly", "quantity": "1"},
    ]
    assert p["customer_email"] == EMAIL
    assert "customer" not in p
    assert p["metadata"] == {"first_name": "Grace", "last_name": "Hopper", "username": "grace"}
    assert p["success_url"] == shop.url + "/onboarding/success/?session_id={CHECKOUT_SESSION_ID}"
    assert p["cancel_url"] == shop.url + "/onboarding/cancel/"
    assert "return_url" not in p
    key = reqs[0]["idempotency_key"]
    assert re.fullmatch(r"usher-checkout-[0-9a-f]{64}", key)
    state = onboarding_state(db, c)
    assert state["last_name"] == "Hopper" and state["username"] == "grace"
    assert state["email"] == EMAIL
    assert state["plan"] == "nextcloud"  # the order stays until payment


def test_session_embedded_returns_the_client_secret(embedded_shop, stripe_double,
                                                    mailgun_double):
    c = ready_client(embedded_shop, mailgun_double, cycle="annual", addons=(), storage=())
    r = c.post_json(SESSION, details())
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"clientSecret"}
    assert body["clientSecret"].startswith("cs_test_")
    p = session_requests(stripe_double)[0]["params"]
    assert p["ui_mode"] == "embedded_page"
    assert p["line_items"] == [{"price": "price_demo_nextcloud_annual", "quantity": "1"}]
    assert p["return_url"] == (embedded_shop.url +
                               "/onboarding/success/?session_id={CHECKOUT_SESSION_ID}")
    assert "success_url" not in p and "cancel_url" not in p


def test_double_click_reuses_the_session_but_a_changed_order_does_not(
        shop, stripe_double, mailgun_double):
    c = ready_client(shop, mailgun_double)
    first = c.post_json(SESSION, details())
    second = c.post_json(SESSION, details())
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    keys = [r["idempotency_key"] for r in session_requests(stripe_double)]
    assert len(keys) == 2 and keys[0] == keys[1]
    with stripe_double.lock:
        assert len(stripe_double.state.sessions) == 1
    # other details: a new key, a new session
    third = c.post_json(SESSION, details(last_name="Hopper-Murray"))
    assert third.status_code == 200 and third.json() != first.json()
    # another order
    choose_plan(c, "essentials")
    c.get("/onboarding/addons/")
    fourth = c.post_json(SESSION, details())
    assert fourth.status_code == 200, fourth.text
    keys = [r["idempotency_key"] for r in session_requests(stripe_double)]
    assert len(set(keys)) == 3
    assert session_requests(stripe_double)[-1]["params"]["line_items"] == [
        {"price": "price_demo_essentials_monthly", "quantity": "1"}]


def test_another_browser_gets_another_key(shop, stripe_double, mailgun_double):
    a = ready_client(shop, mailgun_double)
    shop.advance_clock(61)  # the resend cooldown of the address
    b = ready_client(shop, mailgun_double)
    assert a.post_json(SESSION, details()).status_code == 200
    assert b.post_json(SESSION, details()).status_code == 200
    keys = [r["idempotency_key"] for r in session_requests(stripe_double)]
    assert keys[0] != keys[1]


# --- session: refusals ---------------------------------------------------------------------

def test_session_bad_json_and_missing_fields(shop, mailgun_double, stripe_double):
    c = ready_client(shop, mailgun_double)
    r = c.post_json(SESSION, "[1, 2")
    assert r.status_code == 400 and r.json() == {"error": "Invalid request"}
    r = c.post_json(SESSION, {"email": EMAIL})
    assert r.status_code == 400
    assert "last_name" in r.json()["error"] and "username" in r.json()["error"]
    assert session_requests(stripe_double) == []


def test_session_needs_the_earlier_steps(shop, stripe_double):
    c = shop.client()
    r = c.post_json(SESSION, details())
    assert r.status_code == 400 and r.json()["redirect"] == "/onboarding/"
    step1(c)
    r = c.post_json(SESSION, details())
    assert r.status_code == 400 and r.json()["redirect"] == "/onboarding/plan/"
    assert session_requests(stripe_double) == []


def test_session_needs_a_verified_email(shop, mailgun_double, stripe_double, db):
    c = shop.client()
    ordered(c)
    r = c.post_json(SESSION, details())
    assert r.status_code == 403
    assert r.json() == {"error": "Please verify your email address first."}
    verify_email(c, mailgun_double, "other@example.com")
    r = c.post_json(SESSION, details())
    assert r.status_code == 403 and "not the email address you verified" in r.json()["error"]
    assert session_requests(stripe_double) == []
    assert "username" not in onboarding_state(db, c)


def test_verified_email_does_not_carry_to_another_browser(shop, mailgun_double, stripe_double):
    ready_client(shop, mailgun_double)
    other = shop.client()
    ordered(other)
    assert other.post_json(SESSION, details()).status_code == 403


@pytest.mark.parametrize("field,value", [("last_name", "   "), ("last_name", "x" * 151),
                                         ("username", "no"), ("username", "_grace"),
                                         ("email", "grace.example.com")])
def test_session_refuses_bad_details(shop, mailgun_double, stripe_double, field, value):
    c = ready_client(shop, mailgun_double)
    r = c.post_json(SESSION, {**details(), field: value})
    assert r.status_code == 400, r.text
    assert field in r.json()["errors"]
    assert session_requests(stripe_double) == []


def test_session_refuses_taken_details(shop, mailgun_double, stripe_double, keycloak_double):
    keycloak_double.add_user("someone", email=EMAIL)
    c = ready_client(shop, mailgun_double)
    r = c.post_json(SESSION, details())
    assert r.status_code == 409
    assert set(r.json()["errors"]) == {"email"}
    r = c.post_json(SESSION, details(username="alice"))
    assert set(r.json()["errors"]) == {"email", "username"}
    assert session_requests(stripe_double) == []


def test_session_when_keycloak_is_down(shop, mailgun_double, stripe_double, keycloak_double):
    c = ready_client(shop, mailgun_double)
    keycloak_double.down("503")
    try:
        r = c.post_json(SESSION, details())
    finally:
        keycloak_double.up()
    assert r.status_code == 503 and r.json() == {"error": KC_DOWN}
    assert session_requests(stripe_double) == []


TAMPERING = {
    "inactive product": "UPDATE products SET is_active = FALSE WHERE slug = 'bitwarden'",
    "coming soon": "UPDATE products SET is_coming_soon = TRUE WHERE slug = 'storage-100'",
    "inactive price": "UPDATE product_prices SET is_active = FALSE "
                      "WHERE stripe_price_id = 'price_demo_nextcloud_monthly'",
}


@pytest.mark.parametrize("change", sorted(TAMPERING))
def test_session_refuses_an_order_the_catalog_no_longer_sells(
        shop, mailgun_double, stripe_double, db, change):
    c = ready_client(shop, mailgun_double)
    db.exec(TAMPERING[change])
    r = c.post_json(SESSION, details())
    assert r.status_code == 400, r.text
    assert r.json()["redirect"] == "/onboarding/plan/"
    assert session_requests(stripe_double) == []
    assert "username" not in onboarding_state(db, c)


def set_state(db, client, **changes):
    id_hash = hashlib.sha256(client.session_cookie.encode()).hexdigest()
    data = json.loads(db.scalar("SELECT data FROM sessions WHERE id_hash = ?", id_hash))
    data["onboarding"].update(changes)
    db.exec("UPDATE sessions SET data = ? WHERE id_hash = ?", json.dumps(data), id_hash)


@pytest.mark.parametrize("changes", [
    {"billing_cycle": "weekly"},
    {"storage_addons": ["essentials"]},           # a plan sold as storage
    {"general_addons": ["storage-100"]},          # storage sold as a general add-on
    {"plan": "teams"},                            # coming soon
    {"plan": "essentials"},                       # storage-100 belongs to nextcloud
    {"general_addons": ["bitwarden", "bitwarden"]},
    {"plan": "no-such-plan"},
], ids=["cycle", "plan-as-storage", "storage-as-addon", "coming-soon-plan", "other-plans-storage",
        "duplicate", "unknown-plan"])
def test_session_refuses_a_tampered_session(shop, mailgun_double, stripe_double, db, changes):
    c = ready_client(shop, mailgun_double)
    set_state(db, c, **changes)
    r = c.post_json(SESSION, details())
    assert r.status_code == 400, r.text
    assert r.json()["error"]
    assert session_requests(stripe_double) == []


def test_session_when_stripe_fails(shop, mailgun_double, stripe_double, db):
    c = ready_client(shop, mailgun_double)
    requests.post(stripe_double.url + "/_control/faults",
                  json={"status": 500, "count": -1, "path": "/v1/checkout"}, timeout=10)
    r = c.post_json(SESSION, details())
    assert r.status_code == 502, r.text
    assert r.json() == {"error": STRIPE_FAILED}
    assert "username" not in onboarding_state(db, c)
    requests.post(stripe_double.url + "/_control/faults", json={"clear": True}, timeout=10)
    assert c.post_json(SESSION, details()).status_code == 200


def test_session_when_stripe_refuses_the_order(shop, mailgun_double, stripe_double, db):
    c = ready_client(shop, mailgun_double)
    with stripe_double.lock:
        stripe_double.state.prices["price_demo_bitwarden_monthly"]["active"] = False
    r = c.post_json(SESSION, details())
    assert r.status_code == 502 and r.json() == {"error": STRIPE_FAILED}
    assert "username" not in onboarding_state(db, c)
    # logged once, with Stripe's reason but none of the visitor's details
    lines = [ln for ln in shop.log.splitlines() if "checkout session not created" in ln]
    assert len(lines) == 1 and "inactive" in lines[0]
    assert EMAIL not in lines[0] and "Hopper" not in lines[0]


def test_session_when_stripe_is_not_configured(usher, run_usher, doubles, mailgun_double):
    env = doubles_env(*doubles)
    env["STRIPE_SECRET_KEY"] = None
    server = usher(env)
    apply_catalog(run_usher)
    c = ready_client(server, mailgun_double)
    r = c.post_json(SESSION, details())
    assert r.status_code == 503
    assert r.json() == {"error": "Payments are not set up yet. Please contact support."}
    for _ in serving(server):
        pass


def test_session_names_too_long_for_stripe_metadata(shop, mailgun_double, stripe_double, db):
    """150 characters are a valid last name, but 150 four-byte characters exceed Stripe's
    metadata value limit: refused before Stripe is asked, with a sentence for the visitor."""
    c = ready_client(shop, mailgun_double)
    r = c.post_json(SESSION, details(last_name="\U0001d538" * 150))
    assert r.status_code == 400, r.text
    assert "too long" in r.json()["error"]
    assert session_requests(stripe_double) == []
    assert "username" not in onboarding_state(db, c)
