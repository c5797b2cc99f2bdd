"""`usher user sync USERNAME` (SPEC §11): the provisioning sync of one user, run now from the
command line against the Keycloak double: a one-line report, seats, groups and attributes in
place, a second run changing nothing; an unknown user, Keycloak down and Keycloak not
configured each exit non-zero with a clear message."""

import re
import sys

import requests

from conftest import REPO

sys.path.insert(0, str(REPO))
from devstack.doubles.pytest_plugin import keycloak_double  # noqa: E402,F401 - fixture
from test_worker import migrated  # noqa: E402,F401 - fixture

ADMIN = {"KEYCLOAK_ADMIN_CLIENT_ID": "usher-admin",
         "KEYCLOAK_ADMIN_CLIENT_SECRET": "usher-admin-secret"}


def kc_env(kc):
    return {"KEYCLOAK_SERVER_URL": kc.url, "KEYCLOAK_REALM": kc.realm, **ADMIN}


def seed(db, kc):
    """A plan on one instance with one group, and alice subscribed to it."""
    db.exec("INSERT INTO products (id, name, slug, page, provisioner, requires_instance, "
            "created_at, updated_at) VALUES (1, 'Cloud', 'cloud', 'plan', 'group', true, 1, 1)")
    db.exec("INSERT INTO product_prices (product_id, stripe_price_id, billing_period, amount, "
            "entitlements, created_at, updated_at) VALUES "
            "(1, 'price_cloud', 'monthly', 900, '{\"storage_gb\": 50}', 1, 1)")
    db.exec("INSERT INTO instances (id, product_id, name, base_url, created_at, updated_at) "
            "VALUES (1, 1, 'foggy', 'https://foggy.example.test', 1, 1)")
    db.exec("INSERT INTO groups (id, name) VALUES (1, 'cloud-foggy')")
    db.exec("INSERT INTO instance_groups (instance_id, group_id) VALUES (1, 1)")
    kc.add_group("cloud-foggy")
    kc.set_unmanaged_policy("ADMIN_EDIT")
    user = kc.add_user("alice", email="alice@example.test", firstName="Alice", lastName="Li")
    db.exec("INSERT INTO users (username, email, date_joined, keycloak_id, subscription_status) "
            "VALUES ('alice', 'alice@example.test', 1, ?, 'active')", user["id"])
    uid = db.scalar("SELECT id FROM users WHERE username = 'alice'")
    db.exec("INSERT INTO subscription_items (user_id, product_id, stripe_price_id, quantity) "
            "VALUES (?, 1, 'price_cloud', 2)", uid)
    return user


def group_names(kc, user_id):
    r = requests.get(f"{kc.url}/admin/realms/{kc.realm}/users/{user_id}/groups",
                     headers={"Authorization": "Bearer " + kc.admin_token()}, timeout=10)
    r.raise_for_status()
    return [g["name"] for g in r.json()]


def report_numbers(line):
    return {k: int(v) for k, v in re.findall(r"([a-z]+(?: [a-z]+)?) (\d+)", line)}


def test_sync_reports_and_provisions(run_usher, migrated, db, keycloak_double):
    kc = keycloak_double
    user = seed(db, kc)
    rc, out, err = run_usher(["user", "sync", "Alice"], env=kc_env(kc))
    assert rc == 0, (out, err)
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    n = report_numbers(lines[0])
    assert "alice" in lines[0]
    assert n["seats taken"] == 1 and n["groups granted"] == 1, lines[0]
    assert n["attributes dropped"] == 0
    assert "cloud-foggy" in group_names(kc, user["id"])
    attrs = kc.user("alice")["attributes"]
    assert attrs["has_cloud"] == ["true"]
    assert attrs["cloud_instance"] == ["https://foggy.example.test"]
    assert attrs["storage_gb"] == ["100"]
    assert db.scalar("SELECT allocated_seats FROM instances WHERE id = 1") == 1

    rc, out, err = run_usher(["user", "sync", "alice"], env=kc_env(kc))
    assert rc == 0, (out, err)
    n = report_numbers(out)
    # Nothing new: no seat taken or freed (the group grant is re-applied, idempotently).
    assert n["seats taken"] == 0 and n["released"] == 0 and n["revoked"] == 0, out
    assert "cloud-foggy" in group_names(kc, user["id"])
    assert db.scalar("SELECT allocated_seats FROM instances WHERE id = 1") == 1


def test_unknown_user(run_usher, migrated, keycloak_double):
    rc, out, err = run_usher(["user", "sync", "nobody"], env=kc_env(keycloak_double))
    assert rc == 1, (out, err)
    assert "no user named 'nobody'" in err
    assert out == ""


def test_keycloak_down(run_usher, migrated, db, keycloak_double):
    kc = keycloak_double
    seed(db, kc)
    kc.down("503")
    try:
        rc, out, err = run_usher(["user", "sync", "alice"], env=kc_env(kc), timeout=120)
    finally:
        kc.up()
    assert rc == 1, (out, err)
    assert "user sync alice failed" in err
    assert "synced" not in out


def test_keycloak_not_configured_and_usage(run_usher, migrated, db, keycloak_double):
    seed(db, keycloak_double)
    rc, out, err = run_usher(["user", "sync", "alice"])
    assert rc == 2, (out, err)
    assert "KEYCLOAK_ADMIN_CLIENT_ID" in err
    for args in (["user"], ["user", "sync"], ["user", "frobnicate", "alice"],
                 ["user", "sync", "alice", "extra"]):
        rc, out, err = run_usher(args)
        assert rc == 2, (args, out, err)
        assert "usher user sync USERNAME" in err


def test_user_without_keycloak_link_is_synced_locally(run_usher, migrated, db, keycloak_double):
    seed(db, keycloak_double)
    db.exec("UPDATE users SET keycloak_id = NULL WHERE username = 'alice'")
    rc, out, err = run_usher(["user", "sync", "alice"], env=kc_env(keycloak_double))
    assert rc == 0, (out, err)
    assert "no Keycloak account linked" in out
    assert report_numbers(out)["seats taken"] == 1
    assert db.scalar("SELECT allocated_seats FROM instances WHERE id = 1") == 1
    assert "cloud-foggy" not in group_names(keycloak_double, keycloak_double.user("alice")["id"])
