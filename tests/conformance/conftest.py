"""Fixtures for the conformance tests: a real Keycloak, stripe-mock and an SMTP catcher.

Session-scoped, started on loopback on free ports, stopped at the end:
  smtp_catcher  an aiosmtpd server on 127.0.0.1 that keeps every message it receives
  keycloak      Keycloak (scripts/keycloak) with tests/conformance/realm/usher-test-realm.json
                imported; its realm sends mail to smtp_catcher
  stripe_mock   Stripe's official stripe-mock (scripts/stripe-mock), HTTP only

Environment knobs:
  USHER_KEYCLOAK_URL    use this running Keycloak (with the test realm imported) instead of
                        starting one; the SMTP catcher then listens on USHER_TEST_SMTP_PORT
                        (default 2525), the port that instance's realm was imported with
  USHER_TEST_SMTP_PORT  fixed port for the SMTP catcher (default: a free port)
  USHER_CACHE           where the scripts keep downloads and builds (default ~/.cache/usher)

The first run downloads and pre-builds Keycloak (~30 s) and builds stripe-mock (~30 s);
later runs start Keycloak in about 20-50 s depending on the JDK (see README.md).
"""

import base64
import dataclasses
import email
import email.policy
import hashlib
import html.parser
import json
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlparse

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
HTTP_TIMEOUT = 15

# Fixed names and secrets of the test realm (tests/conformance/realm/usher-test-realm.json).
REALM = "usher"
WEB_CLIENT_ID = "usher-web"
WEB_CLIENT_SECRET = "usher-web-test-secret"
ADMIN_CLIENT_ID = "usher-admin"
ADMIN_CLIENT_SECRET = "usher-admin-test-secret"
TEST_USERS = {
    # username: (password, email, groups)
    "alice": ("alice-test-password", "alice@usher.test", []),
    "bob": ("bob-test-password", "bob@usher.test", ["usher-admins"]),
}
GROUPS = ["usher-admins", "nextcloud-foggy", "nextcloud-cirrus"]

STRIPE_TEST_KEY = "sk_test_usher"
STRIPE_API_VERSION = "2026-06-24.dahlia"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pytest_configure(config):
    # test_browser_login.py runs on the integration suite's db_url fixture, whose PostgreSQL
    # half carries this mark (`-m "not postgres"` leaves it out).
    config.addinivalue_line("markers", "postgres: runs against a throwaway PostgreSQL cluster")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keeps each phase's report on the item (item.rep_call, …): the e2e browser fixtures
    save what the browser showed when a test failed, the integration ones print Usher's log."""
    rep = yield
    setattr(item, "rep_" + rep.when, rep)
    return rep


# --- SMTP catcher --------------------------------------------------------------------------


@dataclasses.dataclass
class Mail:
    mail_from: str
    rcpt_tos: list
    message: email.message.EmailMessage

    @property
    def subject(self):
        return str(self.message.get("Subject", ""))

    @property
    def text(self):
        """The text/plain body (or the first text part) as str."""
        part = self.message.get_body(preferencelist=("plain", "html"))
        return part.get_content() if part is not None else ""


