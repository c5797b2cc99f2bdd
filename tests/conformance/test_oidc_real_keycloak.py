"""Usher's OIDC login against the REAL Keycloak (the test realm of conftest.py): the same
browserless login as tests/integration/test_oidc.py runs against the double, here through
Keycloak's own login form.

Each test runs the real usher binary (USHER_BIN, default build/usher) on SQLite, with
KEYCLOAK_SERVER_URL pointing at the session's Keycloak and the `usher-web` client. The test
realm registers http://127.0.0.1/oidc/callback/ (any port on loopback) as redirect and
post-logout redirect URI, so LOGOUT_REDIRECT_URL is set to Usher's callback URL here: the
logout test only checks that Keycloak accepts the end-session request and redirects there.
"""

import hashlib
import json
import os
import secrets
import sqlite3
import subprocess
import time
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests

from conftest import HTTP_TIMEOUT, REPO, browser_session, free_port, jwt_claims

_CONFIG_PREFIXES = ("POSTGRES_", "KEYCLOAK_", "OIDC_", "STRIPE_", "MAILGUN_", "TASK_", "PG",
                    "USHER_")
_CONFIG_NAMES = {"SECRET_KEY", "DJANGO_SECRET_KEY", "DEBUG", "PUBLIC_BASE_URL", "BIND",
                 "TAILSCALE_IP", "DATABASE_URL", "ADMIN_GROUP", "CELERY_BROKER_URL",
                 "LOGOUT_REDIRECT_URL", "WEB_THREADS"}


class Usher:
    """One `usher serve` on SQLite, configured for the real Keycloak."""

    def __init__(self, tmp_path, keycloak):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db_path = tmp_path / "usher.sqlite3"
        env = {k: v for k, v in os.environ.items()
               if k == "USHER_DATA_DIR" or not (k in _CONFIG_NAMES or
                                                k.startswith(_CONFIG_PREFIXES))}
        env.update({
            "BIND": f"127.0.0.1:{self.port}", "PUBLIC_BASE_URL": self.url, "DEBUG": "true",
            "DATABASE_URL": f"sqlite:///{self.db_path}", "SECRET_KEY": secrets.token_hex(32),
            "KEYCLOAK_SERVER_URL": keycloak.url, "KEYCLOAK_REALM": keycloak.realm,
            "OIDC_RP_CLIENT_ID": keycloak.web_client_id,
            "OIDC_RP_CLIENT_SECRET": keycloak.web_client_secret,
            "LOGOUT_REDIRECT_URL": f"{self.url}/oidc/callback/",
        })
        env.setdefault("USHER_DATA_DIR", str(REPO))
        self.env = env
        self.binary = Path(os.environ.get("USHER_BIN") or REPO / "build" / "usher")
        self.cwd = tmp_path / "cwd"
        self.cwd.mkdir()
        self.log_path = tmp_path / "serve.log"
        self.proc = None

    def start(self):
        subprocess.run([str(self.binary), "migrate"], env=self.env, cwd=self.cwd, check=True,
                       capture_output=True, timeout=60)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(self.binary), "serve"], env=self.env, cwd=self.cwd,
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"usher serve exited:\n{self.log}")
            try:
                if requests.get(self.url + "/health/", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"usher serve did not start:\n{self.log}")

    @property
    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()

    def session_data(self, cookie):
        digest = hashlib.sha256(cookie.encode()).hexdigest()
        with sqlite3.connect(self.db_path, timeout=10) as conn:
            row = conn.execute("SELECT data FROM sessions WHERE id_hash = ?",
                               (digest,)).fetchone()
        return json.loads(row[0]) if row else None


class Browser:
    """Usher's session cookie kept by hand (as the integration suite's client does), and a
    browser-like session for Keycloak's cookies."""

    def __init__(self, usher):
        self.usher = usher
        self.cookie = None
        self.idp = browser_session()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def request(self, method, path, **kw):
        headers = kw.pop("headers", {})
        if self.cookie:
            headers["Cookie"] = f"usher_session={self.cookie}"
        r = requests.request(method, self.usher.url + path, headers=headers,
                             allow_redirects=False, timeout=HTTP_TIMEOUT, **kw)
        for raw in r.raw.headers.getlist("Set-Cookie"):
            name, _, rest = raw.partition("=")
            if name == "usher_session":
                value = rest.split(";", 1)[0]
                self.cookie = value or None
        return r

    def login(self, keycloak, username, next_path="/dashboard/"):
        r = self.get("/oidc/authenticate/?next=" + quote(next_path, safe=""))
        assert r.status_code == 303, (r.status_code, r.text[:300])
        self.cookie_before = self.cookie
        auth_url = r.headers["Location"]
        assert auth_url.startswith(keycloak.oidc + "/auth?"), auth_url
        left = keycloak.submit_login(self.idp, auth_url, username, keycloak.users[username][0])
        callback = left.headers["Location"]
        parts = urlsplit(callback)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == \
            self.usher.url + "/oidc/callback/", callback
        self.callback_path = parts.path + "?" + parts.query
        return self.get(self.callback_path)


@pytest.fixture
def usher(tmp_path, keycloak):
    u = Usher(tmp_path, keycloak).start()
    yield u
    u.stop()


@pytest.mark.parametrize("username, groups, is_admin", [("alice", [], False),
                                                        ("bob", ["usher-admins"], True)])
