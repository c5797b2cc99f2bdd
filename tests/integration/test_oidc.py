"""OIDC login and logout (SPEC §6) with the real usher binary against the Keycloak double.

The login is driven without a browser: GET /oidc/authenticate/ → the double's login form →
POST credentials → the callback on Usher. Refusals are produced by changing what the double
issues (its ID tokens are re-signed in-process by wrapping `_issue_user_tokens`), by its
control knobs (clock offset, key rotation) or by tampering with the callback URL.

The same login against a real Keycloak is tests/conformance/test_oidc_real_keycloak.py.
Most tests run on SQLite only; the main login flow runs on both backends.
"""

import base64
import contextlib
import hashlib
import json
import secrets
import sys
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests

from conftest import REPO, HTTP_TIMEOUT

sys.path.insert(0, str(REPO))
from devstack.doubles.keycloak_double import (  # noqa: E402
    SigningKey, b64u, b64u_decode, submit_login)
from devstack.doubles.pytest_plugin import keycloak_double  # noqa: E402,F401 - fixture

CLIENT_ID = "usher-web"
CLIENT_SECRET = "usher-web-test-secret"
# Registered like the conformance realm: no port, which Keycloak (and the double) accept for
# any port on loopback.
REDIRECT_URI = "http://127.0.0.1/oidc/callback/"
PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw"}
sqlite_only = pytest.mark.backend("sqlite")


@pytest.fixture
def kc(keycloak_double):
    """The double with Usher's login client and alice (no groups) / bob (usher-admins)."""
    keycloak_double.add_client(CLIENT_ID, CLIENT_SECRET, redirect_uris=[REDIRECT_URI],
                               post_logout_redirect_uris=["http://127.0.0.1*"])
    keycloak_double.add_user("alice", password=PASSWORDS["alice"], email="alice@usher.test",
                             firstName="Alice", lastName="Liddell")
    keycloak_double.add_user("bob", password=PASSWORDS["bob"], email="bob@usher.test",
                             firstName="Bob", lastName="Builder", groups=["usher-admins"])
    return keycloak_double


def oidc_env(kc, **extra):
    env = {"DEBUG": "true", "KEYCLOAK_SERVER_URL": kc.url, "KEYCLOAK_REALM": kc.realm,
           "OIDC_RP_CLIENT_ID": CLIENT_ID, "OIDC_RP_CLIENT_SECRET": CLIENT_SECRET}
    env.update(extra)
    return env


@pytest.fixture
def app(usher, kc):
    return usher(oidc_env(kc))


def sha256_hex(s):
    return hashlib.sha256(s.encode()).hexdigest()


def session_row(db, cookie):
    rows = db.rows("SELECT data, user_id FROM sessions WHERE id_hash = ?", sha256_hex(cookie))
    return (json.loads(rows[0][0]), rows[0][1]) if rows else (None, None)


class Login:
    """One browserless login: Usher's client (its own cookie handling) plus a requests
    session for the identity provider's cookies."""

    def __init__(self, server, client=None, idp=None):
        self.server = server
        self.client = client or server.client()
        self.idp = idp or requests.Session()

    def start(self, next_path="/dashboard/"):
        path = "/oidc/authenticate/"
        if next_path is not None:
            path += "?next=" + quote(next_path, safe="")
        r = self.client.get(path)
        assert r.status_code == 303, (r.status_code, r.text[:300])
        self.cookie_before = self.client.session_cookie
        return r.headers["Location"]

    def authorize(self, auth_url, username="alice"):
        """Through the identity provider; returns the callback URL it redirects to."""
        r = self.idp.get(auth_url, allow_redirects=False, timeout=HTTP_TIMEOUT)
        if r.status_code == 200:  # the login form (no SSO session yet)
            r = submit_login(self.idp, r, username, PASSWORDS[username])
        assert r.status_code in (302, 303), (r.status_code, r.text[:300])
        return r.headers["Location"]

    def callback(self, callback_url):
        parts = urlsplit(callback_url)
        assert f"{parts.scheme}://{parts.netloc}" == self.server.url, callback_url
        assert parts.path == "/oidc/callback/", callback_url
        return self.client.get(parts.path + "?" + parts.query)

    def run(self, username="alice", next_path="/dashboard/"):
        return self.callback(self.authorize(self.start(next_path), username))