class SmtpCatcher:
    """aiosmtpd server on 127.0.0.1:port; accepts everything, keeps it in `messages`."""

    def __init__(self, port):
        self.host = "127.0.0.1"
        self.port = port
        self.messages = []
        self._cond = threading.Condition()
        self._controller = None

    # aiosmtpd handler hook
    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content or envelope.content,
                                       policy=email.policy.default)
        with self._cond:
            self.messages.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), msg))
            self._cond.notify_all()
        return "250 Message accepted for delivery"

    def start(self):
        from aiosmtpd.controller import Controller

        self._controller = Controller(self, hostname=self.host, port=self.port)
        self._controller.start()

    def stop(self):
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def clear(self):
        with self._cond:
            self.messages.clear()

    def wait_for(self, to=None, timeout=15.0):
        """The first message (optionally to address `to`); fails after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self.messages:
                    if to is None or to in m.rcpt_tos:
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no mail to {to!r} within {timeout} s "
                                         f"(got {[m.rcpt_tos for m in self.messages]})")
                self._cond.wait(left)


@pytest.fixture(scope="session")
def smtp_catcher():
    port = os.environ.get("USHER_TEST_SMTP_PORT")
    if not port:
        # An external Keycloak's realm was imported with the script's default port.
        port = 2525 if os.environ.get("USHER_KEYCLOAK_URL") else free_port()
    catcher = SmtpCatcher(int(port))
    catcher.start()
    yield catcher
    catcher.stop()


# --- Keycloak ------------------------------------------------------------------------------


class _FormParser(html.parser.HTMLParser):
    """Collects <form> elements: [{"attrs": {...}, "inputs": {name: value}}]."""

    def __init__(self):
        super().__init__()
        self.forms = []
        self._cur = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._cur = {"attrs": a, "inputs": {}}
            self.forms.append(self._cur)
        elif tag == "input" and self._cur is not None and a.get("name"):
            self._cur["inputs"][a["name"]] = a.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self._cur = None


def parse_forms(page_html):
    p = _FormParser()
    p.feed(page_html)
    return p.forms


def pkce_pair():
    """(verifier, S256 challenge) as in RFC 7636."""
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def jwt_claims(token):
    """The payload of a JWT, NOT verified (the tests check the signature separately)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


_LOOPBACK_COOKIE_DOMAINS = {"127.0.0.1", "localhost", "localhost.local", "::1", "[::1]"}


class _LoopbackCookieJar(requests.cookies.RequestsCookieJar):
    """Keeps `Secure` cookies from loopback hosts usable over plain HTTP, as browsers do
    (they treat http://localhost and http://127.0.0.1 as secure contexts). Keycloak 26 marks
    its login cookies Secure (SameSite=None) even over HTTP; the stdlib jar would never send
    them back and the login form would fail with "Restart login cookie not found"."""

    def set_cookie(self, cookie, *args, **kwargs):
        if cookie.secure and cookie.domain.lstrip(".") in _LOOPBACK_COOKIE_DOMAINS:
            cookie.secure = False
        return super().set_cookie(cookie, *args, **kwargs)


def browser_session():
    """A requests.Session that keeps cookies like a browser on loopback."""
    s = requests.Session()
    s.cookies = _LoopbackCookieJar()
    return s