def test_login_through_keycloak(usher, keycloak, username, groups, is_admin):
    b = Browser(usher)
    r = b.login(keycloak, username)
    assert r.status_code == 303, (r.status_code, r.text[:500], usher.log[-3000:])
    assert r.headers["Location"] == "/dashboard/"
    assert b.cookie and b.cookie != b.cookie_before
    assert usher.session_data(b.cookie_before) is None  # rotated: the old id is gone
    auth = usher.session_data(b.cookie)["auth"]
    assert auth["groups"] == groups
    # The local user was created from the claims: the account page shows them.
    page = b.get("/dashboard/account/")
    assert page.status_code == 200, page.text[:500]
    assert username in page.text and keycloak.users[username][1] in page.text
    assert auth["is_admin"] is is_admin
    claims = jwt_claims(auth["id_token"])
    assert claims["iss"] == keycloak.issuer and claims["aud"] == keycloak.web_client_id
    assert claims["sub"] == auth["sub"]
    if not groups:
        assert "groups" not in claims  # Keycloak omits the claim; Usher reads it as none
    # the same callback again: the state was used up
    assert b.get(b.callback_path).status_code == 400


def test_refused_code_and_unknown_state(usher, keycloak):
    b = Browser(usher)
    r = b.get("/oidc/authenticate/?next=/dashboard/")
    left = keycloak.submit_login(b.idp, r.headers["Location"], "alice",
                                 keycloak.users["alice"][0])
    q = parse_qs(urlsplit(left.headers["Location"]).query)
    forged = f"/oidc/callback/?state={secrets.token_hex(16)}&code={quote(q['code'][0])}"
    r = b.get(forged)
    assert r.status_code == 400 and "unknown" in r.text
    # Keycloak's own refusal (invalid_grant) of a code that is not the one it issued
    r = b.get(f"/oidc/callback/?state={q['state'][0]}&code=not-{quote(q['code'][0])}")
    assert r.status_code == 400 and "refused the login code" in r.text, usher.log[-2000:]


def test_logout_through_keycloak(usher, keycloak):
    b = Browser(usher)
    assert b.login(keycloak, "bob").status_code == 303
    cookie = b.cookie
    id_token = usher.session_data(cookie)["auth"]["id_token"]
    page = b.get("/onboarding/").text  # any page with the session's CSRF token
    token = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    r = b.request("POST", "/logout/", data={"csrf_token": token})
    assert r.status_code == 303, (r.status_code, r.text[:300])
    assert usher.session_data(cookie) is None and b.cookie is None
    loc = r.headers["Location"]
    parts = urlsplit(loc)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == keycloak.oidc + "/logout"
    q = parse_qs(parts.query)
    assert q["id_token_hint"] == [id_token] and q["client_id"] == [keycloak.web_client_id]
    assert q["post_logout_redirect_uri"] == [usher.url + "/oidc/callback/"]
    # Keycloak accepts it, ends the SSO session and redirects straight back (no confirmation)
    r = b.idp.get(loc, allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert r.status_code == 302, (r.status_code, r.text[:500])
    assert r.headers["Location"] == usher.url + "/oidc/callback/"
    # the SSO session is gone: the next login shows the form again
    r = b.get("/oidc/authenticate/")
    r = b.idp.get(r.headers["Location"], allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200 and "kc-form-login" in r.text


def test_usher_check_reaches_the_real_keycloak(usher, keycloak):
    """`usher check` with the service account: token, the realm's attribute policy (the test
    realm allows unmanaged attributes for admins, so nothing is dropped), and the groups the
    catalog's instances grant (the test realm lacks immich-main until it is created here)."""
    env = dict(usher.env, KEYCLOAK_ADMIN_CLIENT_ID=keycloak.admin_client_id,
               KEYCLOAK_ADMIN_CLIENT_SECRET=keycloak.admin_client_secret)
    subprocess.run([str(usher.binary), "migrate"], env=env, cwd=usher.cwd, check=True,
                   capture_output=True, timeout=60)
    subprocess.run([str(usher.binary), "catalog", "apply", str(REPO / "devstack/catalog.json")],
                   env=env, cwd=usher.cwd, check=True, capture_output=True, timeout=60)
    r = subprocess.run([str(usher.binary), "check"], env=env, cwd=usher.cwd,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    assert 'keycloak group "immich-main" of instance "main": MISSING' in r.stdout
    assert r.stdout.count("MISSING") == 1, r.stdout  # foggy's and cirrus's are in the realm
    admin = keycloak.admin_session()
    created = []
    try:
        for group in ("immich-main",):
            g = admin.post(f"{keycloak.admin_base}/groups", json={"name": group},
                           timeout=HTTP_TIMEOUT)
            assert g.status_code == 201, g.text
            created.append(g.headers["Location"])
        r = subprocess.run([str(usher.binary), "check"], env=env, cwd=usher.cwd,
                           capture_output=True, text=True, timeout=60)
    finally:
        for location in created:
            admin.delete(location, timeout=HTTP_TIMEOUT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "keycloak groups: ok (3 granted by instances)" in r.stdout
    assert "keycloak admin: ok" in r.stdout
    assert "unmanagedAttributePolicy=ADMIN_EDIT" in r.stdout
    assert keycloak.admin_client_secret not in r.stdout + r.stderr
    bad = dict(env, KEYCLOAK_ADMIN_CLIENT_SECRET="wrong-secret")
    r = subprocess.run([str(usher.binary), "check"], env=bad, cwd=usher.cwd,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "keycloak admin: FAILED" in r.stdout