def assert_refused(r, *words):
    assert r.status_code == 400, (r.status_code, r.text[:500])
    assert "Login failed" in r.text, r.text[:500]
    # The customer reads a sentence of the message table, never the log's reason id.
    assert "refusal." not in r.text, r.text[:800]
    for w in words:
        assert w in r.text, (w, r.text[:800])


@contextlib.contextmanager
def id_tokens_changed(kc, claims=None, key=None, raw=None):
    """While active, the double's ID tokens get their claims changed by `claims(dict)`,
    are re-signed with `key` (default: the double's signing key) and then passed through
    `raw(token)`."""
    original = kc._issue_user_tokens

    def issue(*args, **kwargs):
        out = original(*args, **kwargs)
        _, payload, _ = out["id_token"].split(".")
        c = json.loads(b64u_decode(payload))
        if claims:
            claims(c)
        out["id_token"] = (key or kc._signer()).sign(c)
        if raw:
            out["id_token"] = raw(out["id_token"])
        return out

    kc._issue_user_tokens = issue
    try:
        yield
    finally:
        kc._issue_user_tokens = original


# --- the login ------------------------------------------------------------------------------


def test_login_rotates_session_and_keeps_claims(app, kc, db):
    login = Login(app)
    auth_url = login.start("/dashboard/")
    q = parse_qs(urlsplit(auth_url).query)
    assert auth_url.startswith(kc.issuer + "/protocol/openid-connect/auth?")
    assert q["response_type"] == ["code"] and q["client_id"] == [CLIENT_ID]
    assert q["redirect_uri"] == [app.url + "/oidc/callback/"]
    assert q["scope"] == ["openid email profile"]
    assert q["code_challenge_method"] == ["S256"] and len(q["code_challenge"][0]) == 43
    assert len(q["state"][0]) >= 32 and len(q["nonce"][0]) >= 32
    before = login.cookie_before
    pending, _ = session_row(db, before)
    (entry,) = pending["oidc_pending"].values()
    # the PKCE pair: challenge = BASE64URL(SHA256(verifier)), the verifier stays server-side
    challenge = b64u(hashlib.sha256(entry["verifier"].encode()).digest())
    assert q["code_challenge"] == [challenge] and entry["verifier"] not in auth_url

    r = login.callback(login.authorize(auth_url, "bob"))
    assert r.status_code == 303, (r.status_code, r.text[:500])
    assert r.headers["Location"] == "/dashboard/"
    after = login.client.session_cookie
    assert after and after != before
    assert session_row(db, before) == (None, None)  # the pre-login id no longer exists
    data, user_id = session_row(db, after)
    auth = data["auth"]
    assert auth["groups"] == ["usher-admins"] and auth["is_admin"] is True
    assert auth["sub"] == kc.user("bob")["id"]
    assert auth["id_token"].count(".") == 2
    assert "oidc_pending" not in data
    # The login found or created the local user from the claims and bound the session to it.
    (user,) = db.dict_rows(
        "SELECT id, username, email, first_name, last_name, is_admin, keycloak_id FROM users")
    assert user_id == user["id"]
    assert (user["username"], user["email"]) == ("bob", "bob@usher.test")
    assert (user["first_name"], user["last_name"]) == ("Bob", "Builder")
    assert bool(user["is_admin"]) and user["keycloak_id"] == kc.user("bob")["id"]

    # The cookie from before login is worthless now: a form post with it is refused as
    # having no session, and it does not name any session.
    stale = app.client()
    stale.cookies = {"usher_session": before}
    r = stale.post("/logout/", data={"csrf_token": "x" * 64})
    assert r.status_code == 403


@sqlite_only
def test_user_without_groups_is_no_admin(app, kc, db):
    login = Login(app)
    r = login.run("alice")
    assert r.status_code == 303
    auth = session_row(db, login.client.session_cookie)[0]["auth"]
    assert auth["groups"] == [] and auth["is_admin"] is False
    assert db.scalar("SELECT username FROM users") == "alice"


