"""The C Stripe client (src/integrations/stripe_client.c) against the stateful Stripe double:
checkout sessions in both UI modes, retrieval with expansion, subscriptions, the Billing
Portal, idempotency, retries per Stripe's rules, and error mapping. Request shapes against the
official stripe-mock: tests/conformance/test_clients_stripe.py."""

import sys
import time
from pathlib import Path

import pytest

from test_clients_support import (ECONFIG, ECONFLICT, EINVAL, ENOTFOUND, EUPSTREAM, OK,
                                  Driver)

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from devstack.doubles.pytest_plugin import stripe_double, webhook_receiver  # noqa: E402,F401

SUCCESS = "http://127.0.0.1:8000/onboarding/success/?session_id={CHECKOUT_SESSION_ID}"
CANCEL = "http://127.0.0.1:8000/onboarding/cancel/"


def driver(st, ui="hosted", **more):
    return Driver(STRIPE_API_BASE=st.url, STRIPE_SECRET_KEY="sk_test_usher_client",
                  STRIPE_CHECKOUT_UI=ui, **more)


def checkout_args(key="chk-1", **over):
    a = {"items": [{"price": "price_basic_monthly", "quantity": 1},
                   {"price": "price_storage_monthly", "quantity": 2}],
         "customer_email": "zoe@example.test",
         "metadata": {"first_name": "Zoë", "last_name": "Zed", "username": "zoe"},
         "return_url": SUCCESS, "cancel_url": CANCEL, "idempotency_key": key}
    a.update(over)
    return a


def api_requests(st, path=None):
    return [r for r in st.requests if path is None or r["path"] == path]


def test_hosted_checkout_session(stripe_double):
    st = stripe_double
    out = driver(st).call("stripe.checkout", **checkout_args())
    assert out["rc"] == OK, out
    s = out["result"]
    assert s["object"] == "checkout.session"
    assert s["mode"] == "subscription"
    assert s["ui_mode"] == "hosted_page"
    assert s["url"].startswith(st.url + "/checkout/")
    assert s["client_secret"] is None
    assert s["customer_email"] == "zoe@example.test"
    assert s["metadata"] == {"first_name": "Zoë", "last_name": "Zed", "username": "zoe"}
    assert s["success_url"] == SUCCESS
    assert s["cancel_url"] == CANCEL
    (req,) = api_requests(st, "/v1/checkout/sessions")
    assert req["stripe_version"] == "2026-06-24.dahlia"
    assert req["idempotency_key"] == "chk-1"
    assert req["params"]["line_items"] == [{"price": "price_basic_monthly", "quantity": "1"},
                                           {"price": "price_storage_monthly", "quantity": "2"}]
    line_items = st.session(s["id"])["_line_items"]
    assert [(li["price"], li["quantity"]) for li in line_items] == [
        ("price_basic_monthly", 1), ("price_storage_monthly", 2)]


def test_embedded_checkout_session(stripe_double):
    st = stripe_double
    out = driver(st, ui="embedded").call(
        "stripe.checkout", **checkout_args(subscription_metadata={"username": "zoe"}))
    assert out["rc"] == OK, out
    s = out["result"]
    assert s["ui_mode"] == "embedded_page"
    assert s["client_secret"]
    assert s["url"] is None
    assert s["return_url"] == SUCCESS
    (req,) = api_requests(st, "/v1/checkout/sessions")
    assert "success_url" not in req["params"] and "cancel_url" not in req["params"]
    assert req["params"]["subscription_data"] == {"metadata": {"username": "zoe"}}


def test_older_pinned_version_uses_the_old_ui_mode_names(stripe_double):
    st = stripe_double
    out = driver(st, STRIPE_API_VERSION="2025-03-31.basil").call("stripe.checkout",
                                                                 **checkout_args())
    assert out["rc"] == OK, out
    assert out["result"]["ui_mode"] == "hosted"
    assert api_requests(st)[0]["stripe_version"] == "2025-03-31.basil"


def test_customer_and_email_together_are_refused_locally(stripe_double):
    st = stripe_double
    out = driver(st).call("stripe.checkout", **checkout_args(customer="cus_123"))
    assert out["rc"] == EINVAL
    assert st.requests == []


