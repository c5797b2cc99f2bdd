"""The dashboard menu's actions (SPEC §6) against the doubles: change password (Keycloak's
UPDATE_PASSWORD email, one per minute per user) and manage subscription (Billing Portal,
with a clear message when the Stripe account has no portal configuration)."""

import re
import sys

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO))
from devstack.doubles.pytest_plugin import (  # noqa: E402,F401 - fixtures
    keycloak_double, stripe_double, webhook_receiver)
from test_oidc import Login, kc, oidc_env  # noqa: E402,F401 - fixtures reused

sqlite_only = pytest.mark.backend("sqlite")


@pytest.fixture
def app(usher, kc, stripe_double):
    return usher(oidc_env(kc, KEYCLOAK_ADMIN_CLIENT_ID="usher-admin",
                          KEYCLOAK_ADMIN_CLIENT_SECRET="usher-admin-secret",
                          STRIPE_API_BASE=stripe_double.url,
                          STRIPE_SECRET_KEY="sk_test_account_actions"))


def logged_in(app, username="alice"):
    login = Login(app)
    assert login.run(username).status_code == 303
    return login.client


def test_actions_need_login_and_csrf(app):
    anon = app.client()
    anon.get("/onboarding/")
    for path in ("/dashboard/reset-password/", "/dashboard/billing/"):
        assert anon.post_form(path, {}).status_code == 401
    client = logged_in(app)
    r = client.post(path, data={})  # no CSRF token
    assert r.status_code == 403


def test_password_email_is_sent_once_a_minute(app, kc):
    client = logged_in(app)
    r = client.post_form("/dashboard/reset-password/", {})
    assert r.status_code == 200, r.text[:300]
    assert "sent you an email" in r.text
    emails = kc.emails
    assert len(emails) == 1 and emails[0]["actions"] == ["UPDATE_PASSWORD"]
    again = client.post_form("/dashboard/reset-password/", {})
    assert again.status_code == 429 and "already sent" in again.text
    assert len(kc.emails) == 1
    app.advance_clock(61)
    assert client.post_form("/dashboard/reset-password/", {}).status_code == 200
    assert len(kc.emails) == 2


def test_billing_portal_redirects_to_stripe(app, db, stripe_double):
    client = logged_in(app)
    r = client.post_form("/dashboard/billing/", {})
    assert r.status_code == 400 and "no subscription to manage" in r.text
    customer = stripe_double.add_customer(email="alice@usher.test")
    db.exec("UPDATE users SET stripe_customer_id = ? WHERE username = 'alice'", customer["id"])
    r = client.post_form("/dashboard/billing/", {})
    assert r.status_code == 303, r.text[:300]
    assert r.headers["Location"].startswith(stripe_double.url + "/portal/")
    assert "form-action" in r.headers["Content-Security-Policy"]
    assert stripe_double.url in r.headers["Content-Security-Policy"]


def test_billing_portal_without_configuration_says_so(app, db, stripe_double):
    client = logged_in(app)
    customer = stripe_double.add_customer(email="alice@usher.test")
    db.exec("UPDATE users SET stripe_customer_id = ? WHERE username = 'alice'", customer["id"])
    stripe_double.config["portal_configured"] = False
    r = client.post_form("/dashboard/billing/", {})
    assert r.status_code == 503
    assert "not set up yet" in r.text
    assert "Customer portal" in app.log  # the operator is told what to do


def test_change_password_asks_first(app, kc):
    """GET /dashboard/reset-password/ (the menu's link) only asks; the POST sends the mail."""
    client = logged_in(app)
    page = client.get("/dashboard/reset-password/")
    assert page.status_code == 200
    assert "Change your password?" in page.text
    assert re.search(r'<form method="post" action="/dashboard/reset-password/"', page.text)
    assert 'name="csrf_token"' in page.text
    assert 'href="/dashboard/reset-password/"' in client.get("/dashboard/").text
    assert client.get("/dashboard/reset-password/").status_code == 200  # no rate limit used
    assert len(kc.emails) == 0
    r = client.post_form("/dashboard/reset-password/", {})
    assert r.status_code == 200 and "We sent you an email" in r.text
    assert client.post("/dashboard/reset-password/", data={}).status_code == 403  # no CSRF
