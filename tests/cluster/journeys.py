"""Customer journeys driven over HTTP against a cluster_stack.Stack, and the record of every
request they made (for the per-fault figures).

One journey: a checkout session made and paid at the Stripe double (as the customer's
browser would at Stripe), the events of that payment delivered to Usher's webhook through
nginx — each one to three times, in shuffled order, retried like Stripe retries until it is
answered 200 —, the password-setup mail awaited in the Mailgun double's inbox (Keycloak's
mail reaches it as in devstack), the password set through the mail's link, an OIDC login
through nginx (the session started on one web process, the callback may land on the other),
then dashboard requests sent to the two web processes directly, alternating, with the same
session cookie. A request that fails (a refused connection, a 5xx) is retried like a person
or Stripe would, after a pause; every attempt is recorded with its time and outcome.
"""

import random
import re
import secrets
import threading
import time
from urllib.parse import urlsplit

import requests

from cluster_stack import STRIPE_KEY

from devstack.doubles.keycloak_double import submit_login

NEXTCLOUD = "price_demo_nextcloud_monthly"
IMMICH = "price_demo_immich_monthly"
STORAGE = "price_demo_storage_100_monthly"
BITWARDEN = "price_demo_bitwarden_monthly"

# What customer i buys: PLANS[i % 4]. Three of four buy Nextcloud (an instance seat).
PLANS = (
    ((NEXTCLOUD, 1), (STORAGE, 2)),
    ((NEXTCLOUD, 1), (IMMICH, 1)),
    ((BITWARDEN, 1),),
    ((NEXTCLOUD, 1), (BITWARDEN, 1)),
)
DASHBOARD_REQUESTS = 4
RETRY_PAUSE = 0.5
GIVE_UP_AFTER = 240  # seconds one step may keep failing (Redis is down 30 s of them)
COOKIE = "usher_session"  # DEBUG=true: the cookie without the __Host- prefix


def customer(i):
    return {"i": i, "email": f"customer{i:04d}@example.test", "username": f"customer{i:04d}",
            "first": f"First{i}", "last": "Cluster", "prices": PLANS[i % len(PLANS)],
            "password": "pw-" + secrets.token_hex(8)}


class Record:
    """Every HTTP attempt: (time, kind, target, outcome) with outcome an int status or
    "refused"/"error:<Exception name>"."""

    def __init__(self):
        self.lock = threading.Lock()
        self.attempts = []
        self.broken_sessions = []

    def add(self, kind, target, outcome):
        with self.lock:
            self.attempts.append((time.monotonic(), kind, target, outcome))

    def between(self, t0, t1):
        with self.lock:
            return [a for a in self.attempts if t0 <= a[0] < t1]


def _outcome(exc):
    if isinstance(exc, requests.ConnectionError):
        return "refused"
    return "error:" + type(exc).__name__


