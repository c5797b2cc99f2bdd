"""The email tasks of SPEC §8 through a real `usher worker`: notify_subscription_canceled and
notify_payment_failed against the Mailgun double (From, subject, text and HTML, the recovery
and billing links, the final date, a Mailgun outage retried, a re-run not sending twice, a
user without an address failed for good), and send_keycloak_password_reset_email against the
Keycloak double (execute-actions-email recorded, an unknown id failed for good, Keycloak's
mail failure retried)."""

import json
import sys
import time

import pytest

from conftest import REPO, mentions_old_brand

sys.path.insert(0, str(REPO))
from devstack.doubles.pytest_plugin import keycloak_double, mailgun_double  # noqa: E402,F401
from test_worker import insert_task, migrated, task_row, workers  # noqa: E402,F401

DOMAIN = "mg.notify.test"
BASE = "https://portal.example.test"
FINAL = 1798848000  # 2027-01-02 12:00:00 UTC
FINAL_TEXT = "2 January 2027"
ADMIN = {"KEYCLOAK_ADMIN_CLIENT_ID": "usher-admin",
         "KEYCLOAK_ADMIN_CLIENT_SECRET": "usher-admin-secret"}


def mail_env(mg, **extra):
    env = {"MAILGUN_API_BASE": mg.url, "MAILGUN_API_KEY": "key-devstack",
           "MAILGUN_DOMAIN": DOMAIN, "SITE_NAME": "Harbor Cloud",
           "SUPPORT_EMAIL": "help@harbor.example.test", "PUBLIC_BASE_URL": BASE,
           "TASK_RETRY_DELAY": "1"}
    env.update(extra)
    return env


def kc_env(kc, **extra):
    env = {"KEYCLOAK_SERVER_URL": kc.url, "KEYCLOAK_REALM": kc.realm,
           "OIDC_RP_CLIENT_ID": "usher", "OIDC_RP_CLIENT_SECRET": "usher-secret",
           "TASK_RETRY_DELAY": "1", **ADMIN}
    env.update(extra)
    return env


def add_user(db, username, email, status, expires=FINAL, first_name="Ada"):
    db.exec("INSERT INTO users (username, email, first_name, date_joined, subscription_status, "
            "access_expires_at) VALUES (?, ?, ?, 1, ?, ?)",
            username, email, first_name, status, expires)
    return db.scalar("SELECT id FROM users WHERE username = ?", username)


