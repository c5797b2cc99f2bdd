"""Journey steps shared by the browser tests: ways of driving a page (keyboard, touch,
mouse) and the steps of a customer's signup and login against Usher with the devstack
doubles. A `site` is anything with .url (Usher), .mailgun_url and .keycloak_url.
"""

import re

from conftest import wait_for, wait_for_text
from test_onboarding import code_from_inbox

# Webhook → process_stripe_event → Keycloak user → sync, all through the worker.
ACCOUNT_READY_TIMEOUT_MS = 90_000


# --- ways of driving the page --------------------------------------------------------------

class Keyboard:
    """Moves with Tab (Shift+Tab never needed: every journey goes forward), types, and acts
    with Enter on buttons and links, Space on checkboxes, arrows inside a radio group."""

    name = "keyboard"

    def __init__(self, page):
        self.page = page

    def _focused(self, locator):
        return locator.evaluate("e => e === document.activeElement")

    def focus(self, locator, limit=80):
        locator.wait_for(state="visible")
        for _ in range(limit):
            if self._focused(locator):
                return
            self.page.keyboard.press("Tab")
        raise AssertionError(f"{locator} cannot be reached with Tab")

    def fill(self, locator, text):
        self.focus(locator)
        self.page.keyboard.press("Control+A")
        self.page.keyboard.type(text)

    def press(self, locator):
        self.focus(locator)
        self.page.keyboard.press("Enter")

    def check(self, locator):
        if locator.is_checked():
            return
        kind = locator.get_attribute("type")
        if kind == "radio":
            name = locator.get_attribute("name")
            for _ in range(80):  # Tab enters a radio group once, on its checked (or first) radio
                if self.page.evaluate("n => document.activeElement?.name === n", name):
                    break
                self.page.keyboard.press("Tab")
            self.page.keyboard.press("Space")
            for _ in range(20):
                if locator.is_checked():
                    return
                self.page.keyboard.press("ArrowDown")
            raise AssertionError(f"{locator} cannot be chosen with the arrow keys")
        self.focus(locator)
        self.page.keyboard.press("Space")
        assert locator.is_checked(), f"Space did not check {locator}"


class Touch:
    """Taps (the context has touch and a phone viewport) and the on-screen keyboard's typing."""

    name = "touch"

    def __init__(self, page):
        self.page = page

    def fill(self, locator, text):
        locator.tap()
        locator.fill(text)

    def press(self, locator):
        locator.tap()

    def check(self, locator):
        if not locator.is_checked():
            locator.tap()
        assert locator.is_checked(), f"tapping did not check {locator}"


class Mouse:
    """Clicks and fills, as Playwright does by default."""

    name = "mouse"

    def __init__(self, page):
        self.page = page

    def fill(self, locator, text):
        locator.fill(text)

    def press(self, locator):
        locator.click()

    def check(self, locator):
        locator.check()


# --- the journey ----------------------------------------------------------------------------

def password_link_from_inbox(page, mailgun_url, email):
    """The password-setup link of the newest identity-provider mail to `email`, read from the
    Mailgun double's inbox the way a person running `make run` reads it."""

    def read():
        page.goto(mailgun_url + "/inbox")
        row = page.locator("tr", has_text=email).filter(has_text="Account").first
        if row.count() == 0:
            return None
        page.goto(mailgun_url + row.get_by_role("link").get_attribute("href"))
        found = re.search(r"https?://\S+/login-actions/action-token\?\S+", page.inner_text("body"))
        return found.group(0) if found else None

    return wait_for(read, timeout=ACCOUNT_READY_TIMEOUT_MS / 1000,
                    what="the password-setup email", interval=0.5)


def sign_up(page, act, shot, site, visitor):
    page.goto(site.url + "/onboarding/")
    shot("welcome")
    act.fill(page.get_by_label("First name"), visitor["first_name"])
    act.press(page.get_by_role("button", name="Continue"))

    page.wait_for_url(site.url + "/onboarding/plan/")
    wait_for_text(page, "Choose your plan")
    act.check(page.get_by_label("Monthly", exact=True))
    act.check(page.get_by_label("Nextcloud", exact=True))
    shot("plan-chosen")
    act.press(page.get_by_role("button", name="Continue"))

    page.wait_for_url(site.url + "/onboarding/addons/")
    act.check(page.get_by_label("Extra Storage 100 GB", exact=True))
    shot("addons-chosen")
    act.press(page.get_by_role("button", name="Continue"))

    page.wait_for_url(site.url + "/onboarding/checkout/")
    act.fill(page.get_by_label("Last name", exact=True), visitor["last_name"])
    act.fill(page.get_by_label("Username", exact=True), visitor["username"])
    act.fill(page.get_by_label("Email", exact=True), visitor["email"])
    act.press(page.get_by_role("button", name="Send code"))
    inbox = page.context.new_page()
    code = code_from_inbox(inbox, site.mailgun_url, visitor["email"])
    inbox.close()
    shot("checkout-code-sent")
    # The sixth digit verifies the code: no "Verify" press needed.
    act.fill(page.get_by_label("Verification code", exact=True), code)
    wait_for_text(page, "Email verified")
    pay = page.get_by_role("button", name="Continue to payment")
    page.wait_for_function("b => !b.disabled", arg=pay.element_handle())
    shot("checkout-verified")
    act.press(pay)

    # The Stripe double's hosted checkout page.
    page.wait_for_url(re.compile(r"http://127\.0\.0\.1:\d+/checkout/cs_\w+"))
    act.fill(page.locator("#name"), f"{visitor['first_name']} {visitor['last_name']}")
    shot("stripe-checkout")
    act.press(page.locator("#pay"))

    page.wait_for_url(re.compile(re.escape(site.url + "/onboarding/success/")))
    shot("success")
    wait_for_text(page, "Your account is ready", timeout_ms=ACCOUNT_READY_TIMEOUT_MS)
    shot("account-ready")


def set_password(page, act, shot, site, visitor):
    link = password_link_from_inbox(page, site.mailgun_url, visitor["email"])
    page.goto(link)  # what a person does with the link in the mail
    act.fill(page.locator("#password-new"), visitor["password"])
    act.fill(page.locator("#password-confirm"), visitor["password"])
    shot("set-password")
    act.press(page.locator("#kc-submit"))
    wait_for_text(page, "Your account has been updated.")


def log_in(page, act, site, visitor):
    if page.url.rstrip("/") == site.url:  # the front door: its "Log in" leads to the form
        act.press(page.get_by_role("link", name="Log in", exact=True))
    page.wait_for_selector("#kc-login")
    assert page.url.startswith(site.keycloak_url), page.url
    act.fill(page.locator("#username"), visitor["username"])
    act.fill(page.locator("#password"), visitor["password"])
    act.press(page.locator("#kc-login"))
    page.wait_for_url(site.url + "/dashboard/")
    wait_for_text(page, "Hello, " + visitor["first_name"])


def cancel_subscription(stack, username):
    """What Stripe does when the customer cancels: the subscription ends, its event arrives."""
    sub_id = stack.db.scalar("SELECT stripe_subscription_id FROM users WHERE username = ?",
                             username)
    _, events = stack.st.cancel_subscription(sub_id)
    for d in stack.st.deliver(events[0]):
        assert d["status"] == 200, d
    wait_for(lambda: stack.db.scalar("SELECT subscription_status FROM users WHERE username = ?",
                                     username) == "canceled", what="the cancellation")
    stack.wait_task_done("notify_subscription_canceled")
