"""The dashboard and account pages (SPEC §6) behind a real login through the Keycloak
double: anonymous redirects, each card rule, admin versus user, banners, and a disabled
user's old cookie."""

import re
import sys

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO))
from devstack.doubles.pytest_plugin import keycloak_double  # noqa: E402,F401 - fixture
from test_oidc import Login, app, kc  # noqa: E402,F401 - fixtures reused

NOW = 1790000000


def seed_catalog(db):
    db.exec(
        "INSERT INTO products (id, name, slug, page, provisioner, requires_instance, is_addon, "
        "standalone_url, description, created_at, updated_at) VALUES "
        "(1, 'Cloud', 'cloud', 'plan', 'group', true, false, NULL, 'Files and calendars', 1, 1), "
        "(2, 'Vault', 'vault', 'addon', 'standalone', false, false, "
        "'https://vault.example.test/', 'Passwords', 1, 1)")
    db.exec(
        "INSERT INTO instances (id, product_id, name, base_url, allocated_seats, created_at, "
        "updated_at) VALUES (1, 1, 'foggy', 'https://foggy.example.test', 1, 1, 1), "
        "(2, 1, 'cirrus', 'https://cirrus.example.test', 0, 1, 1)")


def subscribe(db, username, status="active"):
    user_id = db.scalar("SELECT id FROM users WHERE username = ?", username)
    db.exec("UPDATE users SET subscription_status = ? WHERE id = ?", status, user_id)
    db.exec("INSERT INTO subscription_items (user_id, product_id, stripe_price_id, quantity, "
               "current_period_end) VALUES (?, 1, 'price_cloud', 1, 1798761600), "
               "(?, 2, 'price_vault', 1, 1798761600)", user_id, user_id)
    db.exec("INSERT INTO instance_assignments (user_id, product_id, instance_id, state, "
               "assigned_at, created_at) VALUES (?, 1, 1, 'active', 1, 1)", user_id)
    return user_id


def test_anonymous_is_sent_to_login(app):
    for path in ("/dashboard/", "/dashboard/account/"):
        r = app.client().get(path)
        assert r.status_code == 303
        assert r.headers["Location"] == "/oidc/authenticate/?next=" + path


def test_new_user_sees_the_empty_state(app):
    login = Login(app)
    assert login.run("alice").status_code == 303
    page = login.client.get("/dashboard/")
    assert page.status_code == 200
    assert "No plan yet" in page.text and 'href="/onboarding/">Choose a plan' in page.text
    assert "/admin/" not in page.text


def test_subscriber_sees_assigned_instance_and_standalone_product(app, db):
    login = Login(app)
    assert login.run("alice").status_code == 303
    seed_catalog(db)
    subscribe(db, "alice")
    page = login.client.get("/dashboard/")
    assert page.status_code == 200
    assert 'href="https://foggy.example.test"' in page.text
    assert "Cloud" in page.text and "Files and calendars" in page.text
    assert "Foggy" not in page.text  # the instance's internal name is not for customers
    assert "cirrus.example.test" not in page.text  # not hers
    assert 'href="https://vault.example.test/"' in page.text
    assert "vault.example.test" in page.text
    account = login.client.get("/dashboard/account/")
    assert account.status_code == 200
    assert "alice@usher.test" in account.text and "Alice" in account.text
    assert "1 January 2027" in account.text  # the renewal date from the cached period end


def test_service_is_being_set_up_until_seat_and_groups_exist(app, db):
    """No "Open" link before the sync has granted the seat and every group of its instance:
    the service would refuse the login."""
    login = Login(app)
    assert login.run("alice").status_code == 303
    seed_catalog(db)
    user_id = subscribe(db, "alice")
    db.exec("DELETE FROM instance_assignments WHERE user_id = ?", user_id)
    page = login.client.get("/dashboard/")
    assert page.status_code == 200
    assert page.text.count("Being set up") == 1
    assert "foggy.example.test" not in page.text
    assert 'href="https://vault.example.test/"' in page.text  # standalone: nothing to grant

    # A seat, but the instance's group not granted yet: still being set up.
    db.exec("INSERT INTO groups (id, name) VALUES (1, 'cloud-foggy')")
    db.exec("INSERT INTO instance_groups (instance_id, group_id) VALUES (1, 1)")
    db.exec("INSERT INTO instance_assignments (user_id, product_id, instance_id, state, "
            "assigned_at, created_at) VALUES (?, 1, 1, 'active', 1, 1)", user_id)
    page = login.client.get("/dashboard/")
    assert page.text.count("Being set up") == 1
    assert 'href="https://foggy.example.test"' not in page.text

    db.exec("INSERT INTO user_groups (user_id, group_id) VALUES (?, 1)", user_id)
    page = login.client.get("/dashboard/")
    assert "Being set up" not in page.text
    assert 'href="https://foggy.example.test"' in page.text


def test_admin_sees_every_active_instance_and_the_admin_card(app, db):
    seed_catalog(db)
    login = Login(app)
    assert login.run("bob").status_code == 303
    page = login.client.get("/dashboard/")
    assert "foggy.example.test" in page.text and "cirrus.example.test" in page.text
    assert 'href="/admin/"' in page.text


