"""A stateful local double of the parts of Stripe that Usher uses.

API (`/v1/…`, form-encoded, `Authorization: Bearer sk_test_…`): Checkout Sessions (create,
retrieve with expand, line items, expire), Subscriptions (retrieve, list, cancel), Customers,
Billing Portal sessions, Prices, Products, Invoices, Events. Idempotency keys, the
`Stripe-Version` header (recorded; it selects `ui_mode` names and invoice shapes), Stripe's
error shape, unknown-parameter rejection.

Pages: the hosted checkout `GET /checkout/{session_id}` (Pay → customer + subscription,
signed `checkout.session.completed` to the webhook URL, 303 to success_url/return_url) and the
billing portal `GET /portal/{portal_session_id}` (Cancel → signed
`customer.subscription.deleted`, 303 to return_url).

Control API (`/_control/…`, JSON, no auth): see README.md.

Run: python3 -m devstack.doubles.stripe_double --port 12111 \
         --webhook-url http://127.0.0.1:8000/onboarding/webhook/ --webhook-secret whsec_dev \
         --catalog devstack/catalog.json
"""

import base64
import copy
import hashlib
import hmac
import json
import re
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import parse_qsl

if __package__ in (None, ""):  # run as a script: make the package importable
    import pathlib
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
    __package__ = "devstack.doubles"

from ._http import (App, DoubleServer, ServedDouble, run_standalone,  # noqa: E402
                    FormError, Response, esc, html_response,
                    json_response, page, parse_nested, rand_id, redirect)

PINNED_VERSION = "2026-06-24.dahlia"
UI_RENAME_VERSION = "2026-03-25"   # hosted/embedded → hosted_page/embedded_page
BASIL_VERSION = "2025-03-31"       # per-item periods, invoice.parent.subscription_details
SUB_STATUSES = ("active", "canceled", "incomplete", "incomplete_expired", "past_due", "paused",
                "trialing", "unpaid")
_VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$")

SESSION_PARAMS = {
    "mode", "line_items", "ui_mode", "success_url", "cancel_url", "return_url", "customer",
    "customer_email", "metadata", "client_reference_id", "subscription_data", "expand",
    "allow_promotion_codes", "billing_address_collection", "automatic_tax", "locale",
    "payment_method_types", "redirect_on_completion", "expires_at", "consent_collection",
    "tax_id_collection", "phone_number_collection", "custom_text", "currency", "discounts",
    "payment_method_collection", "customer_update", "submit_type", "after_expiration",
    "custom_fields", "saved_payment_method_options", "customer_creation", "invoice_creation",
    "payment_intent_data", "origin_context", "branding_settings", "name_collection",
}
LINE_ITEM_PARAMS = {"price", "quantity", "adjustable_quantity", "dynamic_tax_rates",
                    "tax_rates", "price_data"}
SUBSCRIPTION_DATA_PARAMS = {"metadata", "trial_period_days", "trial_end", "description",
                            "billing_cycle_anchor", "default_tax_rates", "proration_behavior",
                            "application_fee_percent", "on_behalf_of", "transfer_data",
                            "trial_settings", "invoice_settings", "billing_mode",
                            "missing_payment_method"}
PORTAL_PARAMS = {"customer", "return_url", "configuration", "flow_data", "locale",
                 "on_behalf_of", "expand"}
PORTAL_NOT_CONFIGURED = (
    "No configuration provided and your test mode default configuration has not been "
    "created. Provide a configuration or create your default by saving your customer "
    "portal settings in test mode at https://dashboard.stripe.com/test/settings/billing/portal.")


class StripeError(Exception):
    def __init__(self, status, message, type_="invalid_request_error", code=None, param=None):
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = (
            status, message, type_, code, param)

    def body(self):
        err = {"message": self.message, "type": self.type}
        if self.code:
            err["code"] = self.code
            err["doc_url"] = "https://stripe.com/docs/error-codes/" + self.code.replace("_", "-")
        if self.param:
            err["param"] = self.param
        return {"error": err}


def _missing(param):
    return StripeError(400, f"Missing required param: {param}.", code="parameter_missing",
                       param=param)


def _unknown(param):
    return StripeError(400, f"Received unknown parameter: {param}", code="parameter_unknown",
                       param=param)


def _no_such(kind, ident, param=None):
    return StripeError(404 if param is None else 400, f"No such {kind}: '{ident}'",
                       code="resource_missing", param=param or "id")


def _vdate(version):
    return (version or PINNED_VERSION)[:10]


class StripeState:
    """Everything the double knows. Guarded by StripeDouble.lock."""

    def __init__(self):
        self.products = {}
        self.prices = {}
        self.customers = {}
        self.sessions = {}
        self.subscriptions = {}
        self.invoices = {}
        self.portal_sessions = {}
        self.events = {}          # id -> event (insertion ordered)
        self.deliveries = []      # one entry per webhook POST
        self.requests = []        # API requests: method, path, version, idempotency key, …
        self.idempotency = {}     # key -> {fingerprint, status, body}
        self.faults = []          # [{status, count, path, method}]

    def to_json(self):
        return {
            "products": list(self.products.values()),
            "prices": list(self.prices.values()),
            "customers": list(self.customers.values()),
            "checkout_sessions": list(self.sessions.values()),
            "subscriptions": list(self.subscriptions.values()),
            "invoices": list(self.invoices.values()),
            "portal_sessions": list(self.portal_sessions.values()),
            "events": list(self.events.values()),
            "deliveries": self.deliveries,
            "requests": self.requests,
        }


