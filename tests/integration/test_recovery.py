"""Account recovery (SPEC §7, issue 11) with the real `usher serve` and `usher worker`, the
Stripe, Keycloak and Mailgun doubles, on SQLite and PostgreSQL: the same neutral answer for
every kind of account, a code only for a recoverable one (read from the Mailgun double), the
optional notice, every verify-code outcome, bad input, and a re-subscription that restores the
account only once Stripe reports it paid.
"""

import json
import re
import statistics
import time

import pytest
import requests

from stripe_events_support import NEXTCLOUD, STORAGE, STRIPE_KEY, wait_for, world  # noqa: F401
from devstack.doubles.pytest_plugin import keycloak_double, mailgun_double  # noqa: F401
from test_worker import migrated, workers  # noqa: F401 - fixtures

SEND = "/recovery/send-code/"
VERIFY = "/recovery/verify-code/"
CHECKOUT = "/recovery/checkout-session/"
SENT_MESSAGE = ("If this account can be recovered, we've emailed a 6-digit code to its "
                "address. It is valid for 10 minutes.")
CODE_RE = re.compile(r"(?<!\d)(\d{6})(?!\d)")
DAY = 86400


@pytest.fixture
def world_env(mailgun_double):
    return {"MAILGUN_API_BASE": mailgun_double.url, "MAILGUN_API_KEY": "key-devstack",
            "MAILGUN_DOMAIN": "mg.recovery.test", "SITE_NAME": "Harbor Cloud",
            "TASK_RETRY_DELAY": "1", "STRIPE_CHECKOUT_UI": "hosted"}


def add_user(db, username, status, expires=None, previous=None, customer=None):
    db.exec("INSERT INTO users (username, email, first_name, last_name, date_joined, "
            "subscription_status, access_expires_at, previous_items, stripe_customer_id) "
            "VALUES (?, ?, 'Ada', 'Lovelace', 1, ?, ?, ?, ?)",
            username, f"{username}@example.test", status, expires,
            json.dumps(previous) if previous is not None else None, customer)
    return db.scalar("SELECT id FROM users WHERE username = ?", username)


def send(client, identifier):
    return client.post_json(SEND, {"identifier": identifier})


def verify(client, identifier, code):
    return client.post_json(VERIFY, {"identifier": identifier, "code": code})


def mails(mg, to):
    r = requests.get(mg.url + "/_control/messages", params={"to": to}, timeout=10)
    assert r.status_code == 200
    return r.json()


def code_for(mg, to):
    """The code of the newest recovery-code mail to `to`."""
    def newest():
        codes = [m for m in mails(mg, to) if "recovery code" in m["subject"]]
        return codes[-1] if codes else None

    m = CODE_RE.search(wait_for(newest, f"a recovery code mail to {to}")["text"])
    assert m
    return m.group(1)


def drain(db):
    wait_for(lambda: db.scalar("SELECT count(*) FROM tasks WHERE name = 'send_recovery_code' "
                               "AND state IN ('queued', 'running')") == 0,
             "the recovery tasks to run")
    assert db.scalar("SELECT count(*) FROM tasks WHERE name = 'send_recovery_code' "
                     "AND state <> 'done'") == 0


def kinds(db):
    """One account of each kind (and two unknown identifiers); returns the identifiers."""
    now = int(time.time())
    add_user(db, "gone", "canceled", now + 10 * DAY, [{"price": NEXTCLOUD, "quantity": 1}])
    add_user(db, "late", "past_due", now + 5 * DAY)
    add_user(db, "live", "active")
    add_user(db, "old", "expired", now - 3 * DAY)
    add_user(db, "ended", "canceled", now - DAY)  # past its final date, not yet expired
    return {"recoverable": "gone", "recoverable_by_email": "late@example.test",
            "active": "live", "expired": "old", "ended": "ended@example.test",
            "unknown": "nobody", "unknown_email": "nobody@example.test"}


def test_page_is_there(world):
    page = world.server.get("/recovery/")
    assert page.status_code == 200
    assert 'id="recovery-form"' in page.text and "Username or email address" in page.text


