"""Every Keycloak Admin call of the C client (src/integrations/keycloak_*.c) against a real
Keycloak 26 with the test realm (conftest.py): service-account token and its refresh after a
401, exact searches, create (Location, 409 per field, 400), GET-modify-PUT updates, enable /
disable, logout, the password-setup email through the SMTP catcher, delete, groups with
subgroups, and Usher-owned attributes under each unmanaged-attribute policy. The same calls
against the double: tests/integration/test_clients_keycloak.py."""

import copy
import html
import importlib.util
import json
import re
import time
import uuid
from pathlib import Path

import pytest
import requests

from conftest import HTTP_TIMEOUT, jwt_claims

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "usher_clients_support", REPO / "tests" / "integration" / "test_clients_support.py")
support = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(support)
OK, EINVAL, ENOTFOUND, ECONFLICT = support.OK, support.EINVAL, support.ENOTFOUND, support.ECONFLICT
EUPSTREAM, ECONFIG, DROPPED = support.EUPSTREAM, support.ECONFIG, support.KC_ATTRS_DROPPED


@pytest.fixture(scope="module")
def master(keycloak):
    """requests.Session as the master realm's admin (admin/admin): realm set-up the service
    account may not do (groups, the user profile, token revocation)."""
    r = requests.post(f"{keycloak.url}/realms/master/protocol/openid-connect/token",
                      timeout=HTTP_TIMEOUT, data={"grant_type": "password",
                                                  "client_id": "admin-cli",
                                                  "username": "admin", "password": "admin"})
    r.raise_for_status()
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
    return s


def driver(keycloak, **more):
    settings = {"KEYCLOAK_SERVER_URL": keycloak.url, "KEYCLOAK_REALM": keycloak.realm,
                "KEYCLOAK_ADMIN_CLIENT_ID": keycloak.admin_client_id,
                "KEYCLOAK_ADMIN_CLIENT_SECRET": keycloak.admin_client_secret}
    return support.Driver(**{**settings, **more})


