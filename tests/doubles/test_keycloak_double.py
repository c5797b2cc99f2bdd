"""The Keycloak double over plain HTTP: the OIDC code flow with PKCE, ID tokens checked with
`cryptography` against the JWKS, key rotation, logout, and the Admin API quirks of
INTEGRATIONS.md."""

import base64
import hashlib
import json
import re
import secrets
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from devstack.doubles.keycloak_double import submit_login

REDIRECT = "http://127.0.0.1:8000/oidc/callback/"
CLIENT = ("usher", "usher-secret")
ADMIN = ("usher-admin", "usher-admin-secret")


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def unb64u(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def oidc(kc, path):
    return f"{kc.url}/realms/usher/protocol/openid-connect/{path}"


def admin(kc, path):
    return f"{kc.url}/admin/realms/usher{path}"


def pkce():
    verifier = b64u(secrets.token_bytes(32))
    return verifier, b64u(hashlib.sha256(verifier.encode()).digest())


def auth_params(challenge, **over):
    p = {"response_type": "code", "client_id": "usher", "redirect_uri": REDIRECT,
         "scope": "openid email profile", "state": "st-" + secrets.token_hex(4),
         "nonce": "n-" + secrets.token_hex(4), "code_challenge": challenge,
         "code_challenge_method": "S256"}
    p.update(over)
    return {k: v for k, v in p.items() if v is not None}


def verify_jwt(kc, token):
    """Verifies an RS256 JWT against the realm's JWKS (by kid); returns header, claims."""
    h, p, s = token.split(".")
    header = json.loads(unb64u(h))
    assert header["alg"] == "RS256" and header["kid"]
    jwks = requests.get(oidc(kc, "certs"), timeout=5).json()["keys"]
    jwk = next(k for k in jwks if k["kid"] == header["kid"])
    pub = rsa.RSAPublicNumbers(int.from_bytes(unb64u(jwk["e"]), "big"),
                               int.from_bytes(unb64u(jwk["n"]), "big")).public_key()
    pub.verify(unb64u(s), f"{h}.{p}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return header, json.loads(unb64u(p))


def login(kc, http, username="ada", password="pw-ada", **over):
    """Runs the browser part of the code flow; returns (params, callback query, verifier)."""
    verifier, challenge = pkce()
    params = auth_params(challenge, **over)
    page = http.get(oidc(kc, "auth"), params=params, timeout=5)
    assert page.status_code == 200 and 'id="kc-login"' in page.text, page.text
    r = submit_login(http, page, username, password)
    assert r.status_code == 302, r.text
    loc = r.headers["Location"]
    assert loc.startswith(REDIRECT)
    return params, {k: v[0] for k, v in parse_qs(urlsplit(loc).query).items()}, verifier


def exchange(kc, code, verifier, auth=CLIENT, **extra):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "code_verifier": verifier, **extra}
    return requests.post(oidc(kc, "token"), data=data, auth=auth, timeout=5)


def admin_token(kc):
    r = requests.post(oidc(kc, "token"), data={"grant_type": "client_credentials"},
                      auth=ADMIN, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


@pytest.fixture
def ada(keycloak_double):
    keycloak_double.add_group("staff")
    return keycloak_double.add_user("ada", password="pw-ada", email="Ada@Example.test",
                                    firstName="Ada", lastName="Lovelace",
                                    groups=["usher-admins", "staff"])


@pytest.fixture
def adm(keycloak_double):
    """An Admin API session with a fresh service-account token."""
    s = requests.Session()
    s.headers["Authorization"] = "Bearer " + admin_token(keycloak_double)
    return s


# --- OIDC ----------------------------------------------------------------------------------

def test_discovery_and_jwks(keycloak_double):
    kc = keycloak_double
    d = requests.get(f"{kc.url}/realms/usher/.well-known/openid-configuration", timeout=5)
    doc = d.json()
    assert doc["issuer"] == f"{kc.url}/realms/usher"
    for ep in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint",
               "end_session_endpoint", "jwks_uri"):
        assert doc[ep].startswith(doc["issuer"] + "/protocol/openid-connect/")
    assert "S256" in doc["code_challenge_methods_supported"]
    keys = requests.get(doc["jwks_uri"], timeout=5).json()["keys"]
    assert len(keys) == 1 and keys[0]["kty"] == "RSA" and keys[0]["alg"] == "RS256"
    assert requests.get(f"{kc.url}/realms/other/.well-known/openid-configuration",
                        timeout=5).status_code == 404


def test_code_flow_with_pkce(keycloak_double, ada):
    kc, http = keycloak_double, requests.Session()
    params, cb, verifier = login(kc, http)
    assert cb["state"] == params["state"] and cb["iss"] == kc.issuer and cb["code"]
    r = exchange(kc, cb["code"], verifier)
    assert r.status_code == 200, r.text
    tok = r.json()
    assert tok["token_type"] == "Bearer" and tok["expires_in"] == 300
    header, c = verify_jwt(kc, tok["id_token"])
    assert header["kid"] == requests.get(oidc(kc, "certs"), timeout=5).json()["keys"][0]["kid"]
    assert c["iss"] == kc.issuer and c["aud"] == "usher" and c["sub"] == ada["id"]
    assert c["nonce"] == params["nonce"]
    assert c["preferred_username"] == "ada" and c["email"] == "ada@example.test"
    assert c["given_name"] == "Ada" and c["family_name"] == "Lovelace"
    assert sorted(c["groups"]) == ["staff", "usher-admins"]
    assert c["iat"] <= time.time() < c["exp"]
    info = requests.get(oidc(kc, "userinfo"),
                        headers={"Authorization": "Bearer " + tok["access_token"]}, timeout=5)
    assert info.status_code == 200 and info.json()["sub"] == ada["id"]
    # a code is single use
    assert exchange(kc, cb["code"], verifier).json()["error"] == "invalid_grant"
    # refresh
    r = requests.post(oidc(kc, "token"), data={"grant_type": "refresh_token",
                                               "refresh_token": tok["refresh_token"]},
                      auth=CLIENT, timeout=5)
    assert r.status_code == 200 and verify_jwt(kc, r.json()["id_token"])[1]["sub"] == ada["id"]


def test_pkce_mismatch_and_other_token_errors(keycloak_double, ada):
    kc = keycloak_double
    _, cb, verifier = login(kc, requests.Session())
    other, _ = pkce()
    r = exchange(kc, cb["code"], other)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert "PKCE" in r.json()["error_description"]
    _, cb, verifier = login(kc, requests.Session())
    r = exchange(kc, cb["code"], None)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    _, cb, verifier = login(kc, requests.Session())
    r = exchange(kc, cb["code"], verifier, redirect_uri="http://127.0.0.1:8000/other")
    assert r.json()["error_description"] == "Incorrect redirect_uri"
    _, cb, verifier = login(kc, requests.Session())
    r = exchange(kc, cb["code"], verifier, auth=("usher", "wrong"))
    assert r.status_code == 401 and r.json()["error"] == "unauthorized_client"
    # client_secret_post works as well as client_secret_basic
    r = exchange(kc, cb["code"], verifier, auth=None, client_id="usher",
                 client_secret="usher-secret")
    assert r.status_code == 200, r.text


def test_authorization_request_validation(keycloak_double, ada):
    kc = keycloak_double
    _, challenge = pkce()

    def auth(**over):
        return requests.get(oidc(kc, "auth"), params=auth_params(challenge, **over),
                            allow_redirects=False, timeout=5)

    r = auth(client_id="nobody")
    assert r.status_code == 400 and "Client not found" in r.text
    r = auth(redirect_uri="http://evil.test/cb")
    assert r.status_code == 400 and "redirect_uri" in r.text
    for over, error in [({"code_challenge": None, "code_challenge_method": None},
                         "invalid_request"),
                        ({"code_challenge_method": "plain"}, "invalid_request"),
                        ({"nonce": None}, "invalid_request"),
                        ({"state": None}, "invalid_request"),
                        ({"scope": "email profile"}, "invalid_scope"),
                        ({"response_type": "token"}, "unsupported_response_type")]:
        r = auth(**over)
        assert r.status_code == 302, over
        q = parse_qs(urlsplit(r.headers["Location"]).query)
        assert q["error"] == [error], (over, q)


def test_login_failures_and_disabled_user(keycloak_double, ada):
    kc, http = keycloak_double, requests.Session()
    _, challenge = pkce()
    page = http.get(oidc(kc, "auth"), params=auth_params(challenge), timeout=5)
    r = submit_login(http, page, "ada", "wrong")
    assert r.status_code == 200 and "Invalid username or password." in r.text
    kc.state.users[ada["id"]]["enabled"] = False
    r = submit_login(http, page, "ada", "pw-ada")
    assert r.status_code == 200 and "disabled" in r.text


def test_sso_session_and_admin_logout(keycloak_double, ada, adm):
    kc, http = keycloak_double, requests.Session()
    login(kc, http)
    _, challenge = pkce()
    r = http.get(oidc(kc, "auth"), params=auth_params(challenge, prompt="none"),
                 allow_redirects=False, timeout=5)
    assert r.status_code == 302 and "code=" in r.headers["Location"]  # silent SSO
    assert adm.post(admin(kc, f"/users/{ada['id']}/logout"), timeout=5).status_code == 204
    r = http.get(oidc(kc, "auth"), params=auth_params(challenge, prompt="none"),
                 allow_redirects=False, timeout=5)
    assert "error=login_required" in r.headers["Location"]
    ended = requests.get(kc.url + "/_control/sessions-ended", timeout=5).json()
    assert [(e["username"], e["reason"]) for e in ended] == [("ada", "admin-logout")]
    assert kc.state.admin_logouts[0]["sessions_ended"] == 1


def test_key_rotation(keycloak_double, ada):
    kc = keycloak_double
    old_kid = requests.get(oidc(kc, "certs"), timeout=5).json()["keys"][0]["kid"]
    _, cb, v = login(kc, requests.Session())
    old_token = exchange(kc, cb["code"], v).json()["id_token"]
    rot = requests.post(kc.url + "/_control/keys/rotate", json={}, timeout=5).json()
    assert rot["kid"] != old_kid
    kids = [k["kid"] for k in requests.get(oidc(kc, "certs"), timeout=5).json()["keys"]]
    assert set(kids) == {old_kid, rot["kid"]}
    _, cb, v = login(kc, requests.Session())
    header, _ = verify_jwt(kc, exchange(kc, cb["code"], v).json()["id_token"])
    assert header["kid"] == rot["kid"]
    verify_jwt(kc, old_token)  # still verifiable while the old key is listed
    requests.post(kc.url + "/_control/keys/remove", json={"kid": old_kid}, timeout=5)
    kids = [k["kid"] for k in requests.get(oidc(kc, "certs"), timeout=5).json()["keys"]]
    assert kids == [rot["kid"]]
    with pytest.raises(StopIteration):
        verify_jwt(kc, old_token)


def test_end_session(keycloak_double, ada):
    kc, http = keycloak_double, requests.Session()
    _, cb, v = login(kc, http)
    id_token = exchange(kc, cb["code"], v).json()["id_token"]
    after = "http://127.0.0.1:8000/"
    r = http.get(oidc(kc, "logout"), params={"post_logout_redirect_uri": after},
                 allow_redirects=False, timeout=5)
    assert r.status_code == 400 and "id_token_hint" in r.text
    r = http.get(oidc(kc, "logout"), params={"post_logout_redirect_uri": "http://evil.test/",
                                             "id_token_hint": id_token},
                 allow_redirects=False, timeout=5)
    assert r.status_code == 400
    r = http.get(oidc(kc, "logout"), params={"post_logout_redirect_uri": after,
                                             "id_token_hint": id_token, "state": "s1"},
                 allow_redirects=False, timeout=5)
    assert r.status_code == 302 and r.headers["Location"] == after + "?state=s1"
    assert kc.state.sessions == {}
    assert kc.sessions_ended[0]["reason"] == "logout"
    # client_id instead of id_token_hint: Keycloak asks for confirmation first
    login(kc, http)
    r = http.get(oidc(kc, "logout"), params={"post_logout_redirect_uri": after,
                                             "client_id": "usher"},
                 allow_redirects=False, timeout=5)
    assert r.status_code == 200 and 'id="kc-logout"' in r.text
    code = re.search(r'name="session_code" value="([^"]+)"', r.text).group(1)
    r = http.post(oidc(kc, "logout/logout-confirm"), data={"session_code": code},
                  allow_redirects=False, timeout=5)
    assert r.status_code == 302 and r.headers["Location"] == after
    assert kc.state.sessions == {}


# --- Admin API -----------------------------------------------------------------------------

def test_admin_api_needs_a_valid_service_account_token(keycloak_double, ada):
    kc = keycloak_double
    r = requests.get(admin(kc, "/users"), timeout=5)
    assert r.status_code == 401
    r = requests.get(admin(kc, "/users"), headers={"Authorization": "Bearer junk"}, timeout=5)
    assert r.status_code == 401
    # the login client has no service account
    r = requests.post(oidc(kc, "token"), data={"grant_type": "client_credentials"},
                      auth=CLIENT, timeout=5)
    assert r.status_code == 401 and r.json()["error"] == "unauthorized_client"
    tok = admin_token(kc)
    h = {"Authorization": "Bearer " + tok}
    assert requests.get(admin(kc, "/users"), headers=h, timeout=5).status_code == 200
    requests.post(kc.url + "/_control/tokens/expire", timeout=5)
    assert requests.get(admin(kc, "/users"), headers=h, timeout=5).status_code == 401
    # a short lifetime makes tokens expire by themselves
    requests.post(kc.url + "/_control/config", json={"access_token_lifespan": 1}, timeout=5)
    r = requests.post(oidc(kc, "token"), data={"grant_type": "client_credentials"},
                      auth=ADMIN, timeout=5)
    assert r.json()["expires_in"] == 1
    h = {"Authorization": "Bearer " + r.json()["access_token"]}
    requests.post(kc.url + "/_control/config", json={"clock_offset": 5}, timeout=5)
    assert requests.get(admin(kc, "/users"), headers=h, timeout=5).status_code == 401
    # a user's token carries no realm-management roles
    requests.post(kc.url + "/_control/config", json={"clock_offset": 0,
                                                     "access_token_lifespan": 300}, timeout=5)
    _, cb, v = login(kc, requests.Session())
    user_tok = exchange(kc, cb["code"], v).json()["access_token"]
    r = requests.get(admin(kc, "/users"), headers={"Authorization": "Bearer " + user_tok},
                     timeout=5)
    assert r.status_code == 403


def test_create_user(keycloak_double, adm):
    kc = keycloak_double
    body = {"username": "Grace", "email": "grace@example.test", "firstName": "Grace",
            "lastName": "Hopper", "enabled": True, "emailVerified": True,
            "attributes": {"has_cloud": ["true"]}}
    r = adm.post(admin(kc, "/users"), json=body, timeout=5)
    assert r.status_code == 201 and r.content == b""
    uid = r.headers["Location"].rsplit("/", 1)[1]
    assert r.headers["Location"] == admin(kc, f"/users/{uid}")
    u = adm.get(admin(kc, f"/users/{uid}"), timeout=5).json()
    assert u["username"] == "grace" and u["enabled"] is True and u["emailVerified"] is True
    assert "attributes" not in u  # unmanaged attribute dropped (policy DISABLED)
    r = adm.post(admin(kc, "/users"), json={**body, "email": "other@example.test"}, timeout=5)
    assert (r.status_code, r.json()) == (409, {"errorMessage": "User exists with same username"})
    r = adm.post(admin(kc, "/users"), json={**body, "username": "grace2"}, timeout=5)
    assert (r.status_code, r.json()) == (409, {"errorMessage": "User exists with same email"})
    r = adm.post(admin(kc, "/users"), json={"email": "x@example.test"}, timeout=5)
    assert r.status_code == 400 and r.json()["errorMessage"] == "User name is missing"
    r = adm.post(admin(kc, "/users"), json={"username": "bad", "email": "not-an-email"},
                 timeout=5)
    assert r.status_code == 400
    assert r.json()["field"] == "email" and r.json()["params"][0] == "email"
    r = adm.post(admin(kc, "/users"), json={"username": "bad", "email": "nope",
                                            "firstName": "<b>"}, timeout=5)
    assert r.status_code == 400 and len(r.json()["errors"]) == 2
    # without "enabled" Keycloak creates a disabled user
    r = adm.post(admin(kc, "/users"), json={"username": "quiet"}, timeout=5)
    quiet = kc.user("quiet")
    assert r.status_code == 201 and quiet["enabled"] is False


def test_search_exact(keycloak_double, ada, adm):
    kc = keycloak_double
    kc.add_user("adam", email="adam@example.test")
    r = adm.get(admin(kc, "/users"), params={"email": "ADA@example.test", "exact": "true"},
                timeout=5)
    assert [u["username"] for u in r.json()] == ["ada"]
    r = adm.get(admin(kc, "/users"), params={"username": "ada", "exact": "true"}, timeout=5)
    assert [u["id"] for u in r.json()] == [ada["id"]]
    r = adm.get(admin(kc, "/users"), params={"username": "ada"}, timeout=5)
    assert sorted(u["username"] for u in r.json()) == ["ada", "adam"]
    r = adm.get(admin(kc, "/users"), params={"email": "nobody@example.test", "exact": "true"},
                timeout=5)
    assert r.json() == []
    assert adm.get(admin(kc, "/users/nope"), timeout=5).status_code == 404


def test_update_semantics_and_unmanaged_attributes(keycloak_double, ada, adm):
    kc = keycloak_double
    url = admin(kc, f"/users/{ada['id']}")
    kc.declare_attribute("storage_gb")
    rep = adm.get(url, timeout=5).json()
    rep["attributes"] = {"storage_gb": ["100"], "has_cloud": ["true"]}
    rep["requiredActions"] = ["VERIFY_EMAIL"]
    assert adm.put(url, json=rep, timeout=5).status_code == 204
    u = adm.get(url, timeout=5).json()
    assert u["attributes"] == {"storage_gb": ["100"]}  # has_cloud silently dropped
    assert u["requiredActions"] == ["VERIFY_EMAIL"]
    # switch the realm to ADMIN_EDIT through the user-profile endpoint
    prof = adm.get(admin(kc, "/users/profile"), timeout=5).json()
    assert "unmanagedAttributePolicy" not in prof
    prof["unmanagedAttributePolicy"] = "ADMIN_EDIT"
    r = adm.put(admin(kc, "/users/profile"), json=prof, timeout=5)
    assert r.status_code == 403  # needs manage-realm, which the service account lacks
    kc.clients["usher-admin"]["roles"].append("manage-realm")
    adm.headers["Authorization"] = "Bearer " + admin_token(kc)
    r = adm.put(admin(kc, "/users/profile"), json=prof, timeout=5)
    assert r.status_code == 200
    assert adm.get(admin(kc, "/users/profile"), timeout=5).json()[
        "unmanagedAttributePolicy"] == "ADMIN_EDIT"
    rep = adm.get(url, timeout=5).json()
    rep["attributes"] = {"has_cloud": ["true"], "cloud_instance": ["https://c.test"]}
    assert adm.put(url, json=rep, timeout=5).status_code == 204
    u = adm.get(url, timeout=5).json()
    assert u["attributes"] == {"has_cloud": ["true"], "cloud_instance": ["https://c.test"]}
    # as Keycloak 26.7.3: without `attributes` a PUT changes only what it sends (names and
    # attributes stay); with `attributes` it replaces the profile, clearing firstName,
    # lastName and email left out
    assert adm.put(url, json={"email": "ada@example.test"}, timeout=5).status_code == 204
    u = adm.get(url, timeout=5).json()
    assert (u["firstName"], u["lastName"]) == ("Ada", "Lovelace")
    assert u["attributes"]["has_cloud"] == ["true"]
    assert u["requiredActions"] == ["VERIFY_EMAIL"]
    assert adm.put(url, json={"attributes": u["attributes"]}, timeout=5).status_code == 204
    u = adm.get(url, timeout=5).json()
    assert "firstName" not in u and "lastName" not in u and "email" not in u
    assert u["attributes"]["has_cloud"] == ["true"]
    # the policy is also a control switch
    requests.post(kc.url + "/_control/config",
                  json={"unmanaged_attribute_policy": "DISABLED"}, timeout=5)
    assert "attributes" not in adm.get(url, timeout=5).json() or \
        "has_cloud" not in adm.get(url, timeout=5).json()["attributes"]
    # the admin request log shows what the client sent (e.g. no credentials echoed)
    puts = [q for q in kc.admin_requests if q["method"] == "PUT" and q["path"].endswith(
        ada["id"])]
    assert puts and all("credentials" not in (q["body"] or {}) for q in puts)


def test_enable_disable_logout_delete(keycloak_double, ada, adm):
    kc = keycloak_double
    url = admin(kc, f"/users/{ada['id']}")
    rep = adm.get(url, timeout=5).json()
    rep["enabled"] = False
    assert adm.put(url, json=rep, timeout=5).status_code == 204
    assert adm.get(url, timeout=5).json()["enabled"] is False
    assert adm.post(url + "/logout", timeout=5).status_code == 204
    assert kc.state.admin_logouts[-1]["user_id"] == ada["id"]
    assert adm.delete(url, timeout=5).status_code == 204
    assert adm.get(url, timeout=5).status_code == 404
    assert adm.delete(url, timeout=5).status_code == 404


def test_execute_actions_email(keycloak_double, ada, adm):
    kc = keycloak_double
    url = admin(kc, f"/users/{ada['id']}/execute-actions-email")
    q = {"client_id": "usher", "redirect_uri": "http://127.0.0.1:8000/", "lifespan": "3600"}
    r = adm.put(url, params=q, json=["UPDATE_PASSWORD"], timeout=5)
    assert r.status_code == 204, r.text
    mails = requests.get(kc.url + "/_control/emails", timeout=5).json()
    assert len(mails) == 1 and mails[0]["to"] == "ada@example.test"
    assert mails[0]["actions"] == ["UPDATE_PASSWORD"] and mails[0]["lifespan"] == 3600
    # the words of the "usher" email theme (deploy/keycloak-theme/usher), as the real one sends
    assert mails[0]["subject"] == "Set your password for your new account"
    text = mails[0]["text"]
    assert text.startswith("Welcome to Usher!\n\nYour account ada is ready. Set your password "
                           "to start using your services:\n\nSet your password: "), text
    assert "The link works for 1 hour." in text and "If you didn't sign up" in text, text
    assert re.findall(r"https?://\S+/login-actions/action-token\?\S+", text) == [
        mails[0]["link"]]
    inbox = requests.get(kc.url + "/inbox", timeout=5).text
    assert "Set your password for your new account" in inbox and "UPDATE_PASSWORD" in inbox
    # the link in the email sets a password; then the user can log in with it
    page = requests.get(mails[0]["link"], timeout=5)
    assert page.status_code == 200 and "password-new" in page.text
    r = requests.post(mails[0]["link"], data={"password-new": "new-pw",
                                              "password-confirm": "new-pw"}, timeout=5)
    assert r.status_code == 200 and "updated" in r.text
    login(kc, requests.Session(), password="new-pw")
    r = adm.put(url, params={**q, "redirect_uri": "http://evil.test/"},
                json=["UPDATE_PASSWORD"], timeout=5)
    assert r.status_code == 400
    requests.post(kc.url + "/_control/config", json={"smtp_broken": True}, timeout=5)
    r = adm.put(url, params=q, json=["UPDATE_PASSWORD"], timeout=5)
    assert r.status_code == 500
    assert r.json()["errorMessage"].startswith("Failed to send execute actions email: ")
    requests.post(kc.url + "/_control/config", json={"smtp_broken": False}, timeout=5)
    no_mail = kc.add_user("nomail")
    r = adm.put(admin(kc, f"/users/{no_mail['id']}/execute-actions-email"), params=q,
                json=["UPDATE_PASSWORD"], timeout=5)
    assert r.status_code == 400
    off = kc.add_user("off", email="off@example.test", enabled=False)
    r = adm.put(admin(kc, f"/users/{off['id']}/execute-actions-email"), params=q,
                json=["UPDATE_PASSWORD"], timeout=5)
    assert r.status_code == 400
    assert len(kc.emails) == 1


def _java_properties(path):
    """key -> value of a simple .properties file (no line continuations)."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            k, v = line.split("=", 1)
            out[k.strip()] = v.replace("\\n", "\n")
    return out


def _message_format(pattern, *args):
    """java.text.MessageFormat for plain {n} arguments and '' (the theme's subset)."""
    out = re.sub(r"\{(\d+)\}", lambda m: "\0" + m.group(1) + "\0", pattern).replace("''", "'")
    return re.sub("\0(\\d+)\0", lambda m: str(args[int(m.group(1))]), out)


def test_execute_actions_words_match_the_keycloak_theme():
    """The double's subject and text are the theme's executeActionsSubject and
    executeActionsBody (text/executeActions.ftl adds a final newline)."""
    from pathlib import Path

    from devstack.doubles.keycloak_double import EXECUTE_ACTIONS_SUBJECT, execute_actions_text
    theme = Path(__file__).resolve().parents[2] / "deploy/keycloak-theme/usher/email"
    msgs = _java_properties(theme / "messages/messages_en.properties")
    assert msgs["executeActionsSubject"] == EXECUTE_ACTIONS_SUBJECT
    link = "http://kc.test/realms/usher/login-actions/action-token?key=k&client_id=usher"
    want = _message_format(msgs["executeActionsBody"], link, 720, "Harbor Cloud",
                           "Set your password", "12 hours", "ada") + "\n"
    assert execute_actions_text("Harbor Cloud", "ada", link, 43200) == want
    assert "parent=base" in (theme / "theme.properties").read_text()


def test_groups(keycloak_double, ada, adm):
    kc = keycloak_double
    parent = kc.add_group("cloud")
    foggy = kc.add_group("cloud-foggy", parent=parent["id"])
    kc.add_group("cloud-cirrus", parent=parent["id"])
    r = adm.get(admin(kc, "/groups"), params={"search": "cloud-foggy", "exact": "true"},
                timeout=5)
    tree = r.json()
    assert [g["name"] for g in tree] == ["cloud"]
    assert [(g["name"], g["path"]) for g in tree[0]["subGroups"]] == [
        ("cloud-foggy", "/cloud/cloud-foggy")]
    r = adm.get(admin(kc, "/groups"), params={"search": "foggy"}, timeout=5)
    assert r.json()[0]["subGroups"][0]["id"] == foggy["id"]
    r = adm.get(admin(kc, "/groups"), params={"search": "foggy", "exact": "true"}, timeout=5)
    assert r.json() == []
    url = admin(kc, f"/users/{ada['id']}/groups/{foggy['id']}")
    assert adm.put(url, timeout=5).status_code == 204
    assert adm.put(url, timeout=5).status_code == 204  # idempotent
    groups = adm.get(admin(kc, f"/users/{ada['id']}/groups"), timeout=5).json()
    assert "/cloud/cloud-foggy" in [g["path"] for g in groups]
    assert adm.delete(url, timeout=5).status_code == 204
    assert adm.delete(url, timeout=5).status_code == 204
    groups = adm.get(admin(kc, f"/users/{ada['id']}/groups"), timeout=5).json()
    assert "/cloud/cloud-foggy" not in [g["path"] for g in groups]
    assert adm.put(admin(kc, f"/users/{ada['id']}/groups/nope"), timeout=5).status_code == 404
    r = adm.post(admin(kc, "/groups"), json={"name": "cloud"}, timeout=5)
    assert r.status_code == 409


def test_realm_down_and_up(keycloak_double):
    kc = keycloak_double
    disc = f"{kc.url}/realms/usher/.well-known/openid-configuration"
    kc.down()
    with pytest.raises(requests.ConnectionError):
        requests.get(disc, timeout=2)
    kc.up()
    assert requests.get(disc, timeout=5).status_code == 200
    requests.post(kc.url + "/_control/down", json={"mode": "503"}, timeout=5)
    assert requests.get(disc, timeout=5).status_code == 503
    requests.post(kc.url + "/_control/up", timeout=5)
    assert requests.get(disc, timeout=5).status_code == 200
    # refuse mode over HTTP comes back by itself
    requests.post(kc.url + "/_control/down", json={"mode": "refuse", "seconds": 0.5},
                  timeout=5)
    time.sleep(0.3)
    with pytest.raises(requests.ConnectionError):
        requests.get(disc, timeout=2)
    time.sleep(0.8)
    assert requests.get(disc, timeout=5).status_code == 200


def test_keep_alive_connection_is_cut_when_down(keycloak_double):
    kc = keycloak_double
    s = requests.Session()
    disc = f"{kc.url}/realms/usher/.well-known/openid-configuration"
    assert s.get(disc, timeout=5).status_code == 200
    kc.down()
    with pytest.raises(requests.ConnectionError):
        s.get(disc, timeout=2)
    kc.up()
    assert s.get(disc, timeout=5).status_code == 200


def test_control_users_and_state(keycloak_double):
    kc = keycloak_double
    r = requests.post(kc.url + "/_control/users",
                      json={"username": "zed", "password": "pw", "email": "z@example.test",
                            "groups": ["usher-admins"], "attributes": {"has_x": "true"}},
                      timeout=5)
    assert r.status_code == 200
    u = r.json()
    assert u["groups"] == ["/usher-admins"] and u["attributes"] == {"has_x": ["true"]}
    assert u["visibleAttributes"] == {} and u["hasPassword"] is True
    st = requests.get(kc.url + "/_control/state", timeout=5).json()
    assert [x["username"] for x in st["users"]] == ["zed"]
    requests.post(kc.url + "/_control/reset", timeout=5)
    st = requests.get(kc.url + "/_control/state", timeout=5).json()
    assert st["users"] == [] and [g["name"] for g in st["groups"]] == ["usher-admins"]


def test_reset_credentials(keycloak_double, ada):
    kc = keycloak_double
    url = kc.url + f"/realms/{kc.realm}/login-actions/reset-credentials"
    assert "Client not found." in requests.get(url, params={"client_id": "nope"}, timeout=5).text
    form = requests.get(url, params={"client_id": "usher"}, timeout=5)
    assert form.status_code == 200 and "Forgot Your Password?" in form.text
    action = re.search(r'action="([^"]+)"', form.text).group(1).replace("&amp;", "&")
    r = requests.post(kc.url + action, data={"username": ""}, timeout=5)
    assert "Please specify username." in r.text
    r = requests.post(kc.url + action, data={"username": "nobody@example.test"}, timeout=5)
    assert "You should receive an email shortly" in r.text and kc.emails == []
    r = requests.post(kc.url + action, data={"username": "ada@example.test"}, timeout=5)
    assert "You should receive an email shortly" in r.text
    assert len(kc.emails) == 1 and kc.emails[0]["subject"] == "Reset password"
    r = requests.post(kc.emails[0]["link"], data={"password-new": "new-pw",
                                                  "password-confirm": "new-pw"}, timeout=5)
    assert r.status_code == 200 and "updated" in r.text
    login(kc, requests.Session(), password="new-pw")
