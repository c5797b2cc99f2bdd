"""Issue 6 in a real browser: a customer who signed up logs in through the Keycloak double,
sees their service card, their account page, and logs out through Keycloak's end-session; an
admin sees every active instance and the Admin card. Screenshots of each step go to
test-artifacts/e2e/<test>/.

How the customer "signed up" is chosen by SIGNUP:
  "seed"     the state a completed signup leaves, written directly: the Keycloak user, a
             Stripe customer + subscription in the double, the local user and its
             subscription items; then a sync_user_post_checkout task run by the worker
             assigns the instance (as the webhook processing would enqueue it).
  "webhook"  the real path: a Checkout Session created through the Stripe double's API, paid
             there, the signed checkout.session.completed delivered to Usher, and the worker
             running process_stripe_event and then the sync.
The webhook path needs the process_stripe_event handler (src/tasks/handlers.c); on a tree
without it, set SIGNUP = "seed". Switching is this one line.
"""

import json

import requests

from conftest import keycloak_login, now, wait_for_text

SIGNUP = "webhook"

PLAN_PRICE = "price_demo_nextcloud_monthly"
STORAGE_PRICE = "price_demo_storage_100_monthly"
CUSTOMER = {"username": "carol", "password": "carol-e2e-pw", "email": "carol@usher.test",
            "firstName": "Carol", "lastName": "Danvers"}
ADMIN = {"username": "ada", "password": "ada-e2e-pw", "email": "ada@usher.test",
         "firstName": "Ada", "lastName": "Lovelace"}


def add_keycloak_user(stack, who, groups=()):
    stack.kc.add_user(who["username"], password=who["password"], email=who["email"],
                      firstName=who["firstName"], lastName=who["lastName"], groups=groups)


def signup_seeded(stack, who):
    st, db = stack.st, stack.db
    customer = st.add_customer(email=who["email"], name=f"{who['firstName']} {who['lastName']}")
    sub = st.add_subscription(customer["id"], [{"price": PLAN_PRICE, "quantity": 1},
                                               {"price": STORAGE_PRICE, "quantity": 1}],
                              metadata={"username": who["username"]})
    t = now()
    db.exec("INSERT INTO users (username, email, first_name, last_name, date_joined, keycloak_id, "
            "stripe_customer_id, stripe_subscription_id, subscription_status, stripe_state_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active', ?)",
            who["username"], who["email"], who["firstName"], who["lastName"], t,
            stack.kc.user(who["username"])["id"], customer["id"], sub["id"], t)
    user_id = db.scalar("SELECT id FROM users WHERE username = ?", who["username"])
    for item in sub["_items"]:
        product_id = db.scalar("SELECT product_id FROM product_prices WHERE stripe_price_id = ?",
                               item["price"]["id"])
        assert product_id, item["price"]["id"]
        db.exec("INSERT INTO subscription_items (user_id, product_id, stripe_price_id, "
                "stripe_item_id, quantity, current_period_end) VALUES (?, ?, ?, ?, ?, ?)",
                user_id, product_id, item["price"]["id"], item["id"], item["quantity"],
                item["current_period_end"])
    db.exec("INSERT INTO tasks (name, args, state, attempts, max_attempts, run_at, created_at, "
            "updated_at) VALUES ('sync_user_post_checkout', ?, 'queued', 0, 4, ?, ?, ?)",
            json.dumps({"user_id": user_id}), t - 1, t, t)
    stack.wait_task_done("sync_user_post_checkout")


def signup_through_webhook(stack, who):
    r = requests.post(stack.st.url + "/v1/checkout/sessions", timeout=10,
                      headers={"Authorization": "Bearer " + stack.env["STRIPE_SECRET_KEY"]},
                      data={"mode": "subscription", "customer_email": who["email"],
                            "line_items[0][price]": PLAN_PRICE, "line_items[0][quantity]": 1,
                            "line_items[1][price]": STORAGE_PRICE, "line_items[1][quantity]": 1,
                            "metadata[first_name]": who["firstName"],
                            "metadata[last_name]": who["lastName"],
                            "metadata[username]": who["username"],
                            "success_url": stack.url + "/onboarding/success/"
                                           "?session_id={CHECKOUT_SESSION_ID}"})
    assert r.status_code == 200, r.text
    _, events = stack.st.pay(r.json()["id"])
    deliveries = [d for d in stack.st.deliveries if d["event_id"] in events]
    assert deliveries and all(d["status"] == 200 for d in deliveries), deliveries
    stack.wait_task_done("process_stripe_event")
    stack.wait_task_done("sync_user_post_checkout")