class StripeDouble(ServedDouble):
    """The Stripe double: state, HTTP app, server and Python control helpers."""

    def __init__(self, port=0, webhook_url=None, webhook_secret="whsec_devstack_double",
                 catalog=None, public_url=None, api_version=PINNED_VERSION,
                 webhook_api_version=None, api_key=None, verbose=False):
        self.lock = threading.RLock()
        self.state = StripeState()
        self.config = {
            "webhook_url": webhook_url,
            "webhook_secret": webhook_secret,
            "default_api_version": api_version,
            # the version the webhook endpoint is configured with (event shapes)
            "webhook_api_version": webhook_api_version or api_version,
            "api_key": api_key,                 # None: any sk_test_… key is accepted
            "portal_configured": True,
            "invoice_shape": "auto",            # auto (by version) | old | new
            "accept_unknown_prices": False,     # create unknown price_… ids on the fly
            "extra_events": False,              # also customer.created, …subscription.created,
                                                # invoice.paid around checkout completion
            "webhook_timeout": 10.0,
            "public_url": public_url,
        }
        self.catalog_path = catalog
        if catalog:
            self.load_catalog(catalog)
        self.app = App("stripe")
        self._routes()
        self.server = DoubleServer(self.app, port=port, verbose=verbose)

    @property
    def public_url(self):
        return (self.config["public_url"] or self.server.url).rstrip("/")

    # --- catalog and prices --------------------------------------------------------------

    def load_catalog(self, path_or_doc):
        """Loads products and prices from Usher's catalog format (products[].prices[])."""
        if isinstance(path_or_doc, (str, bytes)) or hasattr(path_or_doc, "read_text"):
            with open(path_or_doc, encoding="utf-8") as f:
                doc = json.load(f)
        else:
            doc = path_or_doc
        n = 0
        with self.lock:
            for prod in doc.get("products", []) or []:
                prod_id = prod.get("stripe_product_id") or ("prod_" + re.sub(
                    r"[^A-Za-z0-9]", "", prod.get("slug") or prod.get("name") or "x"))
                self.add_product(prod_id, prod.get("name") or prod.get("slug") or prod_id)
                for pr in prod.get("prices", []) or []:
                    if pr.get("stripe_price_id"):
                        self.add_price(pr["stripe_price_id"], product=prod_id,
                                       unit_amount=pr.get("amount", pr.get("unit_amount", 0)),
                                       currency=pr.get("currency", "usd"),
                                       billing_period=pr.get("billing_period", "monthly"),
                                       active=pr.get("is_active", True))
                        n += 1
            for pr in doc.get("prices", []) or []:  # a flat price list, if a catalog has one
                if pr.get("stripe_price_id"):
                    prod_id = pr.get("stripe_product_id") or "prod_" + re.sub(
                        r"[^A-Za-z0-9]", "", str(pr.get("product", "x")))
                    self.add_product(prod_id, str(pr.get("product", prod_id)))
                    self.add_price(pr["stripe_price_id"], product=prod_id,
                                   unit_amount=pr.get("amount", 0),
                                   currency=pr.get("currency", "usd"),
                                   billing_period=pr.get("billing_period", "monthly"))
                    n += 1
        return n

    def add_product(self, prod_id=None, name=None):
        with self.lock:
            prod_id = prod_id or rand_id("prod_", 14)
            if prod_id not in self.state.products:
                self.state.products[prod_id] = {
                    "id": prod_id, "object": "product", "active": True, "name": name or prod_id,
                    "description": None, "metadata": {}, "created": int(time.time()),
                    "livemode": False}
            return self.state.products[prod_id]

    def add_price(self, price_id=None, product=None, unit_amount=1000, currency="usd",
                  billing_period="monthly", active=True):
        """Creates (or replaces) a recurring price. billing_period monthly|annual (or
        month|year); None makes a one-time price."""
        interval = {"monthly": "month", "month": "month", "annual": "year", "year": "year",
                    "yearly": "year"}.get(billing_period) if billing_period else None
        with self.lock:
            price_id = price_id or rand_id("price_", 24)
            product = product or self.add_product(None, price_id)["id"]
            if product not in self.state.products:
                self.add_product(product, product)
            self.state.prices[price_id] = {
                "id": price_id, "object": "price", "active": bool(active),
                "billing_scheme": "per_unit", "created": int(time.time()),
                "currency": str(currency).lower(), "livemode": False, "lookup_key": None,
                "metadata": {}, "nickname": None, "product": product,
                "recurring": ({"interval": interval, "interval_count": 1,
                               "usage_type": "licensed", "meter": None}
                              if interval else None),
                "tax_behavior": "unspecified",
                "type": "recurring" if interval else "one_time",
                "unit_amount": int(unit_amount), "unit_amount_decimal": str(int(unit_amount)),
            }
            return self.state.prices[price_id]

    # --- object helpers ------------------------------------------------------------------

    def add_customer(self, email=None, name=None, metadata=None, cid=None):
        with self.lock:
            cid = cid or rand_id("cus_", 14)
            self.state.customers[cid] = {
                "id": cid, "object": "customer", "address": None, "balance": 0,
                "created": int(time.time()), "currency": None, "default_source": None,
                "delinquent": False, "description": None, "email": email,
                "invoice_prefix": cid[4:12].upper(), "invoice_settings": {
                    "custom_fields": None, "default_payment_method": None, "footer": None,
                    "rendering_options": None},
                "livemode": False, "metadata": dict(metadata or {}), "name": name,
                "phone": None, "preferred_locales": [], "shipping": None,
                "tax_exempt": "none", "test_clock": None}
            return self.state.customers[cid]

    def _price_or_create(self, price_id, param):
        p = self.state.prices.get(price_id)
        if p is None:
            if self.config["accept_unknown_prices"] and str(price_id).startswith("price_"):
                return self.add_price(price_id)
            raise _no_such("price", price_id, param=param)
        return p

    def add_subscription(self, customer, items, status="active", metadata=None,
                         trial_days=None, sid=None, created=None):
        """items: [{"price": id, "quantity": n}]. Returns the stored subscription."""
        with self.lock:
            if customer not in self.state.customers:
                raise _no_such("customer", customer, param="customer")
            created = int(created or time.time())
            sid = sid or rand_id("sub_", 24)
            sub = {
                "id": sid, "object": "subscription", "application": None,
                "billing_cycle_anchor": created, "cancel_at": None,
                "cancel_at_period_end": False, "canceled_at": None,
                "cancellation_details": {"comment": None, "feedback": None, "reason": None},
                "collection_method": "charge_automatically", "created": created,
                "currency": None, "customer": customer, "days_until_due": None,
                "default_payment_method": None, "description": None, "discounts": [],
                "ended_at": None, "items": None, "latest_invoice": None, "livemode": False,
                "metadata": dict(metadata or {}), "start_date": created, "status": status,
                "trial_end": created + trial_days * 86400 if trial_days else None,
                "trial_start": created if trial_days else None,
            }
            sub["_items"] = self._make_items(sid, items, created)
            if sub["_items"]:
                sub["currency"] = sub["_items"][0]["price"]["currency"]
            self.state.subscriptions[sid] = sub
            return sub

    def _make_items(self, sid, items, start=None):
        start = int(start or time.time())
        out = []
        for i, it in enumerate(items):
            price = copy.deepcopy(self._price_or_create(it["price"], f"items[{i}][price]"))
            days = 365 if (price.get("recurring") or {}).get("interval") == "year" else 30
            out.append({
                "id": it.get("id") or rand_id("si_", 14), "object": "subscription_item",
                "created": start, "current_period_start": start,
                "current_period_end": it.get("current_period_end") or start + days * 86400,
                "discounts": [], "metadata": {}, "price": price,
                "quantity": int(it.get("quantity", 1)), "subscription": sid, "tax_rates": []})
        return out

    def render_subscription(self, sub, version=None):
        out = {k: copy.deepcopy(v) for k, v in sub.items() if not k.startswith("_")}
        out["items"] = {"object": "list", "data": copy.deepcopy(sub["_items"]),
                        "has_more": False, "total_count": len(sub["_items"]),
                        "url": f"/v1/subscription_items?subscription={sub['id']}"}
        if _vdate(version) < BASIL_VERSION and sub["_items"]:
            out["current_period_start"] = sub["_items"][0]["current_period_start"]
            out["current_period_end"] = sub["_items"][0]["current_period_end"]
            out["plan"] = None
        return out

    def render_session(self, s, version=None):
        return {k: copy.deepcopy(v) for k, v in s.items() if not k.startswith("_")}

    def make_invoice(self, sub, paid, shape=None, version=None):
        """Creates an invoice for sub in the old or new shape (see INTEGRATIONS.md)."""
        shape = self._invoice_shape(shape, version)
        now = int(time.time())
        amount = sum(it["price"]["unit_amount"] * it["quantity"] for it in sub["_items"])
        inv = {
            "id": rand_id("in_", 24), "object": "invoice", "amount_due": amount,
            "amount_paid": amount if paid else 0,
            "amount_remaining": 0 if paid else amount, "attempt_count": 1,
            "attempted": True, "billing_reason": "subscription_cycle",
            "collection_method": "charge_automatically", "created": now,
            "currency": sub.get("currency") or "usd", "customer": sub["customer"],
            "customer_email": self.state.customers.get(sub["customer"], {}).get("email"),
            "hosted_invoice_url": f"{self.public_url}/invoice/{sub['id']}",
            "lines": {"object": "list", "has_more": False, "url": "/v1/invoices/x/lines",
                      "data": [{"id": rand_id("il_", 24), "object": "line_item",
                                "amount": it["price"]["unit_amount"] * it["quantity"],
                                "currency": it["price"]["currency"],
                                "quantity": it["quantity"],
                                "period": {"start": it["current_period_start"],
                                           "end": it["current_period_end"]},
                                "pricing": {"price_details": {"price": it["price"]["id"],
                                                              "product":
                                                              it["price"]["product"]}}}
                               for it in sub["_items"]]},
            "livemode": False, "metadata": {},
            "next_payment_attempt": None if paid else now + 3 * 86400,
            "paid": bool(paid), "period_end": now, "period_start": now,
            "status": "paid" if paid else "open", "subtotal": amount, "total": amount,
        }
        if shape == "old":
            inv["subscription"] = sub["id"]
        else:
            inv["parent"] = {"type": "subscription_details", "quote_details": None,
                             "subscription_details": {"metadata": dict(sub["metadata"]),
                                                      "subscription": sub["id"]}}
        self.state.invoices[inv["id"]] = inv
        sub["latest_invoice"] = inv["id"]
        return inv

    def _invoice_shape(self, shape, version):
        shape = shape or self.config["invoice_shape"]
        if shape in ("old", "new"):
            return shape
        return "old" if _vdate(version or self.config["webhook_api_version"]) < BASIL_VERSION \
            else "new"

    # --- events and webhook delivery -----------------------------------------------------

    def make_event(self, type_, obj, previous_attributes=None, created=None):
        """Stores an event whose data.object is a snapshot of obj (already rendered)."""
        with self.lock:
            ev = {
                "id": rand_id("evt_", 24), "object": "event",
                "api_version": self.config["webhook_api_version"],
                "created": int(created if created is not None else time.time()),
                "data": {"object": copy.deepcopy(obj)},
                "livemode": False, "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None}, "type": type_,
            }
            if previous_attributes is not None:
                ev["data"]["previous_attributes"] = copy.deepcopy(previous_attributes)
            self.state.events[ev["id"]] = ev
            return ev

    def subscription_event(self, sub_id, type_, invoice_shape=None, created=None,
                           previous_attributes=None):
        """An event about a subscription: customer.subscription.* or invoice.*."""
        with self.lock:
            sub = self.state.subscriptions.get(sub_id)
            if sub is None:
                raise _no_such("subscription", sub_id)
            version = self.config["webhook_api_version"]
            if type_.startswith("customer.subscription."):
                obj = self.render_subscription(sub, version)
            elif type_ in ("invoice.payment_failed", "invoice.paid",
                           "invoice.payment_succeeded", "invoice.created",
                           "invoice.finalized", "invoice.upcoming"):
                obj = self.make_invoice(sub, paid=type_ in ("invoice.paid",
                                                            "invoice.payment_succeeded"),
                                        shape=invoice_shape, version=version)
                obj = copy.deepcopy(obj)
                if type_ == "invoice.payment_failed":
                    obj["billing_reason"] = "subscription_cycle"
            else:
                raise StripeError(400, f"unsupported subscription event type: {type_}")
            return self.make_event(type_, obj, previous_attributes, created)

    def sign(self, body, timestamp, secret=None):
        secret = secret if secret is not None else self.config["webhook_secret"]
        mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body,
                       hashlib.sha256).hexdigest()
        return mac

    def deliver(self, event_id, times=1, timestamp_offset=0, secret=None, signature=None,
                extra_signatures=None, omit_signature=False, url=None):
        """POSTs the event to the webhook URL `times` times; returns the delivery records.

        Never called with the lock held (the receiver may call back into this double).
        signature="invalid" sends a wrong v1; extra_signatures adds more `v1=`/`v0=` parts.
        """
        with self.lock:
            ev = self.state.events.get(event_id)
            if ev is None:
                raise _no_such("event", event_id)
            body = json.dumps(ev, indent=2).encode("utf-8")
            url = url or self.config["webhook_url"]
            timeout = self.config["webhook_timeout"]
        records = []
        for _ in range(max(1, int(times))):
            t = int(time.time()) + int(timestamp_offset or 0)
            if signature == "invalid":
                v1 = secrets.token_hex(32)
            elif signature:
                v1 = signature
            else:
                v1 = self.sign(body, t, secret)
            header = f"t={t},v1={v1}"
            for extra in extra_signatures or []:
                header += "," + extra
            rec = {"id": f"whd_{len(self.state.deliveries) + len(records) + 1}",
                   "event_id": event_id, "type": ev["type"], "url": url,
                   "signature_header": None if omit_signature else header,
                   "status": None, "response_body": None, "error": None,
                   "at": time.time()}
            if not url:
                rec["error"] = "no webhook URL configured"
            else:
                headers = {"Content-Type": "application/json; charset=utf-8",
                           "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                           "Accept": "*/*; q=0.5, application/xml"}
                if not omit_signature:
                    headers["Stripe-Signature"] = header
                req = urllib.request.Request(url, data=body, headers=headers, method="POST")
                try:
                    with urllib.request.urlopen(req, timeout=timeout) as resp:
                        rec["status"] = resp.status
                        rec["response_body"] = resp.read(4096).decode("utf-8", "replace")
                except urllib.error.HTTPError as e:
                    rec["status"] = e.code
                    rec["response_body"] = e.read(4096).decode("utf-8", "replace")
                except (urllib.error.URLError, OSError) as e:
                    rec["error"] = str(getattr(e, "reason", e))
            records.append(rec)
            with self.lock:
                self.state.deliveries.append(rec)
        return records

    # --- flows used by the pages and the control API -------------------------------------

    def complete_session(self, session_id, email=None, name=None):
        """Pays an open session. Returns (session, [event ids to deliver])."""
        with self.lock:
            s = self.state.sessions.get(session_id)
            if s is None:
                raise _no_such("checkout.session", session_id)
            if s["status"] != "open":
                raise StripeError(400, f"This Checkout Session is {s['status']}.",
                                  code="checkout_session_not_open")
            evs = []
            email = (email or "").strip() or s["customer_email"]
            if s["customer"]:
                cust = self.state.customers[s["customer"]]
                email = email or cust["email"]
                new_customer = False
            else:
                if not email:
                    raise StripeError(400, "An email address is required.", param="email")
                cust = self.add_customer(email=email, name=name or None)
                new_customer = True
            now = int(time.time())
            s["customer"] = cust["id"]
            s["customer_details"] = {"address": None, "email": email, "name": name or cust["name"],
                                     "phone": None, "tax_exempt": "none", "tax_ids": []}
            s["status"] = "complete"
            s["payment_status"] = "paid"
            sub = None
            if s["mode"] == "subscription":
                sd = s["_subscription_data"]
                trial = sd.get("trial_period_days")
                sub = self.add_subscription(
                    cust["id"], [{"price": li["price"], "quantity": li["quantity"]}
                                 for li in s["_line_items"]],
                    status="trialing" if trial else "active",
                    metadata=sd.get("metadata") or {}, trial_days=int(trial) if trial else None,
                    created=now)
                inv = self.make_invoice(sub, paid=True)
                inv["billing_reason"] = "subscription_create"
                s["subscription"] = sub["id"]
                s["invoice"] = inv["id"]
                if trial:
                    s["payment_status"] = "no_payment_required"
            version = self.config["webhook_api_version"]
            if self.config["extra_events"]:
                if new_customer:
                    evs.append(self.make_event("customer.created", cust)["id"])
                if sub:
                    evs.append(self.make_event("customer.subscription.created",
                                               self.render_subscription(sub, version))["id"])
                    evs.append(self.subscription_event(sub["id"], "invoice.paid")["id"])
            evs.append(self.make_event("checkout.session.completed",
                                       self.render_session(s, version))["id"])
            return s, evs

    def cancel_subscription(self, sub_id, emit=True, reason="cancellation_requested",
                            created=None):
        """Cancels now: status canceled, canceled_at/ended_at set. Returns (sub, [event ids])."""
        with self.lock:
            sub = self.state.subscriptions.get(sub_id)
            if sub is None:
                raise _no_such("subscription", sub_id)
            now = int(time.time())
            sub["status"] = "canceled"
            sub["canceled_at"] = sub["canceled_at"] or now
            sub["ended_at"] = now
            sub["cancellation_details"]["reason"] = reason
            evs = []
            if emit:
                evs.append(self.make_event(
                    "customer.subscription.deleted",
                    self.render_subscription(sub, self.config["webhook_api_version"]),
                    created=created)["id"])
            return sub, evs

    def update_subscription(self, sub_id, status=None, items=None, cancel_at_period_end=None,
                            metadata=None, emit=True, created=None):
        """Changes a subscription; emits customer.subscription.updated with
        previous_attributes (or .deleted when the new status is canceled)."""
        with self.lock:
            sub = self.state.subscriptions.get(sub_id)
            if sub is None:
                raise _no_such("subscription", sub_id)
            version = self.config["webhook_api_version"]
            before = self.render_subscription(sub, version)
            if status is not None:
                if status not in SUB_STATUSES:
                    raise StripeError(400, f"Invalid status: {status}", param="status")
                sub["status"] = status
                if status == "canceled":
                    sub["canceled_at"] = sub["canceled_at"] or int(time.time())
                    sub["ended_at"] = int(time.time())
            if items is not None:
                sub["_items"] = self._make_items(sub_id, items)
            if cancel_at_period_end is not None:
                sub["cancel_at_period_end"] = bool(cancel_at_period_end)
                sub["cancel_at"] = (max(i["current_period_end"] for i in sub["_items"])
                                    if cancel_at_period_end and sub["_items"] else None)
            if metadata is not None:
                sub["metadata"] = dict(metadata)
            after = self.render_subscription(sub, version)
            prev = {k: before[k] for k in after if k in before and before[k] != after[k]}
            evs = []
            if emit:
                type_ = ("customer.subscription.deleted" if status == "canceled"
                         else "customer.subscription.updated")
                evs.append(self.make_event(type_, after,
                                           prev if type_.endswith("updated") else None,
                                           created)["id"])
            return sub, evs

    def deliver_all(self, event_ids, **kw):
        out = []
        for eid in event_ids:
            out.extend(self.deliver(eid, **kw))
        return out

    # --- HTTP: routing -------------------------------------------------------------------

    def _routes(self):
        a = self.app
        api = self._api
        a.route("POST", "/v1/checkout/sessions", api(self.h_session_create))
        a.route("GET", "/v1/checkout/sessions", api(self.h_session_list))
        a.route("GET", "/v1/checkout/sessions/{id}", api(self.h_session_get))
        a.route("GET", "/v1/checkout/sessions/{id}/line_items", api(self.h_session_lines))
        a.route("POST", "/v1/checkout/sessions/{id}/expire", api(self.h_session_expire))
        a.route("GET", "/v1/subscriptions", api(self.h_sub_list))
        a.route("GET", "/v1/subscriptions/{id}", api(self.h_sub_get))
        a.route("DELETE", "/v1/subscriptions/{id}", api(self.h_sub_cancel))
        a.route("POST", "/v1/customers", api(self.h_customer_create))
        a.route("GET", "/v1/customers", api(self.h_customer_list))
        a.route("GET", "/v1/customers/{id}", api(self.h_customer_get))
        a.route("POST", "/v1/billing_portal/sessions", api(self.h_portal_create))
        a.route("GET", "/v1/prices/{id}", api(self.h_price_get))
        a.route("GET", "/v1/products/{id}", api(self.h_product_get))
        a.route("GET", "/v1/invoices/{id}", api(self.h_invoice_get))
        a.route("GET", "/v1/events", api(self.h_event_list))
        a.route("GET", "/v1/events/{id}", api(self.h_event_get))
        # pages
        a.route("GET", "/checkout/{id}", self.p_checkout)
        a.route("POST", "/checkout/{id}/pay", self.p_checkout_pay)
        a.route("GET", "/portal/{id}", self.p_portal)
        a.route("POST", "/portal/{id}/cancel", self.p_portal_cancel)
        a.route("GET", "/", self.p_index)
        # control
        c = self._control
        a.route("GET", "/_control/state", c(self.c_state))
        a.route("POST", "/_control/reset", c(self.c_reset))
        a.route("GET", "/_control/config", c(lambda req, body: self.config))
        a.route("POST", "/_control/config", c(self.c_config))
        a.route("POST", "/_control/prices", c(self.c_price))
        a.route("POST", "/_control/catalog", c(self.c_catalog))
        a.route("POST", "/_control/customers", c(self.c_customer))
        a.route("POST", "/_control/subscriptions", c(self.c_sub_create))
        a.route("GET", "/_control/subscriptions/{id}", c(self.c_sub_get))
        a.route("POST", "/_control/subscriptions/{id}/update", c(self.c_sub_update))
        a.route("POST", "/_control/subscriptions/{id}/cancel", c(self.c_sub_cancel))
        a.route("POST", "/_control/subscriptions/{id}/emit", c(self.c_sub_emit))
        a.route("POST", "/_control/checkout/sessions/{id}/complete", c(self.c_session_complete))
        a.route("GET", "/_control/events", c(lambda req, body: list(self.state.events.values())))
        a.route("POST", "/_control/events", c(self.c_event_create))
        a.route("POST", "/_control/events/{id}/deliver", c(self.c_event_deliver))
        a.route("POST", "/_control/deliver", c(self.c_deliver_many))
        a.route("GET", "/_control/deliveries", c(lambda req, body: self.state.deliveries))
        a.route("GET", "/_control/requests", c(lambda req, body: self.state.requests))
        a.route("POST", "/_control/faults", c(self.c_faults))
        self.app.not_found = self._not_found

    def _not_found(self, req, method_exists):
        if req.path.startswith("/v1/"):
            return self._error_response(StripeError(
                404, f"Unrecognized request URL ({req.method}: {req.path}). Please see "
                "https://stripe.com/docs or we can help at https://support.stripe.com/."))
        return json_response(404, {"error": "not found"})

    def _error_response(self, e, version=None):
        r = json_response(e.status, e.body())
        r.add_header("Request-Id", rand_id("req_", 14))
        if version:
            r.add_header("Stripe-Version", version)
        return r

    def _api(self, fn):
        """Wraps an API handler: auth, version, params, idempotency, faults, request log."""

        def wrapper(req):
            version = req.header("Stripe-Version")
            idem = req.header("Idempotency-Key")
            entry = {"method": req.method, "path": req.path, "stripe_version": version,
                     "idempotency_key": idem, "params": None, "status": None,
                     "at": time.time()}
            resp = self._api_inner(fn, req, entry)
            entry["status"] = resp.status
            with self.lock:
                self.state.requests.append(entry)
            return resp

        return wrapper

    def _api_inner(self, fn, req, entry):
        version = entry["stripe_version"]
        auth = req.header("Authorization") or ""
        key = None
        if auth.startswith("Bearer "):
            key = auth[7:].strip()
        elif auth.startswith("Basic "):
            try:
                key = base64.b64decode(auth[6:]).decode().split(":", 1)[0]
            except ValueError:
                key = None
        if not key:
            r = self._error_response(StripeError(
                401, "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for "
                "details, or we can help at https://support.stripe.com/."))
            r.add_header("WWW-Authenticate", 'Bearer realm="Stripe"')
            return r
        expected = self.config["api_key"]
        if (expected and not hmac.compare_digest(key, expected)) or \
                (not expected and not key.startswith("sk_test_")):
            shown = key[:8] + "*" * max(0, len(key) - 12) + key[-4:]
            r = self._error_response(StripeError(
                401, f"Invalid API Key provided: {shown}", code="api_key_invalid"))
            r.add_header("WWW-Authenticate", 'Bearer realm="Stripe"')
            return r
        if version is not None and not _VERSION_RE.match(version):
            return self._error_response(StripeError(
                400, f"Invalid Stripe API version: {version}", code="api_version_invalid"))
        version = version or self.config["default_api_version"]
        req.stripe_version = version
        fault = self._take_fault(req)
        if fault:
            status = fault["status"]
            if status == 429:
                e = StripeError(429, "Request rate limit exceeded. Learn more about rate "
                                "limits here https://stripe.com/docs/rate-limits.",
                                type_="invalid_request_error", code="rate_limit")
            else:
                e = StripeError(status, "An unknown error occurred (injected fault).",
                                type_="api_error")
            r = self._error_response(e, version)
            if fault.get("should_retry") is not None:
                r.add_header("Stripe-Should-Retry", "true" if fault["should_retry"] else "false")
            return r
        try:
            source = req.body.decode("utf-8") if req.method == "POST" else req.query_string
            pairs = parse_qsl(source, keep_blank_values=True)
            params = parse_nested(pairs)
        except (FormError, UnicodeDecodeError) as e:
            return self._error_response(StripeError(400, str(e)), version)
        entry["params"] = params
        idem = entry["idempotency_key"] if req.method == "POST" else None
        fp = None
        if idem is not None:
            if len(idem) > 255:
                return self._error_response(StripeError(
                    400, "Idempotency-Key must be at most 255 characters long.",
                    param="Idempotency-Key"), version)
            fp = hashlib.sha256(json.dumps([req.method, req.path, sorted(pairs)])
                                .encode()).hexdigest()
            with self.lock:
                prior = self.state.idempotency.get(idem)
            if prior is not None:
                if prior["fingerprint"] != fp:
                    return self._error_response(StripeError(
                        400, "Keys for idempotent requests can only be used with the same "
                        "parameters they were first used with. Try using a key other than "
                        f"'{idem}' if you meant to execute a different request.",
                        type_="idempotency_error"), version)
                r = Response(prior["status"], prior["body"], "application/json")
                r.add_header("Idempotent-Replayed", "true")
                r.add_header("Idempotency-Key", idem)
                r.add_header("Original-Request", prior["request_id"])
                r.add_header("Request-Id", rand_id("req_", 14))
                r.add_header("Stripe-Version", version)
                return r
        try:
            with self.lock:
                status, obj = fn(req, params)
            resp = json_response(status, obj)
        except StripeError as e:
            resp = json_response(e.status, e.body())
        request_id = rand_id("req_", 14)
        resp.add_header("Request-Id", request_id)
        resp.add_header("Stripe-Version", version)
        if idem is not None:
            resp.add_header("Idempotency-Key", idem)
            if resp.status < 400 or resp.status >= 500:
                with self.lock:
                    self.state.idempotency[idem] = {"fingerprint": fp, "status": resp.status,
                                                    "body": resp.body,
                                                    "request_id": request_id}
        return resp

    def _take_fault(self, req):
        with self.lock:
            for f in self.state.faults:
                if f.get("path") and not req.path.startswith(f["path"]):
                    continue
                if f.get("method") and f["method"].upper() != req.method:
                    continue
                if f["count"] == 0:
                    continue
                if f["count"] > 0:
                    f["count"] -= 1
                return f
        return None

    # --- HTTP: API handlers (called with the lock held; return (status, object)) ---------

    def _expand(self, obj, paths, version):
        for path in paths:
            self._expand_path(obj, path.split("."), path, version)
        return obj

    def _lookup(self, ident, version):
        st = self.state
        if not isinstance(ident, str):
            return ident
        for prefix, table, render in (
                ("cus_", st.customers, None), ("sub_", st.subscriptions,
                                               self.render_subscription),
                ("in_", st.invoices, None), ("prod_", st.products, None),
                ("price_", st.prices, None), ("cs_", st.sessions, self.render_session)):
            if ident.startswith(prefix) and ident in table:
                o = table[ident]
                return render(o, version) if render else copy.deepcopy(o)
        return ident

    def _expand_path(self, node, segs, full, version):
        if isinstance(node, list):
            for n in node:
                self._expand_path(n, segs, full, version)
            return
        if not isinstance(node, dict) or segs[0] not in node:
            raise StripeError(400, f"This property cannot be expanded ({full}).",
                              param="expand")
        key = segs[0]
        if isinstance(node[key], str):
            node[key] = self._lookup(node[key], version)
        if len(segs) > 1 and node[key] is not None:
            self._expand_path(node[key], segs[1:], full, version)

    @staticmethod
    def _only(params, allowed, prefix=""):
        for k in params:
            if k not in allowed:
                raise _unknown(f"{prefix}[{k}]" if prefix else k)

    @staticmethod
    def _expand_list(params):
        e = params.get("expand", [])
        if isinstance(e, str):
            e = [e]
        if isinstance(e, dict):
            raise StripeError(400, "Invalid array", param="expand")
        return list(e)

    def _check_metadata(self, md, param="metadata"):
        if md in ("", None):
            return {}
        if not isinstance(md, dict):
            raise StripeError(400, "Invalid object", param=param)
        if len(md) > 50:
            raise StripeError(400, "Invalid metadata: metadata can have at most 50 keys.",
                              param=param)
        for k, v in md.items():
            if len(k) > 40:
                raise StripeError(400, "Metadata key length can't exceed 40 characters.",
                                  param=f"{param}[{k}]")
            if not isinstance(v, str):
                raise StripeError(400, "Invalid metadata value", param=f"{param}[{k}]")
            if len(v) > 500:
                raise StripeError(400, "Metadata values can have up to 500 characters, but "
                                  f"you passed in a value that is {len(v)} characters. "
                                  f"Invalid value: {v[:40]}…", param=f"{param}[{k}]")
        return {k: v for k, v in md.items() if v != ""}

    def h_session_create(self, req, p):
        version = req.stripe_version
        self._only(p, SESSION_PARAMS)
        mode = p.get("mode")
        if not mode:
            raise _missing("mode")
        if mode not in ("payment", "setup", "subscription"):
            raise StripeError(400, "Invalid mode: must be one of payment, setup, or "
                              "subscription", code="parameter_invalid_string", param="mode")
        new_names = _vdate(version) >= UI_RENAME_VERSION
        names = {"hosted_page": "hosted", "embedded_page": "embedded"} if new_names else \
            {"hosted": "hosted", "embedded": "embedded"}
        ui_mode = p.get("ui_mode") or ("hosted_page" if new_names else "hosted")
        if ui_mode not in names:
            raise StripeError(400, "Invalid ui_mode: must be one of " +
                              " or ".join(names), code="parameter_invalid_string",
                              param="ui_mode")
        kind = names[ui_mode]
        redirect_on_completion = p.get("redirect_on_completion")
        if kind == "hosted":
            if p.get("return_url"):
                raise StripeError(400, "You can only set `return_url` if `ui_mode` is "
                                  "`embedded_page`.", param="return_url")
            if redirect_on_completion:
                raise StripeError(400, "`redirect_on_completion` can only be used with "
                                  f"`ui_mode={ui_mode}`… only embedded modes support it.",
                                  param="redirect_on_completion")
        else:
            for bad in ("success_url", "cancel_url"):
                if p.get(bad):
                    raise StripeError(400, f"`{bad}` is not allowed when `ui_mode` is "
                                      f"`{ui_mode}`. Use `return_url` instead.", param=bad)
            if redirect_on_completion not in (None, "always", "if_required", "never"):
                raise StripeError(400, "Invalid redirect_on_completion",
                                  param="redirect_on_completion")
            if redirect_on_completion != "never" and not p.get("return_url"):
                raise StripeError(400, "`return_url` is required when `ui_mode` is "
                                  f"`{ui_mode}` unless `redirect_on_completion` is `never`.",
                                  code="parameter_missing", param="return_url")
        if p.get("customer") and p.get("customer_email"):
            raise StripeError(400, "You may only specify one of these parameters: customer, "
                              "customer_email.", param="customer_email")
        if p.get("customer") and p["customer"] not in self.state.customers:
            raise _no_such("customer", p["customer"], param="customer")
        metadata = self._check_metadata(p.get("metadata"))
        sd = p.get("subscription_data") or {}
        if sd:
            if not isinstance(sd, dict):
                raise StripeError(400, "Invalid object", param="subscription_data")
            self._only(sd, SUBSCRIPTION_DATA_PARAMS, "subscription_data")
            if mode != "subscription":
                raise StripeError(400, "You can only specify `subscription_data` in "
                                  "`subscription` mode.", param="subscription_data")
            sd = dict(sd)
            sd["metadata"] = self._check_metadata(sd.get("metadata"),
                                                  "subscription_data[metadata]")
        lis = p.get("line_items")
        if mode in ("payment", "subscription") and not lis:
            raise _missing("line_items")
        if lis and not isinstance(lis, list):
            raise StripeError(400, "Invalid array", param="line_items")
        line_items = []
        currency = None
        for i, li in enumerate(lis or []):
            if not isinstance(li, dict):
                raise StripeError(400, "Invalid object", param=f"line_items[{i}]")
            self._only(li, LINE_ITEM_PARAMS, f"line_items[{i}]")
            if li.get("price_data"):
                raise StripeError(400, "price_data is not supported by the devstack double; "
                                  "use a price id.", param=f"line_items[{i}][price_data]")
            if not li.get("price"):
                raise _missing(f"line_items[{i}][price]")
            price = self._price_or_create(li["price"], f"line_items[{i}][price]")
            if not price["active"]:
                raise StripeError(400, f"The price specified is inactive. This field only "
                                  f"accepts active prices.", param=f"line_items[{i}][price]")
            if "quantity" not in li:
                raise StripeError(400, f"Quantity is required. Add `quantity` to "
                                  f"`line_items[{i}]`", param=f"line_items[{i}][quantity]")
            try:
                qty = int(li["quantity"])
            except (TypeError, ValueError):
                raise StripeError(400, "Invalid integer: " + str(li["quantity"]),
                                  param=f"line_items[{i}][quantity]")
            if qty < 1:
                raise StripeError(400, "This value must be greater than or equal to 1.",
                                  param=f"line_items[{i}][quantity]")
            if currency and price["currency"] != currency:
                raise StripeError(400, "All prices must be in the same currency.",
                                  param=f"line_items[{i}][price]")
            currency = price["currency"]
            line_items.append({"price": price["id"], "quantity": qty})
        if mode == "subscription" and not any(
                self.state.prices[li["price"]]["recurring"] for li in line_items):
            raise StripeError(400, "You must provide at least one recurring price in "
                              "`subscription` mode when using prices.", param="line_items")
        now = int(time.time())
        sid = rand_id("cs_test_", 58)
        amount = sum(self.state.prices[li["price"]]["unit_amount"] * li["quantity"]
                     for li in line_items)
        s = {
            "id": sid, "object": "checkout.session", "after_expiration": None,
            "allow_promotion_codes": p.get("allow_promotion_codes") in ("true", True),
            "amount_subtotal": amount, "amount_total": amount,
            "billing_address_collection": p.get("billing_address_collection"),
            "cancel_url": p.get("cancel_url"),
            "client_reference_id": p.get("client_reference_id"),
            "client_secret": (sid + "_secret_" + secrets.token_urlsafe(18))
            if kind == "embedded" else None,
            "created": now, "currency": currency, "customer": p.get("customer"),
            "customer_creation": "always" if mode != "subscription" else None,
            "customer_details": None, "customer_email": p.get("customer_email"),
            "expires_at": now + 86400, "invoice": None, "livemode": False,
            "locale": p.get("locale"), "metadata": metadata, "mode": mode,
            "payment_intent": None, "payment_method_types": ["card"],
            "payment_status": "unpaid",
            "redirect_on_completion": (redirect_on_completion or "always")
            if kind == "embedded" else None,
            "return_url": p.get("return_url"), "setup_intent": None, "status": "open",
            "submit_type": p.get("submit_type"), "subscription": None,
            "success_url": p.get("success_url"), "ui_mode": ui_mode,
            "url": f"{self.public_url}/checkout/{sid}" if kind == "hosted" else None,
            "_kind": kind, "_line_items": line_items, "_subscription_data": sd,
            "_api_version": version,
        }
        self.state.sessions[sid] = s
        out = self.render_session(s, version)
        self._expand_session(out, s, self._expand_list(p), version)
        return 200, out

    def _line_items_list(self, s):
        data = []
        for li in s["_line_items"]:
            price = copy.deepcopy(self.state.prices[li["price"]])
            amt = price["unit_amount"] * li["quantity"]
            data.append({"id": "li_" + hashlib.sha1((s["id"] + price["id"]).encode())
                         .hexdigest()[:24], "object": "item", "amount_discount": 0,
                         "amount_subtotal": amt, "amount_tax": 0, "amount_total": amt,
                         "currency": price["currency"],
                         "description": self.state.products.get(price["product"], {})
                         .get("name"), "price": price, "quantity": li["quantity"]})
        return {"object": "list", "data": data, "has_more": False,
                "url": f"/v1/checkout/sessions/{s['id']}/line_items"}

    def _expand_session(self, out, s, expand, version):
        rest = []
        for e in expand:
            if e == "line_items":
                out["line_items"] = self._line_items_list(s)
            else:
                rest.append(e)
        self._expand(out, rest, version)

    def h_session_get(self, req, p):
        self._only(p, {"expand"})
        s = self.state.sessions.get(req.params["id"])
        if s is None:
            raise _no_such("checkout.session", req.params["id"])
        out = self.render_session(s, req.stripe_version)
        self._expand_session(out, s, self._expand_list(p), req.stripe_version)
        return 200, out

    def h_session_list(self, req, p):
        data = [self.render_session(s) for s in reversed(list(self.state.sessions.values()))
                if (not p.get("customer") or s["customer"] == p["customer"]) and
                (not p.get("subscription") or s["subscription"] == p["subscription"])]
        return 200, {"object": "list", "data": data[:int(p.get("limit", 10))],
                     "has_more": len(data) > int(p.get("limit", 10)),
                     "url": "/v1/checkout/sessions"}

    def h_session_lines(self, req, p):
        s = self.state.sessions.get(req.params["id"])
        if s is None:
            raise _no_such("checkout.session", req.params["id"])
        return 200, self._line_items_list(s)

    def h_session_expire(self, req, p):
        s = self.state.sessions.get(req.params["id"])
        if s is None:
            raise _no_such("checkout.session", req.params["id"])
        if s["status"] != "open":
            raise StripeError(400, f"Only Checkout Sessions with a status in [\"open\"] can "
                              f"be expired. This Checkout Session has a status of "
                              f"\"{s['status']}\".")
        s["status"] = "expired"
        return 200, self.render_session(s, req.stripe_version)

    def h_sub_get(self, req, p):
        self._only(p, {"expand"})
        sub = self.state.subscriptions.get(req.params["id"])
        if sub is None:
            raise _no_such("subscription", req.params["id"])
        out = self.render_subscription(sub, req.stripe_version)
        return 200, self._expand(out, self._expand_list(p), req.stripe_version)

    def h_sub_list(self, req, p):
        status = p.get("status")
        data = []
        for sub in reversed(list(self.state.subscriptions.values())):
            if p.get("customer") and sub["customer"] != p["customer"]:
                continue
            if p.get("price") and not any(i["price"]["id"] == p["price"]
                                          for i in sub["_items"]):
                continue
            if status in (None, "") and sub["status"] in ("canceled", "incomplete_expired"):
                continue
            if status not in (None, "", "all") and sub["status"] != status:
                continue
            data.append(sub)
        if p.get("starting_after"):
            ids = [s["id"] for s in data]
            if p["starting_after"] in ids:
                data = data[ids.index(p["starting_after"]) + 1:]
        limit = int(p.get("limit", 10))
        out = [self._expand(self.render_subscription(s, req.stripe_version),
                            [e[len("data."):] for e in self._expand_list(p)
                             if e.startswith("data.")], req.stripe_version)
               for s in data[:limit]]
        return 200, {"object": "list", "data": out, "has_more": len(data) > limit,
                     "url": "/v1/subscriptions"}

    def h_sub_cancel(self, req, p):
        sub, evs = self.cancel_subscription(req.params["id"])
        # deliver after the lock is released (see _api): run in a thread
        threading.Thread(target=self.deliver_all, args=(evs,), daemon=True).start()
        return 200, self.render_subscription(sub, req.stripe_version)

    def h_customer_create(self, req, p):
        self._only(p, {"email", "name", "metadata", "description", "phone", "expand"})
        c = self.add_customer(email=p.get("email"), name=p.get("name"),
                              metadata=self._check_metadata(p.get("metadata")))
        return 200, copy.deepcopy(c)

    def h_customer_get(self, req, p):
        self._only(p, {"expand"})
        c = self.state.customers.get(req.params["id"])
        if c is None:
            raise _no_such("customer", req.params["id"])
        return 200, copy.deepcopy(c)

    def h_customer_list(self, req, p):
        data = [copy.deepcopy(c) for c in reversed(list(self.state.customers.values()))
                if not p.get("email") or c["email"] == p["email"]]
        limit = int(p.get("limit", 10))
        return 200, {"object": "list", "data": data[:limit], "has_more": len(data) > limit,
                     "url": "/v1/customers"}

    def h_portal_create(self, req, p):
        self._only(p, PORTAL_PARAMS)
        if not p.get("customer"):
            raise _missing("customer")
        if p["customer"] not in self.state.customers:
            raise _no_such("customer", p["customer"], param="customer")
        if not self.config["portal_configured"] and not p.get("configuration"):
            raise StripeError(400, PORTAL_NOT_CONFIGURED)
        pid = rand_id("bps_", 24)
        ps = {"id": pid, "object": "billing_portal.session",
              "configuration": p.get("configuration") or "bpc_devstackdefault",
              "created": int(time.time()), "customer": p["customer"], "flow": None,
              "livemode": False, "locale": p.get("locale"), "on_behalf_of": None,
              "return_url": p.get("return_url"), "url": f"{self.public_url}/portal/{pid}"}
        self.state.portal_sessions[pid] = ps
        return 200, copy.deepcopy(ps)

    def h_price_get(self, req, p):
        pr = self.state.prices.get(req.params["id"])
        if pr is None:
            raise _no_such("price", req.params["id"])
        return 200, self._expand(copy.deepcopy(pr), self._expand_list(p), req.stripe_version)

    def h_product_get(self, req, p):
        pr = self.state.products.get(req.params["id"])
        if pr is None:
            raise _no_such("product", req.params["id"])
        return 200, copy.deepcopy(pr)

    def h_invoice_get(self, req, p):
        inv = self.state.invoices.get(req.params["id"])
        if inv is None:
            raise _no_such("invoice", req.params["id"])
        return 200, self._expand(copy.deepcopy(inv), self._expand_list(p), req.stripe_version)

    def h_event_get(self, req, p):
        ev = self.state.events.get(req.params["id"])
        if ev is None:
            raise _no_such("event", req.params["id"])
        return 200, copy.deepcopy(ev)

    def h_event_list(self, req, p):
        data = [e for e in reversed(list(self.state.events.values()))
                if not p.get("type") or e["type"] == p["type"]]
        limit = int(p.get("limit", 10))
        return 200, {"object": "list", "data": copy.deepcopy(data[:limit]),
                     "has_more": len(data) > limit, "url": "/v1/events"}

    # --- HTTP: pages ---------------------------------------------------------------------

    def p_index(self, req):
        return html_response(200, page("Stripe double", f"""
<h1>Stripe double</h1>
<p>API base: <code>{esc(self.url)}</code> (use any <code>sk_test_…</code> key).</p>
<p>Webhook URL: <code>{esc(self.config['webhook_url'] or '(none)')}</code></p>
<p>{len(self.state.sessions)} checkout sessions, {len(self.state.subscriptions)}
subscriptions, {len(self.state.events)} events. JSON: <a href="/_control/state">/_control/state</a></p>"""))

    def _fmt_amount(self, amount, currency):
        return f"{amount / 100:.2f} {currency.upper()}"

    def p_checkout(self, req, error=None):
        with self.lock:
            s = self.state.sessions.get(req.params["id"])
            if s is None:
                return html_response(404, page("Not found", "<h1>Checkout session not found"
                                                            "</h1>"))
            rows = []
            for li in s["_line_items"]:
                pr = self.state.prices[li["price"]]
                prod = self.state.products.get(pr["product"], {}).get("name", pr["product"])
                per = (pr["recurring"] or {}).get("interval")
                rows.append(f"<tr><td>{esc(prod)}</td><td>{esc(li['price'])}</td>"
                            f"<td>{li['quantity']}</td><td>"
                            f"{esc(self._fmt_amount(pr['unit_amount'] * li['quantity'], pr['currency']))}"
                            f"{' / ' + esc(per) if per else ''}</td></tr>")
            cust_email = s["customer_email"] or (
                self.state.customers[s["customer"]]["email"] if s["customer"] else None)
            if s["status"] != "open":
                body = (f"<h1>Checkout</h1><p id='status'>This checkout session is "
                        f"<b>{esc(s['status'])}</b>.</p>")
                if s["status"] == "complete":
                    target = self._completion_url(s)
                    if target:
                        body += f"<p><a href='{esc(target)}'>Continue</a></p>"
                return html_response(200, page("Checkout", body))
            email_field = (f"<p>Email: <b id='email-fixed'>{esc(cust_email)}</b></p>"
                           if cust_email else
                           "<p><label>Email <input id='email' name='email' type='email' "
                           "required></label></p>")
            cancel = (f"<p><a id='cancel' href='{esc(s['cancel_url'])}'>← Back</a></p>"
                      if s.get("cancel_url") else "")
            err = f"<p class='err' id='error'>{esc(error)}</p>" if error else ""
            body = f"""<h1>Checkout <small class="note">(Stripe double, test mode)</small></h1>
{err}
<table><tr><th>Product</th><th>Price</th><th>Qty</th><th>Amount</th></tr>{''.join(rows)}</table>
<p><b>Total: {esc(self._fmt_amount(s['amount_total'], s['currency'] or 'usd'))}</b></p>
<form method="post" action="/checkout/{esc(s['id'])}/pay">
{email_field}
<p><label>Name on card <input id="name" name="name"></label></p>
<p><label>Card number <input id="card" name="card" value="4242 4242 4242 4242"></label>
<span class="note">4000 0000 0000 0002 is declined</span></p>
<p><button id="pay" type="submit">Pay</button></p>
</form>
{cancel}"""
            return html_response(200, page("Checkout", body))

    def _completion_url(self, s):
        target = s["success_url"] if s["_kind"] == "hosted" else (
            s["return_url"] if s["redirect_on_completion"] != "never" else None)
        if target:
            target = target.replace("{CHECKOUT_SESSION_ID}", s["id"])
        return target

    def p_checkout_pay(self, req):
        f = req.form()
        card = re.sub(r"\D", "", f.get("card", ""))
        with self.lock:
            s = self.state.sessions.get(req.params["id"])
            if s is None:
                return html_response(404, page("Not found", "<h1>Checkout session not found"
                                                            "</h1>"))
        if card == "4000000000000002":
            return self.p_checkout(req, error="Your card was declined.")
        try:
            s, evs = self.complete_session(req.params["id"], email=f.get("email"),
                                           name=f.get("name"))
        except StripeError as e:
            return self.p_checkout(req, error=e.message)
        self.deliver_all(evs)
        target = self._completion_url(s)
        if target:
            return redirect(target, 303)
        return html_response(200, page("Paid", "<h1 id='status'>Payment complete</h1>"
                                               "<p>You can close this page.</p>"))

    def p_portal(self, req):
        with self.lock:
            ps = self.state.portal_sessions.get(req.params["id"])
            if ps is None:
                return html_response(404, page("Not found", "<h1>Portal session not found"
                                                            "</h1>"))
            cust = self.state.customers[ps["customer"]]
            rows = []
            for sub in self.state.subscriptions.values():
                if sub["customer"] != cust["id"]:
                    continue
                items = ", ".join(
                    f"{self.state.products.get(i['price']['product'], {}).get('name', '?')}"
                    f" × {i['quantity']}" for i in sub["_items"])
                action = ""
                if sub["status"] not in ("canceled", "incomplete_expired"):
                    action = (f"<form method='post' action='/portal/{esc(ps['id'])}/cancel'>"
                              f"<input type='hidden' name='subscription' value='{esc(sub['id'])}'>"
                              f"<button id='cancel-{esc(sub['id'])}' class='cancel' "
                              f"type='submit'>Cancel subscription</button></form>")
                rows.append(f"<tr><td>{esc(sub['id'])}</td><td>{esc(items)}</td>"
                            f"<td class='status'>{esc(sub['status'])}</td><td>{action}</td></tr>")
            back = (f"<p><a id='return' href='{esc(ps['return_url'])}'>← Return</a></p>"
                    if ps["return_url"] else "")
            body = f"""<h1>Billing portal <small class="note">(Stripe double)</small></h1>
<p>Customer: {esc(cust['email'] or cust['id'])}</p>
<table><tr><th>Subscription</th><th>Items</th><th>Status</th><th></th></tr>{''.join(rows)}</table>
{back}"""
            return html_response(200, page("Billing portal", body))

    def p_portal_cancel(self, req):
        sub_id = req.form().get("subscription", "")
        with self.lock:
            ps = self.state.portal_sessions.get(req.params["id"])
            sub = self.state.subscriptions.get(sub_id)
            if ps is None or sub is None or sub["customer"] != ps["customer"]:
                return html_response(404, page("Not found", "<h1>Not found</h1>"))
        _, evs = self.cancel_subscription(sub_id)
        self.deliver_all(evs)
        if ps["return_url"]:
            return redirect(ps["return_url"], 303)
        return redirect(f"/portal/{ps['id']}", 303)

    # --- HTTP: control API ---------------------------------------------------------------

    def _control(self, fn):
        def wrapper(req):
            body = {}
            if req.method == "POST" and req.body:
                try:
                    body = req.json()
                except ValueError:
                    return json_response(400, {"error": "body must be JSON"})
                if not isinstance(body, dict):
                    return json_response(400, {"error": "body must be a JSON object"})
            try:
                out = fn(req, body)
            except StripeError as e:
                return json_response(e.status, e.body())
            except (KeyError, TypeError, ValueError) as e:
                return json_response(400, {"error": f"bad control request: {e!r}"})
            if isinstance(out, Response):
                return out
            with self.lock:
                return json_response(200, copy.deepcopy(out))
        return wrapper

    def c_state(self, req, body):
        with self.lock:
            st = copy.deepcopy(self.state.to_json())
            st["subscriptions"] = [self.render_subscription(s) for s in
                                   self.state.subscriptions.values()]
            st["config"] = dict(self.config)
        for s in st["checkout_sessions"]:
            s["line_items"] = s.pop("_line_items")
            for k in [k for k in s if k.startswith("_")]:
                s.pop(k)
        for r in st["requests"]:
            r.pop("body", None)
        return st

    def reset(self):
        with self.lock:
            self.state = StripeState()
        if self.catalog_path:
            self.load_catalog(self.catalog_path)

    def c_reset(self, req, body):
        self.reset()
        return {"reset": True}

    def c_config(self, req, body):
        unknown = set(body) - set(self.config)
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}")
        with self.lock:
            self.config.update(body)
            return self.config

    def c_price(self, req, body):
        return self.add_price(body.get("id"), product=body.get("product"),
                              unit_amount=body.get("unit_amount", body.get("amount", 1000)),
                              currency=body.get("currency", "usd"),
                              billing_period=body.get("billing_period",
                                                      body.get("interval", "monthly")),
                              active=body.get("active", True))

    def c_catalog(self, req, body):
        return {"prices_loaded": self.load_catalog(body)}

    def c_customer(self, req, body):
        return self.add_customer(email=body.get("email"), name=body.get("name"),
                                 metadata=body.get("metadata"), cid=body.get("id"))

    def c_sub_create(self, req, body):
        with self.lock:
            cust = body.get("customer")
            if not cust:
                cust = self.add_customer(email=body.get("email"), name=body.get("name"))["id"]
            sub = self.add_subscription(cust, body["items"], status=body.get("status",
                                                                             "active"),
                                        metadata=body.get("metadata"))
            out = self.render_subscription(sub)
        evs = []
        if body.get("emit"):
            evs = [self.subscription_event(sub["id"], "customer.subscription.created")["id"]]
        return {"subscription": out,
                "deliveries": self.deliver_all(evs) if body.get("deliver", True) else [],
                "events": evs}

    def c_sub_get(self, req, body):
        with self.lock:
            sub = self.state.subscriptions.get(req.params["id"])
            if sub is None:
                raise _no_such("subscription", req.params["id"])
            return self.render_subscription(sub)

    def _finish(self, out, evs, body):
        deliver = body.get("deliver", True)
        out["events"] = [copy.deepcopy(self.state.events[e]) for e in evs]
        out["deliveries"] = self.deliver_all(evs, times=body.get("times", 1)) if deliver \
            else []
        return out

    def c_sub_update(self, req, body):
        sub, evs = self.update_subscription(
            req.params["id"], status=body.get("status"), items=body.get("items"),
            cancel_at_period_end=body.get("cancel_at_period_end"),
            metadata=body.get("metadata"), emit=body.get("emit", True),
            created=body.get("created"))
        return self._finish({"subscription": self.render_subscription(sub)}, evs, body)

    def c_sub_cancel(self, req, body):
        sub, evs = self.cancel_subscription(req.params["id"], emit=body.get("emit", True),
                                            created=body.get("created"))
        return self._finish({"subscription": self.render_subscription(sub)}, evs, body)

    def c_sub_emit(self, req, body):
        ev = self.subscription_event(req.params["id"], body["type"],
                                     invoice_shape=body.get("invoice_shape"),
                                     created=body.get("created"),
                                     previous_attributes=body.get("previous_attributes"))
        out = self._finish({}, [ev["id"]], body)
        out["event"] = out["events"][0]
        return out

    def c_session_complete(self, req, body):
        s, evs = self.complete_session(req.params["id"], email=body.get("email"),
                                       name=body.get("name"))
        return self._finish({"session": self.render_session(s),
                             "redirect_url": self._completion_url(s)}, evs, body)

    def c_event_create(self, req, body):
        """{type, subscription?, object?, previous_attributes?, created?, deliver?}"""
        if body.get("subscription"):
            ev = self.subscription_event(body["subscription"], body["type"],
                                         invoice_shape=body.get("invoice_shape"),
                                         created=body.get("created"),
                                         previous_attributes=body.get("previous_attributes"))
        else:
            ev = self.make_event(body["type"], body.get("object") or {},
                                 body.get("previous_attributes"), body.get("created"))
        out = {"event": ev, "deliveries": []}
        if body.get("deliver", False):
            out["deliveries"] = self.deliver(ev["id"], times=body.get("times", 1))
        return out

    def c_event_deliver(self, req, body):
        return {"deliveries": self.deliver(
            req.params["id"], times=body.get("times", 1),
            timestamp_offset=body.get("timestamp_offset", 0), secret=body.get("secret"),
            signature=body.get("signature"), extra_signatures=body.get("extra_signatures"),
            omit_signature=body.get("omit_signature", False), url=body.get("url"))}

    def c_deliver_many(self, req, body):
        return {"deliveries": self.deliver_all(body["events"], times=body.get("times", 1))}

    def c_faults(self, req, body):
        """{status: 500|429|…, count: n (-1 = until cleared), path?, method?,
        should_retry?} or {"clear": true}."""
        with self.lock:
            if body.get("clear"):
                self.state.faults = []
            else:
                self.state.faults.append({"status": int(body.get("status", 500)),
                                          "count": int(body.get("count", 1)),
                                          "path": body.get("path"),
                                          "method": body.get("method"),
                                          "should_retry": body.get("should_retry")})
            return {"faults": self.state.faults}

    # --- Python helpers for tests --------------------------------------------------------

    def session(self, sid):
        with self.lock:
            return copy.deepcopy(self.state.sessions[sid])

    def subscription(self, sid):
        with self.lock:
            return self.render_subscription(self.state.subscriptions[sid])

    def emit(self, sub_id, type_, deliver=True, times=1, **kw):
        ev = self.subscription_event(sub_id, type_, **kw)
        if deliver:
            self.deliver(ev["id"], times=times)
        return ev

    def pay(self, session_id, email=None, name=None, deliver=True):
        s, evs = self.complete_session(session_id, email=email, name=name)
        if deliver:
            self.deliver_all(evs)
        return self.render_session(s), evs

    @property
    def deliveries(self):
        with self.lock:
            return list(self.state.deliveries)

    @property
    def events(self):
        with self.lock:
            return list(self.state.events.values())

    @property
    def requests(self):
        with self.lock:
            return list(self.state.requests)


def start_stripe(port=0, **kw):
    """Starts a Stripe double on 127.0.0.1:port (0 = a free port) in a background thread."""
    return StripeDouble(port=port, **kw).start()


def add_arguments(ap, prefix=""):
    ap.add_argument(f"--{prefix}webhook-url", default=None,
                    help="where signed events are POSTed (Usher's /onboarding/webhook/)")
    ap.add_argument(f"--{prefix}webhook-secret", default="whsec_devstack_double")
    ap.add_argument(f"--{prefix}catalog", default=None,
                    help="Usher catalog JSON (products[].prices[]) to load prices from")
    ap.add_argument(f"--{prefix}api-version", default=PINNED_VERSION,
                    help="default Stripe-Version when a request sends none")
    ap.add_argument(f"--{prefix}webhook-api-version", default=None,
                    help="api_version of events (default: --api-version)")
    ap.add_argument(f"--{prefix}api-key", default=None,
                    help="require exactly this secret key (default: any sk_test_…)")
    ap.add_argument(f"--{prefix}public-url", default=None,
                    help="base URL of the hosted pages (default http://127.0.0.1:PORT)")
    ap.add_argument(f"--{prefix}accept-unknown-prices", action="store_true")
    ap.add_argument(f"--{prefix}extra-events", action="store_true",
                    help="also send customer.created, customer.subscription.created and "
                         "invoice.paid on checkout completion")


def from_args(args, port, prefix="", verbose=False):
    g = lambda name: getattr(args, prefix.replace("-", "_") + name)  # noqa: E731
    d = StripeDouble(port=port, webhook_url=g("webhook_url"),
                     webhook_secret=g("webhook_secret"), catalog=g("catalog"),
                     public_url=g("public_url"), api_version=g("api_version"),
                     webhook_api_version=g("webhook_api_version"), api_key=g("api_key"),
                     verbose=verbose)
    d.config["accept_unknown_prices"] = g("accept_unknown_prices")
    d.config["extra_events"] = g("extra_events")
    return d


def main(argv=None):
    run_standalone("Stripe", 12111, add_arguments, from_args,
                   lambda d: f"stripe double on {d.url} (webhooks → {d.config['webhook_url']})", argv)


if __name__ == "__main__":
    main()
