"""checkout.session.completed through the real webhook and `usher worker` (SPEC §4): a paid
signup becomes a Keycloak account, a local user with the subscription's real status and
items, a password-setup task and a provisioning sync; duplicates and re-runs change nothing
twice; events about subscriptions nobody has are recorded without error."""

import json
import threading

import pytest

from stripe_events_support import (  # noqa: F401 - fixtures
    BITWARDEN, BROKERS, IMMICH, NEXTCLOUD, STORAGE, wait_for, world)

from devstack.doubles.pytest_plugin import keycloak_double  # noqa: F401 - fixture
from test_worker import migrated, workers  # noqa: F401 - fixtures


def test_signup_creates_account_user_items_and_tasks(world):
    world.start_worker()
    sub_id, ev = world.signup("Ada@Example.test", "Ada.L", [(NEXTCLOUD, 1), (STORAGE, 2)])
    assert world.event_status(ev) == "processed"

    kc_user = world.kc_user("ada.l")
    assert kc_user is not None
    assert kc_user["email"] == "ada@example.test"
    assert kc_user["enabled"] is True and kc_user["emailVerified"] is True
    assert (kc_user["firstName"], kc_user["lastName"]) == ("Ada", "Lovelace")

    u = world.user("ada.l")
    assert u["keycloak_id"] == kc_user["id"]
    assert u["stripe_subscription_id"] == sub_id
    assert u["stripe_customer_id"] == world.st.subscription(sub_id)["customer"]
    assert u["subscription_status"] == "active"
    assert u["stripe_state_at"] > 0
    assert world.items(u["id"]) == [(NEXTCLOUD, 1), (STORAGE, 2)]
    assert world.db.scalar("SELECT count(*) FROM subscription_items WHERE user_id = ? "
                           "AND product_id IS NOT NULL AND current_period_end > 0", u["id"]) == 2

    assert world.tasks("send_keycloak_password_reset_email") == [{"keycloak_id": kc_user["id"]}]
    assert {"user_id": u["id"]} in world.tasks("sync_user_post_checkout")
    # The sync ran: a Nextcloud seat, its group, the attributes (storage summed).
    wait_for(lambda: world.tasks("sync_user_post_checkout", "done"), "the sync")
    assert world.seats(u["id"]) == [("nextcloud", "active")]
    kc_user = world.kc_user("ada.l")
    assert any(g.startswith("nextcloud-") for g in world.kc_groups(kc_user["id"]))
    assert kc_user["attributes"]["has_nextcloud"] == ["true"]
    assert kc_user["attributes"]["storage_gb"] == ["200"]


def test_username_falls_back_to_the_email_local_part(world):
    world.start_worker()
    world.signup("Grace.Hopper+cobol@example.test", None, [(BITWARDEN, 1)])
    assert world.kc_user("grace.hoppercobol") is not None
    assert world.user("grace.hoppercobol")["subscription_status"] == "active"
    # Too short for the rules (3..64): a stable name derived from the email instead.
    world.signup("jo@example.test", "jo", [(BITWARDEN, 1)])
    u = world.db.dict_rows("SELECT * FROM users WHERE email = 'jo@example.test'")[0]
    assert u["username"].startswith("user-") and len(u["username"]) == 15


def test_existing_keycloak_account_is_linked_not_duplicated(world):
    existing = world.kc.add_user("margaret", email="margaret@example.test",
                                 firstName="Margaret", lastName="Hamilton")
    with world.kc.lock:  # made long before this checkout
        world.kc.state.users[existing["id"]]["createdTimestamp"] -= 86400 * 1000
    world.start_worker()
    world.signup("margaret@example.test", "mhamilton", [(NEXTCLOUD, 1)])
    with world.kc.lock:
        users = [u for u in world.kc.state.users.values() if u["email"] == "margaret@example.test"]
    assert len(users) == 1
    u = world.user("margaret")
    assert u is not None and u["keycloak_id"] == existing["id"]
    assert world.user("mhamilton") is None
    # An account that existed before the checkout already has a password.
    assert world.tasks("send_keycloak_password_reset_email") == []