def unique(prefix="c"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def user(keycloak):
    """A fresh user created through the client; deleted afterwards."""
    name = unique("cl")
    d = driver(keycloak)
    out = d.call("kc.create", username=name, email=f"{name}@usher.test", first_name="Zoë",
                 last_name="Zed", email_verified=True, attributes={"has_old": "true"})
    assert out["rc"] == OK, out
    yield {"id": out["result"], "username": name, "email": f"{name}@usher.test"}
    d.call("kc.delete", id=out["result"])


def test_token_cache_and_refresh_after_revocation(keycloak, master, user):
    """One token serves many calls; after the realm revokes it (notBefore) the next call
    gets 401, and the client fetches a new token and retries once."""
    admin_realm = f"{keycloak.url}/admin/realms/{keycloak.realm}"
    not_before = int(time.time()) + 2
    revoke = ("http", {"method": "PUT", "url": admin_realm, "upstream": "test",
                       "bearer": master.headers["Authorization"][7:],
                       "content_type": "application/json",
                       "body": json.dumps({"notBefore": not_before})})
    try:
        out = driver(keycloak).run(
            ("kc.find_username", {"username": user["username"]}),
            ("kc.get", {"id": user["id"]}),
            revoke,
            ("sleep", {"ms": 2600}),
            ("kc.find_username", {"username": user["username"]}),
            ("kc.get", {"id": user["id"]}))
        assert out[2]["rc"] == OK and out[2]["result"]["status"] == 204, out[2]
        assert [o["rc"] for o in out] == [OK] * 6
        assert out[1]["token_fetches"] == 1
        assert out[4]["token_fetches"] == 2
        assert out[5]["token_fetches"] == 2
    finally:
        r = master.put(admin_realm, json={"notBefore": 0}, timeout=HTTP_TIMEOUT)
        assert r.status_code == 204, r.text


def test_wrong_client_secret_is_a_configuration_error(keycloak):
    out = driver(keycloak, KEYCLOAK_ADMIN_CLIENT_SECRET="wrong").call("kc.token")
    assert out["rc"] == ECONFIG
    assert out["error"]["status"] == 401
    assert out["error"]["message"] == "Invalid client or Invalid client credentials"


def test_find_by_username_and_email_is_exact(keycloak, user):
    d = driver(keycloak)
    out = d.run(("kc.find_username", {"username": user["username"].upper()}),
                ("kc.find_email", {"email": user["email"].upper()}),
                ("kc.find_username", {"username": user["username"][:-1]}),
                ("kc.find_email", {"email": "nobody-" + user["email"]}),
                ("kc.find_username", {"username": "alice"}))
    assert out[0]["result"]["id"] == user["id"]
    assert out[1]["result"]["id"] == user["id"]
    assert [o["rc"] for o in out[2:4]] == [ENOTFOUND, ENOTFOUND]
    assert out[4]["result"]["email"] == "alice@usher.test"


def test_create_location_conflicts_and_validation(keycloak, user):
    d = driver(keycloak)
    out = d.run(("kc.get", {"id": user["id"]}),
                ("kc.create", {"username": user["username"], "email": "x-" + user["email"],
                               "first_name": "A", "last_name": "B"}),
                ("kc.create", {"username": unique(), "email": user["email"],
                               "first_name": "A", "last_name": "B"}),
                ("kc.create", {"username": "bad name!", "email": "not-an-email",
                               "first_name": "A", "last_name": "B"}))
    got = out[0]["result"]
    assert (got["username"], got["email"], got["firstName"], got["lastName"]) == (
        user["username"], user["email"], "Zoë", "Zed")
    assert got["enabled"] is True and got["emailVerified"] is True
    assert got["attributes"] == {"has_old": ["true"]}  # the realm is ADMIN_EDIT
    assert (out[1]["rc"], out[1]["error"]["field"]) == (ECONFLICT, "username")
    assert (out[2]["rc"], out[2]["error"]["field"]) == (ECONFLICT, "email")
    assert out[3]["rc"] == EINVAL
    assert out[3]["error"]["status"] == 400
    assert out[3]["error"]["field"] in ("email", "username")
    assert d.call("kc.get", id=str(uuid.uuid4()))["rc"] == ENOTFOUND


def test_update_keeps_everything_not_changed(keycloak, master, user):
    admin_user = f"{keycloak.admin_base}/users/{user['id']}"
    r = master.put(f"{admin_user}/reset-password", timeout=HTTP_TIMEOUT,
                   json={"type": "password", "value": "pw-123-long-enough", "temporary": False})
    assert r.status_code == 204, r.text
    r = master.get(admin_user, timeout=HTTP_TIMEOUT)
    rep = r.json()
    rep["requiredActions"] = ["VERIFY_EMAIL"]
    rep["attributes"]["locale_like"] = ["x"]
    assert master.put(admin_user, json=rep, timeout=HTTP_TIMEOUT).status_code == 204
    d = driver(keycloak)
    out = d.run(("kc.update", {"id": user["id"], "last_name": "Young"}),
                ("kc.get", {"id": user["id"]}))
    assert out[0]["rc"] == OK
    got = out[1]["result"]
    assert (got["firstName"], got["lastName"]) == ("Zoë", "Young")
    assert got["requiredActions"] == ["VERIFY_EMAIL"]
    assert got["attributes"] == {"has_old": ["true"], "locale_like": ["x"]}
    creds = master.get(f"{admin_user}/credentials", timeout=HTTP_TIMEOUT).json()
    assert [c["type"] for c in creds] == ["password"]  # the PUT did not touch credentials
    out = d.run(("kc.update", {"id": user["id"], "required_actions": ["UPDATE_PASSWORD"],
                               "email_verified": False}),
                ("kc.get", {"id": user["id"]}),
                ("kc.update", {"id": user["id"], "email": "alice@usher.test"}))
    assert out[1]["result"]["requiredActions"] == ["UPDATE_PASSWORD"]
    assert out[1]["result"]["emailVerified"] is False
    assert (out[2]["rc"], out[2]["error"]["field"]) == (ECONFLICT, "email")


def test_enable_disable_and_logout_all_sessions(keycloak, master):
    name = unique("sess")
    d = driver(keycloak)
    uid = d.call("kc.create", username=name, email=f"{name}@usher.test", first_name="S",
                 last_name="T", email_verified=True)["result"]
    pw = "pw-123-long-enough"
    r = master.put(f"{keycloak.admin_base}/users/{uid}/reset-password", timeout=HTTP_TIMEOUT,
                   json={"type": "password", "value": pw, "temporary": False})
    assert r.status_code == 204
    keycloak.login(name, pw)
    sessions = f"{keycloak.admin_base}/users/{uid}/sessions"
    assert len(master.get(sessions, timeout=HTTP_TIMEOUT).json()) == 1
    out = d.run(("kc.logout", {"id": uid}),
                ("kc.set_enabled", {"id": uid, "enabled": False}),
                ("kc.get", {"id": uid}),
                ("kc.set_enabled", {"id": uid, "enabled": True}),
                ("kc.get", {"id": uid}),
                ("kc.logout", {"id": str(uuid.uuid4())}))
    assert [o["rc"] for o in out] == [OK, OK, OK, OK, OK, ENOTFOUND]
    assert master.get(sessions, timeout=HTTP_TIMEOUT).json() == []
    assert out[2]["result"]["enabled"] is False
    assert out[4]["result"]["enabled"] is True
    assert out[4]["result"]["firstName"] == "S"
    d.call("kc.delete", id=uid)


def test_password_setup_email(keycloak, smtp_catcher, user):
    redirect = "http://127.0.0.1:8000/oidc/callback/"
    d = driver(keycloak)
    out = d.call("kc.update_password", id=user["id"], client_id=keycloak.web_client_id,
                 redirect_uri=redirect, lifespan=600)
    assert out["rc"] == OK, out
    mail = smtp_catcher.wait_for(to=user["email"], timeout=30)
    # Kept for a look at the real mail (open the .eml in a mail client).
    out_dir = Path(__file__).resolve().parents[2] / "test-artifacts/conformance"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "password-setup-mail.eml").write_bytes(mail.message.as_bytes())
    # The words of the "usher" email theme (deploy/keycloak-theme/usher, the realm's
    # emailTheme), not Keycloak's generic "Update Your Account" text.
    assert mail.subject == "Set your password for your new account"
    text = mail.text
    assert "Welcome to Usher (conformance tests)!" in text, text
    assert (f"Your account {user['username']} is ready. Set your password to start using "
            "your services:") in text, text
    assert "The link works for 10 minutes." in text, text
    assert "If you didn't sign up, ignore this mail" in text, text
    assert "Update Your Account" not in text and "administrator" not in text, text
    found = re.findall(r"https?://\S+/login-actions/action-token\?\S+", text)
    assert len(found) == 1, text  # what tests/e2e/journeys.py looks for
    link = found[0]
    assert "/login-actions/action-token?key=" in link
    # The HTML part: brand colour, the "Set your password" button on the same link.
    html_part = mail.message.get_body(preferencelist=("html",))
    assert html_part is not None and html_part.get_content_type() == "text/html"
    page = html_part.get_content()
    assert "#2f5d8a" in page, page
    assert html.unescape(page).count(f'href="{link}"') == 2, page  # the button + the fallback
    button = re.search(r'<a href="[^"]+" style="[^"]*background:#2f5d8a[^"]*">([^<]+)</a>', page)
    assert button and button.group(1) == "Set your password", page
    assert f"<strong>{user['username']}</strong>" in page, page
    assert "Welcome to Usher (conformance tests)!" in page, page
    claims = jwt_claims(link.split("key=", 1)[1].split("&", 1)[0])
    assert claims["typ"] == "execute-actions"
    assert claims["rqac"] == ["UPDATE_PASSWORD"]
    assert claims["azp"] == keycloak.web_client_id
    assert claims["reduri"] == redirect
    assert claims["exp"] - claims["iat"] == 600
    assert claims["sub"] == user["id"]
    out = d.run(("kc.update_password", {"id": user["id"], "client_id": "nope"}),
                ("kc.update_password", {"id": user["id"], "client_id": keycloak.web_client_id,
                                        "redirect_uri": "https://evil.test/"}),
                ("kc.set_enabled", {"id": user["id"], "enabled": False}),
                ("kc.update_password", {"id": user["id"]}))
    assert [(o["rc"], o["error"]["message"]) for o in (out[0], out[1], out[3])] == [
        (EINVAL, "Client doesn't exist"), (EINVAL, "Invalid redirect uri."),
        (EINVAL, "User is disabled")]
    name = unique("nomail")
    uid = d.call("kc.create", username=name, first_name="N", last_name="M")["result"]
    out = d.run(("kc.update_password", {"id": uid}), ("kc.delete", {"id": uid}))
    assert (out[0]["rc"], out[0]["error"]["message"]) == (EINVAL, "User email missing")


