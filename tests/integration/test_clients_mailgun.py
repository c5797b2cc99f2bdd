"""The C Mailgun client (src/integrations/mailgun.c, the header contract the email tasks code
against) with the Mailgun double: multipart messages, the From address, tags, mailing-list
upserts, 429/5xx handling, configuration errors."""

import sys
from pathlib import Path

from test_clients_support import ECONFIG, EINVAL, EUPSTREAM, OK, Driver

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from devstack.doubles.pytest_plugin import mailgun_double  # noqa: E402,F401

DOMAIN = "mg.usher.test"
LIST = "waitlist@mg.usher.test"


def driver(mg, **more):
    settings = {"MAILGUN_API_BASE": mg.url, "MAILGUN_API_KEY": "key-devstack",
                "MAILGUN_DOMAIN": DOMAIN, "SITE_NAME": "Acme Cloud"}
    return Driver(**{**settings, **more})


def test_send_multipart_message(mailgun_double):
    mg = mailgun_double
    out = driver(mg).call("mailgun.send", to="zoe@example.test", subject="Your code",
                          text="Code: 123456\n", html="<p>Code: <b>123456</b></p>",
                          tag="verification")
    assert out["rc"] == OK, out
    assert out["result"].startswith("<") and out["result"].endswith(f"@{DOMAIN}>")
    (m,) = mg.messages()
    assert m["id"] == out["result"]
    assert m["domain"] == DOMAIN
    assert m["from"] == f"Acme Cloud <no-reply@{DOMAIN}>"
    assert m["to"] == ["zoe@example.test"]
    assert m["subject"] == "Your code"
    assert m["text"] == "Code: 123456\n"
    assert m["html"] == "<p>Code: <b>123456</b></p>"
    assert m["tags"] == ["verification"]


def test_contract_entry_points_and_optional_parts(mailgun_double):
    mg = mailgun_double
    out = driver(mg, SITE_NAME="Zoë's \"Shop\", Inc.").run(
        ("mailgun.send", {"to": "a@example.test", "subject": "Text only", "text": "hi",
                          "plain": True}),
        ("mailgun.send", {"to": "b@example.test", "subject": "HTML only", "html": "<p>hi</p>"}),
        ("mailgun.list_add", {"list": LIST, "member": "a@example.test", "plain": True}))
    assert [o["rc"] for o in out] == [OK, OK, OK]
    a, b = mg.messages()
    assert a["html"] in (None, "") and a["tags"] == []
    assert b["text"] in (None, "")
    assert a["from"] == f"\"Zoë's \\\"Shop\\\", Inc.\" <no-reply@{DOMAIN}>"


def test_list_member_upsert_is_idempotent(mailgun_double):
    mg = mailgun_double
    out = driver(mg).run(("mailgun.list_add", {"list": LIST, "member": "zoe@example.test"}),
                         ("mailgun.list_add", {"list": LIST, "member": "zoe@example.test"}))
    assert [o["rc"] for o in out] == [OK, OK]
    (member,) = mg.list_members(LIST)
    assert member["address"] == "zoe@example.test"
    assert member["subscribed"] is True


def test_rate_limit_and_server_errors(mailgun_double):
    mg = mailgun_double
    d = driver(mg)
    # A message is not sent twice from here: 429 and 500 are reported at once.
    mg.fault(429, count=1)
    out = d.call("mailgun.send", to="zoe@example.test", subject="s", text="t")
    assert out["rc"] == EUPSTREAM and out["error"]["status"] == 429
    mg.fault(500, count=1)
    out = d.call("mailgun.send", to="zoe@example.test", subject="s", text="t")
    assert out["rc"] == EUPSTREAM and out["error"]["status"] == 500
    assert mg.messages() == []
    sends = [r for r in mg.state.requests if r["path"].endswith("/messages")]
    assert [r["status"] for r in sends] == [429, 500]
    # Joining a list is idempotent: retried after 429 (Retry-After honoured) and 5xx.
    mg.fault(429, count=1)
    mg.fault(503, count=1)
    out = d.call("mailgun.list_add", list=LIST, member="zoe@example.test")
    assert out["rc"] == OK
    joins = [r["status"] for r in mg.state.requests if "/members" in r["path"]]
    assert joins == [429, 503, 200]
    mg.fault(429, count=-1)
    out = d.call("mailgun.list_add", list=LIST, member="amy@example.test")
    assert out["rc"] == EUPSTREAM and out["error"]["status"] == 429


def test_wrong_key_unknown_domain_and_unconfigured(mailgun_double):
    mg = mailgun_double
    out = driver(mg, MAILGUN_API_KEY="key-wrong").call("mailgun.send", to="a@example.test",
                                                       subject="s", text="t")
    assert out["rc"] == EUPSTREAM and out["error"]["status"] == 401
    mg.config["domains"] = ["other.test"]
    out = driver(mg).call("mailgun.send", to="a@example.test", subject="s", text="t")
    assert out["rc"] == EUPSTREAM and out["error"]["status"] == 404
    assert "Domain not found" in out["error"]["excerpt"]
    d = Driver(MAILGUN_API_BASE=mg.url)
    out = d.run(("mailgun.send", {"to": "a@example.test", "subject": "s", "text": "t",
                                  "plain": True}),
                ("mailgun.list_add", {"list": LIST, "member": "a@example.test", "plain": True}))
    assert [o["rc"] for o in out] == [ECONFIG, ECONFIG]
    assert mg.state.requests[-1]["status"] == 404  # nothing more reached the double


def test_header_injection_is_refused(mailgun_double):
    mg = mailgun_double
    out = driver(mg).run(
        ("mailgun.send", {"to": "a@example.test", "subject": "Hi\r\nBcc: x@evil.test",
                          "text": "t"}),
        ("mailgun.send", {"to": "a@example.test\nBcc: x@evil.test", "subject": "s",
                          "text": "t"}),
        ("mailgun.send", {"to": "a@example.test", "subject": "no body"}))
    assert [o["rc"] for o in out] == [EINVAL, EINVAL, EINVAL]
    assert mg.state.requests == []
