"""The Mailgun double over plain HTTP: auth, sending (multipart and urlencoded), mailing
lists, fault injection, the inbox pages and the control API."""

import re

import requests

AUTH = ("api", "key-devstack")


def send(mg, fields, auth=AUTH, multipart=True, domain="mg.example.test"):
    url = f"{mg.url}/v3/{domain}/messages"
    if multipart:
        files = [(k, (None, v)) for k, v in fields]
        return requests.post(url, files=files, auth=auth, timeout=5)
    return requests.post(url, data=fields, auth=auth, timeout=5)


MSG = [("from", "Usher <no-reply@mg.example.test>"), ("to", "ada@example.test"),
       ("subject", "Your verification code"), ("text", "Your code is 482913."),
       ("html", "<p>Your code is <b>482913</b>.</p><script>alert(1)</script>"),
       ("o:tag", "verification"), ("h:X-Usher-Request", "req-1")]


def test_auth(mailgun_double):
    for auth in (None, ("api", "wrong"), ("user", "key-devstack")):
        r = send(mailgun_double, MSG, auth=auth)
        assert r.status_code == 401, auth
    assert mailgun_double.messages() == []


def test_send_multipart(mailgun_double):
    r = send(mailgun_double, MSG)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["message"] == "Queued. Thank you."
    assert re.fullmatch(r"<[^<>@]+@mg\.example\.test>", body["id"])
    msgs = requests.get(mailgun_double.url + "/_control/messages", timeout=5).json()
    assert len(msgs) == 1
    m = msgs[0]
    assert m["id"] == body["id"] and m["to"] == ["ada@example.test"]
    assert m["from"] == "Usher <no-reply@mg.example.test>"
    assert m["tags"] == ["verification"] and m["headers"] == {"X-Usher-Request": "req-1"}
    assert m["text"] == "Your code is 482913." and "<b>482913</b>" in m["html"]
    assert mailgun_double.latest_code("ada@example.test") == "482913"
    latest = requests.get(mailgun_double.url + "/_control/messages/latest",
                          params={"to": "ada@example.test"}, timeout=5).json()
    assert latest["code"] == "482913"


def test_send_urlencoded_and_several_recipients(mailgun_double):
    fields = [("from", "a@mg.example.test"), ("to", "b@example.test, c@example.test"),
              ("to", "d@example.test"), ("subject", "Hi"), ("text", "hello")]
    r = send(mailgun_double, fields, multipart=False)
    assert r.status_code == 200, r.text
    assert mailgun_double.messages()[0]["to"] == ["b@example.test", "c@example.test",
                                                  "d@example.test"]
    assert len(mailgun_double.messages(to="c@example.test")) == 1


def test_missing_fields(mailgun_double):
    r = send(mailgun_double, [f for f in MSG if f[0] != "from"])
    assert r.status_code == 400 and "from" in r.json()["message"]
    r = send(mailgun_double, [f for f in MSG if f[0] != "to"])
    assert r.status_code == 400 and "to" in r.json()["message"]
    r = send(mailgun_double, [f for f in MSG if f[0] not in ("text", "html")])
    assert r.status_code == 400
    assert mailgun_double.messages() == []


def test_mailing_list_members(mailgun_double):
    url = f"{mailgun_double.url}/v3/lists/waitlist@mg.example.test/members"
    r = requests.post(url, data={"address": "w@example.test", "subscribed": "yes"},
                      auth=AUTH, timeout=5)
    assert r.status_code == 200, r.text
    assert r.json()["member"]["address"] == "w@example.test"
    r = requests.post(url, files=[("address", (None, "w@example.test")),
                                  ("subscribed", (None, "yes"))], auth=AUTH, timeout=5)
    assert r.status_code == 400 and "already exists" in r.json()["message"]
    r = requests.post(url, data={"address": "w@example.test", "subscribed": "yes",
                                 "upsert": "yes"}, auth=AUTH, timeout=5)
    assert r.status_code == 200
    assert [m["address"] for m in mailgun_double.list_members("waitlist@mg.example.test")] \
        == ["w@example.test"]
    r = requests.post(url, data={"subscribed": "yes"}, auth=AUTH, timeout=5)
    assert r.status_code == 400
    r = requests.post(url, data={"address": "x@example.test"}, timeout=5)
    assert r.status_code == 401


def test_strict_lists(mailgun_double):
    requests.post(mailgun_double.url + "/_control/config", json={"auto_create_lists": False},
                  timeout=5)
    r = requests.post(f"{mailgun_double.url}/v3/lists/nope@mg.example.test/members",
                      data={"address": "a@example.test"}, auth=AUTH, timeout=5)
    assert r.status_code == 404


def test_fault_injection(mailgun_double):
    requests.post(mailgun_double.url + "/_control/faults", json={"status": 429, "count": 2},
                  timeout=5)
    assert send(mailgun_double, MSG).status_code == 429
    assert send(mailgun_double, MSG).status_code == 429
    assert send(mailgun_double, MSG).status_code == 200
    requests.post(mailgun_double.url + "/_control/faults",
                  json={"status": 500, "count": -1, "path": "/v3/lists"}, timeout=5)
    r = requests.post(f"{mailgun_double.url}/v3/lists/l@mg.example.test/members",
                      data={"address": "a@example.test"}, auth=AUTH, timeout=5)
    assert r.status_code == 500
    assert send(mailgun_double, MSG).status_code == 200
    requests.post(mailgun_double.url + "/_control/faults", json={"clear": True}, timeout=5)
    r = requests.post(f"{mailgun_double.url}/v3/lists/l@mg.example.test/members",
                      data={"address": "a@example.test"}, auth=AUTH, timeout=5)
    assert r.status_code == 200
    assert len(mailgun_double.messages()) == 2


def test_inbox_pages(mailgun_double):
    send(mailgun_double, MSG)
    send(mailgun_double, [("from", "a@mg.example.test"), ("to", "bob@example.test"),
                          ("subject", "Second <one>"), ("text", "no code here")])
    page = requests.get(mailgun_double.url + "/inbox", timeout=5)
    assert page.status_code == 200
    assert page.text.index("Second &lt;one&gt;") < page.text.index("Your verification code")
    assert "482913" in page.text
    assert "<one>" not in page.text
    one = requests.get(mailgun_double.url + "/inbox/1", timeout=5)
    assert one.status_code == 200 and "Your code is 482913." in one.text
    assert "<script>alert(1)</script>" not in one.text  # HTML only inside a sandboxed srcdoc
    assert requests.get(mailgun_double.url + "/inbox/9", timeout=5).status_code == 404


def test_reset(mailgun_double):
    send(mailgun_double, MSG)
    requests.post(mailgun_double.url + "/_control/reset", timeout=5)
    assert requests.get(mailgun_double.url + "/_control/messages", timeout=5).json() == []