def test_delete(keycloak):
    name = unique("del")
    d = driver(keycloak)
    uid = d.call("kc.create", username=name, email=f"{name}@usher.test", first_name="D",
                 last_name="L")["result"]
    out = d.run(("kc.delete", {"id": uid}), ("kc.get", {"id": uid}), ("kc.delete", {"id": uid}))
    assert [o["rc"] for o in out] == [OK, ENOTFOUND, ENOTFOUND]
    assert out[2]["error"]["status"] == 404


@pytest.fixture(scope="module")
def group_tree(keycloak, master):
    """/<p>/nextcloud-foggy (same name as a top-level group), /<p>/<only>, /<p>/<only>/<deep>,
    /<p>/<twice> and /<q>/<twice>."""
    base = f"{keycloak.admin_base}/groups"
    made = []

    def create(name, parent=None):
        url = f"{base}/{parent}/children" if parent else base
        r = master.post(url, json={"name": name}, timeout=HTTP_TIMEOUT)
        assert r.status_code == 201, r.text
        gid = r.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
        if parent is None:
            made.append(gid)
        return gid

    p, q = create(unique("gp")), create(unique("gq"))
    only, twice = unique("only"), unique("twice")
    tree = {"same": create("nextcloud-foggy", p), "only_name": only, "only": create(only, p),
            "twice_name": twice, "twice_p": create(twice, p), "twice_q": create(twice, q)}
    tree["deep_name"] = unique("deep")
    tree["deep"] = create(tree["deep_name"], tree["only"])
    tree["p"], tree["q"] = p, q
    r = master.get(f"{base}/{p}", timeout=HTTP_TIMEOUT)
    tree["p_path"] = r.json()["path"]
    r = master.get(f"{base}/{q}", timeout=HTTP_TIMEOUT)
    tree["q_path"] = r.json()["path"]
    yield tree
    for gid in made:
        master.delete(f"{base}/{gid}", timeout=HTTP_TIMEOUT)