def test_send_code_is_the_same_for_everyone_and_mails_only_the_recoverable(world,
                                                                            mailgun_double):
    ids = kinds(world.db)
    answers = {}
    for kind, identifier in ids.items():
        r = send(world.server.client(), identifier)
        answers[kind] = (r.status_code, r.text, r.headers.get("Content-Type"))
    assert len(set(answers.values())) == 1, answers
    status, body, _ = answers["unknown"]
    assert status == 200
    assert json.loads(body) == {"sent": True, "message": SENT_MESSAGE, "resend_after": 60}

    world.start_worker()
    drain(world.db)
    got = {m["to"][0] for m in mailgun_double.messages()}
    assert got == {"gone@example.test", "late@example.test"}, got
    text = mails(mailgun_double, "gone@example.test")[0]["text"]
    assert CODE_RE.search(text) and "gone" in text and "/recovery/" in text
    # The digits never reach the task's arguments or the log.
    code = CODE_RE.search(text).group(1)
    assert code not in json.dumps(world.db.rows("SELECT args, last_error FROM tasks"))
    assert code not in world.worker.log


def test_notice_to_addresses_without_a_recoverable_account(world, mailgun_double):
    ids = kinds(world.db)
    for identifier in (ids["unknown_email"], ids["active"], ids["expired"], ids["recoverable"],
                       ids["unknown"]):
        assert send(world.server.client(), identifier).status_code == 200
    world._start_worker({**world.env(), "RECOVERY_NOTIFY_UNKNOWN": "true"})
    drain(world.db)
    notice = mails(mailgun_double, "nobody@example.test")
    assert len(notice) == 1 and "sign up" in notice[0]["text"].lower()
    assert "/onboarding/" in notice[0]["text"] and not CODE_RE.search(notice[0]["text"])
    assert len(mails(mailgun_double, "live@example.test")) == 1  # known, active: a notice
    closed = mails(mailgun_double, "old@example.test")
    assert len(closed) == 1 and "closed" in closed[0]["text"]
    assert CODE_RE.search(mails(mailgun_double, "gone@example.test")[0]["text"])  # a code

    # One notice per address per day, however often someone asks.
    for _ in range(3):
        assert send(world.server.client(), ids["unknown_email"]).status_code == 200
    drain(world.db)
    assert len(mails(mailgun_double, "nobody@example.test")) == 1


def test_verify_outcomes(world, mailgun_double):
    ids = kinds(world.db)
    world.start_worker()
    browser = world.server.client()
    assert send(browser, ids["recoverable"]).status_code == 200
    code = code_for(mailgun_double, "gone@example.test")

    wrong = "000000" if code != "000000" else "111111"
    r = verify(browser, "gone", wrong)
    assert r.status_code == 400 and r.json() == {"recovered": False, "error": "Incorrect code"}
    # Bound to the browser that asked: another one finds nothing to verify.
    r = verify(world.server.client(), "gone", code)
    assert r.status_code == 400 and r.json()["error"].startswith("No verification in progress")
    # Unknown names get the same answer as known ones without a code.
    r = verify(browser, "nobody", code)
    assert r.status_code == 400 and r.json()["error"].startswith("No verification in progress")

    r = verify(browser, "GONE@example.test", code)  # the email names the same account
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["recovered"] is True and body["username"] == "gone"
    assert body["plan"]["lines"] == [{"name": "Nextcloud", "quantity": 1,
                                      "price_id": NEXTCLOUD, "label": "$10.00 / month"}]
    assert body["plan"]["total_label"] == "$10.00 / month"
    # The code is single use.
    assert verify(browser, "gone", code).status_code == 400
    # A reload shows the outcome again, from the session.
    page = browser.get("/recovery/")
    assert "Welcome back" in page.text and "$10.00 / month" in page.text
    assert 'id="recovery-recovered" class="recovery-outcome" tabindex="-1">' in page.text

    # The account became active meanwhile (paid through another way): nothing to recover.
    second = world.server.client()
    assert send(second, "late").status_code == 200
    late_code = code_for(mailgun_double, "late@example.test")
    world.db.exec("UPDATE users SET subscription_status = 'active' WHERE username = 'late'")
    r = verify(second, "late", late_code)
    assert r.status_code == 200
    assert r.json()["active"] is True
    assert r.json()["message"] == "Your account is already active. You can log in normally."
    # ...and a re-subscription checkout for it is refused with a clear message.
    r = second.post_json(CHECKOUT, {})
    assert r.status_code == 409 and "cannot be restored" in r.json()["error"]