class Driver:
    def __init__(self, stack, record, seed):
        self.stack = stack
        self.record = record
        self.rng = random.Random(seed)
        self.rng_lock = threading.Lock()
        self.events_lock = threading.Lock()
        self.events = []  # every event id a payment produced
        self.paid_at = {}  # email -> time.time() of the payment
        self.served_by = {}  # username -> {"web1", "web2"}: who answered its dashboard 200

    # --- one HTTP step with retries -------------------------------------------------------

    def attempt(self, kind, target, fn, ok):
        """fn() -> Response until ok(response); every try recorded; gives up after a while."""
        deadline = time.monotonic() + GIVE_UP_AFTER
        while True:
            try:
                r = fn()
                self.record.add(kind, target, r.status_code)
                if ok(r):
                    return r
                if r.status_code < 500:
                    raise AssertionError(f"{kind}: {r.status_code} {r.text[:300]}")
            except requests.RequestException as e:
                self.record.add(kind, target, _outcome(e))
            if time.monotonic() > deadline:
                raise AssertionError(f"{kind} to {target} still failing after {GIVE_UP_AFTER} s")
            time.sleep(RETRY_PAUSE)

    # --- the journey ----------------------------------------------------------------------

    def journey(self, c):
        st, nginx = self.stack.st, self.stack.nginx
        sid = self.checkout(c)
        _, evs = st.complete_session(sid)
        with self.events_lock:
            self.events.extend(evs)
            self.paid_at[c["email"]] = time.time()
        with self.rng_lock:
            deliveries = [e for e in evs for _ in range(1 + self.rng.randrange(3))]
            self.rng.shuffle(deliveries)
        for ev in deliveries:
            self.deliver(ev)
        link = self.await_password_mail(c)
        self.set_password(c, link)
        cookie = self.login(c)
        urls = self.stack.backend_urls()
        for k in range(DASHBOARD_REQUESTS):
            self.dashboard(c, cookie, urls, k % 2)
        assert nginx  # the journey went through it

    def double(self, kind, fn):
        """A call to a double (Stripe's API or Keycloak's pages), retried on a connection
        error as a browser's user would; recorded like Usher's."""
        for _ in range(5):
            try:
                return fn()
            except requests.ConnectionError as e:
                self.record.add(kind, "double", _outcome(e))
                time.sleep(RETRY_PAUSE)
        return fn()

    def checkout(self, c):
        st = self.stack.st
        form = {"mode": "subscription", "customer_email": c["email"],
                "success_url": self.stack.nginx.url + "/onboarding/success/?session_id="
                                                      "{CHECKOUT_SESSION_ID}",
                "cancel_url": self.stack.nginx.url + "/onboarding/cancel/",
                "ui_mode": "hosted_page", "metadata[first_name]": c["first"],
                "metadata[last_name]": c["last"], "metadata[username]": c["username"]}
        for i, (price, qty) in enumerate(c["prices"]):
            form[f"line_items[{i}][price]"] = price
            form[f"line_items[{i}][quantity]"] = str(qty)
        headers = {"Authorization": "Bearer " + STRIPE_KEY,
                   "Idempotency-Key": secrets.token_hex(16)}  # a retry gets the same session
        r = self.double("stripe-checkout", lambda: requests.post(
            st.url + "/v1/checkout/sessions", data=form, timeout=15, headers=headers))
        assert r.status_code == 200, r.text
        return r.json()["id"]

    def deliver(self, event_id):
        """One webhook delivery through nginx, repeated like Stripe until answered 200."""
        deadline = time.monotonic() + GIVE_UP_AFTER
        while True:
            rec = self.stack.st.deliver(event_id)[0]
            outcome = rec["status"] if rec["status"] is not None else "refused"
            self.record.add("webhook", "nginx", outcome)
            if outcome == 200:
                return
            if isinstance(outcome, int) and outcome < 500:
                raise AssertionError(f"webhook {event_id}: {outcome} {rec['response_body']}")
            if time.monotonic() > deadline:
                raise AssertionError(f"webhook {event_id} still failing after {GIVE_UP_AFTER} s")
            time.sleep(RETRY_PAUSE)

    def await_password_mail(self, c):
        mg = self.stack.mg
        deadline = time.monotonic() + GIVE_UP_AFTER
        while True:
            with mg.lock:
                mails = [m for m in mg.state.messages
                         if m.get("source") == "keycloak" and c["email"] in str(m.get("to"))]
            if mails:
                m = re.search(r"https?://\S+/login-actions/action-token\?\S+", mails[0]["text"])
                assert m, mails[0]["text"]
                return m.group(0)
            if time.monotonic() > deadline:
                raise AssertionError(f"no password-setup mail for {c['email']}")
            time.sleep(0.2)

    def set_password(self, c, link):
        pw = {"password-new": c["password"], "password-confirm": c["password"]}
        r = self.double("set-password", lambda: requests.post(link, data=pw, timeout=15))
        assert r.status_code == 200 and "has been updated" in r.text, r.text[:300]

    def login(self, c):
        """OIDC through nginx; returns the session cookie's value."""
        nginx = self.stack.nginx.url
        for _ in range(5):
            cookies = {}

            def usher_get(path, kind):
                def fn():
                    h = {"Cookie": f"{COOKIE}={cookies[COOKIE]}"} if COOKIE in cookies else {}
                    r = requests.get(nginx + path, headers=h, allow_redirects=False, timeout=15)
                    got = r.cookies.get(COOKIE)
                    if got:
                        cookies[COOKIE] = got
                    return r
                return self.attempt(kind, "nginx", fn, lambda r: r.status_code < 500)

            r = usher_get("/oidc/authenticate/?next=%2Fdashboard%2F", "login-start")
            assert r.status_code == 303, (r.status_code, r.text[:300])
            idp = requests.Session()
            auth = r.headers["Location"]
            try:
                page = idp.get(auth, allow_redirects=False, timeout=15)
                r = submit_login(idp, page, c["username"], c["password"])
            except requests.ConnectionError as e:
                self.record.add("keycloak-login", "double", _outcome(e))
                continue
            assert r.status_code in (302, 303), (r.status_code, r.text[:300])
            cb = urlsplit(r.headers["Location"])
            r = usher_get(cb.path + "?" + cb.query, "login-callback")
            if r.status_code == 303 and r.headers["Location"] == "/dashboard/" \
                    and COOKIE in cookies:
                return cookies[COOKIE]
            # A callback that failed on the database is a failed login: start again, as a
            # person would from the error page.
            self.record.add("login-refused", "nginx", r.status_code)
        raise AssertionError(f"{c['username']} could not log in")

    def dashboard(self, c, cookie, urls, first):
        """GET /dashboard/ on one web process directly; the other if that one is down."""
        order = [urls[first], urls[1 - first]]
        deadline = time.monotonic() + GIVE_UP_AFTER
        while True:
            for url in order:
                target = "web1" if url == urls[0] else "web2"
                try:
                    r = requests.get(url + "/dashboard/", headers={"Cookie": f"{COOKIE}={cookie}"},
                                     allow_redirects=False, timeout=15)
                except requests.RequestException as e:
                    self.record.add("dashboard", target, _outcome(e))
                    continue
                self.record.add("dashboard", target, r.status_code)
                if r.status_code == 200:
                    assert c["username"] in r.text or c["first"] in r.text, r.text[:500]
                    with self.events_lock:
                        self.served_by.setdefault(c["username"], set()).add(target)
                    return
                if r.status_code < 500:
                    with self.record.lock:
                        self.record.broken_sessions.append((c["username"], target, r.status_code,
                                                            r.headers.get("Location")))
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"dashboard of {c['username']} still failing")
            time.sleep(RETRY_PAUSE)
