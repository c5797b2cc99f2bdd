"""The C Keycloak Admin client (src/integrations/keycloak_*.c) against the Keycloak double:
the token cache and its refresh on 401, exact searches, create/get/update (GET-modify-PUT
without credentials), enable/disable, logout, the password-setup email, delete, groups, and
Usher-owned attributes under each unmanaged-attribute policy. The same calls against a real
Keycloak 26: tests/conformance/test_clients_keycloak.py."""

import sys
from pathlib import Path

import pytest

from test_clients_support import (ECONFIG, ECONFLICT, EINVAL, ENOTFOUND, EUPSTREAM,
                                  KC_ATTRS_DROPPED, OK, Driver, check_user_groups_search)

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from devstack.doubles.pytest_plugin import keycloak_double  # noqa: E402,F401

REDIRECT = "http://127.0.0.1:8000/onboarding/success/"


@pytest.fixture
def kc(keycloak_double):
    keycloak_double.set_unmanaged_policy("ADMIN_EDIT")
    return keycloak_double


def driver(kc, **more):
    settings = {"KEYCLOAK_SERVER_URL": kc.url, "KEYCLOAK_REALM": "usher",
                "KEYCLOAK_ADMIN_CLIENT_ID": "usher-admin",
                "KEYCLOAK_ADMIN_CLIENT_SECRET": "usher-admin-secret"}
    return Driver(**{**settings, **more})


def admin_calls(kc, method=None, suffix=None):
    return [r for r in kc.admin_requests
            if (method is None or r["method"] == method) and
            (suffix is None or r["path"].endswith(suffix))]


def test_token_is_cached_and_refreshed_once_on_401(kc):
    kc.add_user("ann", email="ann@example.test", firstName="Ann", lastName="A")
    d = driver(kc)
    expire = ("http", {"method": "POST", "url": kc.url + "/_control/tokens/expire",
                       "upstream": "test"})
    out = d.run(("kc.find_username", {"username": "ann"}),
                ("kc.find_email", {"email": "ann@example.test"}),
                expire,
                ("kc.find_username", {"username": "ann"}))
    assert [o["rc"] for o in out] == [OK, OK, OK, OK]
    assert out[1]["token_fetches"] == 1
    assert out[3]["token_fetches"] == 2
    statuses = [r["status"] for r in admin_calls(kc, "GET", "/users")]
    assert statuses == [200, 200, 401, 200]


def test_refused_credentials_are_a_configuration_error(kc):
    out = driver(kc, KEYCLOAK_ADMIN_CLIENT_SECRET="wrong").call("kc.find_username",
                                                                 username="ann")
    assert out["rc"] == ECONFIG
    assert out["error"]["status"] == 401
    out = driver(kc, KEYCLOAK_ADMIN_CLIENT_ID=None).call("kc.token")
    assert out["rc"] == ECONFIG


def test_find_is_exact_and_case_insensitive(kc):
    kc.add_user("ann", email="ann@example.test")
    kc.add_user("anna", email="anna@example.test")
    out = driver(kc).run(("kc.find_username", {"username": "ANN"}),
                         ("kc.find_email", {"email": "Anna@Example.test"}),
                         ("kc.find_username", {"username": "an"}),
                         ("kc.find_email", {"email": "nobody@example.test"}))
    assert out[0]["result"]["username"] == "ann"
    assert out[1]["result"]["username"] == "anna"
    assert [o["rc"] for o in out[2:]] == [ENOTFOUND, ENOTFOUND]
    q = admin_calls(kc, "GET", "/users")[0]["query"]
    assert "username=ANN" in q and "exact=true" in q


def test_create_get_and_conflicts(kc):
    d = driver(kc)
    new = {"username": "zoe", "email": "zoe@example.test", "first_name": "Zoë",
           "last_name": "Zed", "email_verified": True,
           "attributes": {"has_nextcloud": "true", "storage_gb": 5}}
    out = d.run(("kc.create", new),
                ("kc.create", {**new, "email": "other@example.test"}),
                ("kc.create", {**new, "username": "zoe2"}),
                ("kc.create", {"username": "bad", "email": "not-an-email", "first_name": "B",
                               "last_name": "C"}))
    uid = out[0]["result"]
    assert out[0]["rc"] == OK and uid
    assert (out[1]["rc"], out[1]["error"]["field"]) == (ECONFLICT, "username")
    assert (out[2]["rc"], out[2]["error"]["field"]) == (ECONFLICT, "email")
    assert (out[3]["rc"], out[3]["error"]["field"]) == (EINVAL, "email")
    got = d.call("kc.get", id=uid)["result"]
    assert (got["username"], got["email"], got["firstName"], got["lastName"]) == (
        "zoe", "zoe@example.test", "Zoë", "Zed")
    assert got["enabled"] is True and got["emailVerified"] is True
    assert got["attributes"] == {"has_nextcloud": ["true"], "storage_gb": ["5"]}
    body = admin_calls(kc, "POST", "/users")[0]["body"]
    assert body["enabled"] is True and "credentials" not in body
    assert d.call("kc.get", id="00000000-0000-0000-0000-000000000000")["rc"] == ENOTFOUND
    assert d.call("kc.get", id="../../clients")["rc"] == EINVAL