def wait_for(predicate, what, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def wait_state(db, task_id, state):
    def reached():
        row = task_row(db, task_id)
        return row if row["state"] == state else None

    return wait_for(reached, f"task {task_id} to be {state}")


def wait_retry_pending(db, task_id):
    """The first attempt failed and the task waits for its retry (not failed for good)."""
    def pending():
        row = task_row(db, task_id)
        return row if (row["attempts"] or 0) >= 1 and row["state"] == "queued" else None

    return wait_for(pending, "a failed first attempt")


def sent_markers(db, task_id):
    return db.rows("SELECT actor, detail FROM audit_log WHERE action = 'email.sent' "
                   "AND target_type = 'task' AND target_id = ?", str(task_id))


def test_canceled_email_has_links_and_date_and_is_sent_once(db, workers, mailgun_double):
    uid = add_user(db, "ada", "ada@example.test", "canceled")
    tid = insert_task(db, "notify_subscription_canceled", args=json.dumps({"user_id": uid}))
    w = workers(mail_env(mailgun_double))
    wait_state(db, tid, "done")

    msgs = mailgun_double.messages(to="ada@example.test")
    assert len(msgs) == 1
    m = msgs[0]
    assert m["from"] == f"Harbor Cloud <no-reply@{DOMAIN}>"
    assert m["domain"] == DOMAIN
    assert "canceled" in m["subject"] and "Harbor Cloud" in m["subject"]
    assert "subscription-canceled" in m["tags"]
    for body in (m["text"], m["html"]):
        assert body and f"{BASE}/recovery/" in body
        assert FINAL_TEXT in body
        assert "Ada" in body and "Harbor Cloud" in body
        assert "help@harbor.example.test" in body
        assert not mentions_old_brand(body)
    assert '<a href="https://portal.example.test/recovery/"' in m["html"]
    assert "<" not in m["text"]
    assert len(sent_markers(db, tid)) == 1

    # A re-run of the same task (a worker died before the row was marked done) sends nothing.
    db.exec("UPDATE tasks SET state = 'queued', run_at = 0 WHERE id = ?", tid)
    wait_for(lambda: "email already sent" in w.log, "the re-run to notice the marker")
    wait_state(db, tid, "done")
    assert len(mailgun_double.messages(to="ada@example.test")) == 1
    assert len(sent_markers(db, tid)) == 1


def test_payment_failed_is_retried_while_mailgun_is_down(db, workers, mailgun_double):
    uid = add_user(db, "bea", "bea@example.test", "past_due", first_name="")
    mailgun_double.fault(500, count=-1)
    tid = insert_task(db, "notify_payment_failed", args=json.dumps({"user_id": uid}))
    workers(mail_env(mailgun_double))
    row = wait_retry_pending(db, tid)
    assert "Mailgun" in row["last_error"]
    assert mailgun_double.messages() == []
    with mailgun_double.lock:
        mailgun_double.state.faults = []
    row = wait_state(db, tid, "done")
    assert row["attempts"] >= 2

    msgs = mailgun_double.messages(to="bea@example.test")
    assert len(msgs) == 1
    m = msgs[0]
    assert m["from"] == f"Harbor Cloud <no-reply@{DOMAIN}>"
    assert "payment" in m["subject"].lower()
    for body in (m["text"], m["html"]):
        assert f"{BASE}/dashboard/" in body
        assert f"{BASE}/recovery/" in body
        assert "Hello," in body  # no first name: no dangling space
    assert "payment-failed" in m["tags"]


@pytest.mark.parametrize("logo", [None, "https://cdn.harbor.example.test/logo.png"])
def test_notices_carry_the_brand_the_links_and_the_long_date(db, workers, mailgun_double, logo):
    # The brand comes from settings only: colour, logo (a site-relative default is made
    # absolute under PUBLIC_BASE_URL), site name, support address; the date is the long one.
    extra = {"BRAND_COLOR": "#a1b2c3"}
    if logo:
        extra["SITE_LOGO_URL"] = logo
    expected_logo = logo or f"{BASE}/static/logo.svg"
    uid = add_user(db, "hal", "hal@example.test", "past_due", first_name="Hal")
    failed = insert_task(db, "notify_payment_failed", args=json.dumps({"user_id": uid}))
    canceled = insert_task(db, "notify_subscription_canceled", args=json.dumps({"user_id": uid}))
    workers(mail_env(mailgun_double, **extra))
    wait_state(db, failed, "done")
    wait_state(db, canceled, "done")
    msgs = {m["tags"][0]: m for m in mailgun_double.messages(to="hal@example.test")}
    assert sorted(msgs) == ["payment-failed", "subscription-canceled"]
    for tag, m in msgs.items():
        assert m["from"] == f"Harbor Cloud <no-reply@{DOMAIN}>"
        for body in (m["text"], m["html"]):
            assert f"{BASE}/recovery/" in body
            assert FINAL_TEXT in body and "(UTC)" in body
            assert "help@harbor.example.test" in body
            assert "Harbor Cloud" in body
            assert "1798848000" not in body and "2027-01-02" not in body
        assert "#a1b2c3" in m["html"]
        assert f'<img src="{expected_logo}" alt="Harbor Cloud"' in m["html"]
        assert expected_logo not in m["text"]
        assert "<" not in m["text"]
    # Payment failed keeps its billing hint, first, with the recovery link as the fallback.
    pf = msgs["payment-failed"]
    for body in (pf["text"], pf["html"]):
        assert f"{BASE}/dashboard/" in body
        assert "Update your payment" in body or "Update your payment method" in body
        assert body.index(f"{BASE}/dashboard/") < body.index(f"{BASE}/recovery/")
    assert f'<a href="{BASE}/dashboard/"' in pf["html"]
    assert f'<a href="{BASE}/recovery/"' in msgs["subscription-canceled"]["html"]


@pytest.mark.parametrize("case", ["no_email", "deleted", "bad_args"])
def test_unsendable_notice_fails_for_good(db, workers, mailgun_double, case):
    if case == "no_email":
        args = {"user_id": add_user(db, "cy", "", "canceled")}
        expected = "no email address"
    elif case == "deleted":
        args = {"user_id": 424242}
        expected = "does not exist"
    else:
        args = {"user": "cy"}
        expected = "user_id"
    tid = insert_task(db, "notify_subscription_canceled", args=json.dumps(args))
    workers(mail_env(mailgun_double))
    row = wait_state(db, tid, "failed")
    assert row["attempts"] == 1, "a permanent failure is not retried"
    assert expected in row["last_error"]
    assert mailgun_double.messages() == []


def test_notice_for_a_paying_user_again_is_not_sent(db, workers, mailgun_double):
    uid = add_user(db, "dan", "dan@example.test", "active")
    tid = insert_task(db, "notify_payment_failed", args=json.dumps({"user_id": uid}))
    workers(mail_env(mailgun_double))
    wait_state(db, tid, "done")
    assert mailgun_double.messages() == []
    assert sent_markers(db, tid) == []


def test_notice_for_a_closed_account_is_not_sent(db, workers, mailgun_double):
    """Closed for good before the notice went out: nothing to send, and not a failure."""
    uid = add_user(db, "eve", "eve@example.test", "expired")
    tid = insert_task(db, "notify_subscription_canceled", args=json.dumps({"user_id": uid}))
    w = workers(mail_env(mailgun_double))
    wait_state(db, tid, "done")
    assert mailgun_double.messages() == []
    assert "the account was closed for good" in w.log


def test_password_email_goes_through_keycloak_once(db, workers, keycloak_double):
    kc = keycloak_double
    user = kc.add_user("erin", email="erin@example.test", firstName="Erin", lastName="Ek")
    tid = insert_task(db, "send_keycloak_password_reset_email",
                      args=json.dumps({"keycloak_id": user["id"]}))
    w = workers(kc_env(kc))
    wait_state(db, tid, "done")
    emails = kc.emails
    assert len(emails) == 1
    e = emails[0]
    assert e["user_id"] == user["id"] and e["to"] == "erin@example.test"
    assert e["actions"] == ["UPDATE_PASSWORD"]
    assert e["client_id"] == "usher"
    assert e["lifespan"] == 86400
    assert len(sent_markers(db, tid)) == 1

    db.exec("UPDATE tasks SET state = 'queued', run_at = 0 WHERE id = ?", tid)
    wait_for(lambda: "email already sent" in w.log, "the re-run to notice the marker")
    wait_state(db, tid, "done")
    assert len(kc.emails) == 1


def test_password_email_for_unknown_keycloak_user_fails_for_good(db, workers, keycloak_double):
    tid = insert_task(db, "send_keycloak_password_reset_email",
                      args=json.dumps({"keycloak_id": "0b7c1a52-0000-4000-8000-000000000000"}))
    workers(kc_env(keycloak_double))
    row = wait_state(db, tid, "failed")
    assert row["attempts"] == 1
    assert "not found" in row["last_error"]
    assert keycloak_double.emails == []


@pytest.mark.backend("sqlite")
def test_password_email_is_retried_when_keycloak_cannot_mail(db, workers, keycloak_double):
    kc = keycloak_double
    user = kc.add_user("fay", email="fay@example.test", firstName="Fay", lastName="Fo")
    kc.config["smtp_broken"] = True
    tid = insert_task(db, "send_keycloak_password_reset_email",
                      args=json.dumps({"keycloak_id": user["id"]}))
    workers(kc_env(kc))
    wait_retry_pending(db, tid)
    assert kc.emails == []
    kc.config["smtp_broken"] = False
    row = wait_state(db, tid, "done")
    assert row["attempts"] >= 2
    assert len(kc.emails) == 1


def test_password_email_for_a_disabled_user_settles_with_nothing_to_do(db, workers,
                                                                         keycloak_double):
    # A canceled or unpaid account is disabled in Keycloak, which refuses the email (400):
    # that is not a failure to retry or to show operators, just nothing to send.
    kc = keycloak_double
    user = kc.add_user("gil", email="gil@example.test", firstName="Gil", lastName="Go",
                       enabled=False)
    tid = insert_task(db, "send_keycloak_password_reset_email",
                      args=json.dumps({"keycloak_id": user["id"]}))
    w = workers(kc_env(kc))
    row = wait_state(db, tid, "done")
    assert row["attempts"] == 1
    assert row["last_error"] is None
    assert kc.emails == []
    assert sent_markers(db, tid) == []
    wait_for(lambda: "disabled in Keycloak" in w.log, "the info line")
    line = next(ln for ln in w.log.splitlines() if "disabled in Keycloak" in ln)
    assert "level=info" in line, line
