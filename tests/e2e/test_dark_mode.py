"""Issue 18, item 11 in Chromium: every state of the customer's pages in the dark colour scheme
(prefers-color-scheme: dark), in one journey rather than a dark copy of every test.

One visitor joins the waitlist, gets the plan step's error, signs up (front door, the
onboarding steps, the code, Stripe's page, the success page while waiting and when ready),
meets the pages nobody hopes to see (checkout canceled, a refused login, a 404, a 405), logs in (dashboard, account, change password),
logs out (the page with the button, then "You are logged out"), and, once the subscription
ended, restores the account (recovery: asked, code sent, recovered, restored). Every shot of an
Usher page runs axe_check (tests/e2e/browser.py) at 1280 and 390 px wide: WCAG 2.2 A/AA + best
practices and body text contrast of at least 7:1; here each shot also checks that the page is
really drawn dark.
"""

import re

import pytest

from conftest import wait_for_text
from journeys import (ACCOUNT_READY_TIMEOUT_MS, Mouse, cancel_subscription, log_in,
                      set_password, sign_up)
from test_onboarding import code_from_inbox

DARK = {"color_scheme": "dark"}
VISITOR = {"first_name": "Nyx", "last_name": "Noctis", "username": "nyx.noctis",
           "email": "nyx@usher.test", "password": "nyx-e2e-password"}

# The relative luminance of the page's background (the first opaque one from <body> up).
PAGE_LUMINANCE = """() => {
  for (let e = document.body; e; e = e.parentElement) {
    const m = getComputedStyle(e).backgroundColor.match(/rgba?\\(([^)]+)\\)/);
    if (!m) continue;
    const v = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    if (v.length > 3 && v[3] < 0.99) continue;
    const f = x => { x /= 255; return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(v[0]) + 0.7152 * f(v[1]) + 0.0722 * f(v[2]);
  }
  return 1;
}"""


# WCAG 1.4.11: the contrast of a state indicator (a colour of `el` read from computed style
# `prop`) against what it is drawn on (the first opaque background from el's parent up).
INDICATOR_CONTRAST = """([el, prop]) => {
  function rgb(s) {
    const m = s.match(/rgba?\\(([^)]+)\\)/);
    const v = m ? m[1].split(/[ ,/]+/).filter(Boolean).map(Number) : [255, 255, 255];
    return {r: v[0], g: v[1], b: v[2], a: v.length > 3 ? v[3] : 1};
  }
  function lum(c) {
    const f = x => { x /= 255; return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  }
  let bg = {r: 255, g: 255, b: 255};
  for (let e = el.parentElement; e; e = e.parentElement) {
    const c = rgb(getComputedStyle(e).backgroundColor);
    if (c.a >= 0.99) { bg = c; break; }
  }
  const [a, b] = [lum(rgb(getComputedStyle(el)[prop])), lum(bg)].sort((x, y) => y - x);
  return Math.round((a + 0.05) / (b + 0.05) * 100) / 100;
}"""


def indicator_contrast(locator, prop):
    return locator.evaluate(f"el => ({INDICATOR_CONTRAST})([el, {prop!r}])")


class DarkShots:
    """shot(step) that also checks, on Usher's pages, that the dark scheme is in effect."""

    def __init__(self, page, shot, site):
        self.page, self.shot, self.site = page, shot, site

    def __call__(self, step, page=None):
        pg = page or self.page
        if pg.url.startswith(self.site.url + "/"):
            assert pg.evaluate("() => matchMedia('(prefers-color-scheme: dark)').matches")
            luminance = pg.evaluate(PAGE_LUMINANCE)
            assert luminance < 0.05, f"{pg.url} ({step}) is not drawn dark: {luminance:.3f}"
        return self.shot(step, page=page)