def test_group_find_exact_anywhere_in_the_tree(keycloak, master, group_tree):
    t = group_tree
    top = [g for g in master.get(f"{keycloak.admin_base}/groups", timeout=HTTP_TIMEOUT,
                                 params={"search": "nextcloud-foggy", "exact": "true"}).json()
           if g["path"] == "/nextcloud-foggy"][0]
    out = driver(keycloak).run(
        ("kc.group_find", {"ref": "nextcloud-foggy"}),
        ("kc.group_find", {"ref": t["only_name"]}),
        ("kc.group_find", {"ref": t["deep_name"]}),
        ("kc.group_find", {"ref": f"{t['p_path']}/nextcloud-foggy"}),
        ("kc.group_find", {"ref": t["twice_name"]}),
        ("kc.group_find", {"ref": f"{t['q_path']}/{t['twice_name']}"}),
        ("kc.group_find", {"ref": "nextcloud"}),
        ("kc.group_find", {"ref": t["only_name"][:-2]}))
    assert out[0]["result"] == top["id"]
    assert out[1]["result"] == t["only"]
    assert out[2]["result"] == t["deep"]
    assert out[3]["result"] == t["same"]
    assert out[4]["rc"] == ECONFLICT
    assert out[5]["result"] == t["twice_q"]
    assert [o["rc"] for o in out[6:]] == [ENOTFOUND, ENOTFOUND]


