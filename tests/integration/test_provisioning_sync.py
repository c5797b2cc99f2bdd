"""A subscriber's login enqueues sync_user_post_checkout; a real `usher worker` runs it
against the Keycloak double: a seat is taken, the instance's group is granted in Usher and in
Keycloak, the owned attributes are written; an upgrade and a downgrade change them; a realm
that drops unmanaged attributes is noticed."""

import sys
import time

import pytest
import requests

from conftest import REPO

sys.path.insert(0, str(REPO))
from devstack.doubles.pytest_plugin import keycloak_double  # noqa: E402,F401 - fixture
from test_oidc import Login, kc, oidc_env  # noqa: E402,F401 - fixtures reused
from test_worker import clock, migrated, workers  # noqa: E402,F401

ADMIN = {"KEYCLOAK_ADMIN_CLIENT_ID": "usher-admin",
         "KEYCLOAK_ADMIN_CLIENT_SECRET": "usher-admin-secret"}


def seed(db):
    db.exec("INSERT INTO products (id, name, slug, page, provisioner, requires_instance, "
            "created_at, updated_at) VALUES (1, 'Cloud', 'cloud', 'plan', 'group', true, 1, 1), "
            "(2, 'Storage', 'storage', 'storage', 'standalone', false, 1, 1)")
    db.exec("INSERT INTO product_prices (product_id, stripe_price_id, billing_period, amount, "
            "entitlements, created_at, updated_at) VALUES "
            "(1, 'price_cloud', 'monthly', 900, NULL, 1, 1), "
            "(2, 'price_storage', 'monthly', 300, '{\"storage_gb\": 100}', 1, 1)")
    db.exec("INSERT INTO instances (id, product_id, name, base_url, created_at, updated_at) "
            "VALUES (1, 1, 'foggy', 'https://foggy.example.test', 1, 1)")
    db.exec("INSERT INTO groups (id, name) VALUES (1, 'cloud-foggy')")
    db.exec("INSERT INTO instance_groups (instance_id, group_id) VALUES (1, 1)")


