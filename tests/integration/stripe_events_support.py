"""Shared set-up for the test_stripe_events_*.py files (SPEC §4, the worker side).

One `world` per test: the demo catalog applied, the Stripe double (loaded with the same
catalog, webhooks signed and sent to the real `usher serve`), the Keycloak double (Admin API
client, unmanaged attributes kept, the catalog's groups), and real `usher worker` processes
started on demand. Signups go through the double like a customer's: a checkout session is
created over the Stripe API and paid; its events are delivered to Usher's webhook endpoint,
stored there and processed by the worker.

The workers' task backend is the database, unless a test parametrizes the world with
`@pytest.mark.parametrize("world", BROKERS, indirect=True)` to run on Redis as well: the
world then starts a throwaway redis-server (test_worker_redis.Redis) and points its workers
at it (TASK_BROKER_URL; `usher serve` only writes the tasks table).
"""

import contextlib
import hashlib
import json
import secrets
import shutil
import signal
import subprocess
import sys
import time

import pytest
import requests

from conftest import REPO

sys.path.insert(0, str(REPO))
from devstack.doubles.stripe_double import StripeDouble  # noqa: E402
from test_worker_redis import Redis  # noqa: E402

CATALOG = REPO / "devstack" / "catalog.json"
WEBHOOK_SECRET = "whsec_stripe_events_tests"
STRIPE_KEY = "sk_test_stripe_events"
TIMEOUT = 120  # generous: the ASan build is several times slower

NEXTCLOUD = "price_demo_nextcloud_monthly"
IMMICH = "price_demo_immich_monthly"
STORAGE = "price_demo_storage_100_monthly"
BITWARDEN = "price_demo_bitwarden_monthly"

BROKERS = ("database", "redis")