def test_group_membership_is_idempotent(keycloak, user, group_tree):
    d = driver(keycloak)
    foggy = d.call("kc.group_find", ref="nextcloud-foggy")["result"]
    deep = group_tree["deep"]
    out = d.run(("kc.group_add", {"id": user["id"], "group": foggy}),
                ("kc.group_add", {"id": user["id"], "group": foggy}),
                ("kc.group_add", {"id": user["id"], "group": deep}),
                ("kc.user_groups", {"id": user["id"]}),
                ("kc.group_remove", {"id": user["id"], "group": foggy}),
                ("kc.group_remove", {"id": user["id"], "group": foggy}),
                ("kc.user_groups", {"id": user["id"]}),
                ("kc.group_add", {"id": user["id"], "group": str(uuid.uuid4())}))
    assert [o["rc"] for o in out] == [OK] * 7 + [ENOTFOUND]
    assert sorted(g["id"] for g in out[3]["result"]) == sorted([foggy, deep])
    assert [g["id"] for g in out[6]["result"]] == [deep]
    assert out[7]["error"]["message"] == "Group not found"


def test_user_groups_carry_name_and_path_for_the_admin_check(keycloak, user, group_tree):
    """The admin console's per-request ADMIN_GROUP check (domain/admin_access.c) reads
    `name` (and `path` when ADMIN_GROUP is a path) from GET /users/{id}/groups; a user
    Keycloak does not know is a 404 (not a member). Same case against the double:
    tests/integration/test_clients_keycloak.py."""
    d = driver(keycloak)
    top = d.call("kc.group_find", ref="usher-admins")["result"]
    same = group_tree["same"]  # /<p>/nextcloud-foggy
    out = d.run(("kc.group_add", {"id": user["id"], "group": top}),
                ("kc.group_add", {"id": user["id"], "group": same}),
                ("kc.user_groups", {"id": user["id"]}),
                ("kc.group_remove", {"id": user["id"], "group": top}),
                ("kc.user_groups", {"id": user["id"]}),
                ("kc.user_groups", {"id": str(uuid.uuid4())}))
    assert [o["rc"] for o in out] == [OK] * 5 + [ENOTFOUND]
    got = sorted((g["name"], g["path"]) for g in out[2]["result"])
    assert got == sorted([("usher-admins", "/usher-admins"),
                          ("nextcloud-foggy", f"{group_tree['p_path']}/nextcloud-foggy")])
    assert [g["name"] for g in out[4]["result"]] == ["nextcloud-foggy"]



def test_user_groups_search_and_pages_for_the_admin_check(keycloak, master, user, group_tree):
    """The admin check (domain/admin_access.c) asks GET /users/{id}/groups?search=NAME&first=
    &max= for the groups whose name contains ADMIN_GROUP's (test_clients_support.
    check_user_groups_search says what Keycloak 26 answers). Same case against the double:
    tests/integration/test_clients_keycloak.py."""
    tok = uuid.uuid4().hex[:8]
    base = f"{keycloak.admin_base}/groups"

    def create(name, parent=None):
        r = master.post(f"{base}/{parent}/children" if parent else base, json={"name": name},
                        timeout=HTTP_TIMEOUT)
        assert r.status_code == 201, r.text
        return r.headers["Location"].rstrip("/").rsplit("/", 1)[-1]

    names = [f"Adm{tok}-one", f"x-adm{tok}", f"ADM{tok.upper()}-sub"]
    made = [create(names[0]), create(names[1])]
    try:
        ids = made + [create(names[2], group_tree["p"]), group_tree["only"]]
        support.check_user_groups_search(driver(keycloak), user["id"], ids, names, f"adm{tok}")
    finally:
        for gid in made:
            master.delete(f"{base}/{gid}", timeout=HTTP_TIMEOUT)

