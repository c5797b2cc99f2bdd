"""A stateful local double of one Keycloak 26 realm: OIDC provider and the Admin REST API.

OIDC (`/realms/{realm}/…`): discovery, `auth` (login form; code flow with state, nonce and
PKCE S256 required), `token` (authorization_code with PKCE check, refresh_token,
client_credentials; client_secret_basic or client_secret_post), `certs` (JWKS with key
rotation), `userinfo`, `logout` (end session; `id_token_hint` or `client_id` needed for
`post_logout_redirect_uri`), `login-actions/reset-credentials?client_id=` (the login page's
"Forgot Password?": a form asking username or email, then "You should receive an email
shortly"; a known, enabled user with an email gets a reset email). ID tokens are RS256 JWTs with a `kid`, signed with
`cryptography`.

Admin API (`/admin/realms/{realm}/…`, bearer token from client_credentials): users (search,
create, get, update with Keycloak's replace-the-map semantics and the unmanaged-attribute
policy, delete, logout, execute-actions-email, groups), groups (search with hierarchy,
create), the user profile (`unmanagedAttributePolicy`). Status codes and error bodies as
INTEGRATIONS.md describes.

Control API (`/_control/…`, JSON, no auth) and an outbox page (`/inbox`) of the emails
Keycloak would have sent: see README.md.

Run: python3 -m devstack.doubles.keycloak_double --port 8180 --realm usher
"""

import argparse
import base64
import copy
import hashlib
import hmac
import html
import json
import re
import secrets
import sys
import threading
import time
import uuid
from urllib.parse import unquote_plus, urlencode, urlsplit, urlunsplit

if __package__ in (None, ""):  # run as a script: make the package importable
    import pathlib
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
    __package__ = "devstack.doubles"

from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding, rsa  # noqa: E402

from ._http import (App, DoubleServer, ServedDouble, run_standalone,  # noqa: E402
                    Response, empty, esc, html_response,
                    json_response, page, redirect)

ADMIN_ROLES = ("manage-users", "view-users", "query-users", "query-groups")
KNOWN_ACTIONS = ("UPDATE_PASSWORD", "VERIFY_EMAIL", "UPDATE_PROFILE", "CONFIGURE_TOTP",
                 "TERMS_AND_CONDITIONS", "UPDATE_EMAIL", "webauthn-register",
                 "webauthn-register-passwordless", "delete_account", "CONFIGURE_RECOVERY_AUTHN_CODES")
POLICIES = ("ENABLED", "ADMIN_EDIT", "ADMIN_VIEW", "DISABLED")
_PKCE_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_USERNAME_RE = re.compile(r"^[\w.\-@]+$", re.UNICODE)
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")
_NAME_BAD = set('<>&"$%!#?§;*~/\\|^=[]{}()')
# Keycloak 26.7.3's advertised JWS algorithms, in its order (the double signs with RS256 only).
_KC_SIGNING_ALGS = ("PS384", "RS384", "EdDSA", "ES384", "HS256", "HS512", "ES256", "RS256",
                    "HS384", "ES512", "PS256", "PS512", "RS512")


def _expiry_text(seconds):
    """Keycloak 26.7.3's wording of a link lifespan (checked against the real server): whole
    minutes, shown in hours or days when they divide evenly ("1 day", "12 hours", "24
    minutes"; 90 s is "1 minute")."""
    minutes = seconds // 60
    for unit, size in (("day", 1440), ("hour", 60)):
        if minutes >= size and minutes % size == 0:
            n = minutes // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


# The execute-actions mail in the words of Usher's Keycloak email theme
# (deploy/keycloak-theme/usher/email/messages/messages_en.properties: executeActionsSubject and
# executeActionsBody; tests/doubles check that both say the same).
EXECUTE_ACTIONS_SUBJECT = "Set your password for your new account"


def execute_actions_text(realm_name, username, link, lifespan):
    """The text part Keycloak renders from the theme's text/executeActions.ftl."""
    return (f"Welcome to {realm_name}!\n\nYour account {username} is ready. Set your password "
            f"to start using your services:\n\nSet your password: {link}\n\nThe link works "
            f"for {_expiry_text(lifespan)}.\n\nIf you didn't sign up, ignore this mail: "
            f"nothing happens without the link.\n")


def default_profile():
    perms = {"view": ["admin", "user"], "edit": ["admin", "user"]}
    return {
        "attributes": [
            {"name": "username", "displayName": "${username}", "validations": {
                "length": {"min": 3, "max": 255}, "username-prohibited-characters": {},
                "up-username-not-idn-homograph": {}}, "permissions": perms,
             "multivalued": False},
            {"name": "email", "displayName": "${email}", "validations": {
                "email": {}, "length": {"max": 255}}, "required": {"roles": ["user"]},
             "permissions": perms, "multivalued": False},
            {"name": "firstName", "displayName": "${firstName}", "validations": {
                "length": {"max": 255}, "person-name-prohibited-characters": {}},
             "required": {"roles": ["user"]}, "permissions": perms, "multivalued": False},
            {"name": "lastName", "displayName": "${lastName}", "validations": {
                "length": {"max": 255}, "person-name-prohibited-characters": {}},
             "required": {"roles": ["user"]}, "permissions": perms, "multivalued": False},
        ],
        "groups": [{"name": "user-metadata", "displayHeader": "User metadata",
                    "displayDescription": "Attributes, which refer to user metadata"}],
    }