@pytest.mark.parametrize("status,words", [("past_due", "payment failed"),
                                          ("canceled", "restore your account")])
def test_banners(app, db, status, words):
    seed_catalog(db)
    login = Login(app)
    assert login.run("alice").status_code == 303
    subscribe(db, "alice", status)
    page = login.client.get("/dashboard/")
    assert words in page.text


def test_deleted_sessions_make_the_old_cookie_anonymous(app, db):
    login = Login(app)
    assert login.run("alice").status_code == 303
    assert login.client.get("/dashboard/").status_code == 200
    user_id = db.scalar("SELECT id FROM users WHERE username = 'alice'")
    db.exec("DELETE FROM sessions WHERE user_id = ?", user_id)  # what disabling a user does
    r = login.client.get("/dashboard/")
    assert r.status_code == 303 and r.headers["Location"].startswith("/oidc/authenticate/")


# --- issue 18: customer-facing names, money and status words, add-ons, menu ----------------

def seed_prices(db):
    db.exec("INSERT INTO product_prices (product_id, stripe_price_id, billing_period, amount, "
            "currency, created_at, updated_at) VALUES (1, 'price_cloud', 'monthly', 1000, 'USD', "
            "1, 1), (2, 'price_vault', 'monthly', 300, 'USD', 1, 1)")


def logged_in_subscriber(app, db, status="active", customer="cus_1"):
    seed_catalog(db)
    seed_prices(db)
    login = Login(app)
    assert login.run("alice").status_code == 303
    user_id = subscribe(db, "alice", status)
    if customer:
        db.exec("UPDATE users SET stripe_customer_id = ? WHERE id = ?", customer, user_id)
    return login.client, user_id


def test_account_page_speaks_the_customers_language(app, db):
    client, user_id = logged_in_subscriber(app, db, status="past_due")
    db.exec("UPDATE subscription_items SET quantity = 2 WHERE product_id = 2")
    page = client.get("/dashboard/account/").text
    assert "Your plan" in page and "Subscription items" not in page
    assert "$10.00 / month" in page
    assert "Vault × 2" in page and "$6.00 / month" in page
    assert re.search(r'id="account-total">\$16\.00 / month<', page)
    assert "1 January 2027" in page and "2027-01-01" not in page
    assert "Payment overdue" in page
    for word in ("past_due", "USD", "monthly", "Subscription items", "Stripe"):
        assert word not in page, word


@pytest.mark.parametrize("status,words", [("active", "Active"), ("trialing", "Free trial"),
                                          ("canceled", "Canceled"), ("unpaid", "Unpaid")])
def test_account_status_words(app, db, status, words):
    client, _ = logged_in_subscriber(app, db, status=status)
    page = client.get("/dashboard/account/").text
    assert f"<dd>{words}</dd>" in page


def test_paid_addon_with_its_own_address_gets_a_card(app, db):
    client, user_id = logged_in_subscriber(app, db)
    db.exec("INSERT INTO products (id, name, slug, page, provisioner, requires_instance, "
            "is_addon, standalone_url, dashboard_name, description, created_at, updated_at) "
            "VALUES (3, 'office-addon', 'office', 'addon', 'standalone', false, true, "
            "'https://office.example.test/', 'Office', 'Documents in the browser', 1, 1)")
    db.exec("INSERT INTO subscription_items (user_id, product_id, stripe_price_id, quantity) "
            "VALUES (?, 3, 'price_office', 1)", user_id)
    page = client.get("/dashboard/").text
    assert 'href="https://office.example.test/"' in page
    assert "Office" in page and "Documents in the browser" in page
    assert "office-addon" not in page


def test_user_without_a_subscription_is_offered_a_plan(app):
    login = Login(app)
    assert login.run("alice").status_code == 303
    page = login.client.get("/dashboard/").text
    assert re.search(r'<a class="button primary" href="/onboarding/">Choose a plan</a>', page)
    assert "Manage subscription" not in page


def test_manage_subscription_only_with_a_stripe_customer(app, db):
    client, user_id = logged_in_subscriber(app, db, customer=None)
    for path in ("/dashboard/", "/dashboard/account/"):
        assert "Manage subscription" not in client.get(path).text
    db.exec("UPDATE users SET stripe_customer_id = 'cus_1' WHERE id = ?", user_id)
    for path in ("/dashboard/", "/dashboard/account/"):
        assert 'action="/dashboard/billing/"' in client.get(path).text


def test_menu_marks_the_current_page(app):
    login = Login(app)
    assert login.run("alice").status_code == 303
    for path, label in (("/dashboard/", "Services"), ("/dashboard/account/", "Account details"),
                        ("/dashboard/reset-password/", "Change password")):
        page = login.client.get(path).text
        current = re.findall(r'<a href="([^"]+)" aria-current="page">([^<]+)</a>', page)
        assert current == [(path, label)], (path, current)