def test_verify_after_the_final_date_says_closed(world, mailgun_double):
    kinds(world.db)
    world.start_worker()
    browser = world.server.client()
    assert send(browser, "gone").status_code == 200
    code = code_for(mailgun_double, "gone@example.test")
    world.db.exec("UPDATE users SET access_expires_at = 1798848000, "
                  "subscription_status = 'expired' WHERE username = 'gone'")
    r = verify(browser, "gone", code)
    assert r.status_code == 200
    body = r.json()
    assert body["recovered"] is False and body["closed"] is True
    assert body["closed_on"] == "2 January 2027"
    assert "closed on 2 January 2027" in body["message"]
    assert body["signup_url"] == "/onboarding/"


@pytest.mark.parametrize("payload", [
    {"identifier": ""}, {"identifier": "a"}, {"identifier": "x" * 300},
    {"identifier": "<script>@x"}, {"identifier": 42}, {"nothing": "here"}, "not json",
])
def test_send_code_bad_input(world, payload):
    r = world.server.client().post_json(SEND, payload)
    assert r.status_code == 400, r.text
    assert "error" in r.json()
    assert world.db.scalar("SELECT count(*) FROM tasks WHERE name = 'send_recovery_code'") == 0


def test_send_code_needs_csrf_and_is_limited(world):
    client = world.server.client()
    assert client.post_json(SEND, {"identifier": "gone"}, csrf=False).status_code == 403
    assert send(client, "gone").status_code == 200
    again = send(client, "gone")
    assert again.status_code == 429 and int(again.headers["Retry-After"]) > 0
    assert again.json()["retry_after"] > 0
    assert world.db.scalar("SELECT count(*) FROM tasks WHERE name = 'send_recovery_code'") == 1


def test_checkout_needs_a_verified_recoverable_account(world):
    client = world.server.client()
    r = client.post_json(CHECKOUT, {})
    assert r.status_code == 403
    assert r.json()["error"] == "Please confirm your account with the emailed code first."


def test_resubscribe_restores_only_when_paid(world, mailgun_double):
    world.start_worker()
    sub_id, _ = world.signup("back@example.test", "back", [(NEXTCLOUD, 1), (STORAGE, 2)])
    u = world.user("back")
    _, evs = world.st.cancel_subscription(sub_id)
    world.deliver(evs[0])
    world.wait_events(evs)
    assert world.user("back")["subscription_status"] == "canceled"
    assert world.kc_user(u["keycloak_id"])["enabled"] is False

    browser = world.server.client()
    assert send(browser, "back@example.test").status_code == 200
    body = verify(browser, "back", code_for(mailgun_double, "back@example.test")).json()
    assert body["recovered"] is True
    assert sorted((x["price_id"], x["quantity"]) for x in body["plan"]["lines"]) == \
        sorted([(NEXTCLOUD, 1), (STORAGE, 2)])

    r = browser.post_json(CHECKOUT, {})
    assert r.status_code == 200, r.text
    url = r.json()["url"]
    session_id = url.rsplit("/", 1)[1]
    assert browser.post_json(CHECKOUT, {}).json()["url"] == url  # a double click: same session
    cs = requests.get(f"{world.st.url}/v1/checkout/sessions/{session_id}",
                      params={"expand[]": "line_items"}, timeout=10,
                      headers={"Authorization": "Bearer " + STRIPE_KEY}).json()
    assert cs["customer"] == u["stripe_customer_id"] and cs["mode"] == "subscription"
    assert sorted((li["price"]["id"], li["quantity"]) for li in cs["line_items"]["data"]) == \
        sorted([(NEXTCLOUD, 1), (STORAGE, 2)])
    assert cs["metadata"]["username"] == "back"

    # Typing the code and opening the checkout change nothing.
    still = world.user("back")
    assert still["subscription_status"] == "canceled" and still["access_expires_at"]
    assert world.kc_user(u["keycloak_id"])["enabled"] is False

    new_sub, ev = world.pay(session_id)
    world.wait_events([ev])
    back = world.user("back")
    assert back["id"] == u["id"] and back["stripe_subscription_id"] == new_sub
    assert back["subscription_status"] == "active" and back["access_expires_at"] is None
    assert back["previous_items"] is None
    assert world.kc_user(u["keycloak_id"])["enabled"] is True
    assert world.seats(u["id"]) == [("nextcloud", "active")]
    assert world.items(u["id"]) == sorted([(NEXTCLOUD, 1), (STORAGE, 2)])

    page = browser.get(f"/recovery/success/?session_id={session_id}")
    assert page.status_code == 200 and "Welcome back" in page.text
    status = browser.get("/onboarding/success/status/").json()
    assert status["ready"] is True, status
    # The recovery is over: the checkout is not offered again from this browser.
    assert browser.post_json(CHECKOUT, {}).status_code == 403


