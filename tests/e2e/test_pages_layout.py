"""Issue 18 (items 5 and 8) in Chromium: every customer page fits a phone and shows where the
keyboard focus is.

Each page is loaded at 320, 390 and 1280 px wide and must not scroll sideways
(documentElement.scrollWidth <= innerWidth). At each width, pressing Tab a few times must move
the focus to elements that are visible and drawn with a focus indicator (a computed outline
or box-shadow other than none). Anonymous pages: the front door, the onboarding start, the
plan step (after step 1), the waitlist, recovery and a 404; logged-in ones, for a seeded
subscriber: the dashboard, the account page and the change-password confirmation.
Screenshots at every width go to test-artifacts/e2e/<test>/.
"""

from conftest import keycloak_login, wait_for_text
from test_login_dashboard import CUSTOMER, add_keycloak_user, signup_seeded

WIDTHS = (320, 390, 1280)
TABS = 8

FOCUS_JS = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) return null;
  const r = e.getBoundingClientRect();
  const s = getComputedStyle(e);
  return {what: e.tagName + ' ' + (e.id || e.getAttribute('href') || e.name || '') + ' '
                + (e.innerText || e.value || '').trim().slice(0, 30),
          visible: r.width > 0 && r.height > 0 && s.visibility !== 'hidden'
                   && r.right > 0 && r.bottom > 0,
          outline: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0,
          shadow: s.boxShadow !== 'none'};
}"""


def check_page(page, shot, path, width):
    page.set_viewport_size({"width": width, "height": 800})
    # The previous width's Tab run may have left the skip link shown over the header.
    page.evaluate("() => { document.activeElement && document.activeElement.blur(); "
                  "window.scrollTo(0, 0); }")
    page.wait_for_timeout(50)
    sizes = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    shot(f"{path.strip('/').replace('/', '-') or 'home'}-{width}")
    assert sizes[0] <= sizes[1], f"{path} scrolls sideways at {width} px: {sizes}"
    seen = 0
    for _ in range(TABS):
        page.keyboard.press("Tab")
        f = page.evaluate(FOCUS_JS)
        if f is None:
            continue
        seen += 1
        assert f["visible"], f"{path} at {width} px: focus on an invisible element: {f}"
        assert f["outline"] or f["shadow"], f"{path} at {width} px: no focus indicator: {f}"
    assert seen, f"{path} at {width} px: Tab never focused anything"


def check(page, shot, stack, path):
    page.goto(stack.url + path)
    for width in WIDTHS:
        check_page(page, shot, path, width)


def test_anonymous_pages_fit_phones_and_show_focus(stack, page, shot):
    for path in ("/", "/onboarding/", "/onboarding/waitlist/", "/recovery/",
                 "/no-such-page/"):
        check(page, shot, stack, path)
    page.goto(stack.url + "/onboarding/")
    page.fill("#first_name", "Grace")
    page.keyboard.press("Enter")
    page.wait_for_url(stack.url + "/onboarding/plan/")
    check(page, shot, stack, "/onboarding/plan/")
    # the phone's bottom bar shows the running total of the preselected (featured) plan
    page.set_viewport_size({"width": 390, "height": 800})
    assert page.locator("#plan-total-amount").inner_text() == "$10.00 / month"
    page.locator("label[for=cycle-annual]").click()
    assert page.locator("#plan-total-amount").inner_text() == "$100.00 / year"
    # the whole card selects the plan, not only its radio button
    page.locator(".product-card", has_text="Essentials").click(position={"x": 30, "y": 90})
    assert page.locator("#plan-essentials").is_checked()
    assert page.locator("#plan-total-amount").inner_text() == "$50.00 / year"
    shot("plan-total-390")


def test_logged_in_pages_fit_phones_and_show_focus(stack, page, shot):
    add_keycloak_user(stack, CUSTOMER)
    signup_seeded(stack, CUSTOMER)
    page.goto(stack.url + "/dashboard/")
    page.wait_for_selector("#kc-login")
    keycloak_login(page, stack, CUSTOMER["username"], CUSTOMER["password"])
    page.wait_for_url(stack.url + "/dashboard/")
    wait_for_text(page, "Hello, Carol")
    for path in ("/dashboard/", "/dashboard/account/", "/dashboard/reset-password/"):
        check(page, shot, stack, path)
    assert page.locator('.account-menu a[aria-current="page"]').inner_text() == \
        "Change password"
