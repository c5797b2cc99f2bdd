"""Issue 11 in a real browser: a customer signs up and pays, their subscription is canceled
(Stripe's event), they come back through /recovery/ with the code from the Mailgun inbox,
subscribe again on the Stripe double's page, wait for "ready", log in with the password they
had, and find their service on the dashboard again. Screenshots in test-artifacts/e2e/.
"""

import re

from conftest import wait_for, wait_for_text
from journeys import (ACCOUNT_READY_TIMEOUT_MS, Mouse, cancel_subscription, log_in,
                      set_password, sign_up)
from test_onboarding import code_from_inbox

VISITOR = {"first_name": "Rory", "last_name": "Return", "username": "rory.return",
           "email": "rory@usher.test", "password": "rory-e2e-pw-1"}


def test_canceled_customer_recovers_and_gets_the_service_back(stack, page, shot):
    act = Mouse(page)
    sign_up(page, act, shot, stack, VISITOR)
    set_password(page, act, shot, stack, VISITOR)
    page.goto(stack.url + "/")
    log_in(page, act, stack, VISITOR)
    page.get_by_role("link", name="Open Cloud").wait_for(state="visible")
    shot("dashboard-before")

    cancel_subscription(stack, VISITOR["username"])
    assert stack.kc_user(VISITOR["username"])["enabled"] is False
    page.goto(stack.url + "/dashboard/")  # the old session ended with the cancellation
    page.wait_for_selector("#kc-login")

    # Recovery: the link from the cancellation mail leads here.
    page.goto(stack.url + "/recovery/")
    wait_for_text(page, "Restore your account")
    shot("recovery")
    act.fill(page.get_by_label("Username or email address"), VISITOR["email"])
    act.press(page.get_by_role("button", name="Send code"))
    wait_for_text(page, "we've emailed a 6-digit code")
    resend = page.get_by_role("button", name=re.compile(r"Resend in \d+ s"))
    assert resend.is_disabled()
    inbox = page.context.new_page()
    code = code_from_inbox(inbox, stack.mg.url, VISITOR["email"])
    shot("inbox", page=inbox)
    inbox.close()
    act.fill(page.get_by_label("Recovery code"), code)  # verifies on the sixth digit
    wait_for_text(page, "Welcome back")
    assert page.locator("#recovery-plan tbody tr").count() == 2  # Nextcloud + storage
    shot("recovered")
    # Nothing changed yet: the account waits for the payment.
    assert stack.kc_user(VISITOR["username"])["enabled"] is False

    act.press(page.get_by_role("button", name="Subscribe again"))
    page.wait_for_url(re.compile(re.escape(stack.st.url + "/checkout/") + r"cs_\w+"))
    shot("stripe-checkout")
    page.fill("#name", f"{VISITOR['first_name']} {VISITOR['last_name']}")
    page.click("#pay")
    page.wait_for_url(re.compile(re.escape(stack.url + "/recovery/success/")))
    wait_for_text(page, "Welcome back")
    wait_for_text(page, "Your account is ready", timeout_ms=ACCOUNT_READY_TIMEOUT_MS)
    shot("restored")
    assert stack.kc_user(VISITOR["username"])["enabled"] is True

    page.get_by_role("link", name="Log in").click()
    log_in(page, act, stack, VISITOR)  # the password they had
    page.get_by_role("link", name="Open Cloud").wait_for(state="visible")
    shot("dashboard-again")
    assert stack.db.scalar("SELECT subscription_status FROM users WHERE username = ?",
                           VISITOR["username"]) == "active"