def test_update_is_get_modify_put_of_the_whole_user(kc):
    u = kc.add_user("zoe", password="pw", email="zoe@example.test", firstName="Zoë",
                    lastName="Zed", attributes={"locale": "de", "has_x": "true"},
                    requiredActions=["VERIFY_EMAIL"])
    d = driver(kc)
    out = d.run(("kc.update", {"id": u["id"], "last_name": "Young"}),
                ("kc.get", {"id": u["id"]}))
    assert out[0]["rc"] == OK
    got = out[1]["result"]
    assert (got["firstName"], got["lastName"]) == ("Zoë", "Young")
    assert got["attributes"] == {"locale": ["de"], "has_x": ["true"]}
    assert got["requiredActions"] == ["VERIFY_EMAIL"]
    assert kc.user(u["id"])["hasPassword"] is True
    put = admin_calls(kc, "PUT", u["id"])[0]["body"]
    assert "credentials" not in put and "requiredActions" not in put
    # a stale `enabled` never goes back: an update cannot undo a concurrent disable
    assert "enabled" not in put and "emailVerified" not in put
    assert put["firstName"] == "Zoë" and put["email"] == "zoe@example.test"
    assert put["attributes"]["locale"] == ["de"]

    out = d.run(("kc.update", {"id": u["id"], "required_actions": ["UPDATE_PASSWORD"],
                               "email_verified": False}),
                ("kc.get", {"id": u["id"]}))
    assert out[1]["result"]["requiredActions"] == ["UPDATE_PASSWORD"]
    assert out[1]["result"]["emailVerified"] is False
    kc.add_user("amy", email="amy@example.test")
    out = d.call("kc.update", id=u["id"], email="amy@example.test")
    assert (out["rc"], out["error"]["field"]) == (ECONFLICT, "email")


def test_enable_disable_logout_delete(kc):
    u = kc.add_user("zoe", email="zoe@example.test", firstName="Z", lastName="Z")
    d = driver(kc)
    out = d.run(("kc.set_enabled", {"id": u["id"], "enabled": False}),
                ("kc.get", {"id": u["id"]}),
                ("kc.set_enabled", {"id": u["id"], "enabled": True}),
                ("kc.get", {"id": u["id"]}),
                ("kc.logout", {"id": u["id"]}),
                ("kc.delete", {"id": u["id"]}),
                ("kc.get", {"id": u["id"]}),
                ("kc.delete", {"id": u["id"]}),
                ("kc.logout", {"id": u["id"]}))
    assert [o["rc"] for o in out] == [OK, OK, OK, OK, OK, OK, ENOTFOUND, ENOTFOUND, ENOTFOUND]
    assert out[1]["result"]["enabled"] is False
    assert out[3]["result"]["enabled"] is True
    assert [x["user_id"] for x in kc.state.admin_logouts] == [u["id"]]
    puts = [r["body"] for r in admin_calls(kc, "PUT", u["id"])]
    assert [p["enabled"] for p in puts] == [False, True]
    assert all(p["firstName"] == "Z" and "requiredActions" not in p for p in puts)


def test_attribute_sync_does_not_undo_a_concurrent_disable(kc):
    u = kc.add_user("zoe", email="zoe@example.test", firstName="Z", lastName="Z")
    d = driver(kc)
    out = d.run(attrs(u["id"], {"has_nextcloud": "true"}))
    assert out[0]["rc"] == OK
    (put,) = [r["body"] for r in admin_calls(kc, "PUT", u["id"])]
    assert set(put) == {"id", "username", "email", "firstName", "lastName", "attributes"}


