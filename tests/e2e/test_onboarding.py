"""Issue 4 in a real browser: a visitor signs up from /onboarding/ to a ready account.

Welcome (first name) → plan (plan, billing cycle, a general add-on) → storage add-ons →
checkout (last name, username, email, the emailed code read from the Mailgun double's inbox
page) → the Stripe double's hosted checkout (STRIPE_CHECKOUT_UI=hosted), paid there, which
completes the session, sends the signed webhooks to Usher and redirects to the success URL →
/onboarding/success/ until "Your account is ready" (webhook processing + the worker) → the
Keycloak double holds the new user → the password-setup link from the double's outbox →
the first login shows the plan's service on the dashboard. Screenshots of each step go to
test-artifacts/e2e/<test>/.

The checkout step is written against its DOM contract: inputs labelled "Last name",
"Username", "Email", "Verification code"; buttons "Send code", "Verify", "Continue to
payment". Every screenshot of an Usher page also runs axe_check (tests/e2e/browser.py).
"""

import re

import requests

from conftest import STEP_TIMEOUT_MS, keycloak_login, wait_for, wait_for_text

VISITOR = {"first_name": "Dana", "last_name": "Scully", "username": "dana.scully",
           "email": "dana@usher.test", "password": "dana-e2e-pw"}
# devstack/catalog.json, monthly: Nextcloud 10.00 + Bitwarden 3.00 + Extra Storage 3.00.
EXPECTED_TOTAL = "16.00 USD"
EXPECTED_PRICES = {"price_demo_nextcloud_monthly", "price_demo_bitwarden_monthly",
                   "price_demo_storage_100_monthly"}
# Webhook → process_stripe_event → Keycloak user → sync, all through the worker.
ACCOUNT_READY_TIMEOUT_MS = 90_000


def stripe_get(stack, path):
    r = requests.get(stack.st.url + path, timeout=10,
                     headers={"Authorization": "Bearer " + stack.env["STRIPE_SECRET_KEY"]})
    assert r.status_code == 200, r.text
    return r.json()


def code_from_inbox(inbox, mailgun_url, email):
    """Reads the newest verification code for `email` from the double's inbox page (newest
    first), reloading until the message has arrived."""

    def read():
        inbox.goto(mailgun_url + "/inbox")
        row = inbox.locator("tr", has_text=email).first
        if row.count() == 0:
            return None
        code = row.locator("td.code").inner_text().strip()
        return code if re.fullmatch(r"\d{6}", code) else None

    return wait_for(read, timeout=STEP_TIMEOUT_MS / 1000, what="the verification email",
                    interval=0.3)


def password_link_from_outbox(outbox, keycloak_url, email):
    """The newest execute-actions link sent to `email` (UPDATE_PASSWORD), from the Keycloak
    double's outbox page, reloading until the worker has asked Keycloak to send it."""

    def read():
        outbox.goto(keycloak_url + "/inbox")
        row = outbox.locator("tr", has_text=email).filter(has_text="UPDATE_PASSWORD").first
        if row.count() == 0:
            return None
        return row.get_by_role("link", name="open link").get_attribute("href")

    return wait_for(read, timeout=ACCOUNT_READY_TIMEOUT_MS / 1000,
                    what="the password-setup email", interval=0.3)