@pytest.mark.parametrize("page", [DARK], indirect=True, ids=["dark"])
def test_every_customer_page_state_in_dark_mode(stack, page, shot):
    act = Mouse(page)
    dark = DarkShots(page, shot, stack)

    page.goto(stack.url + "/")
    dark("front-door")
    page.goto(stack.url + "/onboarding/waitlist/")
    dark("waitlist")
    act.fill(page.get_by_label("Email"), "night-owl@usher.test")
    act.press(page.get_by_role("button", name="Join"))
    wait_for_text(page, "You're on the list!")
    dark("waitlist-joined")
    # The plan step refusing a form without a plan (sent past the page's own script).
    page.goto(stack.url + "/onboarding/")
    act.fill(page.get_by_label("First name"), VISITOR["first_name"])
    act.press(page.get_by_role("button", name="Continue"))
    page.wait_for_url(stack.url + "/onboarding/plan/")
    page.evaluate("() => { document.querySelectorAll('input[name=plan]')"
                  ".forEach(i => { i.checked = false; }); "
                  "document.getElementById('plan-form').submit(); }")
    page.locator("#plan-error").wait_for()
    dark("plan-error")
    # The chosen plan's card and the keyboard focus on it stand out from the dark page.
    chosen = page.locator(".product-card:has(input:checked)").first
    assert indicator_contrast(chosen, "borderTopColor") >= 3
    for _ in range(40):
        if page.evaluate("() => document.activeElement?.name === 'plan'"):
            break
        page.keyboard.press("Tab")
    focused = page.locator(".product-card:has(input:focus-visible)")
    assert focused.count() == 1
    assert indicator_contrast(focused, "outlineColor") >= 3
    assert indicator_contrast(page.get_by_role("link", name="Back"), "borderTopColor") >= 3

    sign_up(page, act, dark, stack, VISITOR)  # welcome … success, account ready
    page.goto(stack.url + "/onboarding/cancel/")
    dark("checkout-canceled")
    page.goto(stack.url + "/oidc/callback/?state=forged&code=x")
    wait_for_text(page, "Login failed")
    dark("login-failed")
    page.goto(stack.url + "/no-such-page/")
    wait_for_text(page, "We can't find that page")
    dark("not-found")
    page.goto(stack.url + "/dashboard/billing/")  # POST only
    dark("method-not-allowed")

    set_password(page, act, dark, stack, VISITOR)
    page.goto(stack.url + "/")
    log_in(page, act, stack, VISITOR)
    dark("dashboard")
    page.get_by_role("link", name="Account details").click()
    page.wait_for_url(stack.url + "/dashboard/account/")
    dark("account")
    page.goto(stack.url + "/dashboard/reset-password/")
    dark("change-password")

    page.goto(stack.url + "/logout/")  # still logged in: the page offers the button
    dark("logout-offered")
    page.get_by_role("button", name="Log out").first.click()
    page.wait_for_url(stack.logout_url)
    wait_for_text(page, "You are logged out")
    dark("logged-out")

    cancel_subscription(stack, VISITOR["username"])
    page.goto(stack.url + "/recovery/")
    dark("recovery")
    act.fill(page.get_by_label("Username or email address"), VISITOR["email"])
    act.press(page.get_by_role("button", name="Send code"))
    wait_for_text(page, "we've emailed a 6-digit code")
    dark("recovery-code-sent")
    inbox = page.context.new_page()
    code = code_from_inbox(inbox, stack.mg.url, VISITOR["email"])
    inbox.close()
    act.fill(page.get_by_label("Recovery code"), code)
    wait_for_text(page, "Welcome back")
    dark("recovered")
    act.press(page.get_by_role("button", name="Subscribe again"))
    page.wait_for_url(re.compile(re.escape(stack.st.url + "/checkout/") + r"cs_\w+"))
    page.fill("#name", f"{VISITOR['first_name']} {VISITOR['last_name']}")
    page.click("#pay")
    page.wait_for_url(re.compile(re.escape(stack.url + "/recovery/success/")))
    dark("restoring")
    wait_for_text(page, "Your account is ready", timeout_ms=ACCOUNT_READY_TIMEOUT_MS)
    dark("restored")
