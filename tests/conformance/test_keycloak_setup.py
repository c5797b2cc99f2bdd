"""The conformance environment itself: a real Keycloak with the test realm, the SMTP catcher,
and stripe-mock. These tests prove the fixtures behave as the Usher tests built on them
assume (and pin down the Keycloak and stripe-mock facts listed in README.md)."""

import base64
import json
import secrets
import uuid
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from conftest import HTTP_TIMEOUT, browser_session, free_port, jwt_claims, pkce_pair


def _b64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def verify_rs256(token, jwks):
    """Checks the RS256 signature of `token` against the JWKS; returns its claims."""
    head_b64, payload_b64, sig_b64 = token.split(".")
    header = json.loads(_b64url(head_b64))
    assert header["alg"] == "RS256", header
    (jwk,) = [k for k in jwks["keys"] if k.get("kid") == header["kid"]]
    pub = rsa.RSAPublicNumbers(int.from_bytes(_b64url(jwk["e"]), "big"),
                               int.from_bytes(_b64url(jwk["n"]), "big")).public_key()
    pub.verify(_b64url(sig_b64), f"{head_b64}.{payload_b64}".encode(), padding.PKCS1v15(),
               hashes.SHA256())
    return json.loads(_b64url(payload_b64))


@pytest.fixture(scope="module")
def admin(keycloak):
    return keycloak.admin_session()


def _new_user(keycloak, admin, **extra):
    name = f"t-{uuid.uuid4().hex[:10]}"
    rep = {"username": name, "email": f"{name}@usher.test", "emailVerified": True,
           "firstName": "Test", "lastName": "User", "enabled": True}
    rep.update(extra)
    r = admin.post(f"{keycloak.admin_base}/users", json=rep, timeout=HTTP_TIMEOUT)
    assert r.status_code == 201, r.text
    assert r.content == b""
    uid = r.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    return uid, rep


# --- Keycloak: discovery and the admin service account ------------------------------------


def test_discovery_document(keycloak):
    r = requests.get(f"{keycloak.issuer}/.well-known/openid-configuration", timeout=HTTP_TIMEOUT)
    assert r.status_code == 200
    d = r.json()
    assert d["issuer"] == keycloak.issuer
    for ep in ("authorization", "token", "userinfo", "end_session"):
        assert d[f"{ep}_endpoint"].startswith(keycloak.oidc + "/"), d[f"{ep}_endpoint"]
    assert d["jwks_uri"] == f"{keycloak.oidc}/certs"
    assert "S256" in d["code_challenge_methods_supported"]
    assert "RS256" in d["id_token_signing_alg_values_supported"]


def test_health_ready_on_management_port(keycloak):
    if keycloak.mgmt_url is None:
        pytest.skip("external Keycloak")
    r = requests.get(f"{keycloak.mgmt_url}/health/ready", timeout=HTTP_TIMEOUT)
    assert r.status_code == 200
    assert r.json()["status"] == "UP"


