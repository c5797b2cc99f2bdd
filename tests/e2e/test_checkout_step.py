"""Issue 18, step 4 (/onboarding/checkout/) in Chromium: the keyboard and the code field
behave as people expect, errors sit on their fields and are announced, what was typed
survives a reload, and the verified address is locked until "Change email address".
Every screenshot of an Usher page also runs axe_check (tests/e2e/browser.py), here once in
the dark colour scheme as well.
"""

import re

import pytest

from conftest import wait_for_text
from test_onboarding import code_from_inbox

VISITOR = {"first_name": "Fox", "last_name": "Mulder", "username": "fox.mulder",
           "email": "fox@usher.test"}
DARK = {"color_scheme": "dark"}


def to_checkout(page, stack):
    page.goto(stack.url + "/onboarding/")
    page.get_by_label("First name").fill(VISITOR["first_name"])
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(stack.url + "/onboarding/plan/")
    page.get_by_label("Monthly", exact=True).check()
    page.get_by_label("Nextcloud", exact=True).check()
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(re.escape(stack.url) + r"/onboarding/(addons|checkout)/"))
    if "/addons/" in page.url:
        page.get_by_role("button", name="Continue").click()
    page.wait_for_url(stack.url + "/onboarding/checkout/")


def field(page, label):
    return page.get_by_label(label, exact=True)


def described_by(page, label):
    ids = (field(page, label).get_attribute("aria-describedby") or "").split()
    return " ".join(page.locator(f"#{i}").inner_text() for i in ids
                    if page.locator(f"#{i}").is_visible())


def is_focused(locator):
    return locator.evaluate("e => e === document.activeElement")


def verify_requests(page):
    sent = []
    page.on("request", lambda r: sent.append(r) if r.url.endswith("/verify-code/") else None)
    return sent


def test_enter_sends_wrong_code_shows_attempts_paste_verifies_once(stack, page, shot):
    to_checkout(page, stack)
    verifies = verify_requests(page)
    field(page, "Last name").fill(VISITOR["last_name"])
    field(page, "Username").fill(VISITOR["username"])
    field(page, "Email").fill(VISITOR["email"])
    # Enter in the email field sends the code (never "Continue to payment").
    with page.expect_response(lambda r: r.url.endswith("/send-code/")) as sent:
        field(page, "Email").press("Enter")
    assert sent.value.status == 200 and sent.value.json()["resend_after"] == 60
    wait_for_text(page, "We sent a 6-digit code to " + VISITOR["email"])
    assert "Please verify your email address first" not in page.inner_text("body")
    send = page.locator("#checkout-send-code")
    assert send.is_disabled() and re.fullmatch(r"Resend in \d+ s", send.inner_text())
    code_box = field(page, "Verification code")
    assert is_focused(code_box)
    shot("code-sent")

    inbox = page.context.new_page()
    code = code_from_inbox(inbox, stack.mg.url, VISITOR["email"])
    inbox.close()

    # A wrong code, submitted with Enter: the error is on the code field, with attempts left.
    wrong = f"{(int(code) + 1) % 1000000:06d}"
    code_box.fill(wrong[:5])
    code_box.press("Enter")
    wait_for_text(page, "Enter the 6-digit code")  # five digits: checked here, not sent
    assert len(verifies) == 0
    code_box.fill("")
    page.keyboard.insert_text(wrong)  # the sixth digit verifies
    wait_for_text(page, "Incorrect code. 4 attempts left.")
    assert len(verifies) == 1
    assert code_box.get_attribute("aria-invalid") == "true"
    assert "Incorrect code. 4 attempts left." in described_by(page, "Verification code")
    assert page.locator("#checkout-status").get_attribute("role") == "alert"
    assert "4 attempts left" in page.inner_text("#checkout-status")
    shot("wrong-code")

    # The right code pasted with a space in it: verified on the sixth digit, exactly once.
    code_box.fill("")
    code_box.focus()
    page.keyboard.insert_text(code[:3] + " " + code[3:])
    wait_for_text(page, "Email verified")
    code_box.dispatch_event("input")  # a late event must not send the used code again
    page.wait_for_timeout(300)
    assert len(verifies) == 2
    email = field(page, "Email")
    assert email.get_attribute("readonly") is not None
    assert not send.is_visible() and not code_box.is_visible()
    assert is_focused(page.get_by_role("button", name="Continue to payment"))
    shot("verified")

    # "Change email address" unlocks it and drops the verification on the server.
    with page.expect_response(lambda r: r.url.endswith("/change-email/")) as changed:
        page.get_by_role("button", name="Change email address").click()
    assert changed.value.status == 200
    assert email.get_attribute("readonly") is None and is_focused(email)
    assert page.get_by_role("button", name="Send code").is_visible()
    page.reload()
    assert field(page, "Email").get_attribute("readonly") is None
    assert field(page, "Email").input_value() == VISITOR["email"]
    shot("email-unlocked")


def test_typed_fields_survive_reload_and_back(stack, page, shot):
    to_checkout(page, stack)
    for label, key in (("Last name", "last_name"), ("Username", "username"),
                       ("Email", "email")):
        with page.expect_response(lambda r: r.url.endswith("/checkout/fields/")):
            field(page, label).fill(VISITOR[key])
            field(page, label).press("Tab")  # change on blur keeps it
    page.reload()
    for label, key in (("Last name", "last_name"), ("Username", "username"),
                       ("Email", "email")):
        assert field(page, label).input_value() == VISITOR[key]
    # The page's own Back link, then the browser's Back: the checkout shows them again.
    page.get_by_role("link", name="Back").click()
    page.wait_for_url(re.compile(r".*/onboarding/(plan|addons)/"))
    page.go_back()
    page.wait_for_url(stack.url + "/onboarding/checkout/")
    assert field(page, "Username").input_value() == VISITOR["username"]
    assert field(page, "Last name").input_value() == VISITOR["last_name"]
    assert field(page, "Verification code").input_value() == ""  # never kept
    shot("kept-after-reload")


@pytest.mark.parametrize("page", [DARK], indirect=True, ids=["dark"])
def test_two_bad_fields_focus_the_first_in_dark_mode(stack, page, shot):
    to_checkout(page, stack)
    assert page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches")
    shot("checkout-dark")
    field(page, "Last name").fill("")
    field(page, "Username").fill("")
    field(page, "Email").fill(VISITOR["email"])
    page.get_by_role("button", name="Continue to payment").click()
    last, user = field(page, "Last name"), field(page, "Username")
    assert is_focused(last)
    assert last.get_attribute("aria-invalid") == "true"
    assert user.get_attribute("aria-invalid") == "true"
    assert "This field is required." in described_by(page, "Last name")
    shot("two-errors-dark")
    # Server-side errors too: a bad username and a bad email, focus on the username.
    last.fill(VISITOR["last_name"])
    user.fill("A!")
    field(page, "Email").fill("not-an-email")
    page.get_by_role("button", name="Send code").click()
    page.wait_for_function("() => document.activeElement.id === 'checkout-username'")
    assert field(page, "Email").get_attribute("aria-invalid") == "true"
    assert last.get_attribute("aria-invalid") is None
    shot("server-errors-dark")