def wait_for(predicate, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def group_names(kc, user_id):
    r = requests.get(f"{kc.url}/admin/realms/{kc.realm}/users/{user_id}/groups",
                     headers={"Authorization": "Bearer " + kc.admin_token()}, timeout=10)
    r.raise_for_status()
    return [g["name"] for g in r.json()]


def subscribe_alice(app, db):
    """alice logs in, subscribes to the cloud plan and logs in again (which enqueues her
    sync). Returns her user id."""
    assert Login(app).run("alice").status_code == 303
    user_id = db.scalar("SELECT id FROM users WHERE username = 'alice'")
    db.exec("UPDATE users SET subscription_status = 'active' WHERE id = ?", user_id)
    db.exec("INSERT INTO subscription_items (user_id, product_id, stripe_price_id, quantity) "
            "VALUES (?, 1, 'price_cloud', 1)", user_id)
    assert Login(app).run("alice").status_code == 303
    return user_id


def done_syncs(db):
    return db.scalar("SELECT count(*) FROM tasks WHERE name = 'sync_user_post_checkout' "
                     "AND state = 'done'")


@pytest.mark.backend("sqlite")
def test_login_sync_grants_and_revokes(usher, kc, db, workers):
    kc.add_group("cloud-foggy")
    kc.set_unmanaged_policy("ADMIN_EDIT")
    app = usher(oidc_env(kc, **ADMIN))
    seed(db)
    login = Login(app)
    assert login.run("alice").status_code == 303  # not a subscriber: no sync
    assert db.scalar("SELECT count(*) FROM tasks WHERE name = 'sync_user_post_checkout'") == 0
    user_id = db.scalar("SELECT id FROM users WHERE username = 'alice'")
    db.exec("UPDATE users SET subscription_status = 'active' WHERE id = ?", user_id)
    db.exec("INSERT INTO subscription_items (user_id, product_id, stripe_price_id, quantity) "
            "VALUES (?, 1, 'price_cloud', 1), (?, 2, 'price_storage', 3)", user_id, user_id)

    assert Login(app).run("alice").status_code == 303  # a subscriber now: sync enqueued
    workers(dict(oidc_env(kc, **ADMIN)))
    wait_for(lambda: done_syncs(db) == 1, "the first sync")

    alice = kc.user("alice")
    assert "cloud-foggy" in group_names(kc, alice["id"])
    attrs = alice["attributes"]
    assert attrs["has_cloud"] == ["true"] and attrs["has_storage"] == ["true"]
    assert attrs["cloud_instance"] == ["https://foggy.example.test"]
    assert attrs["storage_gb"] == ["300"]
    assert db.scalar("SELECT allocated_seats FROM instances WHERE id = 1") == 1
    assert db.scalar("SELECT count(*) FROM user_groups WHERE user_id = ?", user_id) == 1

    # Downgrade: the cloud plan goes; its seat, group and attributes go with it.
    db.exec("DELETE FROM subscription_items WHERE stripe_price_id = 'price_cloud'")
    assert Login(app).run("alice").status_code == 303
    wait_for(lambda: done_syncs(db) == 2, "the second sync")
    alice = kc.user("alice")
    assert "cloud-foggy" not in group_names(kc, alice["id"])
    assert "has_cloud" not in alice["attributes"]
    assert "cloud_instance" not in alice["attributes"]
    assert alice["attributes"]["storage_gb"] == ["300"]
    assert db.scalar("SELECT allocated_seats FROM instances WHERE id = 1") == 0


def delete_group(kc, name):
    """What an operator does in the admin console: the group goes, with its memberships."""
    headers = {"Authorization": "Bearer " + kc.admin_token()}
    r = requests.get(f"{kc.url}/admin/realms/{kc.realm}/groups",
                     params={"search": name, "exact": "true"}, headers=headers, timeout=10)
    r.raise_for_status()
    (group,) = [g for g in r.json() if g["name"] == name]
    r = requests.delete(f"{kc.url}/admin/realms/{kc.realm}/groups/{group['id']}",
                        headers=headers, timeout=10)
    assert r.status_code == 204, r.text


@pytest.mark.backend("sqlite")
def test_downgrade_after_the_group_was_deleted_succeeds(usher, kc, db, workers, run_usher):
    """Leaving a group the realm no longer has is already done: the downgrade's sync (and
    `usher user sync`) succeed and release the seat, instead of failing with "does not exist;
    create it" and retrying for hours."""
    kc.add_group("cloud-foggy")
    kc.set_unmanaged_policy("ADMIN_EDIT")
    env = dict(oidc_env(kc, **ADMIN))
    app = usher(env)
    seed(db)
    user_id = subscribe_alice(app, db)
    w = workers(env)
    wait_for(lambda: done_syncs(db) == 1, "the first sync")
    assert db.scalar("SELECT allocated_seats FROM instances WHERE id = 1") == 1

    delete_group(kc, "cloud-foggy")
    db.exec("DELETE FROM subscription_items WHERE stripe_price_id = 'price_cloud'")
    assert Login(app).run("alice").status_code == 303  # the login enqueues her sync
    wait_for(lambda: done_syncs(db) == 2, "the downgrade's sync")
    assert 'keycloak group missing; nothing to leave" group="cloud-foggy"' in w.log
    assert db.scalar("SELECT allocated_seats FROM instances WHERE id = 1") == 0
    assert db.scalar("SELECT count(*) FROM instance_assignments WHERE user_id = ?", user_id) == 0
    assert db.scalar("SELECT count(*) FROM user_groups WHERE user_id = ?", user_id) == 0
    assert "has_cloud" not in kc.user("alice")["attributes"]
    assert db.scalar("SELECT count(*) FROM tasks WHERE name = 'sync_user_post_checkout' "
                     "AND last_error IS NOT NULL") == 0
    assert 'keycloak group missing" group=' not in w.log  # no warning: nothing is wrong
    rc, out, err = run_usher(["user", "sync", "alice"], env=env, timeout=60)
    assert rc == 0, (out, err)


@pytest.mark.backend("sqlite")
def test_dropped_attributes_are_reported(usher, kc, db, workers):
    kc.add_group("cloud-foggy")
    kc.set_unmanaged_policy("DISABLED")  # a default Keycloak 24+ realm
    app = usher(oidc_env(kc, **ADMIN))
    seed(db)
    subscribe_alice(app, db)
    w = workers(dict(oidc_env(kc, **ADMIN)))
    wait_for(lambda: done_syncs(db) == 1, "the sync")
    assert "dropped Usher attributes" in w.log


@pytest.mark.backend("sqlite")
def test_waiting_seat_is_filled_when_capacity_appears(usher, kc, db, workers, clock):
    kc.add_group("cloud-foggy")
    kc.set_unmanaged_policy("ADMIN_EDIT")
    app = usher(oidc_env(kc, **ADMIN))
    seed(db)
    db.exec("UPDATE instances SET soft_cap = 0, allocation_cap = 0, hard_cap = 5")
    subscribe_alice(app, db)
    workers(dict(oidc_env(kc, **ADMIN)))
    wait_for(lambda: done_syncs(db) == 1, "the first sync")
    assert db.scalar("SELECT state FROM instance_assignments") == "waiting_capacity"
    assert "cloud-foggy" not in group_names(kc, kc.user("alice")["id"])

    db.exec("UPDATE instances SET soft_cap = 1, allocation_cap = 1")  # capacity appears
    clock(61)  # the next slot of the periodic job
    wait_for(lambda: db.scalar("SELECT state FROM instance_assignments") == "active",
             "the waiting seat to be filled")
    wait_for(lambda: done_syncs(db) == 2, "the sync after seating")
    assert "cloud-foggy" in group_names(kc, kc.user("alice")["id"])
    assert db.scalar("SELECT allocated_seats FROM instances WHERE id = 1") == 1


@pytest.mark.backend("sqlite")
def test_missing_keycloak_group_is_named(usher, kc, db, workers, run_usher, clock):
    """A realm without the instance's group: the task's error and the worker's log name the
    group and its instance (not "user 1: not found"), and `usher check` lists it; once the
    operator creates the group, the next retry grants it."""
    kc.set_unmanaged_policy("ADMIN_EDIT")
    env = dict(oidc_env(kc, **ADMIN))
    app = usher(env)
    seed(db)
    subscribe_alice(app, db)
    w = workers(env)
    expected = 'Keycloak group "cloud-foggy" of instance "foggy" does not exist'
    error = wait_for(lambda: db.scalar("SELECT last_error FROM tasks WHERE name = "
                                       "'sync_user_post_checkout' AND last_error IS NOT NULL"),
                     "the failed sync attempt")
    assert expected in error, error
    wait_for(lambda: 'keycloak group missing" group="cloud-foggy"' in w.log, "the log line")
    # The dashboard does not offer a service whose group was never granted.
    page = Login(app)
    assert page.run("alice").status_code == 303
    dashboard = page.client.get("/dashboard/")
    assert "Being set up" in dashboard.text
    assert 'href="https://foggy.example.test"' not in dashboard.text

    rc, out, _ = run_usher(["check"], env=env, timeout=60)
    assert rc == 1
    assert 'keycloak group "cloud-foggy" of instance "foggy": MISSING' in out
    kc.add_group("cloud-foggy")
    rc, out, _ = run_usher(["check"], env=env, timeout=60)
    assert rc == 0, out
    assert "keycloak groups: ok (1 granted by instances)" in out
    clock(3600)  # past the next retry
    wait_for(lambda: db.scalar("SELECT count(*) FROM tasks WHERE name = "
                               "'sync_user_post_checkout' AND state <> 'done'") == 0,
             "the retried sync (and the one of the login above)")
    assert "cloud-foggy" in group_names(kc, kc.user("alice")["id"])
