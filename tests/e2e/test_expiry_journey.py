"""Issue 11's other ending in a real browser: a customer signs up and pays, cancels, and does
not come back. When the final expiry passes (the test clock moves 31 days on) the worker
closes the account for good: the seat is freed and the identity deleted, so the old password
no longer logs in, and a recovery attempt gets the neutral answer and — with
RECOVERY_NOTIFY_UNKNOWN on — a notice that the account was closed, with a way to sign up.
Screenshots in test-artifacts/e2e/.
"""

import pytest

from conftest import wait_for, wait_for_text
from journeys import Mouse, cancel_subscription, set_password, sign_up

VISITOR = {"first_name": "Eli", "last_name": "Ending", "username": "eli.ending",
           "email": "eli@usher.test", "password": "eli-e2e-pw-1"}
PAST_THE_FINAL_DATE = 31 * 86400 + 3600


@pytest.fixture
def stack_env():
    return {"RECOVERY_NOTIFY_UNKNOWN": "true"}


def test_account_closes_for_good_after_the_final_date(stack, page, shot, clock):
    act = Mouse(page)
    sign_up(page, act, shot, stack, VISITOR)
    set_password(page, act, shot, stack, VISITOR)
    user_id = stack.db.scalar("SELECT id FROM users WHERE username = ?", VISITOR["username"])
    assert stack.db.scalar("SELECT count(*) FROM instance_assignments WHERE user_id = ?",
                           user_id) == 1
    cancel_subscription(stack, VISITOR["username"])

    clock(PAST_THE_FINAL_DATE)
    wait_for(lambda: stack.db.scalar("SELECT subscription_status FROM users WHERE id = ?",
                                     user_id) == "expired", timeout=120,
             what="the account to be closed")
    stack.wait_task_done("expire_account")
    assert stack.db.scalar("SELECT count(*) FROM instance_assignments WHERE user_id = ?",
                           user_id) == 0
    assert stack.kc_user(VISITOR["username"]) is None

    # The old password no longer logs in: the identity is gone.
    page.goto(stack.url + "/")
    act.press(page.get_by_role("link", name="Log in", exact=True))  # the front door
    page.wait_for_selector("#kc-login")
    page.fill("#username", VISITOR["username"])
    page.fill("#password", VISITOR["password"])
    page.click("#kc-login")
    wait_for_text(page, "Invalid username or password")
    shot("login-refused")

    # A recovery attempt: the same neutral answer as for anyone, and the notice in the inbox.
    page.goto(stack.url + "/recovery/")
    act.fill(page.get_by_label("Username or email address"), VISITOR["email"])
    act.press(page.get_by_role("button", name="Send code"))
    wait_for_text(page, "we've emailed a 6-digit code")
    shot("recovery-asked")

    def notice():
        page.goto(stack.mg.url + "/inbox")
        row = page.locator("tr", has_text=VISITOR["email"]).filter(has_text="recovery request")
        return row.first if row.count() else None

    row = wait_for(notice, timeout=60, what="the closed-account notice", interval=0.5)
    page.goto(stack.mg.url + row.get_by_role("link").get_attribute("href"))
    body = page.inner_text("body")
    assert "closed for good" in body and "/onboarding/" in body
    assert "recovery code" not in body.lower()
    shot("closed-notice")