@sqlite_only
def test_admin_group_is_configurable(usher, kc, db):
    kc.add_user("carol", password="carol-pw", groups=["ops"])
    PASSWORDS["carol"] = "carol-pw"
    server = usher(oidc_env(kc, ADMIN_GROUP="ops"))
    login = Login(server)
    assert login.run("carol").status_code == 303
    auth = session_row(db, login.client.session_cookie)[0]["auth"]
    assert auth["groups"] == ["ops"] and auth["is_admin"] is True


@sqlite_only
def test_next_is_kept_when_local(app, kc):
    r = Login(app).run("alice", next_path="/dashboard/account/?tab=billing")
    assert r.status_code == 303 and r.headers["Location"] == "/dashboard/account/?tab=billing"
    r = Login(app).run("alice", next_path=None)
    assert r.status_code == 303 and r.headers["Location"] == "/dashboard/"


@sqlite_only
@pytest.mark.parametrize("evil", ["//evil.test", "https://evil.test", "/\\evil.test",
                                  "//evil.test/dashboard/", "http:evil.test",
                                  "/\\/evil.test", "/dash\r\nboard/", "javascript:alert(1)"])
def test_open_redirects_in_next_go_to_dashboard(app, kc, evil):
    r = Login(app).run("alice", next_path=evil)
    assert r.status_code == 303, (r.status_code, r.text[:300])
    assert r.headers["Location"] == "/dashboard/"


