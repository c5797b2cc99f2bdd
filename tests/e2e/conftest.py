"""Fixtures for the browser end-to-end suite: Debian's Chromium, driven by Playwright, against
the real `usher serve` + `usher worker` and the devstack doubles (Stripe, Keycloak, Mailgun).

The servers, databases and workers come from the integration suite (tests/integration's
conftest.py and test_worker.py) and the doubles from devstack/doubles/pytest_plugin.py, so a
change to how Usher is started is made in one place. The browser fixtures live in browser.py
(shared with tests/conformance/test_browser_login.py, which runs a journey against the real
Keycloak); this file re-exports them and adds the stack the journeys run against:

  browser  one Chromium per session: /usr/bin/chromium (apt package `chromium`), never a
           browser that Playwright downloads; missing → every test FAILS saying so
  page     a fresh browser context (no cookies) and page per test
  shot     shot("step") saves a full-page PNG as test-artifacts/e2e/<test>/NN-step.png
  stack    the doubles + a migrated database with devstack/catalog.json applied + usher serve
           + one usher worker, all wired to each other (see Stack)

The database is SQLite by default (pytest.ini deselects the PostgreSQL parametrization);
`-m postgres` runs the same journeys on the integration suite's throwaway cluster.
"""

import importlib.util
import json
import sys
import time
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
INTEGRATION = REPO / "tests" / "integration"
CATALOG = REPO / "devstack" / "catalog.json"

sys.path.insert(0, str(REPO))


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# Both suites' conftest files are top-level modules named `conftest`; the integration one is
# loaded under its own name, and its test modules (which `from conftest import …`) see it
# under that name while they load.
integration = _load("usher_integration_conftest", INTEGRATION / "conftest.py")
_ours = sys.modules.get("conftest")
sys.modules["conftest"] = integration
try:
    integration_worker = _load("usher_integration_test_worker", INTEGRATION / "test_worker.py")
finally:
    if _ours is not None:
        sys.modules["conftest"] = _ours
    else:
        sys.modules.pop("conftest", None)

browser_helpers = sys.modules.get("usher_e2e_browser") or \
    _load("usher_e2e_browser", Path(__file__).with_name("browser.py"))

from devstack.doubles import pytest_plugin  # noqa: E402

# Re-exported fixtures and hooks (pytest finds them by name in this module).
pg_cluster = integration.pg_cluster
pg_url = integration.pg_url
db_url = integration.db_url
db = integration.db
usher_bin = integration.usher_bin
workdir = integration.workdir
base_env = integration.base_env
run_usher = integration.run_usher
usher = integration.usher
migrated = integration_worker.migrated
workers = integration_worker.workers
clock = integration_worker.clock
webhook_receiver = pytest_plugin.webhook_receiver
stripe_double = pytest_plugin.stripe_double
keycloak_double = pytest_plugin.keycloak_double
mailgun_double = pytest_plugin.mailgun_double
pytest_collection_modifyitems = integration.pytest_collection_modifyitems
pytest_runtest_makereport = integration.pytest_runtest_makereport

free_port = integration.free_port
wait_for = integration_worker.wait_for

browser = browser_helpers.browser
shots = browser_helpers.shots
page = browser_helpers.page
shot = browser_helpers.shot
wait_for_text = browser_helpers.wait_for_text
STEP_TIMEOUT_MS = browser_helpers.STEP_TIMEOUT_MS

# Usher's login client in the Keycloak double (the double's default `usher` client only
# accepts port 8000).
OIDC_CLIENT_ID = "usher-e2e"
OIDC_CLIENT_SECRET = "usher-e2e-secret"
MAILGUN_DOMAIN = "mg.usher.test"


# --- the stack -----------------------------------------------------------------------------