def test_closing_a_disabled_member_as_the_final_expiry_does(keycloak, master, group_tree):
    """The calls of a closure and of the password email (domain/expiry.c,
    tasks/password_email.c) on a canceled customer: disabled, in a group, with a session.
    The read shows enabled false; the delete ends the session and the memberships with the
    user; a second delete and every later call about the user are 404."""
    name = unique("closed")
    d = driver(keycloak)
    uid = d.call("kc.create", username=name, email=f"{name}@usher.test", first_name="C",
                 last_name="D", email_verified=True)["result"]
    pw = "pw-123-long-enough"
    r = master.put(f"{keycloak.admin_base}/users/{uid}/reset-password", timeout=HTTP_TIMEOUT,
                   json={"type": "password", "value": pw, "temporary": False})
    assert r.status_code == 204
    keycloak.login(name, pw)
    group = group_tree["only"]
    members = f"{keycloak.admin_base}/groups/{group}/members"
    out = d.run(("kc.group_add", {"id": uid, "group": group}),
                ("kc.set_enabled", {"id": uid, "enabled": False}),
                ("kc.get", {"id": uid}))
    assert [o["rc"] for o in out] == [OK, OK, OK]
    assert out[2]["result"]["enabled"] is False
    assert [m["id"] for m in master.get(members, timeout=HTTP_TIMEOUT).json()] == [uid]
    sessions = master.get(f"{keycloak.admin_base}/users/{uid}/sessions", timeout=HTTP_TIMEOUT)
    assert len(sessions.json()) == 1

    out = d.run(("kc.delete", {"id": uid}),
                ("kc.delete", {"id": uid}),
                ("kc.get", {"id": uid}),
                ("kc.user_groups", {"id": uid}))
    assert [o["rc"] for o in out] == [OK, ENOTFOUND, ENOTFOUND, ENOTFOUND]
    assert out[1]["error"]["status"] == 404
    assert master.get(members, timeout=HTTP_TIMEOUT).json() == []
    r = master.get(f"{keycloak.admin_base}/users/{uid}/sessions", timeout=HTTP_TIMEOUT)
    assert r.status_code == 404


def attrs(uid, desired, keys=("storage_gb",)):
    return ("kc.attrs", {"id": uid, "desired": desired, "keys": list(keys)})


def test_owned_attributes_replaced_others_kept(keycloak, master, user):
    admin_user = f"{keycloak.admin_base}/users/{user['id']}"
    rep = master.get(admin_user, timeout=HTTP_TIMEOUT).json()
    rep["attributes"].update({"department": ["ops", "dev"], "old_instance": ["https://o"],
                              "storage_gb": ["1"]})
    assert master.put(admin_user, json=rep, timeout=HTTP_TIMEOUT).status_code == 204
    d = driver(keycloak)
    out = d.run(attrs(user["id"], {"has_nextcloud": "true",
                                   "nextcloud_instance": "https://foggy.test",
                                   "storage_gb": 100}),
                ("kc.get", {"id": user["id"]}),
                attrs(user["id"], {}),
                ("kc.get", {"id": user["id"]}))
    assert (out[0]["rc"], out[0]["dropped"]) == (OK, [])
    got = out[1]["result"]
    assert got["attributes"] == {"department": ["ops", "dev"], "has_nextcloud": ["true"],
                                 "nextcloud_instance": ["https://foggy.test"],
                                 "storage_gb": ["100"]}
    assert (got["firstName"], got["lastName"], got["email"]) == ("Zoë", "Zed", user["email"])
    assert out[2]["rc"] == OK
    assert out[3]["result"]["attributes"] == {"department": ["ops", "dev"]}


