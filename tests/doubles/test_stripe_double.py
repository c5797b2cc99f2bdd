"""The Stripe double over plain HTTP: auth, versions, form encoding, idempotency, checkout
sessions, hosted checkout and portal pages, signed webhooks (checked with the official
`stripe` package), the control API."""

import json
import re

import pytest
import requests
import stripe

from devstack.doubles.pytest_plugin import WEBHOOK_SECRET
from devstack.doubles.stripe_double import PINNED_VERSION

KEY = "sk_test_doubles"
H = {"Authorization": f"Bearer {KEY}"}


def post(st, path, data, headers=None, **kw):
    return requests.post(st.url + path, data=data, headers={**H, **(headers or {})},
                         timeout=10, **kw)


def get(st, path, params=None, headers=None):
    return requests.get(st.url + path, params=params, headers={**H, **(headers or {})},
                        timeout=10)


def ctl(st, path, body=None, method="POST"):
    r = requests.request(method, st.url + "/_control" + path, json=body, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def hosted_session(st, **extra):
    data = {"mode": "subscription", "line_items[0][price]": "price_basic_monthly",
            "line_items[0][quantity]": "1", "line_items[1][price]": "price_storage_monthly",
            "line_items[1][quantity]": "2", "customer_email": "ada@example.test",
            "metadata[username]": "ada", "metadata[first_name]": "Ada",
            "success_url": "http://127.0.0.1:8000/onboarding/success/?session_id="
                           "{CHECKOUT_SESSION_ID}",
            "cancel_url": "http://127.0.0.1:8000/onboarding/cancel/"}
    data.update(extra)
    r = post(st, "/v1/checkout/sessions", data)
    assert r.status_code == 200, r.text
    return r.json()


def verified(delivery_request):
    """The event of a recorded webhook request, verified by the official SDK."""
    hdr = delivery_request["headers"].get("Stripe-Signature")
    return stripe.Webhook.construct_event(delivery_request["body"], hdr, WEBHOOK_SECRET)


# --- authentication, version, errors -------------------------------------------------------

def test_requires_a_secret_test_key(stripe_double):
    r = requests.get(stripe_double.url + "/v1/customers/cus_x", timeout=5)
    assert r.status_code == 401
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and "API key" in err["message"]
    for bad in ("Bearer pk_test_123", "Bearer sk_live_123", "Token sk_test_1"):
        r = requests.get(stripe_double.url + "/v1/customers/cus_x",
                         headers={"Authorization": bad}, timeout=5)
        assert r.status_code == 401, bad
        assert set(r.json()) == {"error"}
    r = get(stripe_double, "/v1/customers/cus_x")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "resource_missing"


def test_records_stripe_version_and_defaults_to_the_pinned_one(stripe_double):
    r = get(stripe_double, "/v1/customers/cus_nope")
    assert r.headers["Stripe-Version"] == PINNED_VERSION
    r = get(stripe_double, "/v1/customers/cus_nope", headers={"Stripe-Version": "2025-03-31.basil"})
    assert r.headers["Stripe-Version"] == "2025-03-31.basil"
    reqs = ctl(stripe_double, "/requests", method="GET")
    assert [q["stripe_version"] for q in reqs] == [None, "2025-03-31.basil"]
    r = get(stripe_double, "/v1/customers/cus_nope", headers={"Stripe-Version": "yesterday"})
    assert r.status_code == 400


def test_unknown_url_and_unknown_parameter(stripe_double):
    r = get(stripe_double, "/v1/nothing")
    assert r.status_code == 404 and "Unrecognized request URL" in r.json()["error"]["message"]
    r = post(stripe_double, "/v1/checkout/sessions",
             {"mode": "subscription", "line_items[0][price]": "price_basic_monthly",
              "line_items[0][quantity]": "1", "success_url": "http://x/", "colour": "red"})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "colour"


# --- checkout session create / retrieve ----------------------------------------------------

def test_hosted_session_shape_and_nested_form(stripe_double):
    s = hosted_session(stripe_double)
    assert s["id"].startswith("cs_test_") and s["object"] == "checkout.session"
    assert s["mode"] == "subscription" and s["status"] == "open"
    assert s["payment_status"] == "unpaid" and s["ui_mode"] == "hosted_page"
    assert s["url"] == f"{stripe_double.url}/checkout/{s['id']}"
    assert s["client_secret"] is None and s["subscription"] is None
    assert s["metadata"] == {"username": "ada", "first_name": "Ada"}
    assert s["customer_email"] == "ada@example.test"
    assert s["amount_total"] == 900 + 2 * 300
    r = get(stripe_double, f"/v1/checkout/sessions/{s['id']}/line_items")
    assert [(li["price"]["id"], li["quantity"]) for li in r.json()["data"]] == [
        ("price_basic_monthly", 1), ("price_storage_monthly", 2)]


def test_embedded_session(stripe_double):
    ok = {"mode": "subscription", "line_items[0][price]": "price_basic_monthly",
          "line_items[0][quantity]": "1", "ui_mode": "embedded_page",
          "customer_email": "e@example.test",
          "return_url": "http://127.0.0.1:8000/onboarding/success/?session_id="
                        "{CHECKOUT_SESSION_ID}"}
    r = post(stripe_double, "/v1/checkout/sessions", ok)
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["url"] is None and s["client_secret"].startswith(s["id"] + "_secret_")
    assert s["ui_mode"] == "embedded_page"
    r = post(stripe_double, "/v1/checkout/sessions", {**ok, "success_url": "http://x/"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "success_url"
    r = post(stripe_double, "/v1/checkout/sessions",
             {k: v for k, v in ok.items() if k != "return_url"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "return_url"
    # hosted sessions take no return_url
    r = post(stripe_double, "/v1/checkout/sessions", {**ok, "ui_mode": "hosted_page"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "return_url"


def test_ui_mode_names_follow_the_version(stripe_double):
    base = {"mode": "subscription", "line_items[0][price]": "price_basic_monthly",
            "line_items[0][quantity]": "1", "return_url": "http://x/?s={CHECKOUT_SESSION_ID}"}
    r = post(stripe_double, "/v1/checkout/sessions", {**base, "ui_mode": "embedded"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "ui_mode"
    r = post(stripe_double, "/v1/checkout/sessions", {**base, "ui_mode": "embedded"},
             headers={"Stripe-Version": "2025-09-30.clover"})
    assert r.status_code == 200 and r.json()["ui_mode"] == "embedded"
    r = post(stripe_double, "/v1/checkout/sessions", {**base, "ui_mode": "embedded_page"},
             headers={"Stripe-Version": "2025-09-30.clover"})
    assert r.status_code == 400


def test_customer_and_customer_email_are_exclusive(stripe_double):
    cus = ctl(stripe_double, "/customers", {"email": "c@example.test"})
    r = post(stripe_double, "/v1/checkout/sessions",
             {"mode": "subscription", "line_items[0][price]": "price_basic_monthly",
              "line_items[0][quantity]": "1", "success_url": "http://x/",
              "customer": cus["id"], "customer_email": "c@example.test"})
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"
    s = hosted_session(stripe_double, customer=cus["id"], customer_email="")
    assert s["customer"] == cus["id"]
    r = post(stripe_double, "/v1/checkout/sessions",
             {"mode": "subscription", "line_items[0][price]": "price_basic_monthly",
              "line_items[0][quantity]": "1", "success_url": "http://x/",
              "customer": "cus_missing"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "resource_missing"


@pytest.mark.parametrize("extra,param", [
    ({f"metadata[k{i}]": "v" for i in range(51)}, "metadata"),
    ({"metadata[" + "k" * 41 + "]": "v"}, "metadata[" + "k" * 41 + "]"),
    ({"metadata[k]": "v" * 501}, "metadata[k]"),
])
def test_metadata_limits(stripe_double, extra, param):
    data = {"mode": "subscription", "line_items[0][price]": "price_basic_monthly",
            "line_items[0][quantity]": "1", "success_url": "http://x/", **extra}
    r = post(stripe_double, "/v1/checkout/sessions", data)
    assert r.status_code == 400
    assert r.json()["error"]["param"] == param


def test_unknown_price_and_missing_quantity(stripe_double):
    base = {"mode": "subscription", "success_url": "http://x/"}
    r = post(stripe_double, "/v1/checkout/sessions",
             {**base, "line_items[0][price]": "price_nope", "line_items[0][quantity]": "1"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "resource_missing"
    assert r.json()["error"]["param"] == "line_items[0][price]"
    r = post(stripe_double, "/v1/checkout/sessions",
             {**base, "line_items[0][price]": "price_basic_monthly"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "line_items[0][quantity]"
    r = post(stripe_double, "/v1/checkout/sessions", base)
    assert r.status_code == 400 and r.json()["error"]["param"] == "line_items"
    # a price created through the control API is then accepted
    ctl(stripe_double, "/prices", {"id": "price_nope", "unit_amount": 100,
                                   "billing_period": "annual"})
    r = post(stripe_double, "/v1/checkout/sessions",
             {**base, "line_items[0][price]": "price_nope", "line_items[0][quantity]": "1"})
    assert r.status_code == 200


def test_catalog_file_in_usher_format(tmp_path):
    from devstack.doubles.stripe_double import StripeDouble
    cat = tmp_path / "catalog.json"
    cat.write_text(json.dumps({"products": [
        {"name": "Cloud", "slug": "cloud", "stripe_product_id": "prod_cloud",
         "prices": [{"stripe_price_id": "price_cloud_m", "billing_period": "monthly",
                     "amount": 1200, "currency": "EUR"},
                    {"stripe_price_id": "price_cloud_y", "billing_period": "annual",
                     "amount": 12000, "currency": "EUR"}]},
        {"name": "Soon", "slug": "soon", "is_coming_soon": True}]}))
    d = StripeDouble(catalog=str(cat)).start()
    try:
        r = get(d, "/v1/prices/price_cloud_y")
        assert r.status_code == 200
        p = r.json()
        assert (p["product"], p["unit_amount"], p["currency"], p["recurring"]["interval"]) \
            == ("prod_cloud", 12000, "eur", "year")
        ctl(d, "/reset")  # reset reloads the catalog
        assert get(d, "/v1/prices/price_cloud_m").status_code == 200
    finally:
        d.stop()


def test_idempotency(stripe_double):
    data = {"mode": "subscription", "line_items[0][price]": "price_basic_monthly",
            "line_items[0][quantity]": "1", "success_url": "http://x/"}
    k = {"Idempotency-Key": "8d1c7b43-2a6e-4f7e-9a51-3b0f0c2e9d11"}
    a = post(stripe_double, "/v1/checkout/sessions", data, k)
    b = post(stripe_double, "/v1/checkout/sessions", data, k)
    assert a.status_code == b.status_code == 200
    assert a.json()["id"] == b.json()["id"]
    assert b.headers.get("Idempotent-Replayed") == "true"
    c = post(stripe_double, "/v1/checkout/sessions", {**data, "metadata[x]": "1"}, k)
    assert c.status_code == 400
    assert c.json()["error"]["type"] == "idempotency_error"
    d = post(stripe_double, "/v1/checkout/sessions", data, {"Idempotency-Key": "other"})
    assert d.json()["id"] != a.json()["id"]
    assert len(ctl(stripe_double, "/state", method="GET")["checkout_sessions"]) == 2


def test_official_sdk_as_client(stripe_double):
    """stripe-python's own encoding (expand[0]=…, nested dicts) against the double."""
    client = stripe.StripeClient(KEY, base_addresses={"api": stripe_double.url},
                                 stripe_version=PINNED_VERSION, max_network_retries=0)
    s = client.v1.checkout.sessions.create(params={
        "mode": "subscription", "ui_mode": "embedded_page",
        "line_items": [{"price": "price_basic_monthly", "quantity": 1}],
        "customer_email": "sdk@example.test", "metadata": {"username": "sdk"},
        "subscription_data": {"metadata": {"username": "sdk"}},
        "return_url": "http://127.0.0.1:8000/onboarding/success/?session_id="
                      "{CHECKOUT_SESSION_ID}"},
        options={"idempotency_key": "sdk-1"})
    assert s.client_secret and s.url is None
    stripe_double.pay(s.id)
    got = client.v1.checkout.sessions.retrieve(s.id, params={"expand": ["subscription",
                                                                        "customer"]})
    assert got.status == "complete" and got.payment_status == "paid"
    assert got.customer.email == "sdk@example.test"
    assert got.subscription.metadata["username"] == "sdk"
    assert got.subscription["items"].data[0].price.id == "price_basic_monthly"


# --- hosted checkout page and webhooks -----------------------------------------------------

def test_hosted_checkout_flow(stripe_double, webhook_receiver):
    s = hosted_session(stripe_double)
    page = requests.get(s["url"], timeout=5)
    assert page.status_code == 200 and 'id="pay"' in page.text
    action = re.search(r'<form method="post" action="([^"]+)"', page.text).group(1)
    r = requests.post(stripe_double.url + action, data={"name": "Ada L"},
                      allow_redirects=False, timeout=10)
    assert r.status_code == 303
    assert r.headers["Location"] == ("http://127.0.0.1:8000/onboarding/success/?session_id="
                                     + s["id"])
    reqs = webhook_receiver.wait_for(1)
    assert len(reqs) == 1 and reqs[0]["path"] == "/webhook"
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", reqs[0]["headers"]["Stripe-Signature"])
    ev = verified(reqs[0])
    assert ev.type == "checkout.session.completed" and ev.id.startswith("evt_")
    assert ev.api_version == PINNED_VERSION and ev.livemode is False
    obj = ev.data.object
    assert obj.id == s["id"] and obj.status == "complete" and obj.mode == "subscription"
    assert obj.customer.startswith("cus_") and obj.subscription.startswith("sub_")
    assert obj.customer_details.email == "ada@example.test"
    deliveries = ctl(stripe_double, "/deliveries", method="GET")
    assert [(d["type"], d["status"]) for d in deliveries] == [
        ("checkout.session.completed", 200)]

    r = get(stripe_double, f"/v1/checkout/sessions/{s['id']}",
            params=[("expand[]", "subscription"), ("expand[]", "customer")])
    full = r.json()
    assert full["status"] == "complete" and full["payment_status"] == "paid"
    assert full["customer"]["email"] == "ada@example.test"
    sub = full["subscription"]
    assert sub["status"] == "active" and sub["customer"] == full["customer"]["id"]
    items = sub["items"]["data"]
    assert [(i["price"]["id"], i["price"]["product"], i["quantity"]) for i in items] == [
        ("price_basic_monthly", "prod_basic", 1), ("price_storage_monthly", "prod_storage", 2)]
    assert all(i["current_period_end"] > sub["created"] for i in items)
    assert "current_period_end" not in sub  # per item since basil
    r = get(stripe_double, f"/v1/subscriptions/{sub['id']}")
    assert r.json()["items"]["data"][0]["price"]["id"] == "price_basic_monthly"
    r = get(stripe_double, f"/v1/customers/{full['customer']['id']}")
    assert r.json()["email"] == "ada@example.test"
    # a paid session cannot be paid again
    again = requests.post(stripe_double.url + action, allow_redirects=False, timeout=5)
    assert again.status_code == 200 and "complete" in again.text
    assert len(webhook_receiver.requests) == 1


def test_hosted_page_asks_for_email_and_declines(stripe_double, webhook_receiver):
    s = hosted_session(stripe_double, customer_email="")
    page = requests.get(s["url"], timeout=5)
    assert 'name="email"' in page.text or "name='email'" in page.text
    pay = f"{stripe_double.url}/checkout/{s['id']}/pay"
    r = requests.post(pay, data={"email": "x@example.test", "card": "4000 0000 0000 0002"},
                      allow_redirects=False, timeout=5)
    assert r.status_code == 200 and "declined" in r.text
    assert webhook_receiver.requests == []
    r = requests.post(pay, data={"email": "x@example.test"}, allow_redirects=False, timeout=5)
    assert r.status_code == 303
    assert verified(webhook_receiver.requests[0]).data.object.customer_details.email \
        == "x@example.test"


def test_embedded_completion_redirects_to_return_url(stripe_double):
    r = post(stripe_double, "/v1/checkout/sessions",
             {"mode": "subscription", "line_items[0][price]": "price_basic_monthly",
              "line_items[0][quantity]": "1", "ui_mode": "embedded_page",
              "customer_email": "e@example.test",
              "return_url": "http://app.test/done?sid={CHECKOUT_SESSION_ID}"})
    sid = r.json()["id"]
    r = requests.post(f"{stripe_double.url}/checkout/{sid}/pay", allow_redirects=False,
                      timeout=5)
    assert r.status_code == 303 and r.headers["Location"] == f"http://app.test/done?sid={sid}"


def test_signature_tampering_options(stripe_double, webhook_receiver):
    s = hosted_session(stripe_double)
    _, evs = stripe_double.pay(s["id"], deliver=False)
    eid = evs[-1]
    ctl(stripe_double, f"/events/{eid}/deliver", {"signature": "invalid"})
    ctl(stripe_double, f"/events/{eid}/deliver", {"timestamp_offset": -400})
    ctl(stripe_double, f"/events/{eid}/deliver", {"secret": "whsec_other"})
    ctl(stripe_double, f"/events/{eid}/deliver",
        {"extra_signatures": ["v1=" + "0" * 64, "v0=abc"]})
    reqs = webhook_receiver.wait_for(4)
    for bad in reqs[:3]:
        with pytest.raises(stripe.SignatureVerificationError):
            verified(bad)
    assert verified(reqs[3]).id == eid
    ctl(stripe_double, f"/events/{eid}/deliver", {"omit_signature": True})
    assert "Stripe-Signature" not in webhook_receiver.wait_for(5)[4]["headers"]


# --- billing portal ------------------------------------------------------------------------

def test_billing_portal_cancel(stripe_double, webhook_receiver):
    s = hosted_session(stripe_double)
    paid, _ = stripe_double.pay(s["id"])
    r = post(stripe_double, "/v1/billing_portal/sessions",
             {"customer": paid["customer"], "return_url": "http://127.0.0.1:8000/dashboard/"})
    assert r.status_code == 200, r.text
    ps = r.json()
    assert ps["object"] == "billing_portal.session" and ps["url"].endswith("/portal/" + ps["id"])
    page = requests.get(ps["url"], timeout=5)
    assert "Cancel subscription" in page.text
    r = requests.post(f"{ps['url']}/cancel", data={"subscription": paid["subscription"]},
                      allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["Location"] == "http://127.0.0.1:8000/dashboard/"
    ev = verified(webhook_receiver.wait_for(2)[1])
    assert ev.type == "customer.subscription.deleted"
    assert ev.data.object.id == paid["subscription"] and ev.data.object.status == "canceled"
    sub = get(stripe_double, f"/v1/subscriptions/{paid['subscription']}").json()
    assert sub["status"] == "canceled" and sub["canceled_at"] and sub["ended_at"]


def test_billing_portal_errors(stripe_double):
    r = post(stripe_double, "/v1/billing_portal/sessions", {"customer": "cus_missing"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "resource_missing"
    r = post(stripe_double, "/v1/billing_portal/sessions", {})
    assert r.status_code == 400 and r.json()["error"]["param"] == "customer"
    cus = ctl(stripe_double, "/customers", {"email": "p@example.test"})
    ctl(stripe_double, "/config", {"portal_configured": False})
    r = post(stripe_double, "/v1/billing_portal/sessions", {"customer": cus["id"]})
    assert r.status_code == 400
    assert "default configuration has not been created" in r.json()["error"]["message"]


# --- control API: events -------------------------------------------------------------------

def _paid_subscription(st):
    s = hosted_session(st)
    paid, _ = st.pay(s["id"], deliver=False)
    return paid["subscription"]


def test_invoice_event_shapes(stripe_double, webhook_receiver):
    sub = _paid_subscription(stripe_double)
    new = ctl(stripe_double, f"/subscriptions/{sub}/emit", {"type": "invoice.payment_failed"})
    inv = new["event"]["data"]["object"]
    assert inv["object"] == "invoice" and "subscription" not in inv
    assert inv["parent"]["subscription_details"]["subscription"] == sub
    assert inv["status"] == "open" and inv["paid"] is False
    old = ctl(stripe_double, f"/subscriptions/{sub}/emit",
              {"type": "invoice.payment_failed", "invoice_shape": "old"})
    assert old["event"]["data"]["object"]["subscription"] == sub
    # the shape follows the webhook endpoint's API version
    ctl(stripe_double, "/config", {"webhook_api_version": "2024-06-20"})
    paid = ctl(stripe_double, f"/subscriptions/{sub}/emit", {"type": "invoice.paid"})
    assert paid["event"]["api_version"] == "2024-06-20"
    assert paid["event"]["data"]["object"]["subscription"] == sub
    assert paid["event"]["data"]["object"]["status"] == "paid"
    types = [verified(r).type for r in webhook_receiver.wait_for(3)]
    assert types == ["invoice.payment_failed", "invoice.payment_failed", "invoice.paid"]


def test_update_emits_previous_attributes(stripe_double, webhook_receiver):
    sub = _paid_subscription(stripe_double)
    out = ctl(stripe_double, f"/subscriptions/{sub}/update",
              {"status": "past_due",
               "items": [{"price": "price_basic_annual", "quantity": 1}]})
    ev = out["events"][0]
    assert ev["type"] == "customer.subscription.updated"
    assert ev["data"]["object"]["status"] == "past_due"
    assert ev["data"]["previous_attributes"]["status"] == "active"
    assert ev["data"]["previous_attributes"]["items"]["data"][0]["price"]["id"] \
        == "price_basic_monthly"
    assert out["deliveries"][0]["status"] == 200
    r = get(stripe_double, f"/v1/subscriptions/{sub}").json()
    assert [i["price"]["id"] for i in r["items"]["data"]] == ["price_basic_annual"]
    for t in ("customer.subscription.created", "customer.subscription.updated",
              "customer.subscription.deleted"):
        e = ctl(stripe_double, f"/subscriptions/{sub}/emit", {"type": t})["event"]
        assert e["type"] == t and e["data"]["object"]["id"] == sub
    assert [verified(r).type for r in webhook_receiver.wait_for(4)][0] \
        == "customer.subscription.updated"


def test_deliver_n_times_and_in_a_given_order(stripe_double, webhook_receiver):
    sub = _paid_subscription(stripe_double)
    a = ctl(stripe_double, "/events", {"type": "customer.subscription.updated",
                                       "subscription": sub, "created": 1000})["event"]
    b = ctl(stripe_double, "/events", {"type": "customer.subscription.deleted",
                                       "subscription": sub, "created": 2000})["event"]
    assert webhook_receiver.requests == []  # created, not delivered
    ctl(stripe_double, f"/events/{a['id']}/deliver", {"times": 3})
    ctl(stripe_double, "/deliver", {"events": [b["id"], a["id"]]})
    got = [verified(r) for r in webhook_receiver.wait_for(5)]
    assert [e.id for e in got] == [a["id"]] * 3 + [b["id"], a["id"]]
    assert [e.created for e in got[3:]] == [2000, 1000]
    webhook_receiver.status = 500
    d = ctl(stripe_double, f"/events/{a['id']}/deliver")["deliveries"]
    assert d[0]["status"] == 500
    log = ctl(stripe_double, "/deliveries", method="GET")
    assert [x["status"] for x in log] == [200] * 5 + [500]
    assert all(x["event_id"] in (a["id"], b["id"]) for x in log)


def test_unreachable_webhook_is_recorded(stripe_double, webhook_receiver):
    sub = _paid_subscription(stripe_double)
    webhook_receiver.stop()
    d = ctl(stripe_double, f"/subscriptions/{sub}/emit",
            {"type": "customer.subscription.updated"})["deliveries"][0]
    assert d["status"] is None and d["error"]


def test_extra_events_option(stripe_double, webhook_receiver):
    ctl(stripe_double, "/config", {"extra_events": True})
    _, evs = stripe_double.pay(hosted_session(stripe_double)["id"])
    types = [verified(r).type for r in webhook_receiver.wait_for(4)]
    assert types == ["customer.created", "customer.subscription.created", "invoice.paid",
                     "checkout.session.completed"]


def test_faults_and_reset(stripe_double):
    ctl(stripe_double, "/faults", {"status": 500, "count": 1, "path": "/v1/checkout"})
    data = {"mode": "subscription", "line_items[0][price]": "price_basic_monthly",
            "line_items[0][quantity]": "1", "success_url": "http://x/"}
    k = {"Idempotency-Key": "retry-me"}
    r = post(stripe_double, "/v1/checkout/sessions", data, k)
    assert r.status_code == 500 and r.json()["error"]["type"] == "api_error"
    r = post(stripe_double, "/v1/checkout/sessions", data, k)  # injected faults aren't saved
    assert r.status_code == 200
    ctl(stripe_double, "/faults", {"status": 429, "count": -1})
    assert get(stripe_double, "/v1/customers/cus_x").status_code == 429
    ctl(stripe_double, "/faults", {"clear": True})
    ctl(stripe_double, "/reset")
    st = ctl(stripe_double, "/state", method="GET")
    assert st["checkout_sessions"] == [] and st["events"] == [] and st["requests"] == []


def test_subscription_list_for_reconciliation(stripe_double):
    sub = _paid_subscription(stripe_double)
    other = ctl(stripe_double, "/subscriptions",
                {"email": "o@example.test", "items": [{"price": "price_basic_monthly"}]})
    ctl(stripe_double, f"/subscriptions/{other['subscription']['id']}/cancel",
        {"deliver": False})
    ids = [s["id"] for s in get(stripe_double, "/v1/subscriptions").json()["data"]]
    assert ids == [sub]
    ids = [s["id"] for s in get(stripe_double, "/v1/subscriptions",
                                {"status": "all"}).json()["data"]]
    assert set(ids) == {sub, other["subscription"]["id"]}
