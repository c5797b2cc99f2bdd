"""pytest fixtures for the devstack doubles.

Use from a conftest.py (with the repository root on sys.path):

    from devstack.doubles.pytest_plugin import *  # noqa: F401,F403

or `pytest_plugins = ["devstack.doubles.pytest_plugin"]` in the root conftest.

Fixtures (function scope: fresh state per test, each on its own free port):
  stripe_double    StripeDouble, webhooks to `webhook_receiver` unless re-configured
                   (st.config["webhook_url"] = usher_url + "/onboarding/webhook/")
  keycloak_double  KeycloakDouble, realm "usher", clients usher/usher-secret and
                   usher-admin/usher-admin-secret
  mailgun_double   MailgunDouble, API key "key-devstack"
  webhook_receiver RecordingServer: records every request, answers `status` (default 200)
"""

import json
import threading

import pytest

from ._http import App, DoubleServer, json_response
from .keycloak_double import KeycloakDouble
from .mailgun_double import MailgunDouble
from .stripe_double import StripeDouble

WEBHOOK_SECRET = "whsec_test_doubles_secret"


class RecordingServer:
    """Accepts any request on any path, records it, answers with `self.status`."""

    def __init__(self):
        self.requests = []
        self.status = 200
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        app = App("receiver")
        app.dispatch = self._handle
        self.server = DoubleServer(app).start()

    @property
    def url(self):
        return self.server.url

    def _handle(self, req):
        with self.lock:
            self.requests.append({"method": req.method, "path": req.path,
                                  "headers": dict(req.headers.items()), "body": req.body})
            self.arrived.notify_all()
            status = self.status
        return json_response(status, {"received": True})

    def json_bodies(self):
        with self.lock:
            return [json.loads(r["body"]) for r in self.requests]

    def wait_for(self, n, timeout=5.0):
        with self.lock:
            self.arrived.wait_for(lambda: len(self.requests) >= n, timeout)
            return list(self.requests)

    def stop(self):
        self.server.stop()


@pytest.fixture
def webhook_receiver():
    r = RecordingServer()
    yield r
    r.stop()


@pytest.fixture
def stripe_double(webhook_receiver):
    d = StripeDouble(webhook_url=webhook_receiver.url + "/webhook",
                     webhook_secret=WEBHOOK_SECRET).start()
    d.add_price("price_basic_monthly", product="prod_basic", unit_amount=900,
                billing_period="monthly")
    d.add_price("price_basic_annual", product="prod_basic", unit_amount=9000,
                billing_period="annual")
    d.add_price("price_storage_monthly", product="prod_storage", unit_amount=300,
                billing_period="monthly")
    yield d
    d.stop()


@pytest.fixture
def keycloak_double():
    d = KeycloakDouble(redirect_uris=["http://127.0.0.1:8000/*", "http://app.test/cb*"],
                       groups=["usher-admins"]).start()
    yield d
    d.stop()


@pytest.fixture
def mailgun_double():
    d = MailgunDouble().start()
    yield d
    d.stop()