@sqlite_only
def test_second_login_with_sso_is_silent(app, kc):
    idp = requests.Session()
    assert Login(app, idp=idp).run("bob").status_code == 303
    login = Login(app, idp=idp)
    auth_url = login.start()
    r = idp.get(auth_url, allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert r.status_code == 302  # no form: Keycloak's SSO session answers at once
    assert login.callback(r.headers["Location"]).status_code == 303


@sqlite_only
def test_client_secret_with_reserved_characters(usher, kc):
    """client_secret_basic form-encodes id and secret before base64 (RFC 6749 §2.3.1)."""
    secret = "s3cr:et+/%&=é"
    kc.add_client("usher-odd", secret, redirect_uris=[REDIRECT_URI])
    server = usher(oidc_env(kc, OIDC_RP_CLIENT_ID="usher-odd", OIDC_RP_CLIENT_SECRET=secret))
    assert Login(server).run("alice").status_code == 303


# --- refusals -------------------------------------------------------------------------------


@sqlite_only
def test_unknown_and_missing_state(app, kc):
    login = Login(app)
    callback = login.authorize(login.start(), "alice")
    q = parse_qs(urlsplit(callback).query)
    forged = callback.replace("state=" + q["state"][0], "state=" + secrets.token_hex(16))
    assert_refused(login.callback(forged), "unknown")
    no_state = callback.replace("state=" + q["state"][0], "")
    assert_refused(login.callback(no_state), "unknown")
    # the real state still works once
    assert login.callback(callback).status_code == 303


@sqlite_only
def test_callback_in_another_session_is_refused(app, kc):
    """Login CSRF: a callback made for one browser's session does nothing in another's."""
    victim, attacker = Login(app), Login(app)
    victim.start()
    callback = attacker.authorize(attacker.start(), "bob")
    r = victim.callback(callback)
    assert_refused(r, "unknown")
    # and with no session at all
    r = app.get(urlsplit(callback).path + "?" + urlsplit(callback).query)
    assert_refused(r)


@sqlite_only
def test_replayed_callback_is_refused(app, kc):
    login = Login(app)
    callback = login.authorize(login.start(), "alice")
    old_cookie = login.cookie_before
    assert login.callback(callback).status_code == 303
    assert_refused(login.callback(callback), "already used")  # with the new session
    replay = app.client()
    replay.cookies = {"usher_session": old_cookie}
    assert_refused(replay.get(urlsplit(callback).path + "?" + urlsplit(callback).query))


@sqlite_only
def test_error_answer_is_refused_and_uses_up_the_state(app, kc):
    login = Login(app)
    auth_url = login.start()
    state = parse_qs(urlsplit(auth_url).query)["state"][0]
    r = login.client.get(f"/oidc/callback/?state={state}&error=access_denied"
                         "&error_description=User+said+no")
    assert_refused(r, "access_denied")
    r = login.client.get(f"/oidc/callback/?state={state}&code=whatever")
    assert_refused(r, "unknown")


@sqlite_only
def test_mixed_up_issuer_is_refused(app, kc):
    login = Login(app)
    callback = login.authorize(login.start(), "alice")
    evil = callback.replace("iss=" + quote(kc.issuer, safe=""), "iss=" + quote(
        "http://evil.test/realms/usher", safe=""))
    assert evil != callback
    assert_refused(login.callback(evil), "another identity provider")
    # The log line keeps a short machine reason; the page has the table's sentence.
    assert 'msg="login refused" reason="refusal.other_provider"' in app.log


@sqlite_only
def test_code_exchange_failure_is_refused(app, kc):
    login = Login(app)
    callback = login.authorize(login.start(), "alice")
    q = parse_qs(urlsplit(callback).query)
    wrong = callback.replace("code=" + quote(q["code"][0], safe=""), "code=not-a-code")
    assert_refused(login.callback(wrong), "refused the login code")
    assert 'msg="login refused" reason="refusal.code_refused"' in app.log


@sqlite_only
def test_wrong_pkce_verifier_is_refused(app, kc, db):
    """The double checks the verifier at the token endpoint: change the one in the session."""
    login = Login(app)
    auth_url = login.start()
    cookie = login.client.session_cookie
    data, _ = session_row(db, cookie)
    (state,) = data["oidc_pending"]
    data["oidc_pending"][state]["verifier"] = "0" * 64
    db.exec("UPDATE sessions SET data = ? WHERE id_hash = ?", json.dumps(data), sha256_hex(cookie))
    assert_refused(login.callback(login.authorize(auth_url, "alice")), "refused the login code")


@sqlite_only
def test_tampered_signature_is_refused(app, kc):
    rogue = SigningKey()
    rogue.kid = kc._signer().kid  # a key the realm never published, under a known kid
    with id_tokens_changed(kc, key=rogue):
        assert_refused(Login(app).run("bob"), "signature")

    def flip(token):
        h, p, s = token.split(".")
        c = json.loads(b64u_decode(p))
        c["preferred_username"] = "admin"
        return ".".join([h, b64u(json.dumps(c).encode()), s])

    with id_tokens_changed(kc, raw=flip):
        assert_refused(Login(app).run("alice"), "signature")


@sqlite_only
def test_unsigned_token_is_refused(app, kc):
    def alg_none(token):
        _, p, _ = token.split(".")
        return b64u(b'{"alg":"none","typ":"JWT"}') + "." + p + "."

    with id_tokens_changed(kc, raw=alg_none):
        assert_refused(Login(app).run("alice"))


@sqlite_only
def test_wrong_audience_is_refused(app, kc):
    with id_tokens_changed(kc, claims=lambda c: c.update(aud="another-client",
                                                          azp="another-client")):
        assert_refused(Login(app).run("alice"), "another audience")
    with id_tokens_changed(kc, claims=lambda c: c.update(aud=[CLIENT_ID, "account"],
                                                          azp="another-client")):
        assert_refused(Login(app).run("alice"), "azp")


@sqlite_only
def test_wrong_nonce_is_refused(app, kc):
    with id_tokens_changed(kc, claims=lambda c: c.update(nonce=secrets.token_hex(16))):
        assert_refused(Login(app).run("alice"), "nonce")
    with id_tokens_changed(kc, claims=lambda c: c.pop("nonce")):
        assert_refused(Login(app).run("alice"), "nonce")


@sqlite_only
def test_wrong_issuer_in_token_is_refused(app, kc):
    with id_tokens_changed(kc, claims=lambda c: c.update(iss="http://evil.test/realms/usher")):
        assert_refused(Login(app).run("alice"), "another issuer")


@sqlite_only
def test_expired_token_is_refused(app, kc):
    kc.config["clock_offset"] = -3600  # the provider's clock an hour behind: exp in the past
    assert_refused(Login(app).run("alice"), "expired")
    kc.config["clock_offset"] = 0
    assert Login(app).run("alice").status_code == 303


@sqlite_only
def test_token_from_the_future_is_refused(app, kc):
    kc.config["clock_offset"] = 3600
    assert_refused(Login(app).run("alice"), "future")


@sqlite_only
def test_key_rotation_is_followed(app, kc, db):
    assert Login(app).run("alice").status_code == 303  # caches the JWKS
    old = kc._signer().kid
    kc.rotate_keys(keep_old=False)  # the old key is gone from the JWKS too
    assert kc._signer().kid != old
    login = Login(app)
    r = login.run("bob")
    assert r.status_code == 303, r.text[:500]
    _, user_id = session_row(db, login.client.session_cookie)
    assert user_id and db.scalar("SELECT username FROM users WHERE id = " + str(int(user_id))) == "bob"


@sqlite_only
def test_jwks_refetch_is_rate_limited(app, kc):
    assert Login(app).run("alice").status_code == 303
    kc.rotate_keys(keep_old=False)
    assert Login(app).run("alice").status_code == 303  # one refetch for the new kid
    kc.rotate_keys(keep_old=False)
    # another unknown kid right away: no second refetch within the interval
    assert_refused(Login(app).run("alice"), "unknown key")
    app.advance_clock(11)
    assert Login(app).run("alice").status_code == 303


def seen_paths(kc):
    """Records the path of every request the double receives from now on."""
    seen, before = [], kc.app.before

    def record(req):
        seen.append(req.path)
        return before(req)

    kc.app.before = record
    return seen


@sqlite_only
def test_discovery_and_jwks_are_cached(app, kc):
    seen = seen_paths(kc)
    disc = f"/realms/{kc.realm}/.well-known/openid-configuration"
    certs = f"/realms/{kc.realm}/protocol/openid-connect/certs"
    for _ in range(3):
        assert Login(app).run("alice").status_code == 303
    assert seen.count(disc) == 1 and seen.count(certs) == 1

    def advance(seconds):  # both clocks, so tokens stay current for Usher
        app.advance_clock(seconds)
        kc.config["clock_offset"] = app.clock_offset

    advance(901)  # past the JWKS TTL (15 min), within the discovery TTL (1 h)
    assert Login(app).run("alice").status_code == 303
    assert seen.count(disc) == 1 and seen.count(certs) == 2

    advance(3600)  # past the discovery TTL, with Keycloak unreachable: the stale copy serves
    kc.down("refuse")
    try:
        r = app.get("/oidc/authenticate/")
        assert r.status_code == 303
        assert r.headers["Location"].startswith(kc.issuer + "/protocol/openid-connect/auth?")
    finally:
        kc.up()
    assert Login(app).run("alice").status_code == 303


# --- unavailable or unconfigured ------------------------------------------------------------


@sqlite_only
def test_unconfigured_login_answers_503(usher):
    server = usher({"DEBUG": "true"})
    for path in ("/oidc/authenticate/?next=/dashboard/", "/oidc/callback/?state=x&code=y"):
        r = server.get(path)
        assert r.status_code == 503, (path, r.status_code)
        assert "Login is not configured" in r.text
    r = server.get("/oidc/authenticate/", headers={"Accept": "application/json"})
    assert r.status_code == 503 and r.json()["error"] == "Login is not configured"
    # half a configuration is no configuration
    server = usher({"DEBUG": "true", "KEYCLOAK_SERVER_URL": "http://127.0.0.1:9",
                    "KEYCLOAK_REALM": "usher"})
    assert server.get("/oidc/authenticate/").status_code == 503
    assert server.get("/health/").status_code == 200


@sqlite_only
def test_unreachable_keycloak_answers_503(app, kc):
    kc.down("refuse")
    try:
        r = app.get("/oidc/authenticate/?next=/dashboard/")
        assert r.status_code == 503
        assert "unavailable" in r.text
    finally:
        kc.up()
    assert Login(app).run("alice").status_code == 303


@sqlite_only
def test_keycloak_down_during_callback_is_502(app, kc):
    login = Login(app)
    callback = login.authorize(login.start(), "alice")
    kc.down("503")
    try:
        r = login.callback(callback)
    finally:
        kc.up()
    assert r.status_code == 502 and "could not be reached" in r.text


# --- logout ---------------------------------------------------------------------------------


def test_logout_ends_session_and_redirects_to_end_session(app, kc, db):
    idp = requests.Session()
    login = Login(app, idp=idp)
    assert login.run("bob").status_code == 303
    cookie = login.client.session_cookie
    id_token = session_row(db, cookie)[0]["auth"]["id_token"]
    token = login.client.csrf(refresh=True)
    assert login.client.session_cookie == cookie

    # GET never logs out (no state change on GET): it offers the button instead.
    page = login.client.get("/logout/")
    assert page.status_code == 200 and "Log out?" in page.text
    assert 'action="/logout/"' in page.text and token in page.text
    assert session_row(db, cookie)[0] is not None
    assert login.client.post("/logout/", data={}).status_code == 403  # CSRF
    r = login.client.post_form("/logout/", {"csrf_token": token}, csrf=False)
    assert r.status_code == 303, (r.status_code, r.text[:300])
    loc = urlsplit(r.headers["Location"])
    end_session = kc.issuer + "/protocol/openid-connect/logout"
    assert f"{loc.scheme}://{loc.netloc}{loc.path}" == end_session
    q = parse_qs(loc.query)
    assert q["id_token_hint"] == [id_token]
    # the default LOGOUT_REDIRECT_URL is Usher's own "you are logged out" page
    assert q["post_logout_redirect_uri"] == [app.url + "/logout/"]
    assert q["client_id"] == [CLIENT_ID]
    cleared = [h for h in r.raw.headers.getlist("Set-Cookie") if h.startswith("usher_session=")]
    assert cleared and "Max-Age=0" in cleared[0]
    assert login.client.session_cookie is None
    assert session_row(db, cookie) == (None, None)
    # The logged-in cookie is dead for good: replayed with its token, it is refused.
    stale = app.client()
    stale.cookies = {"usher_session": cookie}
    assert stale.post("/logout/", data={"csrf_token": token}).status_code == 403

    # Keycloak ends its SSO session and sends the browser on to LOGOUT_REDIRECT_URL.
    ended = len(kc.sessions_ended)
    r = idp.get(r.headers["Location"], allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert r.status_code == 302 and r.headers["Location"] == app.url + "/logout/"
    assert len(kc.sessions_ended) == ended + 1
    page = login.client.get("/logout/")
    assert page.status_code == 200 and "You are logged out" in page.text
    assert 'href="/oidc/authenticate/?next=/dashboard/"' in page.text
    # so the next login asks for the password again
    nxt = Login(app, idp=idp)
    r = idp.get(nxt.start(), allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200 and "kc-form-login" in r.text


@sqlite_only
def test_logout_redirect_url_is_configurable(usher, kc):
    server = usher(oidc_env(kc, LOGOUT_REDIRECT_URL="http://127.0.0.1:1/bye"))
    login = Login(server)
    assert login.run("alice").status_code == 303
    r = login.client.post_form("/logout/", {"csrf_token": login.client.csrf(refresh=True)},
                               csrf=False)
    assert parse_qs(urlsplit(r.headers["Location"]).query)["post_logout_redirect_uri"] == [
        "http://127.0.0.1:1/bye"]


@sqlite_only
def test_logout_without_login_goes_to_logout_redirect_url(usher):
    server = usher({"DEBUG": "true", "LOGOUT_REDIRECT_URL": "http://127.0.0.1:1/bye"})
    client = server.client()
    token = client.csrf()
    cookie = client.session_cookie
    r = client.post_form("/logout/", {"csrf_token": token}, csrf=False)
    assert r.status_code == 303 and r.headers["Location"] == "http://127.0.0.1:1/bye"
    assert client.session_cookie is None
    # An anonymous visitor has no row to end (sessions are lazy): their old cookie is an
    # empty anonymous visit again, not an error, and still nothing is stored.
    stale = server.client()
    stale.cookies = {"usher_session": cookie}
    assert stale.post("/logout/", data={"csrf_token": token}).status_code == 303