def test_admin_client_credentials_lists_users_and_groups(keycloak):
    r = requests.post(f"{keycloak.oidc}/token", timeout=HTTP_TIMEOUT, data={
        "grant_type": "client_credentials", "client_id": keycloak.admin_client_id,
        "client_secret": keycloak.admin_client_secret})
    assert r.status_code == 200, r.text
    tok = r.json()
    assert tok["token_type"].lower() == "bearer" and tok["expires_in"] > 60
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {tok['access_token']}"

    r = s.get(f"{keycloak.admin_base}/users", params={"username": "alice", "exact": "true"},
              timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    (alice,) = r.json()
    assert alice["email"] == "alice@usher.test"
    r = s.get(f"{keycloak.admin_base}/users", params={"email": "bob@usher.test", "exact": "true"},
              timeout=HTTP_TIMEOUT)
    assert [u["username"] for u in r.json()] == ["bob"]

    r = s.get(f"{keycloak.admin_base}/groups", timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    assert sorted(g["name"] for g in r.json()) == sorted(keycloak.groups)
    r = s.get(f"{keycloak.admin_base}/groups",
              params={"search": "usher-admins", "exact": "true"}, timeout=HTTP_TIMEOUT)
    assert [g["name"] for g in r.json()] == ["usher-admins"]

    bob_id = keycloak.user_id(s, "bob")
    r = s.get(f"{keycloak.admin_base}/users/{bob_id}/groups", timeout=HTTP_TIMEOUT)
    assert [g["name"] for g in r.json()] == ["usher-admins"]

    # A wrong secret is refused.
    r = requests.post(f"{keycloak.oidc}/token", timeout=HTTP_TIMEOUT, data={
        "grant_type": "client_credentials", "client_id": keycloak.admin_client_id,
        "client_secret": "wrong"})
    assert r.status_code == 401


def test_admin_client_cannot_manage_the_realm(keycloak, admin):
    """Only user and group rights: realm settings stay out of reach."""
    r = admin.get(f"{keycloak.admin_base}/clients", timeout=HTTP_TIMEOUT)
    assert r.status_code == 403


# --- Keycloak: users, unmanaged attributes, groups, mail ----------------------------------


def test_create_user_conflict(keycloak, admin):
    r = admin.post(f"{keycloak.admin_base}/users", timeout=HTTP_TIMEOUT, json={
        "username": "alice", "email": "other@usher.test", "enabled": True})
    assert r.status_code == 409
    assert "same username" in r.json()["errorMessage"]


def test_unmanaged_attribute_survives(keycloak, admin):
    """unmanagedAttributePolicy ADMIN_EDIT: an attribute outside the user profile is kept."""
    uid, _ = _new_user(keycloak, admin)
    url = f"{keycloak.admin_base}/users/{uid}"
    rep = admin.get(url, timeout=HTTP_TIMEOUT).json()
    rep["attributes"] = dict(rep.get("attributes") or {},
                             has_nextcloud=["true"],
                             nextcloud_instance=["https://foggy.example.test"])
    r = admin.put(url, json=rep, timeout=HTTP_TIMEOUT)
    assert r.status_code == 204, r.text
    got = admin.get(url, timeout=HTTP_TIMEOUT).json()
    assert got["attributes"]["has_nextcloud"] == ["true"]
    assert got["attributes"]["nextcloud_instance"] == ["https://foggy.example.test"]

    # A sent attributes map replaces them all (INTEGRATIONS.md): dropping one removes it.
    got["attributes"].pop("nextcloud_instance")
    assert admin.put(url, json=got, timeout=HTTP_TIMEOUT).status_code == 204
    again = admin.get(url, timeout=HTTP_TIMEOUT).json()
    assert "nextcloud_instance" not in again["attributes"]
    assert again["attributes"]["has_nextcloud"] == ["true"]


def test_group_membership_put_delete_idempotent(keycloak, admin):
    uid, _ = _new_user(keycloak, admin)
    (g,) = admin.get(f"{keycloak.admin_base}/groups", timeout=HTTP_TIMEOUT,
                     params={"search": "nextcloud-foggy", "exact": "true"}).json()
    url = f"{keycloak.admin_base}/users/{uid}/groups/{g['id']}"
    assert admin.put(url, timeout=HTTP_TIMEOUT).status_code == 204
    assert admin.put(url, timeout=HTTP_TIMEOUT).status_code == 204
    names = [x["name"] for x in admin.get(f"{keycloak.admin_base}/users/{uid}/groups",
                                          timeout=HTTP_TIMEOUT).json()]
    assert names == ["nextcloud-foggy"]
    assert admin.delete(url, timeout=HTTP_TIMEOUT).status_code == 204
    assert admin.delete(url, timeout=HTTP_TIMEOUT).status_code == 204
    assert admin.get(f"{keycloak.admin_base}/users/{uid}/groups",
                     timeout=HTTP_TIMEOUT).json() == []


def test_execute_actions_email_reaches_smtp_catcher(keycloak, admin, smtp_catcher):
    uid, rep = _new_user(keycloak, admin)
    redirect_uri = f"http://127.0.0.1:{free_port()}/oidc/callback/"
    r = admin.put(f"{keycloak.admin_base}/users/{uid}/execute-actions-email",
                  params={"client_id": keycloak.web_client_id, "redirect_uri": redirect_uri,
                          "lifespan": 600},
                  json=["UPDATE_PASSWORD"], timeout=HTTP_TIMEOUT)
    assert r.status_code == 204, r.text
    mail = smtp_catcher.wait_for(to=rep["email"], timeout=30)
    assert mail.mail_from == "keycloak@usher.test"
    assert "/realms/usher/login-actions/action-token?key=" in mail.text, mail.text


def test_execute_actions_email_without_email_is_400(keycloak, admin):
    uid, _ = _new_user(keycloak, admin, email=None)
    r = admin.put(f"{keycloak.admin_base}/users/{uid}/execute-actions-email",
                  json=["UPDATE_PASSWORD"], timeout=HTTP_TIMEOUT)
    assert r.status_code == 400, r.text


def test_user_without_names_must_complete_profile_at_login(keycloak, admin):
    """The realm keeps Keycloak's default user profile, where firstName and lastName are
    required for users: a user created without them is stopped at login by the
    VERIFY_PROFILE required action (a form, not a redirect to the client)."""
    uid, rep = _new_user(keycloak, admin, firstName=None, lastName=None)
    r = admin.put(f"{keycloak.admin_base}/users/{uid}/reset-password", timeout=HTTP_TIMEOUT,
                  json={"type": "password", "value": "t-password-123", "temporary": False})
    assert r.status_code == 204, r.text
    redirect_uri = f"http://127.0.0.1:{free_port()}/oidc/callback/"
    _, challenge = pkce_pair()
    s = browser_session()
    r = keycloak.submit_login(s, keycloak.auth_url(redirect_uri, "st", "nn", challenge),
                              rep["username"], "t-password-123")
    assert "required-action?execution=VERIFY_PROFILE" in r.headers["Location"]


# --- Keycloak: the login client -----------------------------------------------------------


@pytest.mark.parametrize("username", ["alice", "bob"])
def test_code_flow_with_pkce_emits_groups(keycloak, username):
    tokens, nonce, _ = keycloak.login(username)
    jwks = requests.get(f"{keycloak.oidc}/certs", timeout=HTTP_TIMEOUT).json()
    claims = verify_rs256(tokens["id_token"], jwks)
    password, mail, groups = keycloak.users[username]
    assert claims["iss"] == keycloak.issuer
    assert claims["aud"] == keycloak.web_client_id or keycloak.web_client_id in claims["aud"]
    assert claims["nonce"] == nonce
    assert claims["preferred_username"] == username
    assert claims["email"] == mail
    assert claims["given_name"] and claims["family_name"]
    access = jwt_claims(tokens["access_token"])
    r = requests.get(f"{keycloak.oidc}/userinfo", timeout=HTTP_TIMEOUT,
                     headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert r.status_code == 200, r.text
    userinfo = r.json()
    assert userinfo["sub"] == claims["sub"]
    if groups:
        # Plain names (full.path=false) in the ID token, the access token and userinfo.
        assert claims["groups"] == groups
        assert access["groups"] == groups
        assert userinfo["groups"] == groups
    else:
        # A user in no group gets NO `groups` claim at all (not an empty list):
        # Usher must read a missing claim as "no groups".
        assert "groups" not in claims
        assert "groups" not in access
        assert "groups" not in userinfo


def test_second_login_is_silent_through_sso(keycloak):
    """Keycloak's SSO session answers the next authorization request without a form."""
    _, _, session = keycloak.login("alice")
    redirect_uri = f"http://127.0.0.1:{free_port()}/oidc/callback/"
    _, challenge = pkce_pair()
    r = session.get(keycloak.auth_url(redirect_uri, "s2", "n2", challenge),
                    timeout=HTTP_TIMEOUT, allow_redirects=False)
    assert r.status_code == 302
    assert r.headers["Location"].startswith(redirect_uri)
    assert "code" in parse_qs(urlparse(r.headers["Location"]).query)


def test_pkce_is_required(keycloak):
    redirect_uri = f"http://127.0.0.1:{free_port()}/oidc/callback/"
    _, challenge = pkce_pair()
    url = keycloak.auth_url(redirect_uri, "st", "nn", challenge)
    url = url.replace("&code_challenge_method=S256", "").split("&code_challenge=")[0]
    r = requests.get(url, timeout=HTTP_TIMEOUT, allow_redirects=False)
    assert r.status_code == 302, r.text[:300]
    q = parse_qs(urlparse(r.headers["Location"]).query)
    assert q["error"] == ["invalid_request"], q


def test_code_exchange_needs_the_verifier(keycloak):
    redirect_uri = f"http://127.0.0.1:{free_port()}/oidc/callback/"
    _, challenge = pkce_pair()
    r = keycloak.submit_login(browser_session(),
                              keycloak.auth_url(redirect_uri, "st", "nn", challenge),
                              "alice", keycloak.users["alice"][0])
    code = parse_qs(urlparse(r.headers["Location"]).query)["code"][0]
    t = requests.post(f"{keycloak.oidc}/token", timeout=HTTP_TIMEOUT,
                      auth=(keycloak.web_client_id, keycloak.web_client_secret),
                      data={"grant_type": "authorization_code", "code": code,
                            "redirect_uri": redirect_uri,
                            "code_verifier": secrets.token_urlsafe(40)})
    assert t.status_code == 400
    assert t.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("redirect_uri,ok", [
    ("http://localhost:{port}/oidc/callback/", True),
    ("http://127.0.0.1:{port}/oidc/callback/", True),
    ("http://127.0.0.1:{port}/elsewhere/", False),
    ("http://evil.example.test:{port}/oidc/callback/", False),
])
def test_redirect_uris_any_loopback_port(keycloak, redirect_uri, ok):
    redirect_uri = redirect_uri.format(port=free_port())
    _, challenge = pkce_pair()
    r = requests.get(keycloak.auth_url(redirect_uri, "st", "nn", challenge),
                     timeout=HTTP_TIMEOUT, allow_redirects=False)
    if ok:
        assert r.status_code == 200 and 'id="kc-form-login"' in r.text
    else:
        assert r.status_code == 400
        assert "Invalid parameter: redirect_uri" in r.text


def test_logout_redirects_to_post_logout_uri(keycloak):
    tokens, _, session = keycloak.login("alice")
    back = f"http://127.0.0.1:{free_port()}/oidc/callback/"
    r = session.get(f"{keycloak.oidc}/logout", timeout=HTTP_TIMEOUT, allow_redirects=False,
                    params={"id_token_hint": tokens["id_token"],
                            "post_logout_redirect_uri": back,
                            "client_id": keycloak.web_client_id})
    assert r.status_code == 302, r.text[:300]
    assert r.headers["Location"].startswith(back)
    # The SSO session is gone: the next authorization request shows the form again.
    _, challenge = pkce_pair()
    r = session.get(keycloak.auth_url(back, "s", "n", challenge), timeout=HTTP_TIMEOUT,
                    allow_redirects=False)
    assert r.status_code == 200 and 'id="kc-form-login"' in r.text


# --- stripe-mock smoke test ---------------------------------------------------------------

LINE_ITEMS = {"line_items[0][price]": "price_123", "line_items[0][quantity]": "1"}


def test_stripe_mock_checkout_session_subscription(stripe_mock):
    s = stripe_mock.session()
    r = s.post(f"{stripe_mock.url}/v1/checkout/sessions", timeout=HTTP_TIMEOUT, data={
        "mode": "subscription", **LINE_ITEMS,
        "success_url": "http://127.0.0.1/onboarding/done?session_id={CHECKOUT_SESSION_ID}",
        "customer_email": "alice@usher.test", "metadata[usher_user]": "42",
    }, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "checkout.session"
    assert body["id"].startswith("cs_")


def test_stripe_mock_rejects_a_wrong_request(stripe_mock):
    s = stripe_mock.session()
    r = s.post(f"{stripe_mock.url}/v1/checkout/sessions", timeout=HTTP_TIMEOUT,
               data={"mode": "subscriptions", **LINE_ITEMS})  # no such mode
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"
    r = s.post(f"{stripe_mock.url}/v1/checkout/sessions", timeout=HTTP_TIMEOUT,
               data={"mode": "subscription", **LINE_ITEMS, "no_such_param": "1"})
    assert r.status_code == 400
    assert "additional properties are not allowed" in r.json()["error"]["message"]
    r = s.post(f"{stripe_mock.url}/v1/checkout/sessions", timeout=HTTP_TIMEOUT,
               data={"mode": "subscription", "line_items[0][price]": "price_123",
                     "line_items[0][quantity]": "one"})
    assert r.status_code == 400
    r = requests.post(f"{stripe_mock.url}/v1/checkout/sessions", timeout=HTTP_TIMEOUT,
                      data={"mode": "subscription", **LINE_ITEMS})  # no API key
    assert r.status_code == 401


@pytest.mark.parametrize("ui_mode,status", [
    ("hosted_page", 200), ("embedded_page", 200),  # names since 2026-03-25.dahlia
    ("hosted", 400), ("embedded", 400),            # the old names: not in the bundled spec
])
def test_stripe_mock_ui_mode_names(stripe_mock, ui_mode, status):
    s = stripe_mock.session()
    extra = ({"return_url": "http://127.0.0.1/r?session_id={CHECKOUT_SESSION_ID}"}
             if "embedded" in ui_mode else {"success_url": "http://127.0.0.1/ok"})
    r = s.post(f"{stripe_mock.url}/v1/checkout/sessions", timeout=HTTP_TIMEOUT,
               data={"mode": "subscription", **LINE_ITEMS, "ui_mode": ui_mode, **extra})
    assert r.status_code == status, r.text[:300]


def test_stripe_mock_does_not_check_cross_field_rules(stripe_mock):
    """Recorded limits (README.md): stripe-mock validates each parameter against the spec
    but not the rules between them, and answers with a fixture whatever the ui_mode."""
    s = stripe_mock.session()
    r = s.post(f"{stripe_mock.url}/v1/checkout/sessions", timeout=HTTP_TIMEOUT, data={
        "mode": "subscription", **LINE_ITEMS, "ui_mode": "embedded_page",
        "success_url": "http://127.0.0.1/ok",  # refused by the real API for embedded_page
        "customer": "cus_123", "customer_email": "a@usher.test",  # both: refused for real
    })
    assert r.status_code == 200
    body = r.json()
    assert body["ui_mode"] == "embedded_page"  # scalar parameters are echoed back
    assert body["client_secret"] is None  # … but the rest is the fixture
