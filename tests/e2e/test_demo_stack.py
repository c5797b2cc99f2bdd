"""The demo as a newcomer meets it: `devstack/run` (what `make run` starts) run as it is, on
ports and a directory of its own, then a visitor signs up, pays on the Stripe double, waits
for "Your account is ready", sets a password from the mail in the Mailgun double's inbox,
logs in, sees the service ready, logs out (Keycloak's end-session included), is asked for the
password again at /dashboard/, and logs in again.

Twice: at desktop width driven by the keyboard alone (Tab, Space, arrows, Enter; never a
click), and at a 390 px phone width by taps. Screenshots of every step in
test-artifacts/e2e/<test>/.

Nothing here is wired by the test: the realm's groups, the clients, the catalog, the worker
and the doubles are what devstack/run sets up for `make run`.
"""

import os
import re
import signal
import subprocess
import time

import pytest
import requests

from conftest import REPO, STEP_TIMEOUT_MS, free_port, integration, wait_for, wait_for_text
from test_onboarding import code_from_inbox

# Webhook → process_stripe_event → Keycloak user → sync, all through the demo's worker.
ACCOUNT_READY_TIMEOUT_MS = 90_000
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


class DemoStack:
    def __init__(self, url, mailgun_url, keycloak_url, log_path):
        self.url, self.mailgun_url, self.keycloak_url = url, mailgun_url, keycloak_url
        self.log_path = log_path

    def log(self):
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def demo(tmp_path, usher_bin):
    port, stripe, keycloak, mailgun = (free_port() for _ in range(4))
    url = f"http://127.0.0.1:{port}"
    empty_env_file = tmp_path / "empty.env"  # a developer's ./.env must not leak in
    empty_env_file.write_text("")
    env = dict(integration.clean_environ(), USHER_BIN=str(usher_bin),
               USHER_ENV_FILE=str(empty_env_file), DEVSTACK_VAR=str(tmp_path / "var"),
               BIND=f"127.0.0.1:{port}", PUBLIC_BASE_URL=url,
               DOUBLES_STRIPE_PORT=str(stripe), DOUBLES_KEYCLOAK_PORT=str(keycloak),
               DOUBLES_MAILGUN_PORT=str(mailgun))
    log_path = tmp_path / "devstack.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([str(REPO / "devstack" / "run")], cwd=REPO, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    stack = DemoStack(url, f"http://127.0.0.1:{mailgun}", f"http://127.0.0.1:{keycloak}",
                      log_path)

    def healthy():
        assert proc.poll() is None, "devstack/run exited:\n" + stack.log()[-3000:]
        try:
            return requests.get(url + "/health/", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    try:
        wait_for(healthy, timeout=60, what="devstack/run to serve /health/")
        yield stack
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    findings = [line for line in stack.log().splitlines()
                if re.search(r"AddressSanitizer|LeakSanitizer|runtime error:", line)]
    assert not findings, "\n".join(findings[:20])


# --- two ways of driving the page -----------------------------------------------------------

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


def sign_up(page, act, shot, demo, visitor):
    page.goto(demo.url + "/onboarding/")
    shot("welcome")
    act.fill(page.get_by_label("First name"), visitor["first_name"])
    act.press(page.get_by_role("button", name="Continue"))

    page.wait_for_url(demo.url + "/onboarding/plan/")
    wait_for_text(page, "Choose your plan")
    act.check(page.get_by_label("Monthly", exact=True))
    act.check(page.get_by_label("Nextcloud", exact=True))
    shot("plan-chosen")
    act.press(page.get_by_role("button", name="Continue"))

    page.wait_for_url(demo.url + "/onboarding/addons/")
    act.check(page.get_by_label("Extra Storage 100 GB", exact=True))
    shot("addons-chosen")
    act.press(page.get_by_role("button", name="Continue"))

    page.wait_for_url(demo.url + "/onboarding/checkout/")
    act.fill(page.get_by_label("Last name", exact=True), visitor["last_name"])
    act.fill(page.get_by_label("Username", exact=True), visitor["username"])
    act.fill(page.get_by_label("Email", exact=True), visitor["email"])
    act.press(page.get_by_role("button", name="Send code"))
    inbox = page.context.new_page()
    code = code_from_inbox(inbox, demo.mailgun_url, visitor["email"])
    inbox.close()
    act.fill(page.get_by_label("Verification code", exact=True), code)
    act.press(page.get_by_role("button", name="Verify"))
    pay = page.get_by_role("button", name="Continue to payment")
    page.wait_for_function("b => !b.disabled", arg=pay.element_handle())
    shot("checkout-verified")
    act.press(pay)

    # The Stripe double's hosted checkout page.
    page.wait_for_url(re.compile(r"http://127\.0\.0\.1:\d+/checkout/cs_\w+"))
    act.fill(page.locator("#name"), f"{visitor['first_name']} {visitor['last_name']}")
    shot("stripe-checkout")
    act.press(page.locator("#pay"))

    page.wait_for_url(re.compile(re.escape(demo.url + "/onboarding/success/")))
    shot("success")
    wait_for_text(page, "Your account is ready", timeout_ms=ACCOUNT_READY_TIMEOUT_MS)
    shot("account-ready")


def set_password(page, act, shot, demo, visitor):
    link = password_link_from_inbox(page, demo.mailgun_url, visitor["email"])
    page.goto(link)  # what a person does with the link in the mail
    act.fill(page.locator("#password-new"), visitor["password"])
    act.fill(page.locator("#password-confirm"), visitor["password"])
    shot("set-password")
    act.press(page.locator("#kc-submit"))
    wait_for_text(page, "Your account has been updated.")


def log_in(page, act, demo, visitor):
    page.wait_for_selector("#kc-login")
    assert page.url.startswith(demo.keycloak_url), page.url
    act.fill(page.locator("#username"), visitor["username"])
    act.fill(page.locator("#password"), visitor["password"])
    act.press(page.locator("#kc-login"))
    page.wait_for_url(demo.url + "/dashboard/")
    wait_for_text(page, "Hello, " + visitor["first_name"])


def journey(page, act, shot, demo, visitor):
    sign_up(page, act, shot, demo, visitor)
    set_password(page, act, shot, demo, visitor)

    page.goto(demo.url + "/")  # the front door sends a visitor to the login form
    log_in(page, act, demo, visitor)
    card = page.locator("li.card.service", has_text="Cloud")
    open_link = card.get_by_role("link", name="Open Cloud")
    open_link.wait_for(state="visible")
    assert open_link.get_attribute("href").startswith("https://")
    assert "Being set up" not in card.inner_text()
    shot("dashboard")

    act.press(page.get_by_role("button", name="Log out"))
    page.wait_for_url(demo.url + "/logout/")
    wait_for_text(page, "You are logged out")
    shot("logged-out")

    # Both sessions ended: the dashboard asks for the password, it does not log in silently.
    page.goto(demo.url + "/dashboard/")
    page.wait_for_selector("#kc-login")
    shot("password-asked-again")
    log_in(page, act, demo, visitor)
    shot("dashboard-again")


def run_journey(browser, shots, demo, actor, visitor, **context_options):
    context = browser.new_context(locale="en-US", **context_options)
    context.set_default_timeout(STEP_TIMEOUT_MS)
    page = context.new_page()
    shots.page = page
    try:
        journey(page, actor(page), shots, demo, visitor)
    except Exception:
        shots("failed")  # what the browser showed when the journey gave up
        (shots.dir / "failed.html").write_text(page.content())
        print("--- devstack/run log (tail)\n" + demo.log()[-4000:])
        raise
    finally:
        context.close()


def test_demo_journey_by_keyboard_at_desktop_width(demo, browser, shots):
    run_journey(browser, shots, demo, Keyboard,
                {"first_name": "Kim", "last_name": "Keys", "username": "kim.keys",
                 "email": "kim@usher.test", "password": "kim-demo-pw-1"},
                viewport=DESKTOP)


def test_demo_journey_by_touch_at_phone_width(demo, browser, shots):
    run_journey(browser, shots, demo, Touch,
                {"first_name": "Pat", "last_name": "Phone", "username": "pat.phone",
                 "email": "pat@usher.test", "password": "pat-demo-pw-1"},
                viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