def test_recovery_success_needs_a_paid_session(world):
    client = world.server.client()
    for query in ("", "?session_id=nope", "?session_id=cs_unknown123"):
        r = client.get("/recovery/success/" + query)
        assert r.status_code == 303 and r.headers["Location"] == "/recovery/"


@pytest.mark.backend("sqlite")
def test_send_code_latency_does_not_depend_on_the_account(usher, db):
    """Issue 11: the median latency gap between kinds over 1,000 requests each is under 5 ms.
    No worker runs: what differs between kinds happens there, not in the request."""
    server = usher({"RECOVERY_REQUESTS_PER_IP_PER_HOUR": "100000",
                    "SESSION_NEW_PER_IP_PER_MINUTE": "100000"})
    ids = kinds(db)
    chosen = {k: ids[k] for k in ("recoverable", "active", "expired", "unknown")}
    timings = {k: [] for k in chosen}
    for _ in range(1000):
        for kind, identifier in chosen.items():
            client = server.client()
            client.csrf()
            started = time.perf_counter()
            r = send(client, identifier)
            timings[kind].append(time.perf_counter() - started)
            assert r.status_code == 200
    medians = {k: statistics.median(v) * 1000 for k, v in timings.items()}
    gap = max(medians.values()) - min(medians.values())
    print("median send-code latency (ms):",
          {k: round(v, 3) for k, v in medians.items()}, "gap:", round(gap, 3))
    assert gap < 5, medians


def test_recovery_after_a_failed_payment_cancels_the_old_subscription(world, mailgun_double):
    """A past-due customer comes back through recovery: the new subscription replaces the old
    one, which Stripe would otherwise go on trying to charge — Usher cancels it, and its
    cancellation event does not undo the new state."""
    world.start_worker()
    old_sub, _ = world.signup("late@example.test", "late", [(NEXTCLOUD, 1)])
    world.st.update_subscription(old_sub, status="past_due", emit=False)
    ev = world.st.emit(old_sub, "invoice.payment_failed", deliver=False)
    world.deliver(ev["id"])
    world.wait_events([ev["id"]])
    u = world.user("late")
    assert u["subscription_status"] == "past_due"

    browser = world.server.client()
    assert send(browser, "late").status_code == 200
    body = verify(browser, "late", code_for(mailgun_double, "late@example.test")).json()
    assert body["recovered"] is True
    assert [x["price_id"] for x in body["plan"]["lines"]] == [NEXTCLOUD]  # the cached items
    session_id = browser.post_json(CHECKOUT, {}).json()["url"].rsplit("/", 1)[1]
    new_sub, ev = world.pay(session_id)
    world.wait_events([ev])
    wait_for(lambda: world.tasks("cancel_stale_subscription", "done"),
             "the old subscription to be canceled")
    assert world.st.state.subscriptions[old_sub]["status"] == "canceled"
    assert world.st.state.subscriptions[new_sub]["status"] == "active"
    # The old subscription's customer.subscription.deleted reached Usher and changed nothing.
    wait_for(lambda: world.db.scalar(
        "SELECT count(*) FROM stripe_events WHERE type = 'customer.subscription.deleted' "
        "AND status IN ('processed', 'ignored')"), "the old subscription's deletion event")
    world.wait_idle()
    back = world.user("late")
    assert back["stripe_subscription_id"] == new_sub
    assert back["subscription_status"] == "active" and back["payment_disabled"] in (0, False)
    assert world.kc_user(u["keycloak_id"])["enabled"] is True
