"""Email verification codes on the checkout (SPEC §2, §3): send-code and verify-code.

The server sends through the Mailgun double (devstack/doubles); the tests read the code from
the double's /_control/messages, as a person reads their inbox. Every test runs on SQLite and
PostgreSQL.
"""

import contextlib
import hashlib
import json
import re
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import mentions_old_brand, REPO

sys.path.insert(0, str(REPO))
from devstack.doubles.pytest_plugin import mailgun_double  # noqa: E402,F401  (fixture)

SEND = "/onboarding/checkout/send-code/"
VERIFY = "/onboarding/checkout/verify-code/"
SENT = {"sent": True, "resend_after": 60}
VERIFIED = {"verified": True}
MAIL_FAILED = "We couldn't send the email right now. Please try again in a minute."
INCORRECT = "Incorrect code"
EXPIRED = "Code expired. Please request a new code."
NONE = "No verification in progress. Please request a new code."
TOO_MANY = "Too many attempts. Please request a new code."
CODE_RE = re.compile(r"(?<!\d)(\d{6})(?!\d)")
SITE = "Acme & Co Cloud"


# --- fixtures and helpers ------------------------------------------------------------------

def mailgun_env(mg):
    return {"MAILGUN_API_BASE": mg.url, "MAILGUN_API_KEY": "key-devstack",
            "MAILGUN_DOMAIN": "mg.example.test", "SITE_NAME": SITE,
            "SUPPORT_EMAIL": "help@example.test"}


@pytest.fixture
def server(usher, mailgun_double):
    return usher(mailgun_env(mailgun_double))


@pytest.fixture
def busy_server(usher, mailgun_double):
    """More request threads, so concurrent submissions really overlap in the database."""
    return usher({**mailgun_env(mailgun_double), "WEB_THREADS": "16"})


def inbox(mg, to):
    """Messages to `to`, oldest first, through the double's control API."""
    r = requests.get(mg.url + "/_control/messages", params={"to": to}, timeout=10)
    assert r.status_code == 200
    return r.json()


def latest_code(mg, to):
    msgs = inbox(mg, to)
    assert msgs, f"no email to {to}"
    m = CODE_RE.search(msgs[-1]["text"] or "")
    assert m, msgs[-1]["text"]
    return m.group(1)


def send(client, email):
    return client.post_json(SEND, {"email": email})


def verify(client, email, code):
    return client.post_json(VERIFY, {"email": email, "code": code})


def sent_code(client, mg, email="ada@example.com"):
    r = send(client, email)
    assert r.status_code == 200, r.text
    assert r.json() == SENT
    return latest_code(mg, email)


def other(code):
    return f"{(int(code) + 1) % 1000000:06d}"


def onboarding_state(db, client):
    id_hash = hashlib.sha256(client.session_cookie.encode()).hexdigest()
    raw = db.scalar("SELECT data FROM sessions WHERE id_hash = ?", id_hash)
    return json.loads(raw or "{}").get("onboarding", {})


@contextlib.contextmanager
def codes_locked(db):
    """Holds a write lock on the codes (the database on SQLite, the rows on PostgreSQL)."""
    with db.connect() as conn:
        if db.kind == "sqlite":
            conn.isolation_level = None
            conn.execute("BEGIN IMMEDIATE")
        else:
            conn.execute("SELECT id FROM verification_codes FOR UPDATE")
        yield
        conn.execute("COMMIT") if db.kind == "sqlite" else conn.commit()


def parallel_posts(server, client, path, body, n, db):
    """n simultaneous POSTs in client's session; returns the responses.

    While they arrive the codes stay write-locked for a second, so every request the server
    is working on has read the code by the time the lock goes: they all decide on the same
    stale read, and only the conditional UPDATEs can keep the outcome right."""
    headers = {"Content-Type": "application/json", "X-CSRF-Token": client.csrf(),
               "Cookie": "; ".join(f"{k}={v}" for k, v in client.cookies.items())}
    barrier = threading.Barrier(n)

    def one(_):
        barrier.wait()
        return requests.post(server.url + path, data=json.dumps(body), headers=headers,
                             timeout=60)

    with ThreadPoolExecutor(max_workers=n) as pool:
        with codes_locked(db):
            futures = [pool.submit(one, i) for i in range(n)]
            time.sleep(1.5)
        return [f.result() for f in futures]


# --- sending -------------------------------------------------------------------------------

def test_send_and_verify(server, mailgun_double, db):
    c = server.client()
    r = send(c, "  Ada@Example.COM ")
    assert r.status_code == 200, r.text
    assert r.json() == SENT
    msgs = inbox(mailgun_double, "ada@example.com")
    assert len(msgs) == 1
    m = msgs[0]
    assert m["to"] == ["ada@example.com"]
    assert m["subject"] == f"Your {SITE} verification code"
    assert SITE in m["from"] and "mg.example.test" in m["from"]
    assert m["tags"] == ["verification-code"]
    code = CODE_RE.search(m["text"]).group(1)
    assert f"Your {SITE} verification code is" in m["text"]  # text is not HTML-escaped
    assert "10 minutes" in m["text"] and "help@example.test" in m["text"]
    assert code in m["html"] and "Acme &amp; Co Cloud" in m["html"]
    assert not mentions_old_brand(m["text"] + m["html"])

    r = verify(c, "ada@EXAMPLE.com", code)
    assert r.status_code == 200, r.text
    assert r.json() == VERIFIED
    assert onboarding_state(db, c)["email_verified"] == "ada@example.com"


