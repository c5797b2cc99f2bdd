"""A subscriber's life after signup, through real signed webhooks and `usher worker`
(SPEC §4): cancellation, a failed payment and its recovery (both invoice shapes), an upgrade
that changes products, and an older event that must not overwrite newer state."""

import json
import time

import pytest

from stripe_events_support import (  # noqa: F401 - fixtures
    BROKERS, IMMICH, NEXTCLOUD, STORAGE, wait_for, world)

from devstack.doubles.pytest_plugin import keycloak_double  # noqa: F401 - fixture
from test_worker import migrated, workers  # noqa: F401 - fixtures


def synced(world, user_id, n):
    wait_for(lambda: len([a for a in world.tasks("sync_user_post_checkout", "done")
                          if a == {"user_id": user_id}]) >= n, f"{n} syncs of user {user_id}")


@pytest.mark.parametrize("world", BROKERS, indirect=True)
def test_cancellation_disables_and_keeps_seats_and_items(world):
    world.start_worker()
    sub_id, _ = world.signup("cat@example.test", "cat", [(NEXTCLOUD, 1), (STORAGE, 1)])
    u = world.user("cat")
    synced(world, u["id"], 1)
    kc_id = u["keycloak_id"]
    cookie = world.login_session(u["id"])
    assert world.dashboard(cookie).status_code == 200

    _, evs = world.st.cancel_subscription(sub_id)
    world.deliver(evs[0])
    world.wait_events(evs)
    synced(world, u["id"], 2)

    u = world.user("cat")
    assert world.event_status(evs[0]) == "processed"
    assert u["subscription_status"] == "canceled"
    assert u["canceled_at"] > 0
    assert u["access_expires_at"] == u["canceled_at"] + 30 * 86400
    assert sorted((i["price"], i["quantity"]) for i in json.loads(u["previous_items"])) == \
        sorted([(NEXTCLOUD, 1), (STORAGE, 1)])
    assert world.items(u["id"]) == []
    # Keycloak: disabled, sessions ended. Usher: the old cookie is anonymous now.
    assert world.kc_user(kc_id)["enabled"] is False
    assert world.kc_logouts(kc_id)
    assert world.db.scalar("SELECT count(*) FROM sessions WHERE user_id = ?", u["id"]) == 0
    r = world.dashboard(cookie)
    assert r.status_code in (302, 303) and r.headers["Location"].startswith("/oidc/authenticate/")
    # Seats (and groups) stay for the recovery window; the attributes follow the status.
    assert world.seats(u["id"]) == [("nextcloud", "active")]
    assert world.db.scalar("SELECT sum(allocated_seats) FROM instances") == 1
    assert any(g.startswith("nextcloud-") for g in world.kc_groups(kc_id))
    assert "has_nextcloud" not in world.kc_user(kc_id).get("attributes", {})
    assert world.tasks("notify_subscription_canceled") == [{"user_id": u["id"]}]

    # Redelivered (and a re-run): the first run's dates and items stay, one email.
    first = dict(u)
    world.db.exec("UPDATE stripe_events SET status = 'pending' WHERE event_id = ?", evs[0])
    world.db.exec("INSERT INTO tasks (name, args, state, attempts, max_attempts, run_at, "
                  "created_at, updated_at, dedup_key) VALUES ('process_stripe_event', ?, "
                  "'queued', 0, 11, 0, 0, 0, 'rerun-cancel')", json.dumps({"event_id": evs[0]}))
    world.wait_events(evs)
    again = world.user("cat")
    for k in ("canceled_at", "access_expires_at", "previous_items", "subscription_status"):
        assert again[k] == first[k], k
    assert len(world.tasks("notify_subscription_canceled")) == 1


