"""Issue 6's login journey in a real browser against the REAL Keycloak (the session's Keycloak
26 with the test realm, see conftest.py): Chromium opens Usher's /, is sent to Keycloak's own
login page, signs in, sees the dashboard card of the assigned instance, the account page, and
logs out through Keycloak's end-session endpoint; an administrator (bob, in `usher-admins`)
sees every active instance and the Admin card. The same journeys run against the Keycloak
double in tests/e2e/test_login_dashboard.py; this file checks that what the double says about
Keycloak holds for the real one (its login form, cookies, redirect-URI matching on loopback,
and no logout confirmation page when Usher sends id_token_hint).

The browser fixtures are tests/e2e/browser.py's (screenshots of every step in
test-artifacts/e2e/<test>/NN-step.png); Usher runs from the integration suite's fixtures, so
each journey runs on SQLite and on PostgreSQL (`-m "not postgres"` leaves the latter out).

The users are the realm's alice and bob. Keycloak is shared by the whole session, so nothing
here changes them there (no group membership, no attributes): alice's subscription and seat are
written into Usher's database only, as a completed signup leaves them.
"""

import importlib.util
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import HTTP_TIMEOUT, REPO


def _load(name, path):
    if name in sys.modules:  # both suites in one run: share the module the other one loaded
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# The integration conftest is loaded under its own name, as tests/e2e/conftest.py does; this
# suite's conftest stays `conftest`.
integration = _load("usher_integration_conftest", REPO / "tests/integration/conftest.py")
browser_helpers = _load("usher_e2e_browser", REPO / "tests/e2e/browser.py")

# Fixtures, found by pytest under these names in this module.
browser = browser_helpers.browser
shots = browser_helpers.shots
page = browser_helpers.page
shot = browser_helpers.shot
pg_cluster = integration.pg_cluster
pg_url = integration.pg_url
db_url = integration.db_url
db = integration.db
usher_bin = integration.usher_bin
workdir = integration.workdir
base_env = integration.base_env
run_usher = integration.run_usher
usher = integration.usher

wait_for_text = browser_helpers.wait_for_text

CATALOG = REPO / "devstack" / "catalog.json"
PLAN_PRICE = "price_demo_nextcloud_monthly"
STORAGE_PRICE = "price_demo_storage_100_monthly"
INSTANCE = "foggy"  # devstack/catalog.json: a Nextcloud instance
ALICE_NAME = ("Alice", "Liddell")  # as in the test realm


class Site:
    """`usher serve` on the test database, logging in through the real Keycloak.

    LOGOUT_REDIRECT_URL is left at its default, Usher's own /logout/ page ("you are logged
    out"); the test realm allows it as a post-logout redirect URI on loopback."""

    def __init__(self, server, db):
        self.server, self.db = server, db
        self.url = server.url
        self.logout_url = self.url + "/logout/"


@pytest.fixture
def site(usher, run_usher, db, keycloak):
    port = integration.free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "BIND": f"127.0.0.1:{port}",
        "PUBLIC_BASE_URL": url,
        "DEBUG": "true",  # plain-http cookies (no __Host- prefix) on 127.0.0.1
        "KEYCLOAK_SERVER_URL": keycloak.url,
        "KEYCLOAK_REALM": keycloak.realm,
        "OIDC_RP_CLIENT_ID": keycloak.web_client_id,
        "OIDC_RP_CLIENT_SECRET": keycloak.web_client_secret,
    }
    server = usher(env)
    rc, out, err = run_usher(["catalog", "apply", str(CATALOG)], env=env, timeout=60)
    assert rc == 0, f"usher catalog apply exited with {rc}:\n{out}\n{err}"
    yield Site(server, db)
    # Under ASan+UBSan a leak or a runtime error found on the way changes the exit status.
    server.stop()


def seed_subscriber(db, keycloak, username, first, last):
    """What a completed signup leaves in Usher's database: the local user linked to the
    Keycloak account, the subscription items (plan + storage add-on), an active seat on the
    Nextcloud instance INSTANCE and its groups as granted (in Usher's records only: the shared
    Keycloak is left alone). Returns (user id, instance base_url)."""
    kc_id = keycloak.user_id(keycloak.admin_session(), username)
    t = int(time.time())
    db.exec("INSERT INTO users (username, email, first_name, last_name, date_joined, keycloak_id, "
            "stripe_customer_id, stripe_subscription_id, subscription_status, stripe_state_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active', ?)",
            username, keycloak.users[username][1], first, last, t, kc_id,
            f"cus_{username}", f"sub_{username}", t)
    user_id = db.scalar("SELECT id FROM users WHERE username = ?", username)
    for n, price in enumerate((PLAN_PRICE, STORAGE_PRICE)):
        product_id = db.scalar("SELECT product_id FROM product_prices WHERE stripe_price_id = ?",
                               price)
        assert product_id, price
        db.exec("INSERT INTO subscription_items (user_id, product_id, stripe_price_id, "
                "stripe_item_id, quantity, current_period_end) VALUES (?, ?, ?, ?, 1, ?)",
                user_id, product_id, price, f"si_{username}_{n}", t + 30 * 86400)
    ((instance_id, product_id, base_url),) = db.rows(
        "SELECT i.id, i.product_id, i.base_url FROM instances i JOIN products p "
        "ON p.id = i.product_id WHERE p.slug = 'nextcloud' AND i.name = ?", INSTANCE)
    db.exec("INSERT INTO instance_assignments (user_id, product_id, instance_id, state, "
            "assigned_at, created_at) VALUES (?, ?, ?, 'active', ?, ?)",
            user_id, product_id, instance_id, t, t)
    db.exec("UPDATE instances SET allocated_seats = allocated_seats + 1 WHERE id = ?",
            instance_id)
    db.exec("INSERT INTO user_groups (user_id, group_id) SELECT ?, group_id FROM instance_groups "
            "WHERE instance_id = ?", user_id, instance_id)
    return user_id, base_url


