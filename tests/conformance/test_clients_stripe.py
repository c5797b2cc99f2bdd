"""Every request shape of the C Stripe client (src/integrations/stripe_client.c) against
Stripe's official stripe-mock, which validates parameters against Stripe's OpenAPI spec, plus
requests it must refuse. Flows (state, idempotency, retries) are tested against the stateful
double in tests/integration/test_clients_stripe.py."""

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "usher_clients_support", REPO / "tests" / "integration" / "test_clients_support.py")
support = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(support)

SUCCESS = "http://127.0.0.1:8000/onboarding/success/?session_id={CHECKOUT_SESSION_ID}"
CANCEL = "http://127.0.0.1:8000/onboarding/cancel/"


def driver(mock, ui="hosted", **more):
    settings = {"STRIPE_API_BASE": mock.url, "STRIPE_SECRET_KEY": mock.api_key,
                "STRIPE_CHECKOUT_UI": ui}
    return support.Driver(**{**settings, **more})


def checkout(key, **over):
    a = {"items": [{"price": "price_1PlanMonthly", "quantity": 1},
                   {"price": "price_1StorageMonthly", "quantity": 3}],
         "customer_email": "zoe@example.test",
         "metadata": {"first_name": "Zoë", "last_name": "Zed", "username": "zoe"},
         "return_url": SUCCESS, "cancel_url": CANCEL, "idempotency_key": key}
    a.update(over)
    return a


def ok(out):
    assert out["rc"] == support.OK, out
    return out["result"]


def test_checkout_session_hosted_page(stripe_mock):
    s = ok(driver(stripe_mock).call("stripe.checkout", **checkout("conf-hosted")))
    assert s["object"] == "checkout.session"
    assert s["mode"] == "subscription"      # stripe-mock echoes scalar parameters
    assert s["ui_mode"] == "hosted_page"


def test_checkout_session_embedded_page_with_customer(stripe_mock):
    s = ok(driver(stripe_mock, ui="embedded").call(
        "stripe.checkout", **checkout("conf-embedded", customer="cus_ExistingOne",
                                      customer_email=None, client_reference_id="user-7",
                                      subscription_metadata={"username": "zoe"})))
    assert s["ui_mode"] == "embedded_page"


def test_retrieve_session_with_expansions(stripe_mock):
    out = driver(stripe_mock).call("stripe.session", id="cs_test_a1b2c3")
    s = ok(out)
    assert s["object"] == "checkout.session"
    # expand[]=customer and expand[]=subscription (percent-encoded in the query) were
    # accepted and applied: stripe-mock returns the objects instead of their ids
    assert s["customer"]["object"] == "customer"
    assert s["subscription"]["object"] == "subscription"


def test_retrieve_subscription_and_items(stripe_mock):
    out = driver(stripe_mock).call("stripe.subscription", id="sub_1MowQVLkdIwHu7ixeRlqHVzs")
    sub = ok(out)
    assert sub["object"] == "subscription"
    assert out["items"], sub
    assert all(i["price"].startswith("price_") for i in out["items"])


def test_cancel_subscription(stripe_mock):
    """DELETE /v1/subscriptions/{id}: what Usher does to a past-due subscription that a
    recovery's new one replaced."""
    sub = ok(driver(stripe_mock).call("stripe.cancel", id="sub_1MowQVLkdIwHu7ixeRlqHVzs"))
    # stripe-mock answers with its fixture (status "active"): the request shape is what is
    # checked here; the Stripe double answers status "canceled", as Stripe documents.
    assert sub["object"] == "subscription" and sub["id"]
    out = driver(stripe_mock).call("stripe.cancel", id="not a valid id")
    assert out["rc"] != 0


def test_billing_portal_session(stripe_mock):
    url = ok(driver(stripe_mock).call("stripe.portal", customer="cus_ExistingOne",
                                      return_url="http://127.0.0.1:8000/dashboard/",
                                      idempotency_key="conf-portal"))
    assert url.startswith("https://")


def test_pre_rename_ui_mode_is_refused_by_the_spec(stripe_mock):
    """The deliberately wrong request: with a version before 2026-03-25 the client sends
    ui_mode=hosted, which the current spec no longer knows."""
    out = driver(stripe_mock, STRIPE_API_VERSION="2025-03-31.basil").call(
        "stripe.checkout", **checkout("conf-old"))
    assert out["rc"] == support.EUPSTREAM
    e = out["error"]
    assert e["status"] == 400
    assert e["type"] == "invalid_request_error"
    assert "ui_mode" in e["message"]


def test_missing_and_malformed_keys_are_refused(stripe_mock):
    out = driver(stripe_mock, STRIPE_SECRET_KEY="not_a_key").call("stripe.subscription",
                                                                  id="sub_1")
    assert out["rc"] == support.EUPSTREAM
    assert out["error"]["status"] == 401
    assert out["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("ui", ["hosted", "embedded"])
def test_form_encoding_roundtrips_through_the_spec_parser(stripe_mock, ui):
    """Characters that need percent-encoding in values and nested keys pass stripe-mock's
    parser and validator."""
    out = driver(stripe_mock, ui=ui).call("stripe.checkout", **checkout(
        "conf-enc-" + ui, metadata={"note": "a&b=c d+e/ü[x]%", "username": "zoe"},
        client_reference_id="user 7"))
    ok(out)