class Stack:
    """Usher (serve + worker) wired to the three doubles, the catalog applied.

    url          Usher's base URL (PUBLIC_BASE_URL)
    logout_url   LOGOUT_REDIRECT_URL's default: Usher's own "you are logged out" page
    server       the integration suite's Server; worker: its Worker; db: its Db
    kc, st, mg   the Keycloak, Stripe and Mailgun doubles
    """

    def __init__(self, env, server, worker, db, kc, st, mg):
        self.env, self.server, self.worker, self.db = env, server, worker, db
        self.kc, self.st, self.mg = kc, st, mg
        self.url = server.url
        self.logout_url = self.url + "/logout/"
        self.mailgun_url, self.keycloak_url = mg.url, kc.url  # for tests/e2e/journeys.py

    def task_states(self, name):
        return [r[0] for r in self.db.rows("SELECT state FROM tasks WHERE name = ? ORDER BY id",
                                           name)]

    def wait_task_done(self, name, count=1, timeout=60):
        """Waits until `count` tasks of `name` are done; a failed one fails at once."""

        def check():
            states = self.task_states(name)
            if "failed" in states:
                errors = self.db.rows("SELECT id, last_error FROM tasks WHERE name = ? AND "
                                      "state = 'failed'", name)
                raise AssertionError(f"{name} failed: {errors}\n{self.worker.log[-3000:]}")
            return states.count("done") >= count

        wait_for(check, timeout=timeout, what=f"{count} done {name} task(s)")

    def kc_user(self, ref):
        """A user as the Keycloak double's control API reports it (None when absent)."""
        r = requests.get(f"{self.kc.url}/_control/users/{ref}", timeout=10)
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return r.json()


@pytest.fixture
def stack_env():
    """Extra configuration for the stack's server and worker; a test module overrides it."""
    return {}


@pytest.fixture
def stack(usher, workers, run_usher, db, keycloak_double, stripe_double, mailgun_double,
          stack_env):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    kc, st, mg = keycloak_double, stripe_double, mailgun_double

    kc.add_client(OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, redirect_uris=[url + "/oidc/callback/"],
                  post_logout_redirect_uris=[url + "/logout/"])
    kc.set_unmanaged_policy("ADMIN_EDIT")  # the realm setting the README asks for
    # As in `make run` (devstack/doubles/run.py): Keycloak's mails land in the Mailgun inbox.
    kc.on_email = lambda rec: mg.inject(rec["to"], rec["subject"], rec["text"],
                                        sender="keycloak@" + MAILGUN_DOMAIN, source="keycloak")
    catalog = json.loads(CATALOG.read_text())
    with kc.lock:
        existing = {g["name"] for g in kc.state.groups.values()}
    for group in catalog["groups"]:
        if group not in existing:
            kc.add_group(group)
    st.load_catalog(catalog)
    st.config["webhook_url"] = url + "/onboarding/webhook/"

    env = {
        "BIND": f"127.0.0.1:{port}",
        "PUBLIC_BASE_URL": url,
        "DEBUG": "true",  # plain-http cookies (no __Host- prefix) on 127.0.0.1
        "KEYCLOAK_SERVER_URL": kc.url,
        "KEYCLOAK_REALM": kc.realm,
        "OIDC_RP_CLIENT_ID": OIDC_CLIENT_ID,
        "OIDC_RP_CLIENT_SECRET": OIDC_CLIENT_SECRET,
        "KEYCLOAK_ADMIN_CLIENT_ID": "usher-admin",
        "KEYCLOAK_ADMIN_CLIENT_SECRET": "usher-admin-secret",
        "STRIPE_API_BASE": st.url,
        "STRIPE_SECRET_KEY": "sk_test_e2e",
        "STRIPE_PUBLISHABLE_KEY": "pk_test_e2e",
        "STRIPE_WEBHOOK_SECRET": pytest_plugin.WEBHOOK_SECRET,
        "STRIPE_CHECKOUT_UI": "hosted",
        "MAILGUN_API_BASE": mg.url,
        "MAILGUN_API_KEY": "key-devstack",
        "MAILGUN_DOMAIN": MAILGUN_DOMAIN,
        "MAILGUN_WAITLIST_ADDRESS": "waitlist@" + MAILGUN_DOMAIN,
        **stack_env,
    }
    rc, out, err = run_usher(["catalog", "apply", str(CATALOG)], env=env, timeout=60)
    assert rc == 0, f"usher catalog apply exited with {rc}:\n{out}\n{err}"
    server = usher(env)
    worker = workers(env)
    browser_helpers.USHER_SITES.append(url)  # shot() runs axe on these pages only
    try:
        yield Stack(env, server, worker, db, kc, st, mg)
    finally:
        browser_helpers.USHER_SITES.remove(url)
    # Both must exit 0 on SIGTERM: under ASan+UBSan a leak or a runtime error found on the
    # way changes the exit status (ASAN_OPTIONS/UBSAN_OPTIONS exitcode in scripts/test).
    worker.stop()
    server.stop()


# --- browser steps shared by the journeys --------------------------------------------------

def keycloak_login(page, stack, username, password):
    """On the Keycloak double's login form: fill it in and submit."""
    assert page.url.startswith(stack.kc.url + f"/realms/{stack.kc.realm}/"), page.url
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#kc-login")


def now():
    return int(time.time())