def test_attribute_sync_keeps_a_disabled_user_disabled(keycloak, user):
    """The attribute PUT leaves `enabled` out; Keycloak keeps the stored value then (so a
    sync racing with a cancellation cannot re-enable the user), and keeps names and email
    because they are sent."""
    d = driver(keycloak)
    out = d.run(("kc.set_enabled", {"id": user["id"], "enabled": False}),
                attrs(user["id"], {"has_nextcloud": "true"}),
                ("kc.get", {"id": user["id"]}))
    assert [o["rc"] for o in out] == [OK, OK, OK]
    got = out[2]["result"]
    assert got["enabled"] is False
    assert (got["firstName"], got["lastName"], got["email"]) == ("Zoë", "Zed", user["email"])
    assert got["attributes"] == {"has_nextcloud": ["true"]}


@pytest.fixture
def profile(keycloak, master):
    """Lets a test change the realm's user profile; restores it afterwards."""
    url = f"{keycloak.admin_base}/users/profile"
    original = master.get(url, timeout=HTTP_TIMEOUT).json()

    def set_policy(policy, declare=()):
        p = copy.deepcopy(original)
        if policy is None:
            p.pop("unmanagedAttributePolicy", None)
        else:
            p["unmanagedAttributePolicy"] = policy
        for name in declare:
            p["attributes"].append({"name": name, "displayName": name, "multivalued": False,
                                    "permissions": {"view": ["admin"], "edit": ["admin"]}})
        r = master.put(url, json=p, timeout=HTTP_TIMEOUT)
        assert r.status_code == 200, r.text

    yield set_policy
    r = master.put(url, json=original, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text


def test_dropped_attributes_are_reported(keycloak, user, profile):
    d = driver(keycloak)
    names = {"names": ["has_nextcloud", "storage_gb"]}
    out = d.call("kc.profile_check", **names)
    assert (out["rc"], out["result"], out["dropped"]) == (OK, "ADMIN_EDIT", [])

    profile(None)  # Keycloak's default: unmanaged attributes DISABLED
    out = d.run(("kc.profile_check", names),
                attrs(user["id"], {"has_nextcloud": "true", "storage_gb": "5"}))
    assert (out[0]["rc"], out[0]["result"], out[0]["dropped"]) == (
        DROPPED, "DISABLED", ["has_nextcloud", "storage_gb"])
    assert out[1]["rc"] == DROPPED  # the PUT said 204, the read-back tells the truth
    assert sorted(out[1]["dropped"]) == ["has_nextcloud", "storage_gb"]

    profile(None, declare=["storage_gb"])
    out = d.run(("kc.profile_check", names),
                attrs(user["id"], {"has_nextcloud": "true", "storage_gb": "5"}))
    assert out[0]["dropped"] == ["has_nextcloud"]
    assert (out[1]["rc"], out[1]["dropped"]) == (DROPPED, ["has_nextcloud"])

    profile("ADMIN_VIEW")
    out = d.run(("kc.profile_check", names),
                attrs(user["id"], {"has_immich": "true"}))
    assert (out[0]["rc"], out[0]["result"]) == (DROPPED, "ADMIN_VIEW")
    # visible but not editable: the new one is dropped and the old one cannot be removed
    assert out[1]["rc"] == DROPPED
    assert "has_immich" in out[1]["dropped"] and "has_old" in out[1]["dropped"]

    profile("ENABLED")
    out = d.run(("kc.profile_check", names),
                attrs(user["id"], {"has_immich": "true"}),
                ("kc.get", {"id": user["id"]}))
    assert (out[0]["rc"], out[1]["rc"]) == (OK, OK)
    assert out[2]["result"]["attributes"] == {"has_immich": ["true"]}


def test_unreachable_keycloak(keycloak):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = driver(keycloak, KEYCLOAK_SERVER_URL=f"http://127.0.0.1:{port}").call(
        "kc.find_username", username="alice")
    assert out["rc"] == EUPSTREAM and out["error"]["kind"] == "connect"
