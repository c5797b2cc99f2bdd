"""The demo as a newcomer meets it: `devstack/run` (what `make run` starts) run as it is, on
ports and a directory of its own, then a visitor signs up, pays on the Stripe double, waits
for "Your account is ready", sets a password from the mail in the Mailgun double's inbox,
logs in, sees the service ready, logs out (Keycloak's end-session included), is asked for the
password again at /dashboard/, and logs in again. The demo admin (admin / admin) opens the
admin console and finds the demo catalog there.

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

from conftest import (REPO, STEP_TIMEOUT_MS, browser_helpers, free_port, integration, wait_for,
                      wait_for_text)
from journeys import Keyboard, Touch, log_in, set_password, sign_up

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
        browser_helpers.USHER_SITES.append(url)  # shots run axe on Usher's pages
        yield stack
    finally:
        if url in browser_helpers.USHER_SITES:
            browser_helpers.USHER_SITES.remove(url)
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    findings = [line for line in stack.log().splitlines()
                if re.search(r"AddressSanitizer|LeakSanitizer|runtime error:", line)]
    assert not findings, "\n".join(findings[:20])


def journey(page, act, shot, demo, visitor):
    sign_up(page, act, shot, demo, visitor)
    set_password(page, act, shot, demo, visitor)

    page.goto(demo.url + "/")  # the front door: log_in presses its "Log in"
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


def test_demo_admin_console_by_keyboard(demo, browser, shots):
    """The demo's admin (admin / admin, in the realm's usher-admins group) reaches the console
    from the dashboard and finds the demo catalog there, as `make run` starts it."""
    context = browser.new_context(locale="en-US", viewport=DESKTOP)
    context.set_default_timeout(STEP_TIMEOUT_MS)
    page = context.new_page()
    shots.page = page
    act = Keyboard(page)
    try:
        page.goto(demo.url + "/")
        log_in(page, act, demo, {"username": "admin", "password": "admin", "first_name": "Demo"})
        shots("admin-dashboard")
        act.press(page.get_by_role("link", name="Open the admin console").first)
        page.wait_for_url(demo.url + "/admin/")
        page.get_by_role("heading", name="Admin console").wait_for()
        shots("admin-console")
        act.press(page.get_by_role("link", name="Products", exact=True).first)
        page.wait_for_url(re.compile(re.escape(demo.url) + r"/admin/products/.*"))
        wait_for_text(page, "Nextcloud")
        shots("admin-products")
    except Exception:
        shots("failed")
        print("--- devstack/run log (tail)\n" + demo.log()[-4000:])
        raise
    finally:
        context.close()