def wait_for(predicate, what, timeout=TIMEOUT, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class World:
    def __init__(self, server, st, kc, db, start_worker, redis=None):
        self.server, self.st, self.kc, self.db = server, st, kc, db
        self._start_worker = start_worker
        self.redis = redis
        self.workers = []
        self.worker = None

    def env(self):
        return dict(self.server.env)

    def start_worker(self):
        env = self.env()
        if self.redis:
            env["TASK_BROKER_URL"] = self.redis.url
        self.worker = self._start_worker(env)
        self.workers.append(self.worker)
        backend = "redis" if self.redis else "database"
        assert f"backend={backend}" in self.worker.log, self.worker.log
        return self.worker

    def stop_workers(self):
        """Stops the workers (the `workers` fixture would, but only after Redis is gone)."""
        for w in self.workers:
            if w.proc.poll() is None:
                w.proc.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    w.proc.wait(timeout=30)

    # --- Stripe ---------------------------------------------------------------------------

    def checkout(self, email, username, prices, first="Ada", last="Lovelace", extra_meta=None):
        """Creates an open checkout session the way Usher's checkout does; returns its id."""
        success = self.server.url + "/onboarding/success/?session_id={CHECKOUT_SESSION_ID}"
        form = {"mode": "subscription", "customer_email": email, "success_url": success,
                "cancel_url": self.server.url + "/onboarding/cancel/",
                "ui_mode": "hosted_page",
                "metadata[first_name]": first, "metadata[last_name]": last}
        if username is not None:
            form["metadata[username]"] = username
        for k, v in (extra_meta or {}).items():
            form[f"metadata[{k}]"] = v
        for i, (price, qty) in enumerate(prices):
            form[f"line_items[{i}][price]"] = price
            form[f"line_items[{i}][quantity]"] = str(qty)
        r = requests.post(self.st.url + "/v1/checkout/sessions", data=form, timeout=10,
                          headers={"Authorization": "Bearer " + STRIPE_KEY,
                                   "Idempotency-Key": secrets.token_hex(16)})
        assert r.status_code == 200, r.text
        return r.json()["id"]

    def pay(self, session_id, deliver=True):
        """Pays; returns (subscription id, checkout.session.completed event id)."""
        session, events = self.st.pay(session_id, deliver=deliver)
        assert len(events) == 1, events
        return session["subscription"], events[0]

    def signup(self, email, username, prices, **kw):
        sub_id, ev = self.pay(self.checkout(email, username, prices, **kw))
        self.wait_events([ev])
        return sub_id, ev

    def deliver(self, event_id, times=1):
        for d in self.st.deliver(event_id, times=times):
            assert d["status"] == 200, d

    # --- Usher's database -----------------------------------------------------------------

    def event_status(self, event_id):
        return self.db.scalar("SELECT status FROM stripe_events WHERE event_id = ?", event_id)

    def wait_events(self, event_ids, statuses=("processed", "ignored")):
        def done():
            rows = self.db.rows("SELECT event_id, status FROM stripe_events")
            got = {e: s for e, s in rows}
            return all(got.get(e) in statuses for e in event_ids)

        wait_for(done, f"events {event_ids} to be processed")
        self.wait_idle()

    def wait_idle(self, names=("process_stripe_event", "sync_user_post_checkout")):
        """Until no task of these names is queued or running."""
        marks = ",".join("?" for _ in names)
        wait_for(lambda: self.db.scalar(
            f"SELECT count(*) FROM tasks WHERE name IN ({marks}) "
            "AND state IN ('queued', 'running')", *names) == 0, "the queue to drain")

    def user(self, username):
        rows = self.db.dict_rows("SELECT * FROM users WHERE username = ?", username)
        return rows[0] if rows else None

    def items(self, user_id):
        return sorted(self.db.rows(
            "SELECT stripe_price_id, quantity FROM subscription_items WHERE user_id = ?",
            user_id))

    def tasks(self, name, state=None):
        rows = self.db.rows("SELECT args, state FROM tasks WHERE name = ?", name)
        return [json.loads(a) for a, s in rows if state is None or s == state]

    def seats(self, user_id):
        return sorted(self.db.rows(
            "SELECT p.slug, a.state FROM instance_assignments a "
            "JOIN products p ON p.id = a.product_id WHERE a.user_id = ?", user_id))

    def login_session(self, user_id):
        """A live Usher session for the user (as a login leaves one); returns the cookie."""
        raw = secrets.token_hex(32)
        now = int(time.time())
        self.db.exec("INSERT INTO sessions (id_hash, user_id, csrf_token, data, created_at, "
                     "last_seen_at) VALUES (?, ?, ?, '{}', ?, ?)",
                     hashlib.sha256(raw.encode()).hexdigest(), user_id, secrets.token_hex(32),
                     now, now)
        return raw

    def dashboard(self, cookie):
        return self.server.get("/dashboard/", headers={"Cookie": f"usher_session={cookie}"})

    # --- Keycloak -------------------------------------------------------------------------

    def kc_user(self, ref):
        return self.kc.user(ref)

    def kc_groups(self, kc_id):
        r = requests.get(f"{self.kc.url}/admin/realms/{self.kc.realm}/users/{kc_id}/groups",
                         headers={"Authorization": "Bearer " + self.kc.admin_token()}, timeout=10)
        r.raise_for_status()
        return sorted(g["name"] for g in r.json())

    def kc_logouts(self, kc_id):
        with self.kc.lock:
            return [x for x in self.kc.state.admin_logouts if x["user_id"] == kc_id]


@pytest.fixture
def world(request, usher, keycloak_double, db, run_usher, workers, tmp_path, world_env):
    broker = getattr(request, "param", "database")
    assert broker in BROKERS, broker
    if broker == "redis" and shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    redis = None
    kc = keycloak_double
    kc.set_unmanaged_policy("ADMIN_EDIT")
    for g in json.loads(CATALOG.read_text())["groups"]:
        if g != "usher-admins":
            kc.add_group(g)
    st = StripeDouble(webhook_secret=WEBHOOK_SECRET, catalog=str(CATALOG)).start()
    try:
        if broker == "redis":
            redis = Redis(tmp_path).start()
        env = {"DEBUG": "true",
               "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET, "STRIPE_SECRET_KEY": STRIPE_KEY,
               "STRIPE_API_BASE": st.url,
               "KEYCLOAK_SERVER_URL": kc.url, "KEYCLOAK_REALM": kc.realm,
               "KEYCLOAK_ADMIN_CLIENT_ID": "usher-admin",
               "KEYCLOAK_ADMIN_CLIENT_SECRET": "usher-admin-secret",
               "WORKER_CONCURRENCY": "4", **world_env}
        server = usher(env)
        st.config["webhook_url"] = server.url + "/onboarding/webhook/"
        rc, out, err = run_usher(["catalog", "apply", str(CATALOG)], env=env)
        assert rc == 0, (out, err)
        w = World(server, st, kc, db, workers, redis)
        try:
            yield w
        finally:
            w.stop_workers()
    finally:
        st.stop()
        if redis:
            redis.stop()