def test_existing_customer_and_unknown_customer(stripe_double):
    st = stripe_double
    cus = st.add_customer(email="old@example.test")
    d = driver(st)
    out = d.run(("stripe.checkout", checkout_args("k-a", customer=cus["id"],
                                                  customer_email=None)),
                ("stripe.checkout", checkout_args("k-b", customer="cus_missing",
                                                  customer_email=None)))
    assert out[0]["rc"] == OK and out[0]["result"]["customer"] == cus["id"]
    assert out[1]["rc"] == EUPSTREAM
    e = out[1]["error"]
    assert (e["status"], e["type"], e["code"], e["param"]) == (
        400, "invalid_request_error", "resource_missing", "customer")
    assert "No such customer" in e["message"]
    assert e["request_id"].startswith("req_")


def test_retrieve_session_with_expansion_and_subscription(stripe_double):
    st = stripe_double
    d = driver(st)
    created = d.call("stripe.checkout", **checkout_args())
    sid = created["result"]["id"]
    st.pay(sid, deliver=False)
    out = d.run(("stripe.session", {"id": sid}), ("stripe.session", {"id": "cs_test_nope"}))
    s = out[0]["result"]
    assert out[0]["rc"] == OK
    assert s["status"] == "complete"
    assert isinstance(s["customer"], dict) and s["customer"]["object"] == "customer"
    assert isinstance(s["subscription"], dict) and s["subscription"]["object"] == "subscription"
    assert out[0]["email"] == "zoe@example.test"
    assert out[1]["rc"] == ENOTFOUND
    get = [r for r in st.requests if r["method"] == "GET"][0]
    assert get["params"] == {"expand": ["subscription", "customer"]}
    assert get["idempotency_key"] is None

    sub_id = s["subscription"]["id"]
    out = d.call("stripe.subscription", id=sub_id)
    assert out["rc"] == OK
    assert out["result"]["status"] == "active"
    assert [(i["price"], i["product"], i["quantity"]) for i in out["items"]] == [
        ("price_basic_monthly", "prod_basic", 1), ("price_storage_monthly", "prod_storage", 2)]
    assert all(i["current_period_end"] > time.time() for i in out["items"])


def test_billing_portal(stripe_double):
    st = stripe_double
    cus = st.add_customer(email="zoe@example.test")
    d = driver(st)
    out = d.call("stripe.portal", customer=cus["id"], return_url="http://127.0.0.1:8000/",
                 idempotency_key="portal-1")
    assert out["rc"] == OK
    assert out["result"].startswith(st.url + "/portal/")
    st.config["portal_configured"] = False
    out = d.call("stripe.portal", customer=cus["id"], return_url="http://127.0.0.1:8000/",
                 idempotency_key="portal-2")
    assert out["rc"] == ECONFIG
    assert out["error"]["portal_not_configured"] is True
    assert out["error"]["status"] == 400
    assert out["result"] is None


def test_idempotency_replay_and_conflict(stripe_double):
    st = stripe_double
    d = driver(st)
    out = d.run(("stripe.checkout", checkout_args("same-key")),
                ("stripe.checkout", checkout_args("same-key")),
                ("stripe.checkout", checkout_args("same-key", customer_email="x@example.test")))
    assert out[0]["rc"] == OK and out[1]["rc"] == OK
    assert out[0]["result"]["id"] == out[1]["result"]["id"]
    assert len(st.state.sessions) == 1
    assert out[2]["rc"] == ECONFLICT
    assert out[2]["error"]["type"] == "idempotency_error"