def test_code_is_never_stored_or_logged_in_clear(server, mailgun_double, db):
    c = server.client()
    code = sent_code(c, mailgun_double)
    verify(c, "ada@example.com", other(code))
    rows = db.dict_rows("SELECT * FROM verification_codes")
    assert len(rows) == 1
    row = rows[0]
    assert row["purpose"] == "signup" and row["email"] == "ada@example.com"
    assert re.fullmatch(r"[0-9a-f]{64}", row["code_hmac"])
    for value in row.values():
        assert code not in str(value)
    id_hash = hashlib.sha256(c.session_cookie.encode()).hexdigest()
    assert row["session_hash"] == id_hash
    assert code not in json.dumps(db.rows("SELECT name, args FROM tasks"))
    assert code not in json.dumps(db.rows("SELECT data FROM sessions"))
    assert code not in server.log


def test_resend_cooldown_and_supersession(server, mailgun_double):
    c = server.client()
    first = sent_code(c, mailgun_double)
    r = send(c, "ada@example.com")
    assert r.status_code == 429
    assert "wait" in r.json()["error"]
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert r.json()["retry_after"] == int(r.headers["Retry-After"])
    assert len(inbox(mailgun_double, "ada@example.com")) == 1
    server.advance_clock(60)
    second = sent_code(c, mailgun_double)
    assert len(inbox(mailgun_double, "ada@example.com")) == 2
    if first != second:
        r = verify(c, "ada@example.com", first)
        assert r.json() == {"verified": False, "error": INCORRECT, "attempts_left": 4}
    assert verify(c, "ada@example.com", second).json() == VERIFIED


def test_five_codes_per_address_per_hour(server, mailgun_double):
    c = server.client()
    for i in range(5):
        if i:
            server.advance_clock(60)
        assert send(c, "ada@example.com").status_code == 200
    server.advance_clock(60)
    r = send(c, "ada@example.com")
    assert r.status_code == 429
    assert r.json()["error"] == ("Too many codes were requested for this address. "
                                 "Please try again later.")
    assert len(inbox(mailgun_double, "ada@example.com")) == 5
    # Other addresses are not affected.
    assert send(c, "bob@example.com").status_code == 200


def test_per_client_hourly_limit(server, mailgun_double):
    c = server.client()
    for i in range(20):
        r = send(c, f"user{i}@example.com")
        assert r.status_code == 200, (i, r.text)
    r = send(c, "user20@example.com")
    assert r.status_code == 429
    assert "network" in r.json()["error"]
    assert inbox(mailgun_double, "user20@example.com") == []


def test_bad_requests(server, mailgun_double):
    c = server.client()
    for path in (SEND, VERIFY):
        r = c.post_json(path, "not json")
        assert r.status_code == 400 and r.json() == {"error": "Invalid request"}
        r = c.post_json(path, "[1, 2]")
        assert r.status_code == 400 and r.json() == {"error": "Invalid request"}
        r = c.post_json(path, {})
        assert r.status_code == 400 and "email" in r.json()["fields"]
        r = c.post_json(path, {"email": ["ada@example.com"], "code": "123456"})
        assert r.status_code == 400 and "email" in r.json()["fields"]
    r = c.post_json(VERIFY, {"email": "ada@example.com"})
    assert r.status_code == 400 and r.json()["fields"] == ["code"]
    r = c.post_json(VERIFY, {"email": "ada@example.com", "code": 123456})
    assert r.status_code == 400 and r.json()["fields"] == ["code"]
    r = send(c, "not-an-email")
    assert r.status_code == 400
    assert r.json()["errors"]["email"] == "Enter a valid email address."
    r = verify(c, "not-an-email", "123456")
    assert r.status_code == 400
    assert r.json() == {"verified": False, "error": "Enter a valid email address."}
    assert c.get(SEND).status_code == 405
    assert mailgun_double.messages() == []


def test_csrf_is_required(server, mailgun_double):
    c = server.client()
    c.csrf()
    r = c.post_json(SEND, {"email": "ada@example.com"}, csrf=False)
    assert r.status_code == 403
    r = c.post_json(SEND, {"email": "ada@example.com"}, headers={"X-CSRF-Token": "0" * 64})
    assert r.status_code == 403
    assert mailgun_double.messages() == []


# --- verifying -----------------------------------------------------------------------------

def test_wrong_code(server, mailgun_double, db):
    c = server.client()
    code = sent_code(c, mailgun_double)
    r = verify(c, "ada@example.com", other(code))
    assert r.status_code == 400
    assert r.json() == {"verified": False, "error": INCORRECT, "attempts_left": 4}
    assert "email_verified" not in onboarding_state(db, c)