def test_password_setup_email(kc):
    u = kc.add_user("zoe", email="zoe@example.test", firstName="Z", lastName="Z")
    nomail = kc.add_user("nomail")
    off = kc.add_user("off", email="off@example.test", enabled=False)
    d = driver(kc)
    out = d.run(("kc.update_password", {"id": u["id"], "client_id": "usher",
                                        "redirect_uri": REDIRECT, "lifespan": 3600}),
                ("kc.update_password", {"id": nomail["id"]}),
                ("kc.update_password", {"id": off["id"]}),
                ("kc.update_password", {"id": u["id"], "client_id": "usher",
                                        "redirect_uri": "https://evil.test/"}),
                ("kc.update_password", {"id": u["id"], "client_id": "nope"}))
    assert out[0]["rc"] == OK
    (mail,) = kc.emails
    assert (mail["to"], mail["actions"], mail["client_id"], mail["redirect_uri"],
            mail["lifespan"]) == ("zoe@example.test", ["UPDATE_PASSWORD"], "usher", REDIRECT,
                                  3600)
    assert "The link works for 1 hour." in mail["text"]  # the usher mail theme's wording
    assert [(o["rc"], o["error"]["message"]) for o in out[1:]] == [
        (EINVAL, "User email missing"), (EINVAL, "User is disabled"),
        (EINVAL, "Invalid redirect uri."), (EINVAL, "Client doesn't exist")]
    kc.config["smtp_broken"] = True
    out = d.call("kc.update_password", id=u["id"])
    assert out["rc"] == EUPSTREAM and out["error"]["status"] == 500
    assert out["error"]["message"].startswith("Failed to send execute actions email")
    # a 500 after sending is not repeated (a second email would be worse than a retry later)
    assert [r["status"] for r in admin_calls(kc, "PUT", "/execute-actions-email")][-1:] == [500]
    assert len(admin_calls(kc, "PUT", "/execute-actions-email")) == 6


def test_groups_exact_name_subgroups_and_membership(kc):
    top = kc.add_group("nextcloud-foggy")
    parent = kc.add_group("customers")
    sub_same = kc.add_group("nextcloud-foggy", parent=parent["id"])
    only_sub = kc.add_group("only-sub", parent=parent["id"])
    other = kc.add_group("other")
    kc.add_group("twice", parent=parent["id"])
    kc.add_group("twice", parent=other["id"])
    u = kc.add_user("zoe", email="zoe@example.test")
    d = driver(kc)
    out = d.run(("kc.group_find", {"ref": "nextcloud-foggy"}),
                ("kc.group_find", {"ref": "only-sub"}),
                ("kc.group_find", {"ref": "/customers/nextcloud-foggy"}),
                ("kc.group_find", {"ref": "twice"}),
                ("kc.group_find", {"ref": "/other/twice"}),
                ("kc.group_find", {"ref": "nextcloud"}),
                ("kc.group_find", {"ref": "only"}))
    assert out[0]["result"] == top["id"]
    assert out[1]["result"] == only_sub["id"]
    assert out[2]["result"] == sub_same["id"]
    assert out[3]["rc"] == ECONFLICT
    assert out[4]["rc"] == OK
    assert [o["rc"] for o in out[5:]] == [ENOTFOUND, ENOTFOUND]
    out = d.run(("kc.group_add", {"id": u["id"], "group": top["id"]}),
                ("kc.group_add", {"id": u["id"], "group": top["id"]}),
                ("kc.group_add", {"id": u["id"], "group": only_sub["id"]}),
                ("kc.user_groups", {"id": u["id"]}),
                ("kc.group_remove", {"id": u["id"], "group": top["id"]}),
                ("kc.group_remove", {"id": u["id"], "group": top["id"]}),
                ("kc.user_groups", {"id": u["id"]}),
                ("kc.group_add", {"id": u["id"], "group": "00000000-0000-0000-0000-0000000000"}))
    assert [o["rc"] for o in out] == [OK] * 7 + [ENOTFOUND]
    assert sorted(g["path"] for g in out[3]["result"]) == ["/customers/only-sub",
                                                           "/nextcloud-foggy"]
    assert [g["path"] for g in out[6]["result"]] == ["/customers/only-sub"]
    assert out[7]["error"]["message"] == "Group not found"  # Keycloak 26.7.3's words