def test_recovery_checkout_reenables_the_returning_user(world):
    world.start_worker()
    sub_id, _ = world.signup("back@example.test", "back", [(NEXTCLOUD, 1)])
    u = world.user("back")
    _, evs = world.st.cancel_subscription(sub_id)
    world.deliver(evs[0])
    world.wait_events(evs)
    assert world.kc_user(u["keycloak_id"])["enabled"] is False

    # Re-subscribes (same email): the same account, enabled again, the cancellation cleared.
    new_sub, _ = world.signup("back@example.test", "back", [(NEXTCLOUD, 1), (IMMICH, 1)])
    again = world.user("back")
    assert again["id"] == u["id"] and again["keycloak_id"] == u["keycloak_id"]
    assert again["stripe_subscription_id"] == new_sub
    assert again["subscription_status"] == "active"
    assert again["canceled_at"] is None and again["access_expires_at"] is None
    assert again["previous_items"] is None
    assert world.kc_user(u["keycloak_id"])["enabled"] is True
    assert world.items(u["id"]) == sorted([(NEXTCLOUD, 1), (IMMICH, 1)])
    # The account existed: no second password-setup email.
    assert len(world.tasks("send_keycloak_password_reset_email")) == 1


@pytest.mark.parametrize("shape", ["old", "new"])
def test_payment_failed_disables_and_paid_enables(world, shape):
    world.start_worker()
    sub_id, _ = world.signup(f"pay-{shape}@example.test", f"pay-{shape}", [(NEXTCLOUD, 1)])
    u = world.user(f"pay-{shape}")
    kc_id = u["keycloak_id"]
    cookie = world.login_session(u["id"])

    world.st.update_subscription(sub_id, status="past_due", emit=False)
    ev = world.st.emit(sub_id, "invoice.payment_failed", invoice_shape=shape, deliver=False)
    inv = ev["data"]["object"]
    assert ("subscription" in inv) == (shape == "old")
    world.deliver(ev["id"])
    world.wait_events([ev["id"]])
    u = world.user(f"pay-{shape}")
    assert world.event_status(ev["id"]) == "processed"
    assert u["subscription_status"] == "past_due" and u["payment_disabled"] in (1, True)
    # The recovery window starts at the first failure; a second one does not extend it.
    first_final = u["access_expires_at"]
    assert abs(first_final - (int(time.time()) + 30 * 86400)) < 120, first_final
    world.db.exec("UPDATE users SET access_expires_at = ? WHERE id = ?", first_final - 1000,
                  u["id"])
    again = world.st.emit(sub_id, "invoice.payment_failed", invoice_shape=shape, deliver=False)
    world.deliver(again["id"])
    world.wait_events([again["id"]])
    assert world.event_status(again["id"]) == "processed"
    assert world.user(f"pay-{shape}")["access_expires_at"] == first_final - 1000
    assert world.kc_user(kc_id)["enabled"] is False
    assert world.kc_logouts(kc_id)
    assert world.dashboard(cookie).status_code in (302, 303)
    # One notice per failed payment (each event its own), the same final date in each.
    assert world.tasks("notify_payment_failed") == [{"user_id": u["id"]}] * 2

    world.st.update_subscription(sub_id, status="active", emit=False)
    paid = world.st.emit(sub_id, "invoice.paid", invoice_shape=shape, deliver=False)
    world.deliver(paid["id"])
    world.wait_events([paid["id"]])
    u = world.user(f"pay-{shape}")
    assert u["subscription_status"] == "active" and u["payment_disabled"] in (0, False)
    assert u["access_expires_at"] is None  # paid up: no final date any more
    assert world.kc_user(kc_id)["enabled"] is True