def test_no_verification_in_progress(server, mailgun_double):
    c = server.client()
    r = verify(c, "ada@example.com", "123456")
    assert r.status_code == 400
    assert r.json() == {"verified": False, "error": NONE, "attempts_left": 0}
    # A code for another address does not count for this one.
    code = sent_code(c, mailgun_double, "bob@example.com")
    assert verify(c, "ada@example.com", code).json()["error"] == NONE


def test_expired_code(server, mailgun_double):
    c = server.client()
    code = sent_code(c, mailgun_double)
    server.advance_clock(601)
    r = verify(c, "ada@example.com", code)
    assert r.status_code == 400
    assert r.json() == {"verified": False, "error": EXPIRED, "attempts_left": 0}


def test_exhausted_code(server, mailgun_double):
    c = server.client()
    code = sent_code(c, mailgun_double)
    for left in (4, 3, 2, 1, 0):
        assert verify(c, "ada@example.com", other(code)).json() == {
            "verified": False, "error": INCORRECT, "attempts_left": left}
    for attempt in (other(code), code):
        r = verify(c, "ada@example.com", attempt)
        assert r.status_code == 400
        assert r.json() == {"verified": False, "error": TOO_MANY, "attempts_left": 0}


def test_code_is_single_use(server, mailgun_double):
    c = server.client()
    code = sent_code(c, mailgun_double)
    assert verify(c, "ada@example.com", code).json() == VERIFIED
    r = verify(c, "ada@example.com", code)
    assert r.status_code == 400
    assert r.json() == {"verified": False, "error": NONE, "attempts_left": 0}


def test_code_is_bound_to_the_session(server, mailgun_double, db):
    alice = server.client()
    code = sent_code(alice, mailgun_double)
    mallory = server.client()
    r = verify(mallory, "ada@example.com", code)
    assert r.json() == {"verified": False, "error": NONE, "attempts_left": 0}
    assert "email_verified" not in onboarding_state(db, mallory)
    assert verify(alice, "ada@example.com", code).json() == VERIFIED


def test_fifty_parallel_wrong_guesses_evaluate_five(busy_server, mailgun_double, db):
    c = busy_server.client()
    code = sent_code(c, mailgun_double)
    replies = parallel_posts(busy_server, c, VERIFY,
                             {"email": "ada@example.com", "code": other(code)}, 50, db)
    assert all(r.status_code == 400 for r in replies), [r.status_code for r in replies]
    errors = [r.json()["error"] for r in replies]
    assert errors.count(INCORRECT) == 5, errors
    assert errors.count(TOO_MANY) == 45, errors
    left = sorted(r.json()["attempts_left"] for r in replies if r.json()["error"] == INCORRECT)
    assert left == [0, 1, 2, 3, 4], left
    assert db.scalar("SELECT attempts FROM verification_codes") == 5
    # Dead even for the right digits.
    assert verify(c, "ada@example.com", code).json() == {
        "verified": False, "error": TOO_MANY, "attempts_left": 0}


def test_sixteen_parallel_right_submissions_verify_once(busy_server, mailgun_double, db):
    c = busy_server.client()
    code = sent_code(c, mailgun_double)
    replies = parallel_posts(busy_server, c, VERIFY,
                             {"email": "ada@example.com", "code": code}, 16, db)
    bodies = [r.json() for r in replies]
    assert bodies.count(VERIFIED) == 1, bodies
    assert bodies.count({"verified": False, "error": NONE, "attempts_left": 0}) == 15, bodies
    assert onboarding_state(db, c)["email_verified"] == "ada@example.com"


# --- Mailgun failures ----------------------------------------------------------------------

def test_mailgun_down_invalidates_the_code(server, mailgun_double, db):
    c = server.client()
    mailgun_double.down()
    try:
        r = send(c, "ada@example.com")
    finally:
        mailgun_double.up()
    assert r.status_code == 503
    assert r.json() == {"error": MAIL_FAILED}
    rows = db.dict_rows("SELECT superseded, consumed_at FROM verification_codes")
    assert len(rows) == 1 and rows[0]["superseded"] in (1, True)
    # Nothing usable is left: whatever digits are tried, no verification is in progress.
    assert verify(c, "ada@example.com", "123456").json() == {"verified": False, "error": NONE, "attempts_left": 0}
    # Asking again after a minute works.
    server.advance_clock(60)
    code = sent_code(c, mailgun_double)
    assert verify(c, "ada@example.com", code).json() == VERIFIED


def test_mailgun_error_answer(server, mailgun_double, db):
    c = server.client()
    mailgun_double.fault(500, count=5)
    r = send(c, "ada@example.com")
    assert r.status_code == 503
    assert r.json() == {"error": MAIL_FAILED}
    assert db.scalar("SELECT COUNT(*) FROM verification_codes WHERE consumed_at IS NULL "
                     "AND NOT superseded") == 0


def test_mailgun_not_configured(usher):
    server = usher()
    c = server.client()
    r = send(c, "ada@example.com")
    assert r.status_code == 503
    assert r.json() == {"error": MAIL_FAILED}