def test_retries_follow_stripes_rules(stripe_double):
    st = stripe_double
    d = driver(st)
    # a 500 is retried with the same Idempotency-Key, and succeeds
    st.state.faults.append({"status": 500, "count": 1, "path": "/v1/checkout/sessions",
                            "method": None, "should_retry": None})
    out = d.call("stripe.checkout", **checkout_args("retry-1"))
    assert out["rc"] == OK
    reqs = api_requests(st, "/v1/checkout/sessions")
    assert [r["status"] for r in reqs] == [500, 200]
    assert {r["idempotency_key"] for r in reqs} == {"retry-1"}

    # Stripe-Should-Retry: false wins over the 5xx rule
    st.state.requests.clear()
    st.state.faults.append({"status": 503, "count": 1, "path": None, "method": None,
                            "should_retry": False})
    out = d.call("stripe.subscription", id="sub_none")
    assert out["rc"] == EUPSTREAM and out["error"]["status"] == 503
    assert len(st.requests) == 1

    # Stripe-Should-Retry: true makes even a 4xx worth another try
    st.state.requests.clear()
    st.state.faults.append({"status": 429, "count": 1, "path": None, "method": None,
                            "should_retry": True})
    out = d.call("stripe.checkout", **checkout_args("retry-2"))
    assert out["rc"] == OK
    assert [r["status"] for r in st.requests] == [429, 200]

    # a plain 429 without the header is not retried
    st.state.requests.clear()
    st.state.faults.append({"status": 429, "count": 1, "path": None, "method": None,
                            "should_retry": None})
    out = d.call("stripe.checkout", **checkout_args("retry-3"))
    assert out["rc"] == EUPSTREAM and out["error"]["code"] == "rate_limit"
    assert len(st.requests) == 1

    # three 500s: gives up after three attempts
    st.state.requests.clear()
    st.state.faults.append({"status": 500, "count": 3, "path": None, "method": None,
                            "should_retry": None})
    out = d.call("stripe.checkout", **checkout_args("retry-4"))
    assert out["rc"] == EUPSTREAM and out["error"]["type"] == "api_error"
    assert len(st.requests) == 3


def test_connection_failure_is_retried_then_reported(stripe_double):
    st = stripe_double
    url = st.url
    st.stop()
    out = Driver(STRIPE_API_BASE=url, STRIPE_SECRET_KEY="sk_test_x").call(
        "stripe.subscription", id="sub_1")
    assert out["rc"] == EUPSTREAM
    assert out["error"]["kind"] == "connect"


def test_wrong_key_and_missing_key(stripe_double):
    st = stripe_double
    out = Driver(STRIPE_API_BASE=st.url, STRIPE_SECRET_KEY="sk_live_not_for_tests").call(
        "stripe.subscription", id="sub_1")
    assert out["rc"] == EUPSTREAM
    assert out["error"]["status"] == 401
    assert "sk_live_not_for_tests" not in str(out["error"])
    out = Driver(STRIPE_API_BASE=st.url).call("stripe.checkout", **checkout_args())
    assert out["rc"] == ECONFIG
    assert st.requests[-1]["status"] == 401  # only the first call reached the double


@pytest.mark.parametrize("bad", [
    {"idempotency_key": None},
    {"idempotency_key": "k" * 256},
    {"items": []},
    {"items": [{"price": "price_basic_monthly", "quantity": 0}]},
    {"return_url": "ftp://x"},
    {"metadata": {"k" * 41: "v"}},
    {"metadata": {"k": "v" * 501}},
    {"metadata": {f"k{i}": "v" for i in range(51)}},
])
def test_invalid_parameters_never_reach_stripe(stripe_double, bad):
    out = driver(stripe_double).call("stripe.checkout", **checkout_args(**bad))
    assert out["rc"] == EINVAL
    assert stripe_double.requests == []


def test_form_encoding_matches_what_the_double_decodes(stripe_double):
    st = stripe_double
    d = driver(st)
    args = checkout_args("enc-1", metadata={"note": "a&b=c d+e/ü[x]", "username": "zoe"},
                         client_reference_id="user 7")
    form = d.call("stripe.form", **args)["result"]
    assert "metadata[note]=a%26b%3Dc%20d%2Be%2F%C3%BC%5Bx%5D" in form
    out = d.call("stripe.checkout", **args)
    assert out["rc"] == OK
    params = api_requests(st, "/v1/checkout/sessions")[0]["params"]
    assert params["metadata"] == {"note": "a&b=c d+e/ü[x]", "username": "zoe"}
    assert params["client_reference_id"] == "user 7"
    assert params["success_url"] == SUCCESS