def count_state(world, email, username):
    with world.kc.lock:
        kc_users = [u for u in world.kc.state.users.values() if u["email"] == email]
    user_id = world.db.scalar("SELECT id FROM users WHERE username = ?", username)
    return {
        "kc_users": len(kc_users),
        "users": world.db.scalar("SELECT count(*) FROM users WHERE username = ?", username),
        "pw_tasks": len(world.tasks("send_keycloak_password_reset_email")),
        "seats": world.db.scalar("SELECT count(*) FROM instance_assignments WHERE user_id = ?",
                                 user_id),
        "allocated": world.db.scalar("SELECT sum(allocated_seats) FROM instances"),
        "events": world.db.scalar("SELECT count(*) FROM stripe_events"),
    }


@pytest.mark.parametrize("world", BROKERS, indirect=True)
def test_duplicate_deliveries_and_reruns_change_nothing_twice(world):
    world.start_worker()
    sub_id, ev = world.pay(world.checkout("dup@example.test", "dup", [(NEXTCLOUD, 1)]),
                           deliver=False)
    world.deliver(ev, times=5)
    threads = [threading.Thread(target=world.deliver, args=(ev,)) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    world.wait_events([ev])
    wait_for(lambda: world.tasks("sync_user_post_checkout", "done"), "the sync")
    expected = {"kc_users": 1, "users": 1, "pw_tasks": 1, "seats": 1, "allocated": 1, "events": 1}
    assert count_state(world, "dup@example.test", "dup") == expected
    assert world.db.scalar("SELECT count(*) FROM tasks WHERE name = 'process_stripe_event'") == 1

    # A re-run after a crash that lost the outcome (the event still pending): same state.
    world.db.exec("UPDATE stripe_events SET status = 'pending' WHERE event_id = ?", ev)
    world.db.exec("INSERT INTO tasks (name, args, state, attempts, max_attempts, run_at, "
                  "created_at, updated_at, dedup_key) VALUES ('process_stripe_event', ?, "
                  "'queued', 0, 11, 0, 0, 0, 'rerun')", json.dumps({"event_id": ev}))
    rerun = world.db.scalar("SELECT id FROM tasks WHERE dedup_key = 'rerun'")
    if world.redis:  # Redis delivers at least once: the same task in several stream entries
        for _ in range(5):
            world.redis.cli("XADD", "usher:tasks", "*", "id", str(rerun))
    world.wait_events([ev])
    assert count_state(world, "dup@example.test", "dup") == expected
    assert world.db.scalar("SELECT attempts FROM stripe_events WHERE event_id = ?", ev) == 2
    assert world.db.scalar("SELECT attempts FROM tasks WHERE id = ?", rerun) == 1
    assert world.worker.done().count(rerun) == 1


def test_a_keycloak_outage_is_retried_and_recorded(world):
    world.start_worker()
    world.kc.down("503")
    sub_id, ev = world.pay(world.checkout("late@example.test", "late", [(NEXTCLOUD, 1)]))
    wait_for(lambda: world.db.scalar("SELECT last_error FROM stripe_events WHERE event_id = ?",
                                     ev), "the failure to be recorded")
    row = world.db.dict_rows("SELECT status, attempts, last_error FROM stripe_events "
                             "WHERE event_id = ?", ev)[0]
    assert row["status"] == "pending" and row["attempts"] >= 1
    assert "Keycloak" in row["last_error"]
    assert world.user("late") is None
    world.kc.up()
    # Make the retry due now instead of in 30 s.
    world.db.exec("UPDATE tasks SET run_at = 0 WHERE name = 'process_stripe_event' "
                  "AND state = 'queued'")
    world.wait_events([ev])
    assert world.event_status(ev) == "processed"
    assert world.user("late")["subscription_status"] == "active"


def test_unknown_subscription_and_other_events_are_recorded_without_error(world):
    world.start_worker()
    cust = world.st.add_customer(email="stranger@example.test")
    sub = world.st.add_subscription(cust["id"], [{"price": NEXTCLOUD, "quantity": 1}])
    evs = [world.st.emit(sub["id"], t, deliver=False)["id"]
           for t in ("customer.subscription.updated", "customer.subscription.deleted",
                     "invoice.payment_failed", "invoice.paid")]
    other = world.st.make_event("customer.created", cust)["id"]
    for e in evs + [other]:
        world.deliver(e)
    world.wait_events(evs + [other])
    rows = dict(world.db.rows("SELECT event_id, status FROM stripe_events"))
    assert all(rows[e] == "ignored" for e in evs + [other]), rows
    notes = dict(world.db.rows("SELECT event_id, last_error FROM stripe_events"))
    assert f"no user has subscription {sub['id']}" in notes[evs[0]]
    assert notes[other] == "event type not handled"
    assert world.db.scalar("SELECT count(*) FROM users") == 0
    assert world.db.scalar("SELECT count(*) FROM tasks WHERE name = 'process_stripe_event' "
                           "AND state <> 'done'") == 0
    assert "stripe event processed" not in world.worker.log


def test_payment_mode_and_missing_email_are_ignored(world):
    world.start_worker()
    form_sid = world.checkout("pay@example.test", "payer", [(NEXTCLOUD, 1)])
    with world.st.lock:
        world.st.state.sessions[form_sid]["mode"] = "payment"
    _, ev = world.pay(form_sid)
    world.wait_events([ev])
    assert world.event_status(ev) == "ignored"
    assert "mode" in world.db.scalar("SELECT last_error FROM stripe_events WHERE event_id = ?", ev)
    assert world.db.scalar("SELECT count(*) FROM users") == 0
    assert world.kc_user("payer") is None

    sid = world.checkout("noemail@example.test", "noemail", [(IMMICH, 1)])
    _, ev2 = world.pay(sid, deliver=False)
    with world.st.lock:  # no email anywhere: session, details, customer, metadata
        s = world.st.state.sessions[sid]
        s["customer_email"] = None
        s["customer_details"]["email"] = None
        world.st.state.customers[s["customer"]]["email"] = None
    world.deliver(ev2)
    world.wait_events([ev2])
    assert world.event_status(ev2) == "ignored"
    assert "email" in world.db.scalar("SELECT last_error FROM stripe_events WHERE event_id = ?",
                                      ev2)
    assert world.db.scalar("SELECT count(*) FROM users") == 0
    assert world.kc_user("noemail") is None


def test_username_conflict_in_keycloak(world):
    """A 409 on create finds the account again: by email (a concurrent create), or by username
    when that account has no email yet. Someone else's username is a visible failure."""
    mine = world.kc.add_user("halfmade")  # no email: e.g. created by hand for this customer
    other = world.kc.add_user("taken", email="someone.else@example.test")
    world.start_worker()
    world.signup("half@example.test", "halfmade", [(NEXTCLOUD, 1)])
    assert world.user("halfmade")["keycloak_id"] == mine["id"]
    with world.kc.lock:
        names = [u["username"] for u in world.kc.state.users.values()]
    assert names.count("halfmade") == 1 and "half" not in names

    _, ev = world.pay(world.checkout("me@example.test", "taken", [(NEXTCLOUD, 1)]))
    wait_for(lambda: world.db.scalar("SELECT last_error FROM stripe_events WHERE event_id = ?",
                                     ev), "the failure to be recorded")
    assert "username is taken" in world.db.scalar(
        "SELECT last_error FROM stripe_events WHERE event_id = ?", ev)
    assert world.event_status(ev) == "pending"  # retried on the long schedule
    assert world.kc_user("taken")["id"] == other["id"]
    assert world.kc_user("me@example.test") is None