class KeycloakServer:
    """A running Keycloak with the test realm. Plain data plus small HTTP helpers."""

    realm = REALM
    web_client_id = WEB_CLIENT_ID
    web_client_secret = WEB_CLIENT_SECRET
    admin_client_id = ADMIN_CLIENT_ID
    admin_client_secret = ADMIN_CLIENT_SECRET
    users = TEST_USERS
    groups = GROUPS

    def __init__(self, url, mgmt_url=None, startup_seconds=None):
        self.url = url.rstrip("/")
        self.mgmt_url = mgmt_url
        self.startup_seconds = startup_seconds
        self.issuer = f"{self.url}/realms/{self.realm}"
        self.oidc = f"{self.issuer}/protocol/openid-connect"
        self.admin_base = f"{self.url}/admin/realms/{self.realm}"

    def admin_token(self):
        r = requests.post(f"{self.oidc}/token", timeout=HTTP_TIMEOUT, data={
            "grant_type": "client_credentials",
            "client_id": self.admin_client_id,
            "client_secret": self.admin_client_secret,
        })
        r.raise_for_status()
        return r.json()["access_token"]

    def admin_session(self):
        """requests.Session authorised as the usher-admin service account."""
        s = requests.Session()
        s.headers["Authorization"] = f"Bearer {self.admin_token()}"
        return s

    def user_id(self, admin, username):
        r = admin.get(f"{self.admin_base}/users", timeout=HTTP_TIMEOUT,
                      params={"username": username, "exact": "true"})
        r.raise_for_status()
        (u,) = r.json()
        return u["id"]

    def auth_url(self, redirect_uri, state, nonce, challenge, scope="openid email profile",
                 **extra):
        q = {
            "response_type": "code", "client_id": self.web_client_id,
            "redirect_uri": redirect_uri, "scope": scope, "state": state, "nonce": nonce,
            "code_challenge": challenge, "code_challenge_method": "S256",
        }
        q.update(extra)
        return f"{self.oidc}/auth?{urlencode(q)}"

    def submit_login(self, session, auth_url, username, password):
        """Drive Keycloak's own login form over HTTP; return the response that leaves
        Keycloak (a redirect, not followed: its Location carries `code` and `state`)."""
        r = session.get(auth_url, timeout=HTTP_TIMEOUT, allow_redirects=True)
        if r.status_code != 200:
            raise AssertionError(f"login page: HTTP {r.status_code}: {r.text[:500]}")
        forms = [f for f in parse_forms(r.text) if f["attrs"].get("id") == "kc-form-login"]
        if not forms:
            raise AssertionError(f"no kc-form-login in the page: {r.text[:500]}")
        form = forms[0]
        action = urljoin(r.url, form["attrs"]["action"])
        data = dict(form["inputs"])
        data.update({"username": username, "password": password})
        r = session.post(action, data=data, timeout=HTTP_TIMEOUT, allow_redirects=False)
        if r.status_code not in (302, 303):
            raise AssertionError(f"login POST: HTTP {r.status_code}: {r.text[:500]}")
        return r

    def login(self, username, password=None, redirect_uri=None, session=None):
        """Full browserless authorization-code + PKCE login as a confidential client.
        Returns (token response JSON, nonce, requests.Session with Keycloak's SSO cookies)."""
        if password is None:
            password = self.users[username][0]
        redirect_uri = redirect_uri or f"http://127.0.0.1:{free_port()}/oidc/callback/"
        s = session or browser_session()
        verifier, challenge = pkce_pair()
        state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        r = self.submit_login(s, self.auth_url(redirect_uri, state, nonce, challenge),
                              username, password)
        loc = r.headers["Location"]
        assert loc.startswith(redirect_uri), loc
        q = parse_qs(urlparse(loc).query)
        assert q.get("state") == [state], loc
        assert "code" in q, loc
        t = requests.post(f"{self.oidc}/token", timeout=HTTP_TIMEOUT,
                          auth=(self.web_client_id, self.web_client_secret), data={
                              "grant_type": "authorization_code", "code": q["code"][0],
                              "redirect_uri": redirect_uri, "code_verifier": verifier,
                          })
        assert t.status_code == 200, t.text
        return t.json(), nonce, s


def _run_script(args, env=None, timeout=900):
    p = subprocess.run([str(a) for a in args], cwd=REPO, env=env, timeout=timeout,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} failed ({p.returncode}):\n{p.stdout}")
    return p.stdout


def _read_env_file(path):
    out = {}
    for line in Path(path).read_text().splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out


@pytest.fixture(scope="session")
def keycloak(smtp_catcher, tmp_path_factory):
    external = os.environ.get("USHER_KEYCLOAK_URL")
    if external:
        yield KeycloakServer(external)
        return
    workdir = tmp_path_factory.mktemp("keycloak")
    env = dict(os.environ, USHER_TEST_SMTP_PORT=str(smtp_catcher.port))
    _run_script([REPO / "scripts/keycloak", "start", workdir, free_port()], env=env)
    try:
        info = _read_env_file(workdir / "keycloak.env")
        yield KeycloakServer(info["KEYCLOAK_URL"], info["KEYCLOAK_MGMT_URL"],
                             int(info["KEYCLOAK_STARTUP_SECONDS"]))
    finally:
        _run_script([REPO / "scripts/keycloak", "stop", workdir], timeout=120)
        shutil.rmtree(workdir / "keycloak", ignore_errors=True)  # keep only the log


# --- stripe-mock ---------------------------------------------------------------------------


class StripeMock:
    api_key = STRIPE_TEST_KEY
    api_version = STRIPE_API_VERSION

    def __init__(self, url):
        self.url = url

    def session(self):
        s = requests.Session()
        s.headers.update({"Authorization": f"Bearer {self.api_key}",
                          "Stripe-Version": self.api_version})
        return s


@pytest.fixture(scope="session")
def stripe_mock(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("stripe-mock")
    port = free_port()
    _run_script([REPO / "scripts/stripe-mock", "start", port, workdir])
    try:
        yield StripeMock(f"http://127.0.0.1:{port}")
    finally:
        _run_script([REPO / "scripts/stripe-mock", "stop", workdir], timeout=60)