def test_visitor_signs_up_pays_and_reaches_the_dashboard(stack, page, shot):
    # Step 1: welcome.
    page.goto(stack.url + "/onboarding/")
    shot("welcome")
    page.get_by_label("First name").fill(VISITOR["first_name"])
    shot("welcome-filled")
    page.get_by_role("button", name="Continue").click()

    # Step 2: plan, billing cycle, a general add-on.
    page.wait_for_url(stack.url + "/onboarding/plan/")
    wait_for_text(page, "Choose your plan")
    shot("plan")
    assert page.get_by_label("Teams", exact=True).is_disabled()  # coming soon
    page.get_by_label("Monthly", exact=True).check()
    page.get_by_label("Nextcloud", exact=True).check()
    page.get_by_label("Bitwarden", exact=True).check()
    shot("plan-chosen")
    page.get_by_role("button", name="Continue").click()

    # Step 3: the chosen plan has storage add-ons.
    page.wait_for_url(stack.url + "/onboarding/addons/")
    wait_for_text(page, "Add storage to Nextcloud")
    shot("addons")
    page.get_by_label("Extra Storage 100 GB", exact=True).check()
    shot("addons-chosen")
    checkout_url = stack.url + "/onboarding/checkout/"
    with page.expect_response(checkout_url) as checkout:
        page.get_by_role("button", name="Continue").click()

    # Step 4: checkout, with the email verified by a code.
    page.wait_for_url(checkout_url)
    shot("checkout")
    assert checkout.value.status == 200, f"GET /onboarding/checkout/: {checkout.value.status}"
    page.get_by_label("Last name", exact=True).fill(VISITOR["last_name"])
    page.get_by_label("Username", exact=True).fill(VISITOR["username"])
    page.get_by_label("Email", exact=True).fill(VISITOR["email"])
    page.get_by_role("button", name="Send code").click()

    inbox = page.context.new_page()
    code = code_from_inbox(inbox, stack.mg.url, VISITOR["email"])
    shot("mailgun-inbox", page=inbox)
    inbox.close()

    shot("checkout-code-sent")
    page.get_by_label("Verification code", exact=True).fill(code)  # the sixth digit verifies
    wait_for_text(page, "Email verified")
    assert page.get_by_label("Email", exact=True).get_attribute("readonly") is not None
    continue_button = page.get_by_role("button", name="Continue to payment")
    continue_button.wait_for(state="visible")
    page.wait_for_function("b => !b.disabled", arg=continue_button.element_handle())
    shot("checkout-verified")
    continue_button.click()

    # The Stripe double's hosted checkout page.
    page.wait_for_url(re.compile(re.escape(stack.st.url + "/checkout/") + r"cs_\w+"))
    session_id = page.url.rsplit("/", 1)[1]
    shot("stripe-checkout")
    session = stripe_get(stack, f"/v1/checkout/sessions/{session_id}?expand[]=line_items")
    assert {li["price"]["id"] for li in session["line_items"]["data"]} == EXPECTED_PRICES
    assert session["mode"] == "subscription"
    assert session["customer_email"] == VISITOR["email"]
    assert session["metadata"]["username"] == VISITOR["username"]
    assert EXPECTED_TOTAL in page.inner_text("body")
    assert page.inner_text("#email-fixed") == VISITOR["email"]
    page.fill("#name", f"{VISITOR['first_name']} {VISITOR['last_name']}")
    shot("stripe-checkout-filled")
    page.click("#pay")

    # Back on Usher: the success page follows provisioning until the account is ready.
    page.wait_for_url(re.compile(re.escape(stack.url + "/onboarding/success/") +
                                 r"\?session_id=" + session_id))
    shot("success")
    deliveries = [d for d in stack.st.deliveries if d["type"] == "checkout.session.completed"]
    assert [d["status"] for d in deliveries] == [200], deliveries
    wait_for_text(page, "Your account is ready", timeout_ms=ACCOUNT_READY_TIMEOUT_MS)
    shot("account-ready")

    user = stack.kc_user(VISITOR["username"])
    assert user is not None, "the Keycloak double has no user " + VISITOR["username"]
    assert user["email"] == VISITOR["email"]
    assert user["firstName"] == VISITOR["first_name"]
    assert user["lastName"] == VISITOR["last_name"]
    assert user["enabled"] is True and user["emailVerified"] is True
    assert stack.db.scalar("SELECT subscription_status FROM users WHERE username = ?",
                           VISITOR["username"]) == "active"

    # The password-setup email (Keycloak's execute-actions, shown on the double's outbox
    # page), then the first login lands on a dashboard with the plan's service.
    outbox = page.context.new_page()
    link = password_link_from_outbox(outbox, stack.kc.url, VISITOR["email"])
    shot("keycloak-outbox", page=outbox)
    outbox.goto(link)
    outbox.fill("#password-new", VISITOR["password"])
    outbox.fill("#password-confirm", VISITOR["password"])
    shot("set-password", page=outbox)
    outbox.click("#kc-submit")
    wait_for_text(outbox, "Your account has been updated.")
    outbox.close()

    page.get_by_role("link", name="Log in").click()
    page.wait_for_selector("#kc-login")
    keycloak_login(page, stack, VISITOR["username"], VISITOR["password"])
    page.wait_for_url(stack.url + "/dashboard/")
    wait_for_text(page, "Hello, " + VISITOR["first_name"])
    shot("first-dashboard")
    link = page.locator("li.card.service", has_text="Cloud").get_by_role("link")
    assert link.get_attribute("href") in {url for (url,) in stack.db.rows(
        "SELECT base_url FROM instances i JOIN products p ON p.id = i.product_id "
        "WHERE p.slug = 'nextcloud'")}