def assigned_instance(stack, username):
    rows = stack.db.rows(
        "SELECT i.name, i.base_url FROM instance_assignments a JOIN instances i "
        "ON i.id = a.instance_id JOIN users u ON u.id = a.user_id "
        "WHERE u.username = ? AND a.state = 'active'", username)
    assert len(rows) == 1, rows
    return rows[0]


def test_customer_logs_in_sees_dashboard_account_and_logs_out(stack, page, shot):
    add_keycloak_user(stack, CUSTOMER)
    {"seed": signup_seeded, "webhook": signup_through_webhook}[SIGNUP](stack, CUSTOMER)
    instance_name, base_url = assigned_instance(stack, CUSTOMER["username"])
    groups = stack.kc_user(CUSTOMER["username"])["groups"]
    assert f"/nextcloud-{instance_name}" in groups, groups  # the catalog's instance group

    # / is the front door: its "Log in" leads to the identity provider's login form.
    page.goto(stack.url + "/")
    shot("front-door")
    assert page.get_by_role("link", name="Forgot password?").count() == 1
    page.get_by_role("link", name="Log in", exact=True).click()
    page.wait_for_selector("#kc-login")
    shot("keycloak-login-form")
    keycloak_login(page, stack, CUSTOMER["username"], CUSTOMER["password"])

    page.wait_for_url(stack.url + "/dashboard/")
    wait_for_text(page, "Hello, Carol")
    shot("dashboard")
    card = page.locator("li.card.service", has_text="Cloud")
    assert card.count() == 1
    assert instance_name.title() not in card.inner_text()  # internal names are for admins
    link = card.get_by_role("link", name="Open Cloud")
    assert link.get_attribute("href") == base_url
    assert page.locator("li.card.service.admin").count() == 0  # not an admin
    assert page.get_by_text("Nothing here yet").count() == 0

    page.get_by_role("link", name="Account details").click()
    page.wait_for_url(stack.url + "/dashboard/account/")
    shot("account")
    details = {dt.inner_text().strip(): dd.inner_text().strip() for dt, dd in zip(
        page.locator("dl.details dt").all(), page.locator("dl.details dd").all())}
    assert details["Username"] == CUSTOMER["username"]
    assert details["Email"] == CUSTOMER["email"]
    assert details["Name"] == "Carol Danvers"
    assert details["Subscription"] == "Active"
    items = page.locator("table.items tbody tr")
    products = sorted(r.locator("td").first.inner_text().strip() for r in items.all())
    assert products == ["Extra Storage 100 GB", "Nextcloud"]

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(stack.logout_url)
    wait_for_text(page, "You are logged out")
    shot("logged-out")
    assert stack.kc.sessions_ended, "Keycloak's end-session endpoint was not used"
    assert stack.kc_user(CUSTOMER["username"])["sessions"] == []

    # Both sessions are gone: the dashboard asks for a password again (no silent SSO).
    page.goto(stack.url + "/dashboard/")
    page.wait_for_selector("#kc-login")
    shot("login-required-again")


def test_admin_sees_every_active_instance_and_the_admin_card(stack, page, shot):
    add_keycloak_user(stack, ADMIN, groups=["usher-admins"])
    active = stack.db.rows("SELECT name, base_url FROM instances WHERE is_active ORDER BY name")
    assert len(active) == 3, active  # devstack/catalog.json: foggy, cirrus, main

    page.goto(stack.url + "/")
    page.get_by_role("link", name="Log in", exact=True).click()
    page.wait_for_selector("#kc-login")
    shot("keycloak-login-form")
    keycloak_login(page, stack, ADMIN["username"], ADMIN["password"])
    page.wait_for_url(stack.url + "/dashboard/")
    wait_for_text(page, "Hello, Ada")
    shot("dashboard")

    hrefs = [a.get_attribute("href")
             for a in page.locator("li.card.service:not(.admin) a").all()]
    assert sorted(hrefs) == sorted(url for _, url in active)
    admin_card = page.locator("li.card.service.admin")
    assert admin_card.count() == 1
    assert admin_card.get_by_role("link").get_attribute("href") == "/admin/"