BUILTIN_ATTRS = ("username", "email", "firstName", "lastName")


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def _int_b64u(n):
    return b64u(n.to_bytes((n.bit_length() + 7) // 8, "big"))



class ControlNotFound(Exception):
    """A control-API request for something the double does not hold (answered 404)."""

class SigningKey:
    def __init__(self):
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = b64u(secrets.token_bytes(24))
        self.created = time.time()
        nums = self.private.public_key().public_numbers()
        self.jwk = {"kid": self.kid, "kty": "RSA", "alg": "RS256", "use": "sig",
                    "n": _int_b64u(nums.n), "e": _int_b64u(nums.e)}

    def sign(self, claims, typ="JWT"):
        header = {"alg": "RS256", "typ": typ, "kid": self.kid}
        signing_input = (b64u(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         b64u(json.dumps(claims, separators=(",", ":")).encode()))
        sig = self.private.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + b64u(sig)

    def verify(self, token):
        try:
            h, p, s = token.split(".")
            self.private.public_key().verify(b64u_decode(s), f"{h}.{p}".encode(),
                                             padding.PKCS1v15(), hashes.SHA256())
            return json.loads(b64u_decode(p))
        except Exception:  # noqa: BLE001 - any failure means "not valid"
            return None

    def public_pem_b64(self):
        der = self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(der).decode()


class KcError(Exception):
    """An error answered as JSON with a status."""

    def __init__(self, status, body):
        super().__init__(str(body))
        self.status, self.body = status, body


def _err(status, message):
    return KcError(status, {"errorMessage": message})


def _field_error(field, message, *params):
    return {"field": field, "errorMessage": message, "params": [field, *params]}


class KeycloakState:
    def __init__(self):
        self.users = {}            # id -> user (internal form)
        self.groups = {}           # id -> {id, name, parent, attributes}
        self.codes = {}            # code -> auth grant
        self.pending = {}          # tab_id -> pending authorization request
        self.sessions = {}         # sid -> {id, user_id, created, clients}
        self.access_tokens = {}    # token -> {client_id, user_id, sid, exp, kind, roles}
        self.refresh_tokens = {}   # token -> {client_id, user_id, sid, exp, scope, nonce}
        self.action_tokens = {}    # key -> {user_id, actions, exp, client_id, redirect_uri}
        self.logout_confirms = {}  # code -> {sid, redirect, state}
        self.emails = []           # execute-actions emails "sent"
        self.sessions_ended = []   # one per ended SSO session
        self.admin_logouts = []    # one per POST /users/{id}/logout
        self.admin_requests = []   # admin API log: method, path, status, body
        self.profile = default_profile()


class KeycloakDouble(ServedDouble):
    """The Keycloak double: realm state, HTTP app, server and Python control helpers."""

    def __init__(self, port=0, realm="usher", public_url=None, client_id="usher",
                 client_secret="usher-secret", redirect_uris=None,
                 post_logout_redirect_uris=None, admin_client_id="usher-admin",
                 admin_client_secret="usher-admin-secret", groups=(), users=(),
                 unmanaged_attribute_policy="DISABLED", verbose=False,
                 realm_display_name=None):
        self.lock = threading.RLock()
        self.realm = realm
        self.realm_display_name = realm_display_name
        self.state = KeycloakState()
        self.keys = [SigningKey()]     # keys[-1] signs; all are listed in the JWKS
        self.clients = {}
        self.config = {
            "public_url": public_url,
            "access_token_lifespan": 300,
            "refresh_token_lifespan": 1800,
            "code_lifespan": 60,
            "smtp_broken": False,
            "require_state": True,       # stricter than Keycloak: Usher must send them
            "require_nonce": True,
            "require_openid_scope": True,
            "require_pkce": True,
            "clock_offset": 0,
            "down": None,                # None | "503"
        }
        self.on_email = None             # callable(email_record) (run.py: Mailgun inbox)
        redirect_uris = list(redirect_uris or ["http://127.0.0.1:8000/*",
                                               "http://localhost:8000/*"])
        if client_id:
            self.add_client(client_id, client_secret, redirect_uris=redirect_uris,
                            post_logout_redirect_uris=post_logout_redirect_uris or ["+"])
        if admin_client_id:
            self.add_client(admin_client_id, admin_client_secret, redirect_uris=[],
                            service_account=True, roles=list(ADMIN_ROLES))
        self._seed = {"groups": list(groups), "users": [dict(u) for u in users]}
        self._apply_seed()
        self._initial_policy = unmanaged_attribute_policy  # Keycloak 24+ default: DISABLED
        self.set_unmanaged_policy(unmanaged_attribute_policy)
        self.app = App("keycloak")
        self._routes()
        self.server = DoubleServer(self.app, port=port, verbose=verbose)
        self._down_timer = None

    # --- lifecycle -----------------------------------------------------------------------

    def stop(self):
        if self._down_timer:
            self._down_timer.cancel()
        self.server.stop()

    def down(self, mode="refuse"):
        """Simulates an outage: "refuse" closes the port, "503" answers 503 to everything
        but /_control/."""
        if mode == "refuse":
            self.server.down()
        else:
            self.config["down"] = "503"

    def up(self):
        self.config["down"] = None
        if not self.server.running:
            self.server.up()

    @property
    def base(self):
        return (self.config["public_url"] or self.server.url).rstrip("/")

    @property
    def issuer(self):
        return f"{self.base}/realms/{self.realm}"

    def now(self):
        return int(time.time()) + int(self.config["clock_offset"])

    # --- realm objects -------------------------------------------------------------------

    def add_client(self, client_id, secret, redirect_uris=(), post_logout_redirect_uris=("+",),
                   service_account=False, roles=(), enabled=True):
        with self.lock:
            c = {"client_id": client_id, "secret": secret,
                 "redirect_uris": list(redirect_uris),
                 "post_logout_redirect_uris": list(post_logout_redirect_uris),
                 "service_account": bool(service_account), "roles": list(roles),
                 "enabled": bool(enabled), "sa_user_id": None}
            if service_account:
                c["sa_user_id"] = str(uuid.uuid4())
            self.clients[client_id] = c
            return c

    def _apply_seed(self):
        for g in self._seed["groups"]:
            if isinstance(g, str):
                self.add_group(g)
            else:
                self.add_group(g["name"], parent=g.get("parent"))
        for u in self._seed["users"]:
            self.add_user(**u)

    def reset(self):
        with self.lock:
            policy = self._initial_policy
            self.state = KeycloakState()
            self.config["down"] = None
            self._apply_seed()
            self.set_unmanaged_policy(policy)

    def add_group(self, name, parent=None, gid=None, attributes=None):
        """Creates a group (parent: a group id, name or path). Returns it."""
        with self.lock:
            pid = None
            if parent:
                pg = self._find_group(parent)
                if pg is None:
                    raise KeyError(f"parent group {parent!r} not found")
                pid = pg["id"]
            for g in self.state.groups.values():
                if g["name"] == name and g["parent"] == pid:
                    return g
            gid = gid or str(uuid.uuid4())
            self.state.groups[gid] = {"id": gid, "name": name, "parent": pid,
                                      "attributes": dict(attributes or {})}
            return self.state.groups[gid]

    def _find_group(self, ref):
        if ref in self.state.groups:
            return self.state.groups[ref]
        for g in self.state.groups.values():
            if self._group_path(g) == ref or (not ref.startswith("/") and g["name"] == ref):
                return g
        return None

    def _group_path(self, g):
        parts = []
        while g is not None:
            parts.append(g["name"])
            g = self.state.groups.get(g["parent"]) if g["parent"] else None
        return "/" + "/".join(reversed(parts))

    def add_user(self, username, password=None, email=None, firstName=None, lastName=None,
                 enabled=True, emailVerified=True, attributes=None, groups=(),
                 requiredActions=(), id=None, **extra):  # noqa: A002 - Keycloak's field names
        """Creates a user directly (no policy, no validation). groups: names/paths/ids."""
        with self.lock:
            uid = id or str(uuid.uuid4())
            u = {"id": uid, "username": username.lower(),
                 "email": email.lower() if email else None, "firstName": firstName,
                 "lastName": lastName, "enabled": bool(enabled),
                 "emailVerified": bool(emailVerified),
                 "attributes": {k: (list(v) if isinstance(v, (list, tuple)) else [str(v)])
                                for k, v in (attributes or {}).items()},
                 "requiredActions": list(requiredActions), "password": password,
                 "createdTimestamp": int(time.time() * 1000), "groups": set()}
            for g in groups:
                grp = self._find_group(g) or self.add_group(g)
                u["groups"].add(grp["id"])
            self.state.users[uid] = u
            return u

    def find_user(self, ref):
        """A user by id, username or email (case-insensitive)."""
        with self.lock:
            if ref in self.state.users:
                return self.state.users[ref]
            r = ref.lower()
            for u in self.state.users.values():
                if u["username"] == r or (u["email"] and u["email"] == r):
                    return u
            return None

    def _declared(self):
        return {a["name"] for a in self.state.profile.get("attributes", [])}

    def _policy(self):
        return self.state.profile.get("unmanagedAttributePolicy", "DISABLED")

    def _visible_attributes(self, u):
        declared = self._declared()
        pol = self._policy()
        return {k: list(v) for k, v in u["attributes"].items()
                if k in declared or pol != "DISABLED"}

    def user_rep(self, u, brief=False):
        rep = {"id": u["id"], "username": u["username"]}
        for k in ("firstName", "lastName", "email"):
            if u[k] is not None:
                rep[k] = u[k]
        rep["emailVerified"] = u["emailVerified"]
        attrs = self._visible_attributes(u)
        if attrs and not brief:
            rep["attributes"] = attrs
        rep.update({"createdTimestamp": u["createdTimestamp"], "enabled": u["enabled"],
                    "totp": False, "disableableCredentialTypes": [],
                    "requiredActions": list(u["requiredActions"]), "notBefore": 0})
        if not brief:
            rep["access"] = {"manageGroupMembership": True, "view": True, "mapRoles": True,
                             "impersonate": False, "manage": True}
        return rep

    def group_rep(self, g, sub=None):
        children = [c for c in self.state.groups.values() if c["parent"] == g["id"]]
        rep = {"id": g["id"], "name": g["name"], "path": self._group_path(g)}
        if g["parent"]:
            rep["parentId"] = g["parent"]
        rep["subGroupCount"] = len(children)
        rep["subGroups"] = sub if sub is not None else []
        return rep

    # --- tokens --------------------------------------------------------------------------

    def _signer(self):
        return self.keys[-1]

    def _verify_jwt(self, token):
        for k in self.keys:
            claims = k.verify(token)
            if claims is not None:
                return claims
        return None

    def _user_claims(self, u):
        c = {"email_verified": u["emailVerified"], "preferred_username": u["username"]}
        name = " ".join(x for x in (u["firstName"], u["lastName"]) if x)
        if name:
            c["name"] = name
        if u["firstName"] is not None:
            c["given_name"] = u["firstName"]
        if u["lastName"] is not None:
            c["family_name"] = u["lastName"]
        if u["email"] is not None:
            c["email"] = u["email"]
        groups = sorted(self.state.groups[g]["name"] for g in u["groups"]
                        if g in self.state.groups)
        if groups:  # as Keycloak 26's Group Membership mapper: no group, no claim (not [])
            c["groups"] = groups
        return c

    def _issue_user_tokens(self, client_id, u, sid, nonce, scope, auth_time):
        now = self.now()
        life = int(self.config["access_token_lifespan"])
        access = self._signer().sign({
            "exp": now + life, "iat": now, "auth_time": auth_time, "jti": str(uuid.uuid4()),
            "iss": self.issuer, "aud": "account", "sub": u["id"], "typ": "Bearer",
            "azp": client_id, "sid": sid, "acr": "1", "scope": scope,
            "realm_access": {"roles": ["default-roles-" + self.realm]},
            **self._user_claims(u)})
        at_hash = b64u(hashlib.sha256(access.encode()).digest()[:16])
        id_claims = {"exp": now + life, "iat": now, "auth_time": auth_time,
                     "jti": str(uuid.uuid4()), "iss": self.issuer, "aud": client_id,
                     "sub": u["id"], "typ": "ID", "azp": client_id, "sid": sid,
                     "at_hash": at_hash, "acr": "1", **self._user_claims(u)}
        if nonce is not None:
            id_claims["nonce"] = nonce
        id_token = self._signer().sign(id_claims)
        refresh = b64u(secrets.token_bytes(32))
        self.state.access_tokens[access] = {"client_id": client_id, "user_id": u["id"],
                                            "sid": sid, "exp": now + life, "kind": "user",
                                            "roles": []}
        rlife = int(self.config["refresh_token_lifespan"])
        self.state.refresh_tokens[refresh] = {"client_id": client_id, "user_id": u["id"],
                                              "sid": sid, "exp": now + rlife, "scope": scope,
                                              "nonce": nonce, "auth_time": auth_time}
        return {"access_token": access, "expires_in": life, "refresh_expires_in": rlife,
                "refresh_token": refresh, "token_type": "Bearer", "id_token": id_token,
                "not-before-policy": 0, "session_state": sid, "scope": scope}

    def _issue_service_token(self, client):
        now = self.now()
        life = int(self.config["access_token_lifespan"])
        access = self._signer().sign({
            "exp": now + life, "iat": now, "jti": str(uuid.uuid4()), "iss": self.issuer,
            "aud": ["realm-management", "account"], "sub": client["sa_user_id"],
            "typ": "Bearer", "azp": client["client_id"], "acr": "1",
            "resource_access": {"realm-management": {"roles": list(client["roles"])}},
            "scope": "profile email", "clientId": client["client_id"],
            "email_verified": False,
            "preferred_username": "service-account-" + client["client_id"]})
        self.state.access_tokens[access] = {"client_id": client["client_id"], "user_id": None,
                                            "sid": None, "exp": now + life,
                                            "kind": "service", "roles": list(client["roles"])}
        return {"access_token": access, "expires_in": life, "refresh_expires_in": 0,
                "token_type": "Bearer", "not-before-policy": 0, "scope": "profile email"}

    def expire_tokens(self):
        """Every access token issued so far is expired from now on."""
        with self.lock:
            for t in self.state.access_tokens.values():
                t["exp"] = self.now() - 1

    def rotate_keys(self, keep_old=True):
        """A new signing key (new kid); the old ones stay in the JWKS unless keep_old=False."""
        k = SigningKey()
        with self.lock:
            if not keep_old:
                self.keys = []
            self.keys.append(k)
        return k.kid

    def remove_key(self, kid=None):
        """Removes a key by kid, or (kid None) every key but the signing one."""
        with self.lock:
            if kid is None:
                self.keys = self.keys[-1:]
            else:
                if len(self.keys) == 1 and self.keys[0].kid == kid:
                    raise ValueError("cannot remove the only key")
                self.keys = [k for k in self.keys if k.kid != kid]
            return [k.kid for k in self.keys]

    def end_sessions(self, user_id, reason):
        n = 0
        for sid in [s for s, v in self.state.sessions.items() if v["user_id"] == user_id]:
            self._end_session(sid, reason)
            n += 1
        return n

    def _end_session(self, sid, reason):
        s = self.state.sessions.pop(sid, None)
        if s is None:
            return
        for store in (self.state.refresh_tokens, self.state.access_tokens):
            for t in [t for t, v in store.items() if v.get("sid") == sid]:
                del store[t]
        u = self.state.users.get(s["user_id"])
        self.state.sessions_ended.append({"session_id": sid, "user_id": s["user_id"],
                                          "username": u["username"] if u else None,
                                          "reason": reason, "at": time.time()})

    # --- routing -------------------------------------------------------------------------

    def _routes(self):
        a = self.app
        r = "/realms/{realm}"
        oidc = r + "/protocol/openid-connect"
        a.route("GET", r + "/.well-known/openid-configuration", self.h_discovery)
        a.route("GET", r, self.h_realm_info)
        a.route("GET", oidc + "/auth", self.h_auth)
        a.route("POST", r + "/login-actions/authenticate", self.h_authenticate)
        a.route("POST", r + "/login-actions/required-action", self.h_required_action)
        a.route("GET", r + "/login-actions/action-token", self.h_action_token)
        a.route("GET", r + "/login-actions/reset-credentials", self.h_reset_credentials)
        a.route("POST", r + "/login-actions/reset-credentials", self.h_reset_credentials_post)
        a.route("POST", r + "/login-actions/action-token", self.h_action_token_post)
        a.route("POST", oidc + "/token", self.h_token)
        a.route("GET", oidc + "/certs", self.h_certs)
        a.route("GET", oidc + "/userinfo", self.h_userinfo)
        a.route("POST", oidc + "/userinfo", self.h_userinfo)
        a.route("GET", oidc + "/logout", self.h_logout)
        a.route("POST", oidc + "/logout", self.h_logout)
        a.route("POST", oidc + "/logout/logout-confirm", self.h_logout_confirm)
        a.route("GET", "/health/ready", lambda req: json_response(200, {"status": "UP",
                                                                        "checks": []}))
        a.route("GET", "/health/live", lambda req: json_response(200, {"status": "UP",
                                                                       "checks": []}))
        ad = "/admin/realms/{realm}"
        A = self._admin  # noqa: N806
        a.route("GET", ad + "/users", A(self.a_users_search, "query"))
        a.route("GET", ad + "/users/count", A(self.a_users_count, "query"))
        a.route("POST", ad + "/users", A(self.a_user_create, "manage"))
        a.route("GET", ad + "/users/profile", A(self.a_profile_get, "any"))
        a.route("PUT", ad + "/users/profile", A(self.a_profile_put, "manage-realm"))
        a.route("GET", ad + "/users/{id}", A(self.a_user_get, "view"))
        a.route("PUT", ad + "/users/{id}", A(self.a_user_put, "manage"))
        a.route("DELETE", ad + "/users/{id}", A(self.a_user_delete, "manage"))
        a.route("POST", ad + "/users/{id}/logout", A(self.a_user_logout, "manage"))
        a.route("PUT", ad + "/users/{id}/execute-actions-email",
                A(self.a_execute_actions, "manage"))
        a.route("GET", ad + "/users/{id}/groups", A(self.a_user_groups, "view"))
        a.route("PUT", ad + "/users/{id}/groups/{gid}", A(self.a_user_group_add, "manage"))
        a.route("DELETE", ad + "/users/{id}/groups/{gid}", A(self.a_user_group_del, "manage"))
        a.route("GET", ad + "/groups", A(self.a_groups_search, "groups"))
        a.route("GET", ad + "/groups/count", A(self.a_groups_count, "groups"))
        a.route("POST", ad + "/groups", A(self.a_group_create, "manage"))
        a.route("GET", ad + "/groups/{gid}", A(self.a_group_get, "groups"))
        a.route("DELETE", ad + "/groups/{gid}", A(self.a_group_delete, "manage"))
        a.route("GET", ad + "/groups/{gid}/children", A(self.a_group_children, "groups"))
        a.route("POST", ad + "/groups/{gid}/children", A(self.a_group_create, "manage"))
        a.route("GET", ad + "/groups/{gid}/members", A(self.a_group_members, "view"))
        a.route("GET", "/inbox", self.p_inbox)
        c = self._control
        a.route("GET", "/_control/state", c(self.c_state))
        a.route("POST", "/_control/reset", c(lambda req, b: (self.reset(), {"reset": True})[1]))
        a.route("GET", "/_control/config", c(lambda req, b: self.config))
        a.route("POST", "/_control/config", c(self.c_config))
        a.route("POST", "/_control/users", c(self.c_user_create))
        a.route("GET", "/_control/users/{id}", c(self.c_user_get))
        a.route("POST", "/_control/groups", c(self.c_group_create))
        a.route("POST", "/_control/clients", c(self.c_client_create))
        a.route("POST", "/_control/keys/rotate", c(self.c_rotate))
        a.route("POST", "/_control/keys/remove", c(self.c_remove_key))
        a.route("POST", "/_control/tokens/expire",
                c(lambda req, b: (self.expire_tokens(), {"expired": True})[1]))
        a.route("POST", "/_control/down", c(self.c_down))
        a.route("POST", "/_control/up", c(lambda req, b: (self.up(), {"up": True})[1]))
        a.route("GET", "/_control/emails", c(lambda req, b: self.state.emails))
        a.route("GET", "/_control/sessions", c(lambda req, b: list(self.state.sessions.values())))
        a.route("GET", "/_control/sessions-ended", c(lambda req, b: self.state.sessions_ended))
        a.route("GET", "/_control/admin-logouts", c(lambda req, b: self.state.admin_logouts))
        a.route("GET", "/_control/admin-requests", c(lambda req, b: self.state.admin_requests))
        a.before = self._before

    def _before(self, req):
        if self.config["down"] and not req.path.startswith("/_control/"):
            return json_response(503, {"error": "Service Unavailable"})
        m = re.match(r"^/(?:admin/)?realms/([^/]+)", req.path)
        if m and unquote_plus(m.group(1)) != self.realm:
            if req.path.startswith("/admin/"):
                return json_response(404, {"error": "Realm not found."})
            return json_response(404, {"error": "Realm does not exist"})
        return None

    # --- OIDC ----------------------------------------------------------------------------

    def h_discovery(self, req):
        i = self.issuer
        o = i + "/protocol/openid-connect"
        return json_response(200, {
            "issuer": i, "authorization_endpoint": o + "/auth", "token_endpoint": o + "/token",
            "introspection_endpoint": o + "/token/introspect",
            "userinfo_endpoint": o + "/userinfo", "end_session_endpoint": o + "/logout",
            "frontchannel_logout_session_supported": True, "frontchannel_logout_supported":
            True, "jwks_uri": o + "/certs", "check_session_iframe": o + "/login-status-iframe.html",
            # The lists below are what Keycloak 26.7.3 advertises (checked against the real
            # server), not what the double implements: an RP must not trust them to narrow
            # anything (e.g. HS256 is listed for ID tokens).
            "grant_types_supported": [
                "authorization_code", "client_credentials", "implicit", "password",
                "refresh_token", "urn:ietf:params:oauth:grant-type:device_code",
                "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "urn:ietf:params:oauth:grant-type:token-exchange",
                "urn:ietf:params:oauth:grant-type:uma-ticket",
                "urn:openid:params:grant-type:ciba"],
            "acr_values_supported": ["0", "1"],
            "response_types_supported": ["code", "none", "id_token", "token",
                                         "id_token token", "code id_token", "code token",
                                         "code id_token token"],
            "subject_types_supported": ["public", "pairwise"],
            "id_token_signing_alg_values_supported": list(_KC_SIGNING_ALGS),
            "userinfo_signing_alg_values_supported": list(_KC_SIGNING_ALGS) + ["none"],
            "response_modes_supported": ["query", "fragment", "form_post", "query.jwt",
                                         "fragment.jwt", "form_post.jwt", "jwt"],
            "registration_endpoint": i + "/clients-registrations/openid-connect",
            "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic",
                                                      "client_secret_post",
                                                      "tls_client_auth",
                                                      "client_secret_jwt"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "name",
                                 "given_name", "family_name", "preferred_username", "email",
                                 "acr", "azp", "nonce"],
            "claim_types_supported": ["normal"], "claims_parameter_supported": True,
            "scopes_supported": ["openid", "basic", "web-origins", "address",
                                 "service_account", "acr", "phone", "offline_access",
                                 "microprofile-jwt", "email", "organization", "roles",
                                 "profile"],
            "request_parameter_supported": True, "request_uri_parameter_supported": True,
            "code_challenge_methods_supported": ["plain", "S256"],
            "tls_client_certificate_bound_access_tokens": True,
            "revocation_endpoint": o + "/revoke",
            "backchannel_logout_supported": True, "backchannel_logout_session_supported": True,
            "authorization_response_iss_parameter_supported": True,
        })

    def h_realm_info(self, req):
        return json_response(200, {
            "realm": self.realm, "public_key": self._signer().public_pem_b64(),
            "token-service": self.issuer + "/protocol/openid-connect",
            "account-service": self.issuer + "/account", "tokens-not-before": 0})

    def h_certs(self, req):
        with self.lock:
            keys = [k.jwk for k in reversed(self.keys)]
        return json_response(200, {"keys": keys})

    @staticmethod
    def _uri_matches(uri, patterns):
        def match(u):
            for p in patterns:
                if p.endswith("*") and u.startswith(p[:-1]):
                    return True
                if u == p:
                    return True
            return False

        if match(uri):
            return True
        # As Keycloak 26 (RFC 8252 §7.3): an http redirect to a loopback host is matched
        # again with its port removed, so a registered http://127.0.0.1/cb accepts any port.
        parts = urlsplit(uri)
        if parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1") \
                and parts.port is not None:
            host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
            return match(urlunsplit((parts.scheme, host, parts.path, parts.query,
                                     parts.fragment)))
        return False

    def _error_page(self, status, message):
        return html_response(status, page("Error", f"<h1>We are sorry...</h1>"
                                                   f"<p id='kc-error-message' class='err'>"
                                                   f"{esc(message)}</p>"))

    def _redirect_with(self, base, params):
        parts = urlsplit(base)
        q = parts.query + ("&" if parts.query else "") + urlencode(params)
        return urlunsplit((parts.scheme, parts.netloc, parts.path, q, parts.fragment))

    def h_auth(self, req):
        q = dict(req.query_pairs)
        with self.lock:
            client = self.clients.get(q.get("client_id", ""))
            if not q.get("client_id"):
                return self._error_page(400, "Invalid Request")
            if client is None or not client["enabled"]:
                return self._error_page(400, "Client not found.")
            ru = q.get("redirect_uri")
            if not ru or not self._uri_matches(ru, client["redirect_uris"]):
                return self._error_page(400, "Invalid parameter: redirect_uri")
            state = q.get("state")

            def fail(error, desc):
                p = {"error": error, "error_description": desc}
                if state is not None:
                    p["state"] = state
                p["iss"] = self.issuer
                return redirect(self._redirect_with(ru, p))

            rt = q.get("response_type")
            if not rt:
                return fail("invalid_request", "Missing parameter: response_type")
            if rt != "code":
                return fail("unsupported_response_type",
                            "Client is not allowed to initiate browser login with given "
                            "response_type. Standard flow is disabled for the client.")
            scopes = (q.get("scope") or "").split()
            if self.config["require_openid_scope"] and "openid" not in scopes:
                return fail("invalid_scope", "Missing openid scope")
            if self.config["require_state"] and not state:
                return fail("invalid_request", "Missing parameter: state")
            if self.config["require_nonce"] and not q.get("nonce"):
                return fail("invalid_request", "Missing parameter: nonce")
            cc, ccm = q.get("code_challenge"), q.get("code_challenge_method")
            if self.config["require_pkce"] or cc or ccm:
                if not ccm:
                    return fail("invalid_request", "Missing parameter: code_challenge_method")
                if ccm != "S256":
                    return fail("invalid_request", "Invalid parameter: code_challenge_method")
                if not cc:
                    return fail("invalid_request", "Missing parameter: code_challenge")
                if not _PKCE_RE.match(cc):
                    return fail("invalid_request", "Invalid parameter: code_challenge")
            pending = {"client_id": client["client_id"], "redirect_uri": ru, "state": state,
                       "nonce": q.get("nonce"), "code_challenge": cc,
                       "code_challenge_method": ccm,
                       "scope": " ".join(s for s in scopes) or "openid",
                       "created": self.now()}
            prompt = q.get("prompt", "")
            sid = req.cookies().get("KEYCLOAK_IDENTITY")
            sess = self.state.sessions.get(sid) if sid else None
            if sess:
                u = self.state.users.get(sess["user_id"])
                if u is None or not u["enabled"]:
                    sess = None
            if sess and "login" not in prompt.split():
                return self._finish_login(pending, sess["user_id"], sess["id"])
            if "none" in prompt.split():
                return fail("login_required", "Login required")
            tab = b64u(secrets.token_bytes(12))
            self.state.pending[tab] = pending
            return self._login_page(tab, q.get("login_hint", ""))

    def _login_page(self, tab, username="", error=None, status=200):
        err = f"<p class='err' id='input-error'>{esc(error)}</p>" if error else ""
        action = (f"/realms/{esc(self.realm)}/login-actions/authenticate?tab_id={esc(tab)}"
                  f"&client_id={esc(self.state.pending[tab]['client_id'])}")
        return html_response(status, page(f"Sign in to {self.realm}", f"""
<h1 id="kc-page-title">Sign in to your account</h1>
<p class="note">Keycloak double — realm <b>{esc(self.realm)}</b></p>
{err}
<form id="kc-form-login" method="post" action="{action}">
<p><label for="username">Username or email</label><br>
<input id="username" name="username" value="{esc(username)}" autofocus autocomplete="username"></p>
<p><label for="password">Password</label><br>
<input id="password" name="password" type="password" autocomplete="current-password"></p>
<input type="hidden" id="id-hidden-input" name="credentialId" value="">
<p><button id="kc-login" name="login" type="submit">Sign In</button></p>
</form>"""))

    def h_authenticate(self, req):
        tab = req.arg("tab_id", "")
        f = req.form()
        with self.lock:
            pending = self.state.pending.get(tab)
            if pending is None:
                return self._error_page(400, "Your login attempt timed out. Login will start "
                                             "from the beginning.")
            username = (f.get("username") or "").strip()
            u = self.find_user(username) if username else None
            if u is None or not u["password"] or not hmac.compare_digest(
                    str(u["password"]).encode(), f.get("password", "").encode()):
                return self._login_page(tab, username, "Invalid username or password.")
            if not u["enabled"]:
                return self._login_page(tab, username,
                                        "Account is disabled, contact your administrator.")
            if "UPDATE_PASSWORD" in u["requiredActions"]:
                pending["user_id"] = u["id"]
                return self._update_password_page(
                    f"/realms/{self.realm}/login-actions/required-action?tab_id={tab}")
            del self.state.pending[tab]
            return self._finish_login(pending, u["id"], None)

    def _update_password_page(self, action, error=None):
        err = f"<p class='err' id='input-error'>{esc(error)}</p>" if error else ""
        return html_response(200, page("Update password", f"""
<h1 id="kc-page-title">Update password</h1>{err}
<form id="kc-passwd-update-form" method="post" action="{esc(action)}">
<p><label for="password-new">New Password</label><br>
<input id="password-new" name="password-new" type="password" autocomplete="new-password"></p>
<p><label for="password-confirm">Confirm password</label><br>
<input id="password-confirm" name="password-confirm" type="password"></p>
<p><button id="kc-submit" type="submit">Submit</button></p>
</form>"""))

    def _check_new_password(self, f):
        new, confirm = f.get("password-new", ""), f.get("password-confirm", "")
        if not new:
            return "Please specify password."
        if new != confirm:
            return "Passwords don't match."
        return None

    def h_required_action(self, req):
        tab = req.arg("tab_id", "")
        f = req.form()
        with self.lock:
            pending = self.state.pending.get(tab)
            if pending is None or "user_id" not in pending:
                return self._error_page(400, "Your login attempt timed out. Login will start "
                                             "from the beginning.")
            err = self._check_new_password(f)
            if err:
                return self._update_password_page(req.path + "?tab_id=" + tab, err)
            u = self.state.users[pending["user_id"]]
            u["password"] = f["password-new"]
            u["requiredActions"] = [a for a in u["requiredActions"] if a != "UPDATE_PASSWORD"]
            del self.state.pending[tab]
            return self._finish_login(pending, u["id"], None)

    def _finish_login(self, pending, user_id, sid):
        """Creates (or reuses) the SSO session and redirects back with a code."""
        now = self.now()
        if sid is None:
            sid = str(uuid.uuid4())
            self.state.sessions[sid] = {"id": sid, "user_id": user_id, "created": now,
                                        "auth_time": now, "clients": []}
        sess = self.state.sessions[sid]
        if pending["client_id"] not in sess["clients"]:
            sess["clients"].append(pending["client_id"])
        code = f"{uuid.uuid4()}.{sid}.{uuid.uuid4()}"
        self.state.codes[code] = dict(pending, user_id=user_id, sid=sid,
                                      exp=now + int(self.config["code_lifespan"]),
                                      auth_time=sess["auth_time"])
        params = {}
        if pending["state"] is not None:
            params["state"] = pending["state"]
        params.update({"session_state": sid, "iss": self.issuer, "code": code})
        resp = redirect(self._redirect_with(pending["redirect_uri"], params))
        resp.add_header("Set-Cookie", f"KEYCLOAK_IDENTITY={sid}; Path=/realms/{self.realm}/; "
                                      f"HttpOnly; SameSite=Lax")
        return resp

    def _client_auth(self, req, form):
        """(client, error Response). client_secret_basic or client_secret_post."""
        cid = secret = None
        auth = req.header("Authorization") or ""
        if auth.startswith("Basic "):
            try:
                raw = base64.b64decode(auth[6:], validate=True).decode("utf-8")
                cid, secret = raw.split(":", 1)
                cid, secret = unquote_plus(cid), unquote_plus(secret)
            except (ValueError, UnicodeDecodeError):
                return None, self._oauth_error(400, "invalid_request", "Invalid Authorization "
                                                                       "header")
        else:
            cid, secret = form.get("client_id"), form.get("client_secret")
        if not cid:
            return None, self._oauth_error(401, "invalid_client",
                                           "Invalid client or Invalid client credentials")
        client = self.clients.get(cid)
        if client is None or not client["enabled"]:
            return None, self._oauth_error(401, "invalid_client",
                                           "Invalid client or Invalid client credentials")
        # bytes: compare_digest refuses non-ASCII str, and Keycloak takes any secret
        if secret is None or not hmac.compare_digest(str(secret).encode(),
                                                     str(client["secret"]).encode()):
            return None, self._oauth_error(401, "unauthorized_client",
                                           "Invalid client or Invalid client credentials")
        return client, None

    @staticmethod
    def _oauth_error(status, error, desc):
        r = json_response(status, {"error": error, "error_description": desc})
        r.add_header("Cache-Control", "no-store")
        return r

    def h_token(self, req):
        f = req.form()
        with self.lock:
            gt = f.get("grant_type")
            if not gt:
                return self._oauth_error(400, "invalid_request",
                                         "Missing form parameter: grant_type")
            client, err = self._client_auth(req, f)
            if err:
                return err
            if gt == "client_credentials":
                if not client["service_account"]:
                    return self._oauth_error(401, "unauthorized_client",
                                             "Client not enabled to retrieve service account")
                out = self._issue_service_token(client)
            elif gt == "authorization_code":
                out = self._code_grant(client, f)
            elif gt == "refresh_token":
                out = self._refresh_grant(client, f)
            else:
                return self._oauth_error(400, "unsupported_grant_type", "Unsupported grant_type")
            if isinstance(out, Response):
                return out
            r = json_response(200, out)
            r.add_header("Cache-Control", "no-store")
            r.add_header("Pragma", "no-cache")
            return r

    def _code_grant(self, client, f):
        code = f.get("code")
        if not code:
            return self._oauth_error(400, "invalid_request", "Missing parameter: code")
        grant = self.state.codes.pop(code, None)
        if grant is None or grant["exp"] < self.now():
            return self._oauth_error(400, "invalid_grant", "Code not valid")
        if grant["client_id"] != client["client_id"]:
            return self._oauth_error(400, "invalid_grant", "Auth error")
        if f.get("redirect_uri") != grant["redirect_uri"]:
            return self._oauth_error(400, "invalid_grant", "Incorrect redirect_uri")
        if grant["code_challenge"]:
            verifier = f.get("code_verifier")
            if not verifier:
                return self._oauth_error(400, "invalid_grant",
                                         "PKCE code verifier not specified")
            if not _PKCE_RE.match(verifier):
                return self._oauth_error(400, "invalid_grant", "PKCE invalid code verifier")
            computed = b64u(hashlib.sha256(verifier.encode("ascii")).digest())
            if not hmac.compare_digest(computed, grant["code_challenge"]):
                return self._oauth_error(400, "invalid_grant",
                                         "PKCE verification failed: Code mismatch")
        if grant["sid"] not in self.state.sessions:
            return self._oauth_error(400, "invalid_grant", "Session not active")
        u = self.state.users.get(grant["user_id"])
        if u is None or not u["enabled"]:
            return self._oauth_error(400, "invalid_grant", "User disabled")
        return self._issue_user_tokens(client["client_id"], u, grant["sid"], grant["nonce"],
                                       grant["scope"], grant["auth_time"])

    def _refresh_grant(self, client, f):
        rt = self.state.refresh_tokens.get(f.get("refresh_token") or "")
        if rt is None or rt["exp"] < self.now():
            return self._oauth_error(400, "invalid_grant", "Invalid refresh token")
        if rt["client_id"] != client["client_id"]:
            return self._oauth_error(400, "invalid_grant", "Invalid refresh token. Token "
                                                           "client and authorized client "
                                                           "don't match")
        if rt["sid"] not in self.state.sessions:
            return self._oauth_error(400, "invalid_grant", "Session not active")
        u = self.state.users.get(rt["user_id"])
        if u is None or not u["enabled"]:
            return self._oauth_error(400, "invalid_grant", "User disabled")
        del self.state.refresh_tokens[f["refresh_token"]]
        return self._issue_user_tokens(client["client_id"], u, rt["sid"], rt["nonce"],
                                       rt["scope"], rt["auth_time"])

    def _bearer(self, req):
        auth = req.header("Authorization") or ""
        if not auth.startswith("Bearer "):
            return None
        tok = auth[7:].strip()
        meta = self.state.access_tokens.get(tok)
        if meta is None or meta["exp"] < self.now():
            return None
        if self._verify_jwt(tok) is None:  # its key was removed from the realm
            return None
        return meta

    def h_userinfo(self, req):
        with self.lock:
            meta = self._bearer(req)
            if meta is None or meta["kind"] != "user" or meta["sid"] not in self.state.sessions:
                r = json_response(401, {"error": "invalid_token",
                                        "error_description": "Token verification failed"})
                r.add_header("WWW-Authenticate", f'Bearer realm="{self.realm}", '
                                                  'error="invalid_token", '
                                                  'error_description="Token verification '
                                                  'failed"')
                return r
            u = self.state.users[meta["user_id"]]
            return json_response(200, {"sub": u["id"], **self._user_claims(u)})

    def h_logout(self, req):
        q = dict(req.query_pairs)
        if req.method == "POST":
            q.update(req.form())
        with self.lock:
            hint, plru = q.get("id_token_hint"), q.get("post_logout_redirect_uri")
            cid, state = q.get("client_id"), q.get("state")
            claims = None
            if hint:
                claims = self._verify_jwt(hint)
                if claims is None or claims.get("iss") != self.issuer:
                    return self._error_page(400, "Invalid IDToken")
                aud = claims.get("aud")
                if cid and cid != (aud if isinstance(aud, str) else claims.get("azp")):
                    return self._error_page(400, "Parameter client_id different than the "
                                                 "client from the id_token_hint")
                cid = cid or claims.get("azp")
            if plru and not hint and not cid:
                return self._error_page(400, "Missing parameters: id_token_hint")
            target = None
            if plru:
                client = self.clients.get(cid or "")
                if client is None:
                    return self._error_page(400, "Invalid redirect uri")
                allowed = []
                for p in client["post_logout_redirect_uris"]:
                    allowed.extend(client["redirect_uris"] if p == "+" else [p])
                if not self._uri_matches(plru, allowed):
                    return self._error_page(400, "Invalid redirect uri")
                target = self._redirect_with(plru, {"state": state} if state else {})
            cookie_sid = req.cookies().get("KEYCLOAK_IDENTITY")
            if hint:
                for sid in {claims.get("sid"), cookie_sid} - {None}:
                    self._end_session(sid, "logout")
                return self._logged_out(target)
            code = b64u(secrets.token_bytes(16))
            self.state.logout_confirms[code] = {"sid": cookie_sid, "target": target}
            return html_response(200, page("Logging out", f"""
<h1 id="kc-page-title">Logging out</h1><p>Do you want to log out?</p>
<form method="post" action="/realms/{esc(self.realm)}/protocol/openid-connect/logout/logout-confirm">
<input type="hidden" name="session_code" value="{esc(code)}">
<button id="kc-logout" name="confirmLogout" type="submit">Logout</button></form>"""))

    def h_logout_confirm(self, req):
        f = req.form()
        with self.lock:
            c = self.state.logout_confirms.pop(f.get("session_code", ""), None)
            if c is None:
                return self._error_page(400, "Logout failed")
            if c["sid"]:
                self._end_session(c["sid"], "logout")
            return self._logged_out(c["target"])

    def _logged_out(self, target):
        clear = (f"KEYCLOAK_IDENTITY=; Path=/realms/{self.realm}/; Max-Age=0; HttpOnly; "
                 f"SameSite=Lax")
        if target:
            r = redirect(target)
        else:
            r = html_response(200, page("Logged out", "<h1 id='kc-page-title'>You are logged "
                                                      "out</h1>"))
        r.add_header("Set-Cookie", clear)
        return r

    # --- action tokens (the link in the execute-actions email) ---------------------------

    def h_action_token(self, req, error=None):
        key = req.arg("key", "")
        with self.lock:
            t = self.state.action_tokens.get(key)
            if t is None or t["exp"] < self.now():
                return self._error_page(400, "Action expired. Please continue with login now.")
            return self._update_password_page(req.path + "?" + req.query_string, error)

    def h_action_token_post(self, req):
        key = req.arg("key", "")
        f = req.form()
        with self.lock:
            t = self.state.action_tokens.get(key)
            if t is None or t["exp"] < self.now():
                return self._error_page(400, "Action expired. Please continue with login now.")
            u = self.state.users.get(t["user_id"])
            if u is None or not u["enabled"]:
                return self._error_page(400, "Account is disabled, contact your "
                                             "administrator.")
            if "UPDATE_PASSWORD" in t["actions"]:
                err = self._check_new_password(f)
                if err:
                    return self.h_action_token(req, err)
                u["password"] = f["password-new"]
            u["requiredActions"] = [a for a in u["requiredActions"] if a not in t["actions"]]
            u["emailVerified"] = True
            del self.state.action_tokens[key]
            back = (f"<p><a id='back' href='{esc(t['redirect_uri'])}'>« Back to Application"
                    f"</a></p>" if t["redirect_uri"] else "")
            return html_response(200, page("Account updated", f"<h1 id='kc-page-title'>Your "
                                                              f"account has been updated."
                                                              f"</h1>{back}"))

    # --- forgot password (the login page's "Forgot Password?") --------------------------

    RESET_LIFESPAN = 300  # Keycloak's default for user-generated action tokens

    def _reset_client(self, req):
        client = self.clients.get(req.arg("client_id", ""))
        if client is None or not client["enabled"]:
            return None, self._error_page(400, "Client not found.")
        return client, None

    def _reset_page(self, client_id, username="", error=None):
        err = f"<p class='err' id='input-error-username'>{esc(error)}</p>" if error else ""
        action = (f"/realms/{esc(self.realm)}/login-actions/reset-credentials"
                  f"?client_id={esc(client_id)}")
        return html_response(200, page("Forgot Your Password?", f"""
<h1 id="kc-page-title">Forgot Your Password?</h1>{err}
<form id="kc-reset-password-form" method="post" action="{action}">
<p><label for="username">Username or email</label><br>
<input id="username" name="username" value="{esc(username)}" autofocus></p>
<p><input id="kc-submit" type="submit" value="Submit"></p>
</form>
<p>Enter your username or email address and we will send you instructions on how to create a
new password.</p>"""))

    def h_reset_credentials(self, req):
        with self.lock:
            client, refusal = self._reset_client(req)
            return refusal or self._reset_page(client["client_id"])

    def h_reset_credentials_post(self, req):
        f = req.form()
        with self.lock:
            client, refusal = self._reset_client(req)
            if refusal:
                return refusal
            username = (f.get("username") or "").strip()
            if not username:
                return self._reset_page(client["client_id"], error="Please specify username.")
            u = self.find_user(username)
            # Like Keycloak: the same answer whether or not the account exists.
            if u is not None and u["enabled"] and u["email"]:
                self._send_reset_email(u, client["client_id"])
            return html_response(200, page("Sign in to your account", """
<h1 id="kc-page-title">Sign in to your account</h1>
<div class="alert-info" id="kc-info-message">You should receive an email shortly with further
instructions.</div>"""))

    def realm_name(self):
        """What Keycloak's mails call the realm: its display name, else its capitalised name."""
        return self.realm_display_name or self.realm[:1].upper() + self.realm[1:]

    def _send_reset_email(self, u, client_id):
        def text(link):
            return (f"Someone just requested to change your {self.realm} account's "
                    f"credentials. If this was you, click on the link below to reset "
                    f"them.\n\n{link}\n\nThis link and code will expire within "
                    f"{_expiry_text(self.RESET_LIFESPAN)}.\n\nIf you don't want to reset "
                    f"your credentials, just ignore this message and nothing will be "
                    f"changed.\n")
        self._action_email(u, ["UPDATE_PASSWORD"], client_id, None, self.RESET_LIFESPAN,
                           "Reset password", text)

    def _action_email(self, u, actions, client_id, redirect_uri, lifespan, subject, text):
        """An action token for u and the email carrying its link (text(link) is the body)."""
        key = b64u(secrets.token_bytes(24))
        self.state.action_tokens[key] = {"user_id": u["id"], "actions": list(actions),
                                         "exp": self.now() + lifespan,
                                         "client_id": client_id, "redirect_uri": redirect_uri}
        link = (f"{self.issuer}/login-actions/action-token?key={key}"
                + (f"&client_id={client_id}" if client_id else ""))
        rec = {"id": len(self.state.emails) + 1, "to": u["email"], "user_id": u["id"],
               "username": u["username"], "actions": list(actions), "client_id": client_id,
               "redirect_uri": redirect_uri, "lifespan": lifespan, "link": link,
               "subject": subject, "text": text(link), "sent_at": time.time()}
        self.state.emails.append(rec)
        if self.on_email:
            try:
                self.on_email(rec)
            except Exception:  # noqa: BLE001 - the outbox hook must not break the API
                pass

    # --- Admin API -----------------------------------------------------------------------

    def _admin(self, fn, need):
        def wrapper(req):
            with self.lock:
                entry = {"method": req.method, "path": req.path, "query": req.query_string,
                         "body": None, "status": None, "at": time.time()}
                if req.body:
                    try:
                        entry["body"] = req.json()
                    except ValueError:
                        entry["body"] = req.body.decode("utf-8", "replace")
                self.state.admin_requests.append(entry)
                resp = self._admin_inner(fn, need, req)
                entry["status"] = resp.status
                return resp
        return wrapper

    def _admin_inner(self, fn, need, req):
        meta = self._bearer(req)
        if meta is None:
            return json_response(401, {"error": "HTTP 401 Unauthorized"})
        roles = set(meta["roles"])
        ok = {
            "query": bool(roles & {"query-users", "view-users", "manage-users"}),
            "view": bool(roles & {"view-users", "manage-users"}),
            "manage": "manage-users" in roles,
            "groups": bool(roles & {"query-groups", "view-users", "manage-users"}),
            "any": bool(roles),
            "manage-realm": "manage-realm" in roles,
        }[need]
        if not ok:
            return json_response(403, {"error": "HTTP 403 Forbidden"})
        try:
            return fn(req)
        except KcError as e:
            return json_response(e.status, e.body)

    def _body_json(self, req, kind=dict):
        # Keycloak 26.7.3's answer to a body it cannot read as the expected JSON
        bad = KcError(400, {"error": "invalid_request",
                            "error_description": "Cannot parse the JSON"})
        try:
            body = req.json()
        except ValueError:
            raise bad
        if not isinstance(body, kind):
            raise bad
        return body

    def _user_or_404(self, uid):
        u = self.state.users.get(uid)
        if u is None:
            raise KcError(404, {"error": "User not found"})
        return u

    @staticmethod
    def _truthy(v):
        return str(v).lower() == "true"

    def _search(self, req):
        q = dict(req.query_pairs)
        exact = self._truthy(q.get("exact", "false"))

        def match(value, wanted):
            if wanted is None:
                return True
            if value is None:
                return False
            v, w = value.lower(), wanted.lower()
            return v == w if exact else w in v

        out = []
        search = q.get("search")
        attr_q = {}
        for part in (q.get("q") or "").split():
            if ":" in part:
                k, v = part.split(":", 1)
                attr_q[k] = v
        for u in self.state.users.values():
            if not (match(u["username"], q.get("username")) and
                    match(u["email"], q.get("email")) and
                    match(u["firstName"], q.get("firstName")) and
                    match(u["lastName"], q.get("lastName"))):
                continue
            if search not in (None, "", "*"):
                s = search.strip("*")
                if not any(match(u[k], s) for k in BUILTIN_ATTRS):
                    continue
            if "enabled" in q and u["enabled"] != self._truthy(q["enabled"]):
                continue
            if "emailVerified" in q and u["emailVerified"] != self._truthy(q["emailVerified"]):
                continue
            if any(v not in self._visible_attributes(u).get(k, []) for k, v in attr_q.items()):
                continue
            out.append(u)
        out.sort(key=lambda u: u["username"])
        return out

    def a_users_search(self, req):
        users = self._search(req)
        first = int(req.arg("first", "0") or 0)
        mx = int(req.arg("max", "100") or 100)
        brief = self._truthy(req.arg("briefRepresentation", "false"))
        sl = users[first:first + mx] if mx >= 0 else users[first:]
        return json_response(200, [self.user_rep(u, brief) for u in sl])

    def a_users_count(self, req):
        return json_response(200, len(self._search(req)))

    def _validate_profile_fields(self, rep, errors):
        if rep.get("email"):
            e = rep["email"]
            if not _EMAIL_RE.match(e) or len(e) > 255:
                errors.append(_field_error("email", "error-invalid-email", e))
        for f in ("firstName", "lastName"):
            v = rep.get(f)
            if v:
                if len(v) > 255:
                    errors.append(_field_error(f, "error-invalid-length", 0, 255))
                elif any(ch in _NAME_BAD for ch in v):
                    errors.append(_field_error(f, "error-person-name-invalid-character", v))

    def _errors_response(self, errors):
        if len(errors) == 1:
            raise KcError(400, errors[0])
        raise KcError(400, {"errors": errors})

    def _apply_attributes(self, u, sent):
        """Keycloak 24+ semantics: the sent map replaces the attributes; unmanaged
        attributes are kept only as the policy allows (silently dropped otherwise)."""
        if not isinstance(sent, dict):
            raise KcError(400, {"error": "unknown_error"})
        norm = {}
        for k, v in sent.items():
            if k in BUILTIN_ATTRS:
                continue
            if v is None:
                continue
            norm[k] = [str(x) for x in v] if isinstance(v, list) else [str(v)]
        declared = self._declared()
        pol = self._policy()
        new = {k: v for k, v in norm.items() if k in declared}
        old_unmanaged = {k: v for k, v in u["attributes"].items() if k not in declared}
        if pol in ("ENABLED", "ADMIN_EDIT"):
            new.update({k: v for k, v in norm.items() if k not in declared})
        else:  # DISABLED, ADMIN_VIEW: the admin cannot change unmanaged attributes
            new.update(old_unmanaged)
        u["attributes"] = new

    def a_user_create(self, req):
        rep = self._body_json(req)
        username = rep.get("username")
        if not username or not str(username).strip():
            raise _err(400, "User name is missing")
        username = str(username).strip().lower()
        email = (rep.get("email") or "").strip().lower() or None
        if self.find_user_by("username", username):
            raise _err(409, "User exists with same username")
        if email and self.find_user_by("email", email):
            raise _err(409, "User exists with same email")
        errors = []
        if not 3 <= len(username) <= 255:
            errors.append(_field_error("username", "error-invalid-length", 3, 255))
        elif not _USERNAME_RE.match(username):
            errors.append(_field_error("username", "error-username-invalid-character",
                                       username))
        self._validate_profile_fields(rep, errors)
        if errors:
            self._errors_response(errors)
        group_ids = []
        for path in rep.get("groups") or []:
            g = self._find_group(path)
            if g is None:
                raise _err(400, f"Group {path} not found")
            group_ids.append(g["id"])
        actions = rep.get("requiredActions") or []
        pw = None
        for cred in rep.get("credentials") or []:
            if cred.get("type", "password") == "password":
                pw = cred.get("value")
                if cred.get("temporary"):
                    actions = list(actions) + ["UPDATE_PASSWORD"]
        u = self.add_user(username, password=pw, email=email,
                          firstName=rep.get("firstName") or None,
                          lastName=rep.get("lastName") or None,
                          enabled=rep.get("enabled") is True,      # Keycloak: absent = false
                          emailVerified=rep.get("emailVerified") is True,
                          requiredActions=actions)
        u["groups"].update(group_ids)
        self._apply_attributes(u, rep.get("attributes") or {})
        loc = f"{self.base}/admin/realms/{self.realm}/users/{u['id']}"
        return empty(201, {"Location": loc})

    def find_user_by(self, field, value):
        for u in self.state.users.values():
            if u[field] is not None and u[field] == value.lower():
                return u
        return None

    def a_user_get(self, req):
        u = self._user_or_404(req.params["id"])
        return json_response(200, self.user_rep(u))

    def a_user_put(self, req):
        u = self._user_or_404(req.params["id"])
        rep = self._body_json(req)
        errors = []
        if rep.get("username") and str(rep["username"]).lower() != u["username"]:
            errors.append(_field_error("username", "error-user-attribute-read-only"))
        self._validate_profile_fields(rep, errors)
        if errors:
            self._errors_response(errors)
        # Keycloak 26.7.3 (checked against the real server): a representation that carries
        # an `attributes` map replaces the whole profile, so firstName, lastName AND email
        # left out (or null) are cleared; without `attributes`, only the fields sent change
        # (null = unchanged, "" = cleared).
        full = rep.get("attributes") is not None
        if full or rep.get("email") is not None:
            email = (rep.get("email") or "").strip().lower() or None
            if email and email != u["email"]:
                other = self.find_user_by("email", email)
                if other and other["id"] != u["id"]:
                    raise _err(409, "User exists with same email")
            u["email"] = email
        for f in ("firstName", "lastName"):
            if full or rep.get(f) is not None:
                u[f] = rep.get(f) or None
        if full:
            self._apply_attributes(u, rep["attributes"])
        if rep.get("requiredActions") is not None:
            u["requiredActions"] = list(rep["requiredActions"])
        if rep.get("enabled") is not None:
            u["enabled"] = bool(rep["enabled"])
        if rep.get("emailVerified") is not None:
            u["emailVerified"] = bool(rep["emailVerified"])
        for cred in rep.get("credentials") or []:
            if cred.get("type", "password") == "password" and cred.get("value"):
                u["password"] = cred["value"]
        return empty(204)

    def a_user_delete(self, req):
        u = self._user_or_404(req.params["id"])
        self.end_sessions(u["id"], "user-deleted")
        del self.state.users[u["id"]]
        return empty(204)

    def a_user_logout(self, req):
        u = self._user_or_404(req.params["id"])
        n = self.end_sessions(u["id"], "admin-logout")
        self.state.admin_logouts.append({"user_id": u["id"], "username": u["username"],
                                         "sessions_ended": n, "at": time.time()})
        return empty(204)

    def a_execute_actions(self, req):
        u = self._user_or_404(req.params["id"])
        actions = self._body_json(req, list)
        client_id, redirect_uri = req.arg("client_id"), req.arg("redirect_uri")
        lifespan = req.arg("lifespan")
        if not u["email"]:
            raise _err(400, "User email missing")
        if not u["enabled"]:
            raise _err(400, "User is disabled")
        if redirect_uri and not client_id:
            raise _err(400, "Client id missing")
        if client_id:
            client = self.clients.get(client_id)
            if client is None:
                raise _err(400, "Client doesn't exist")
            if not client["enabled"]:
                raise _err(400, "Client is not enabled")
            if redirect_uri and not self._uri_matches(redirect_uri, client["redirect_uris"]):
                raise _err(400, "Invalid redirect uri.")
        if any(a not in KNOWN_ACTIONS for a in actions):
            raise _err(400, "Provided invalid required actions")
        try:
            lifespan = int(lifespan) if lifespan not in (None, "") else 43200
        except ValueError:
            raise KcError(404, {"error": "HTTP 404 Not Found"})
        if self.config["smtp_broken"]:
            raise _err(500, "Failed to send execute actions email: Error when attempting to "
                            "send the email to the server. More information is available in "
                            "the server log.")
        def text(link):
            return execute_actions_text(self.realm_name(), u["username"], link, lifespan)
        self._action_email(u, actions, client_id, redirect_uri, lifespan,
                           EXECUTE_ACTIONS_SUBJECT, text)
        return empty(204)

    def a_user_groups(self, req):
        # As Keycloak 26 (UserModel.getGroupsStream(search, first, max)): `search` keeps the
        # groups whose name contains it, case-insensitively; `first` skips when > 0, `max`
        # cuts when >= 0; without them every membership comes (no default page).
        u = self._user_or_404(req.params["id"])
        gs = [self.state.groups[g] for g in u["groups"] if g in self.state.groups]
        search = req.arg("search")
        if search:
            gs = [g for g in gs if search.lower() in g["name"].lower()]
        gs.sort(key=lambda g: self._group_path(g))
        first = int(req.arg("first", "") or 0)
        if first > 0:
            gs = gs[first:]
        mx = int(req.arg("max", "") or -1)
        if mx >= 0:
            gs = gs[:mx]
        return json_response(200, [self.group_rep(g) for g in gs])

    def _group_or_404(self, gid):
        g = self.state.groups.get(gid)
        if g is None:
            raise KcError(404, {"error": "Group not found"})
        return g

    def a_user_group_add(self, req):
        u = self._user_or_404(req.params["id"])
        g = self._group_or_404(req.params["gid"])
        u["groups"].add(g["id"])
        return empty(204)

    def a_user_group_del(self, req):
        u = self._user_or_404(req.params["id"])
        g = self._group_or_404(req.params["gid"])
        u["groups"].discard(g["id"])
        return empty(204)

    def _pruned(self, g, pred):
        """g's representation with only the branches that contain a match (None: no match)."""
        children = [c for c in self.state.groups.values() if c["parent"] == g["id"]]
        subs = [s for s in (self._pruned(c, pred) for c in sorted(children,
                                                                  key=lambda c: c["name"]))
                if s is not None]
        if pred(g) or subs:
            return self.group_rep(g, subs)
        return None

    def a_groups_search(self, req):
        search = req.arg("search")
        exact = self._truthy(req.arg("exact", "false"))
        tops = sorted((g for g in self.state.groups.values() if g["parent"] is None),
                      key=lambda g: g["name"])
        if search is None:
            out = [self.group_rep(g) for g in tops]
        else:
            pred = ((lambda g: g["name"] == search) if exact
                    else (lambda g: search.lower() in g["name"].lower()))
            out = [r for r in (self._pruned(g, pred) for g in tops) if r is not None]
        first = int(req.arg("first", "0") or 0)
        mx = int(req.arg("max", "100") or 100)
        return json_response(200, out[first:first + mx])

    def a_groups_count(self, req):
        return json_response(200, {"count": sum(1 for g in self.state.groups.values()
                                                if g["parent"] is None)})

    def a_group_create(self, req):
        rep = self._body_json(req)
        parent = req.params.get("gid")
        if parent:
            self._group_or_404(parent)
        name = rep.get("name")
        if not name:
            raise _err(400, "Group name is missing")
        for g in self.state.groups.values():
            if g["name"] == name and g["parent"] == parent:
                raise _err(409, (f"Sibling group named '{name}' already exists." if parent
                                 else f"Top level group named '{name}' already exists."))
        g = self.add_group(name, parent=parent, attributes=rep.get("attributes"))
        return empty(201, {"Location": f"{self.base}/admin/realms/{self.realm}/groups/"
                                       f"{g['id']}"})

    def a_group_get(self, req):
        g = self._group_or_404(req.params["gid"])
        rep = self.group_rep(g)
        rep["attributes"] = g["attributes"]
        rep["realmRoles"], rep["clientRoles"] = [], {}
        return json_response(200, rep)

    def a_group_delete(self, req):
        g = self._group_or_404(req.params["gid"])
        doomed = {g["id"]}
        changed = True
        while changed:
            more = {c["id"] for c in self.state.groups.values() if c["parent"] in doomed}
            changed = not more <= doomed
            doomed |= more
        for gid in doomed:
            del self.state.groups[gid]
        for u in self.state.users.values():
            u["groups"] -= doomed
        return empty(204)

    def a_group_children(self, req):
        g = self._group_or_404(req.params["gid"])
        return json_response(200, [self.group_rep(c) for c in self.state.groups.values()
                                   if c["parent"] == g["id"]])

    def a_group_members(self, req):
        g = self._group_or_404(req.params["gid"])
        return json_response(200, [self.user_rep(u, True) for u in self.state.users.values()
                                   if g["id"] in u["groups"]])

    def a_profile_get(self, req):
        return json_response(200, self.state.profile)

    def a_profile_put(self, req):
        rep = self._body_json(req)
        if not isinstance(rep.get("attributes"), list):
            raise _err(400, "Invalid user profile configuration")
        names = {a.get("name") for a in rep["attributes"] if isinstance(a, dict)}
        if not {"username", "email"} <= names:
            raise _err(400, "Invalid user profile configuration: username and email "
                            "attributes are required")
        pol = rep.get("unmanagedAttributePolicy")
        if pol is not None and pol not in POLICIES:
            raise KcError(400, {"error": "unknown_error"})
        if pol == "DISABLED":
            rep.pop("unmanagedAttributePolicy")
        self.state.profile = rep
        return json_response(200, rep)

    def set_unmanaged_policy(self, policy):
        """ENABLED | ADMIN_EDIT | ADMIN_VIEW | DISABLED (Keycloak's default)."""
        if policy not in POLICIES:
            raise ValueError(f"unmanaged attribute policy must be one of {POLICIES}")
        with self.lock:
            if policy == "DISABLED":
                self.state.profile.pop("unmanagedAttributePolicy", None)
            else:
                self.state.profile["unmanagedAttributePolicy"] = policy

    def declare_attribute(self, name):
        """Declares an attribute in the user profile (kept whatever the policy)."""
        with self.lock:
            if name not in self._declared():
                self.state.profile["attributes"].append({
                    "name": name, "displayName": name, "validations": {},
                    "permissions": {"view": ["admin"], "edit": ["admin"]},
                    "multivalued": True})

    # --- pages ---------------------------------------------------------------------------

    def p_inbox(self, req):
        with self.lock:
            rows = "".join(
                f"<tr><td>{time.strftime('%H:%M:%S', time.localtime(e['sent_at']))}</td>"
                f"<td>{esc(e['to'])}</td><td>{esc(e['subject'])}</td>"
                f"<td>{esc(', '.join(e['actions']))}</td>"
                f"<td><a href='{esc(e['link'])}'>open link</a></td></tr>"
                for e in reversed(self.state.emails))
        return html_response(200, page("Keycloak outbox", f"""
<h1>Keycloak double — emails sent</h1>
<table><tr><th>Time</th><th>To</th><th>Subject</th><th>Actions</th><th></th></tr>{rows}</table>"""))

    # --- control API ---------------------------------------------------------------------

    def _control(self, fn):
        def wrapper(req):
            body = {}
            if req.method == "POST" and req.body:
                try:
                    body = req.json()
                except ValueError:
                    return json_response(400, {"error": "body must be JSON"})
            try:
                with self.lock:
                    out = fn(req, body)
                    return json_response(200, copy.deepcopy(out))
            except ControlNotFound as e:
                return json_response(404, {"error": f"not found: {e}"})
            except (KeyError, TypeError, ValueError) as e:
                return json_response(400, {"error": f"bad control request: {e!r}"})
        return wrapper

    def full_user(self, u):
        """The internal view of a user: every attribute (hidden ones too), group names,
        whether a password is set, sessions."""
        rep = self.user_rep(u)
        rep["attributes"] = copy.deepcopy(u["attributes"])
        rep["visibleAttributes"] = self._visible_attributes(u)
        rep["groups"] = sorted(self._group_path(self.state.groups[g])
                               for g in u["groups"] if g in self.state.groups)
        rep["hasPassword"] = bool(u["password"])
        rep["sessions"] = [s["id"] for s in self.state.sessions.values()
                           if s["user_id"] == u["id"]]
        return rep

    def c_state(self, req, body):
        return {
            "realm": self.realm, "issuer": self.issuer, "config": self.config,
            "users": [self.full_user(u) for u in self.state.users.values()],
            "groups": [dict(self.group_rep(g), attributes=g["attributes"])
                       for g in self.state.groups.values()],
            "clients": [{k: v for k, v in c.items()} for c in self.clients.values()],
            "profile": self.state.profile, "keys": [k.kid for k in self.keys],
            "emails": self.state.emails, "sessions": list(self.state.sessions.values()),
            "sessions_ended": self.state.sessions_ended,
            "admin_logouts": self.state.admin_logouts,
        }

    def c_config(self, req, body):
        body = dict(body)
        if "unmanaged_attribute_policy" in body:
            self.set_unmanaged_policy(body.pop("unmanaged_attribute_policy"))
        unknown = set(body) - set(self.config)
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}")
        self.config.update(body)
        return dict(self.config, unmanaged_attribute_policy=self._policy())

    def c_user_create(self, req, body):
        body = dict(body)
        u = self.add_user(body.pop("username"), **body)
        return self.full_user(u)

    def c_user_get(self, req, body):
        u = self.find_user(req.params["id"])
        if u is None:
            raise ControlNotFound(req.params["id"])
        return self.full_user(u)

    def c_group_create(self, req, body):
        g = self.add_group(body["name"], parent=body.get("parent"), gid=body.get("id"),
                           attributes=body.get("attributes"))
        return self.group_rep(g)

    def c_client_create(self, req, body):
        return self.add_client(body["client_id"], body.get("secret", ""),
                               redirect_uris=body.get("redirect_uris", []),
                               post_logout_redirect_uris=body.get("post_logout_redirect_uris",
                                                                  ["+"]),
                               service_account=body.get("service_account", False),
                               roles=body.get("roles", []), enabled=body.get("enabled", True))

    def c_rotate(self, req, body):
        kid = self.rotate_keys(keep_old=body.get("keep_old", True))
        return {"kid": kid, "keys": [k.kid for k in self.keys]}

    def c_remove_key(self, req, body):
        return {"keys": self.remove_key(body.get("kid"))}

    def c_down(self, req, body):
        mode = body.get("mode", "503")
        if mode == "503":
            self.config["down"] = "503"
            return {"down": "503"}
        if mode != "refuse":
            raise ValueError("mode must be 503 or refuse")
        seconds = float(body.get("seconds", 5))
        # the response must leave before the port closes: stop from another thread
        threading.Thread(target=self._down_for, args=(seconds,), daemon=True).start()
        return {"down": "refuse", "seconds": seconds}

    def _down_for(self, seconds):
        time.sleep(0.1)
        self.server.down()
        self._down_timer = threading.Timer(seconds, self.up)
        self._down_timer.daemon = True
        self._down_timer.start()

    # --- Python helpers for tests --------------------------------------------------------

    def user(self, ref):
        with self.lock:
            u = self.find_user(ref)
            return self.full_user(u) if u else None

    def admin_token(self, client_id=None):
        with self.lock:
            cid = client_id or next(c for c, v in self.clients.items() if v["service_account"])
            return self._issue_service_token(self.clients[cid])["access_token"]

    @property
    def emails(self):
        with self.lock:
            return list(self.state.emails)

    @property
    def sessions_ended(self):
        with self.lock:
            return list(self.state.sessions_ended)

    @property
    def admin_requests(self):
        with self.lock:
            return list(self.state.admin_requests)


def submit_login(http, login_page, username, password, allow_redirects=False):
    """Fills the double's login form. http: a requests.Session; login_page: the Response
    that shows the form. Returns the Response to the POST (a 302 to the client's
    redirect_uri on success)."""
    m = re.search(r'<form id="kc-form-login" method="post" action="([^"]+)"', login_page.text)
    if not m:
        raise AssertionError("no Keycloak login form in the page")
    action = html.unescape(m.group(1))
    parts = urlsplit(login_page.url)
    url = f"{parts.scheme}://{parts.netloc}{action}"
    return http.post(url, data={"username": username, "password": password,
                                "credentialId": ""}, allow_redirects=allow_redirects)


def start_keycloak(port=0, **kw):
    """Starts a Keycloak double on 127.0.0.1:port (0 = a free port) in a background thread."""
    return KeycloakDouble(port=port, **kw).start()


def _parse_user(spec):
    """username:password[:email[:group,group]]"""
    parts = spec.split(":")
    if len(parts) < 2:
        raise argparse.ArgumentTypeError("user must be username:password[:email[:groups]]")
    u = {"username": parts[0], "password": parts[1]}
    if len(parts) > 2 and parts[2]:
        u["email"] = parts[2]
    if len(parts) > 3 and parts[3]:
        u["groups"] = parts[3].split(",")
    return u


def add_arguments(ap, prefix=""):
    ap.add_argument(f"--{prefix}realm", default="usher")
    ap.add_argument(f"--{prefix}client-id", default="usher", help="OIDC login client")
    ap.add_argument(f"--{prefix}client-secret", default="usher-secret")
    ap.add_argument(f"--{prefix}redirect-uri", action="append", default=None,
                    help="registered redirect URI of the login client (repeatable; a "
                         "trailing * is a wildcard). Default http://127.0.0.1:8000/* and "
                         "http://localhost:8000/*")
    ap.add_argument(f"--{prefix}admin-client-id", default="usher-admin",
                    help="service-account client for the Admin API")
    ap.add_argument(f"--{prefix}admin-client-secret", default="usher-admin-secret")
    ap.add_argument(f"--{prefix}group", action="append", default=[],
                    help="a group to create (repeatable)")
    ap.add_argument(f"--{prefix}user", action="append", default=[], type=_parse_user,
                    help="username:password[:email[:group,group]] (repeatable)")
    ap.add_argument(f"--{prefix}unmanaged-attribute-policy", default="DISABLED",
                    choices=POLICIES)
    ap.add_argument(f"--{prefix}public-url", default=None)


def from_args(args, port, prefix="", verbose=False):
    g = lambda name: getattr(args, prefix.replace("-", "_") + name)  # noqa: E731
    d = KeycloakDouble(port=port, realm=g("realm"), public_url=g("public_url"),
                       client_id=g("client_id"), client_secret=g("client_secret"),
                       redirect_uris=g("redirect_uri"), admin_client_id=g("admin_client_id"),
                       admin_client_secret=g("admin_client_secret"), groups=g("group"),
                       users=g("user"),
                       unmanaged_attribute_policy=g("unmanaged_attribute_policy"),
                       verbose=verbose)
    return d


def main(argv=None):
    run_standalone("Keycloak", 8180, add_arguments, from_args,
                   lambda d: f"keycloak double on {d.url} (issuer {d.issuer})", argv)


if __name__ == "__main__":
    main()