def test_older_event_does_not_overwrite_newer_state(world):
    world.start_worker()
    sub_id, _ = world.signup("order@example.test", "order", [(NEXTCLOUD, 1)])
    u = world.user("order")
    t = u["stripe_state_at"]
    newer = world.st.emit(sub_id, "customer.subscription.updated", created=t + 100,
                          deliver=False)["id"]
    older = world.st.emit(sub_id, "invoice.payment_failed", created=t + 50, deliver=False)["id"]
    world.deliver(newer)
    world.wait_events([newer])
    world.deliver(older)
    world.wait_events([older])
    u = world.user("order")
    assert world.event_status(older) == "ignored"
    assert "older than the state already applied" in world.db.scalar(
        "SELECT last_error FROM stripe_events WHERE event_id = ?", older)
    assert u["stripe_state_at"] == t + 100
    assert u["subscription_status"] == "active" and u["payment_disabled"] in (0, False)
    assert world.kc_user(u["keycloak_id"])["enabled"] is True
    assert world.tasks("notify_payment_failed") == []


def test_upgrade_adds_storage_and_drops_immich(world):
    world.start_worker()
    sub_id, _ = world.signup("up@example.test", "upgrader", [(NEXTCLOUD, 1), (IMMICH, 1)])
    u = world.user("upgrader")
    synced(world, u["id"], 1)
    kc_id = u["keycloak_id"]
    assert world.seats(u["id"]) == [("immich", "active"), ("nextcloud", "active")]
    assert "immich-main" in world.kc_groups(kc_id)
    assert world.kc_user(kc_id)["attributes"]["has_immich"] == ["true"]

    _, evs = world.st.update_subscription(
        sub_id, items=[{"price": NEXTCLOUD, "quantity": 1}, {"price": STORAGE, "quantity": 3}])
    world.deliver(evs[0])
    world.wait_events(evs)
    synced(world, u["id"], 2)

    assert world.items(u["id"]) == sorted([(NEXTCLOUD, 1), (STORAGE, 3)])
    assert world.seats(u["id"]) == [("nextcloud", "active")]
    assert world.db.scalar("SELECT allocated_seats FROM instances WHERE name = 'main'") == 0
    assert "immich-main" not in world.kc_groups(kc_id)
    attrs = world.kc_user(kc_id)["attributes"]
    assert "has_immich" not in attrs and "immich_instance" not in attrs
    assert attrs["storage_gb"] == ["300"]
    assert attrs["has_nextcloud"] == ["true"] and attrs["has_storage-100"] == ["true"]


def test_price_of_another_stripe_product_is_logged_as_mismatch(world):
    world.db.exec("UPDATE products SET stripe_product_id = 'prod_somethingelse' "
                  "WHERE slug = 'immich'")
    w = world.start_worker()
    world.signup("mm@example.test", "mismatch", [(NEXTCLOUD, 1), (IMMICH, 1)])
    assert "stripe product mismatch" in w.log
    assert world.items(world.user("mismatch")["id"]) == sorted([(NEXTCLOUD, 1), (IMMICH, 1)])


def test_update_that_sees_the_cancellation_first_keeps_the_seats(world):
    world.start_worker()
    sub_id, _ = world.signup("early@example.test", "earlybird", [(NEXTCLOUD, 1)])
    u = world.user("earlybird")
    synced(world, u["id"], 1)
    world.st.cancel_subscription(sub_id, emit=False)
    upd = world.st.emit(sub_id, "customer.subscription.updated", deliver=False)["id"]
    world.deliver(upd)
    world.wait_events([upd])
    synced(world, u["id"], 2)
    first = world.user("earlybird")
    assert first["subscription_status"] == "canceled" and first["access_expires_at"]
    assert world.seats(u["id"]) == [("nextcloud", "active")]
    assert world.kc_user(u["keycloak_id"])["enabled"] is False

    deleted = world.st.emit(sub_id, "customer.subscription.deleted", deliver=False)["id"]
    world.deliver(deleted)
    world.wait_events([deleted])
    again = world.user("earlybird")
    for k in ("canceled_at", "access_expires_at", "previous_items"):
        assert again[k] == first[k], k
    assert world.seats(u["id"]) == [("nextcloud", "active")]
    assert world.tasks("notify_subscription_canceled") == [{"user_id": u["id"]}]