def keycloak_sessions(keycloak, username):
    """The ids of the user's SSO sessions in Keycloak, through the Admin API (usher-admin may
    view users). Other tests (or earlier runs, with USHER_KEYCLOAK_URL) may have left some."""
    admin = keycloak.admin_session()
    r = admin.get(f"{keycloak.admin_base}/users/{keycloak.user_id(admin, username)}/sessions",
                  timeout=HTTP_TIMEOUT)
    r.raise_for_status()
    return {s["id"] for s in r.json()}


def on_keycloak_login_page(page, keycloak):
    """Waits for the real Keycloak's login form (theme keycloak.v2) of the test realm."""
    page.wait_for_selector("#kc-login")
    assert page.url.startswith(keycloak.oidc + "/auth?") or \
        page.url.startswith(keycloak.issuer + "/login-actions/"), page.url
    assert page.locator("#kc-form-login").count() == 1


def sign_in(page, keycloak, username):
    page.fill("#username", username)
    page.fill("#password", keycloak.users[username][0])
    page.click("#kc-login")


def test_real_keycloak_customer_journey(site, keycloak, page, shot):
    user_id, base_url = seed_subscriber(site.db, keycloak, "alice", *ALICE_NAME)
    sessions_before = keycloak_sessions(keycloak, "alice")
    navigations = []
    page.on("request", lambda req: req.is_navigation_request() and navigations.append(req.url))

    # The front door's "Log in" sends an anonymous visitor to Keycloak's own login page.
    page.goto(site.url + "/")
    page.get_by_role("link", name="Log in", exact=True).click()
    on_keycloak_login_page(page, keycloak)
    shot("keycloak-login-form")
    sign_in(page, keycloak, "alice")

    page.wait_for_url(site.url + "/dashboard/")
    wait_for_text(page, "Hello, Alice")
    shot("dashboard")
    # The login found the seeded user (by username) instead of creating another one.
    assert site.db.rows("SELECT id, keycloak_id FROM users WHERE username = 'alice'") == \
        [(user_id, keycloak.user_id(keycloak.admin_session(), "alice"))]
    card = page.locator("li.card.service", has_text="Cloud")
    assert card.count() == 1
    assert INSTANCE.title() not in card.inner_text()  # internal names are for admins
    assert card.get_by_role("link", name="Open Cloud").get_attribute("href") == base_url
    assert page.locator("li.card.service").count() == 1
    assert page.locator("li.card.service.admin").count() == 0  # alice is in no group
    ours = keycloak_sessions(keycloak, "alice") - sessions_before
    assert len(ours) == 1, ours  # the browser's SSO session

    page.get_by_role("link", name="Account details").click()
    page.wait_for_url(site.url + "/dashboard/account/")
    shot("account")
    details = {dt.inner_text().strip(): dd.inner_text().strip() for dt, dd in zip(
        page.locator("dl.details dt").all(), page.locator("dl.details dd").all())}
    assert details["Username"] == "alice"
    assert details["Email"] == keycloak.users["alice"][1]
    assert details["Name"] == " ".join(ALICE_NAME)
    assert details["Subscription"] == "Active"
    products = sorted(r.locator("td").first.inner_text().strip()
                      for r in page.locator("table.items tbody tr").all())
    assert products == ["Extra Storage 100 GB", "Nextcloud"]

    page.get_by_role("button", name="Log out").click()
    # Keycloak 26 asks "Do you want to log out?" unless the request carries id_token_hint;
    # landing on LOGOUT_REDIRECT_URL with no click in between shows that Usher sent it.
    page.wait_for_url(site.logout_url)
    wait_for_text(page, "You are logged out")
    shot("logged-out")
    ends = [u for u in navigations if u.startswith(keycloak.oidc + "/logout?")]
    assert len(ends) == 1, navigations
    q = parse_qs(urlsplit(ends[0]).query)
    assert q["client_id"] == [keycloak.web_client_id] and q["id_token_hint"][0]
    assert q["post_logout_redirect_uri"] == [site.logout_url]
    assert not ours & keycloak_sessions(keycloak, "alice")  # the SSO session is over
    assert site.db.scalar("SELECT COUNT(*) FROM sessions WHERE user_id = ?", user_id) == 0

    # Both sessions are gone: the dashboard asks for a password again (no silent SSO).
    page.goto(site.url + "/dashboard/")
    on_keycloak_login_page(page, keycloak)
    shot("login-required-again")


def test_real_keycloak_admin_sees_every_instance(site, keycloak, page, shot):
    active = site.db.rows("SELECT name, base_url FROM instances WHERE is_active ORDER BY name")
    assert len(active) == 3, active  # devstack/catalog.json: foggy, cirrus, main

    page.goto(site.url + "/")
    page.get_by_role("link", name="Log in", exact=True).click()
    on_keycloak_login_page(page, keycloak)
    shot("keycloak-login-form")
    sign_in(page, keycloak, "bob")
    page.wait_for_url(site.url + "/dashboard/")
    wait_for_text(page, "Hello, Bob")
    shot("dashboard")

    hrefs = [a.get_attribute("href")
             for a in page.locator("li.card.service:not(.admin) a").all()]
    assert sorted(hrefs) == sorted(url for _, url in active)
    admin_card = page.locator("li.card.service.admin")
    assert admin_card.count() == 1
    assert admin_card.get_by_role("link").get_attribute("href") == "/admin/"
    # Admin rights come from the groups claim of the real token, not from the database.
    assert site.db.scalar("SELECT is_admin FROM users WHERE username = 'bob'") in (1, True)