def test_user_groups_carry_name_and_path_for_the_admin_check(kc):
    """As tests/conformance/test_clients_keycloak.py's case of the same name, against the
    double: what domain/admin_access.c reads from GET /users/{id}/groups."""
    admins = kc.add_group("usher-admins")
    parent = kc.add_group("customers")
    same = kc.add_group("nextcloud-foggy", parent=parent["id"])
    u = kc.add_user("zoe", email="zoe@example.test")
    d = driver(kc)
    out = d.run(("kc.group_add", {"id": u["id"], "group": admins["id"]}),
                ("kc.group_add", {"id": u["id"], "group": same["id"]}),
                ("kc.user_groups", {"id": u["id"]}),
                ("kc.group_remove", {"id": u["id"], "group": admins["id"]}),
                ("kc.user_groups", {"id": u["id"]}),
                ("kc.user_groups", {"id": "6f1c1c52-4a0c-4f7e-9d38-000000000000"}))
    assert [o["rc"] for o in out] == [OK] * 5 + [ENOTFOUND]
    got = sorted((g["name"], g["path"]) for g in out[2]["result"])
    assert got == sorted([("usher-admins", "/usher-admins"),
                          ("nextcloud-foggy", "/customers/nextcloud-foggy")])
    assert [g["name"] for g in out[4]["result"]] == ["nextcloud-foggy"]



def test_user_groups_search_and_pages_for_the_admin_check(kc):
    """As tests/conformance/test_clients_keycloak.py's case of the same name, against the
    double (test_clients_support.check_user_groups_search)."""
    names = ["Admtok-one", "x-admtok", "ADMTOK-sub"]
    parent = kc.add_group("customers")
    groups = [kc.add_group(names[0]), kc.add_group(names[1]),
              kc.add_group(names[2], parent=parent["id"]), kc.add_group("other")]
    u = kc.add_user("zoe", email="zoe@example.test")
    check_user_groups_search(driver(kc), u["id"], [g["id"] for g in groups], names, "admtok")

def attrs(uid, desired, keys=("storage_gb",)):
    return ("kc.attrs", {"id": uid, "desired": desired, "keys": list(keys)})


def test_owned_attributes_replaced_others_kept(kc):
    u = kc.add_user("zoe", email="zoe@example.test", firstName="Zoë", lastName="Zed",
                    attributes={"locale": "de", "has_old": "true",
                                "old_instance": "https://old.test", "storage_gb": "1"})
    d = driver(kc)
    out = d.run(attrs(u["id"], {"has_nextcloud": "true",
                                "nextcloud_instance": "https://foggy.test",
                                "storage_gb": 100}),
                ("kc.get", {"id": u["id"]}),
                attrs(u["id"], {}),
                ("kc.get", {"id": u["id"]}),
                attrs(u["id"], {"locale": "fr"}))
    assert out[0]["rc"] == OK and out[0]["dropped"] == []
    got = out[1]["result"]
    assert got["attributes"] == {"locale": ["de"], "has_nextcloud": ["true"],
                                 "nextcloud_instance": ["https://foggy.test"],
                                 "storage_gb": ["100"]}
    assert (got["firstName"], got["lastName"]) == ("Zoë", "Zed")
    assert out[2]["rc"] == OK
    assert out[3]["result"]["attributes"] == {"locale": ["de"]}
    assert out[4]["rc"] == EINVAL  # Usher never writes an attribute it does not own


def test_dropped_attributes_are_reported(kc):
    u = kc.add_user("zoe", email="zoe@example.test", firstName="Z", lastName="Z")
    d = driver(kc)
    names = {"names": ["has_nextcloud", "storage_gb"]}
    assert d.call("kc.profile_check", **names)["rc"] == OK
    kc.set_unmanaged_policy("DISABLED")
    out = d.run(("kc.profile_check", names),
                attrs(u["id"], {"has_nextcloud": "true", "storage_gb": "5"}))
    assert (out[0]["rc"], out[0]["result"], out[0]["dropped"]) == (
        KC_ATTRS_DROPPED, "DISABLED", ["has_nextcloud", "storage_gb"])
    assert out[1]["rc"] == KC_ATTRS_DROPPED
    assert sorted(out[1]["dropped"]) == ["has_nextcloud", "storage_gb"]
    kc.declare_attribute("storage_gb")
    out = d.run(("kc.profile_check", names),
                attrs(u["id"], {"has_nextcloud": "true", "storage_gb": "5"}))
    assert out[0]["dropped"] == ["has_nextcloud"]
    assert out[1]["dropped"] == ["has_nextcloud"]
    kc.set_unmanaged_policy("ADMIN_VIEW")
    out = d.call("kc.profile_check", **names)
    assert (out["rc"], out["result"], out["dropped"]) == (KC_ATTRS_DROPPED, "ADMIN_VIEW",
                                                          ["has_nextcloud"])


def test_outage(kc):
    d = driver(kc)
    kc.down("503")
    out = d.call("kc.find_username", username="x")
    assert out["rc"] == EUPSTREAM
    kc.up()
    kc.down("refuse")
    out = d.call("kc.find_username", username="x")
    assert out["rc"] == EUPSTREAM and out["error"]["kind"] == "connect"
    kc.up()
