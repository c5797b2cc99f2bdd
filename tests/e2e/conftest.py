"""Fixtures for the browser end-to-end suite: Debian's Chromium, driven by Playwright, against
the real `usher serve` + `usher worker` and the devstack doubles (Stripe, Keycloak, Mailgun).

The servers, databases and workers come from the integration suite (tests/integration's
conftest.py and test_worker.py) and the doubles from devstack/doubles/pytest_plugin.py, so a
change to how Usher is started is made in one place. This file adds only what a browser needs:

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
import os
import re
import shutil
import sys
import time
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
INTEGRATION = REPO / "tests" / "integration"
CATALOG = REPO / "devstack" / "catalog.json"
ARTIFACTS = Path(os.environ.get("USHER_E2E_ARTIFACTS") or REPO / "test-artifacts" / "e2e")
CHROMIUM = os.environ.get("USHER_E2E_CHROMIUM") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# Generous for the ASan build; a healthy step takes well under a second.
STEP_TIMEOUT_MS = 20_000

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
webhook_receiver = pytest_plugin.webhook_receiver
stripe_double = pytest_plugin.stripe_double
keycloak_double = pytest_plugin.keycloak_double
mailgun_double = pytest_plugin.mailgun_double
pytest_collection_modifyitems = integration.pytest_collection_modifyitems
pytest_runtest_makereport = integration.pytest_runtest_makereport

free_port = integration.free_port
wait_for = integration_worker.wait_for

# Usher's login client in the Keycloak double (the double's default `usher` client only
# accepts port 8000).
OIDC_CLIENT_ID = "usher-e2e"
OIDC_CLIENT_SECRET = "usher-e2e-secret"
MAILGUN_DOMAIN = "mg.usher.test"


# --- the browser ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def browser():
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"Debian's Chromium is not installed at {CHROMIUM}: run scripts/bootstrap "
                    "(apt package `chromium`). The e2e suite never uses Playwright's own "
                    "browser downloads.", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        pytest.fail(f"Playwright is missing from the venv ({e}): run scripts/bootstrap",
                    pytrace=False)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def _artifact_dir(request):
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name).strip("_")
    return ARTIFACTS / name


class Shots:
    """Numbered full-page screenshots of one test, in its own directory (emptied first, so
    what is there after a run is that run's)."""

    def __init__(self, directory):
        self.dir = directory
        self.n = 0
        self.page = None
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)

    def __call__(self, step, page=None):
        self.n += 1
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", step).strip("-")
        path = self.dir / f"{self.n:02d}-{slug}.png"
        (page or self.page).screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def shots(request):
    return Shots(_artifact_dir(request))


@pytest.fixture
def page(request, browser, shots):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    context.set_default_timeout(STEP_TIMEOUT_MS)
    pg = context.new_page()
    shots.page = pg
    try:
        yield pg
    finally:
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            # What the browser showed when the test gave up, next to the steps before it.
            for i, open_page in enumerate(context.pages):
                try:
                    shots(f"failed-tab{i + 1}", page=open_page)
                    (shots.dir / f"failed-tab{i + 1}.html").write_text(open_page.content())
                    print(f"--- browser tab {i + 1} at failure: {open_page.url}")
                except Exception as e:  # a crashed page must not hide the test's own error
                    print(f"--- browser tab {i + 1}: no screenshot ({e})")
        context.close()


@pytest.fixture
def shot(shots, page):
    """shot("step") saves test-artifacts/e2e/<test>/NN-step.png of the current page."""
    return shots


# --- the stack -----------------------------------------------------------------------------

class Stack:
    """Usher (serve + worker) wired to the three doubles, the catalog applied.

    url          Usher's base URL (PUBLIC_BASE_URL)
    logout_url   LOGOUT_REDIRECT_URL: Usher's waitlist page, a public page that is not `/`
                 (which would start a new login)
    server       the integration suite's Server; worker: its Worker; db: its Db
    kc, st, mg   the Keycloak, Stripe and Mailgun doubles
    """

    def __init__(self, env, server, worker, db, kc, st, mg):
        self.env, self.server, self.worker, self.db = env, server, worker, db
        self.kc, self.st, self.mg = kc, st, mg
        self.url = server.url
        self.logout_url = env["LOGOUT_REDIRECT_URL"]

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
def stack(usher, workers, run_usher, db, keycloak_double, stripe_double, mailgun_double):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    kc, st, mg = keycloak_double, stripe_double, mailgun_double

    kc.add_client(OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, redirect_uris=[url + "/oidc/callback/"],
                  post_logout_redirect_uris=[url + "/onboarding/waitlist/"])
    kc.set_unmanaged_policy("ADMIN_EDIT")  # the realm setting the README asks for
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
        "LOGOUT_REDIRECT_URL": url + "/onboarding/waitlist/",
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
    }
    rc, out, err = run_usher(["catalog", "apply", str(CATALOG)], env=env, timeout=60)
    assert rc == 0, f"usher catalog apply exited with {rc}:\n{out}\n{err}"
    server = usher(env)
    worker = workers(env)
    yield Stack(env, server, worker, db, kc, st, mg)
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


def wait_for_text(page, text, timeout_ms=STEP_TIMEOUT_MS):
    page.get_by_text(text).first.wait_for(state="visible", timeout=timeout_ms)


def now():
    return int(time.time())
