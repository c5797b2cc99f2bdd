"""The final expiry of SPEC §7 through real signed webhooks, real `usher worker` processes and
the Keycloak double: a canceled account past its access_expires_at is closed for good by the
periodic close_expired_accounts scan and one expire_account task (seats freed, groups gone,
the Keycloak user deleted, status expired, one audit row, sessions ended), once however many
workers run, after a Keycloak outage, and by `usher user expire` (with a dry run first)."""

import json
import time

import pytest
import requests

from stripe_events_support import (  # noqa: F401 - fixtures
    NEXTCLOUD, STORAGE, wait_for, world)

from devstack.doubles.pytest_plugin import keycloak_double  # noqa: F401 - fixture
from test_worker import clock, migrated, workers  # noqa: F401 - fixtures

WINDOW = 30 * 86400
PAST_EXPIRY = WINDOW + 86400  # the clock moved a day past the final expiry


def synced(world, user_id, n):
    wait_for(lambda: len([a for a in world.tasks("sync_user_post_checkout", "done")
                          if a == {"user_id": user_id}]) >= n, f"{n} syncs of user {user_id}")


def subscribe_and_cancel(world, name):
    """A customer with a Nextcloud seat (and storage), then canceled: returns the user row."""
    sub_id, _ = world.signup(f"{name}@example.test", name, [(NEXTCLOUD, 1), (STORAGE, 1)])
    u = world.user(name)
    synced(world, u["id"], 1)
    _, evs = world.st.cancel_subscription(sub_id)
    world.deliver(evs[0])
    world.wait_events(evs)
    synced(world, u["id"], 2)
    u = world.user(name)
    assert u["subscription_status"] == "canceled"
    assert world.seats(u["id"]) == [("nextcloud", "active")]  # kept for the recovery window
    return u


def future_session(world, user_id):
    """A session that the hourly cleanup will not have purged once the clock has moved."""
    later = int(time.time()) + PAST_EXPIRY + 3600
    world.db.exec("INSERT INTO sessions (id_hash, user_id, csrf_token, data, created_at, "
                  "last_seen_at) VALUES (?, ?, 'x', '{}', ?, ?)",
                  f"{user_id:064d}", user_id, later, later)


def closures(world, user_id, state=None):
    return [a for a in world.tasks("expire_account", state) if a == {"user_id": user_id}]


def wait_closed(world, user_id):
    wait_for(lambda: closures(world, user_id, "done"), f"the closure of user {user_id}")


def audit_rows(world, user_id):
    rows = world.db.rows("SELECT actor, detail, created_at FROM audit_log "
                         "WHERE action = 'account.expired' AND target_type = 'user' "
                         "AND target_id = ?", str(user_id))
    return [(a, json.loads(d), t) for a, d, t in rows]


def kc_deletes(world, kc_id):
    with world.kc.lock:
        return [r for r in world.kc.state.admin_requests
                if r.get("method") == "DELETE" and r.get("path", "").endswith(f"/users/{kc_id}")]


def assert_closed(world, before):
    uid, kc_id = before["id"], before["keycloak_id"]
    u = world.user(before["username"])
    assert u["subscription_status"] == "expired"
    # The minimal record: who they were and when access ended; no link, seat, group, session.
    assert u["username"] == before["username"] and u["email"] == before["email"]
    assert u["access_expires_at"] == before["access_expires_at"]
    assert u["keycloak_id"] is None
    assert u["previous_items"] is None
    assert world.seats(uid) == []
    assert world.db.scalar("SELECT sum(allocated_seats) FROM instances") == 0
    assert world.db.scalar("SELECT count(*) FROM user_groups WHERE user_id = ?", uid) == 0
    assert world.db.scalar("SELECT count(*) FROM sessions WHERE user_id = ?", uid) == 0
    assert world.kc_user(kc_id) is None
    rows = audit_rows(world, uid)
    assert len(rows) == 1
    actor, detail, _ = rows[0]
    assert detail["reason"] == "final expiry passed"
    assert detail["status_before"] == "canceled"
    assert detail["keycloak_id"] == kc_id
    assert detail["access_expires_at"] == before["access_expires_at"]
    assert [s["product"] for s in detail["seats"]] == ["nextcloud"]
    assert any(g.startswith("nextcloud-") for g in detail["groups"])
    return actor, detail


def test_canceled_account_is_closed_once_after_its_final_expiry(world, clock, usher):
    world.start_worker()
    u = subscribe_and_cancel(world, "end")
    assert any(g.startswith("nextcloud-") for g in world.kc_groups(u["keycloak_id"]))
    future_session(world, u["id"])

    # Inside the window nothing happens, whatever the scan does.
    clock(WINDOW - 86400)
    time.sleep(1)
    assert closures(world, u["id"]) == []
    assert world.user("end")["subscription_status"] == "canceled"

    clock(2 * 86400)
    wait_closed(world, u["id"])
    actor, detail = assert_closed(world, u)
    assert actor == "worker"
    assert detail["sessions_ended"] == 1
    assert len(kc_deletes(world, u["keycloak_id"])) == 1

    # A re-run of the task, and later scans, change nothing.
    world.db.exec("INSERT INTO tasks (name, args, state, attempts, max_attempts, run_at, "
                  "created_at, updated_at) VALUES ('expire_account', ?, 'queued', 0, 4, 0, 0, 0)",
                  json.dumps({"user_id": u["id"]}))
    wait_for(lambda: len(closures(world, u["id"], "done")) == 2, "the re-run")
    scans = "SELECT count(*) FROM tasks WHERE name = 'close_expired_accounts' AND state = 'done'"
    before = world.db.scalar(scans)
    clock(3600)
    wait_for(lambda: world.db.scalar(scans) > before, "a later scan")
    assert len(closures(world, u["id"])) == 2
    assert len(audit_rows(world, u["id"])) == 1
    assert len(kc_deletes(world, u["keycloak_id"])) == 1

    # /metrics counts the closed account, and nothing pending.
    env = {k: v for k, v in world.env().items() if k not in ("BIND", "PUBLIC_BASE_URL")}
    server = usher({**env, "PROMETHEUS_METRICS_API_KEY": "metrics-key"})
    r = requests.get(server.url + "/metrics", headers={"Authorization": "Bearer metrics-key"},
                     timeout=10)
    assert r.status_code == 200
    assert "usher_accounts_expired_total 1" in r.text
    assert "usher_accounts_expiry_pending 0" in r.text


def test_two_workers_close_each_account_once(world, clock):
    world.start_worker()
    world.start_worker()
    users = [subscribe_and_cancel(world, name) for name in ("twoa", "twob")]
    clock(PAST_EXPIRY)
    for u in users:
        wait_closed(world, u["id"])
    world.wait_idle(("expire_account", "close_expired_accounts"))
    for u in users:
        assert len(closures(world, u["id"])) == 1
        assert len(audit_rows(world, u["id"])) == 1
        assert len(kc_deletes(world, u["keycloak_id"])) == 1
        assert world.user(u["username"])["subscription_status"] == "expired"
    assert world.db.scalar("SELECT sum(allocated_seats) FROM instances") == 0
    assert world.db.scalar("SELECT count(*) FROM instance_assignments") == 0


def test_keycloak_outage_delays_the_closure_and_loses_nothing(world, clock):
    world.start_worker()
    u = subscribe_and_cancel(world, "outage")
    world.kc.down("503")
    try:
        clock(PAST_EXPIRY)

        def failed_once():
            rows = world.db.dict_rows("SELECT * FROM tasks WHERE name = 'expire_account'")
            return rows if rows and (rows[0]["attempts"] or 0) >= 1 and \
                rows[0]["state"] == "queued" else None

        row = wait_for(failed_once, "a first attempt that failed on Keycloak")[0]
        assert "Keycloak" in row["last_error"]
        assert row["max_attempts"] >= 11  # the long schedule
        # The decision is recorded; what needs Keycloak waits for it.
        now = world.user("outage")
        assert now["subscription_status"] == "expired"
        assert now["keycloak_id"] == u["keycloak_id"]
        assert world.seats(u["id"]) == [("nextcloud", "active")]
    finally:
        world.kc.up()
    clock(600)  # the retry is due
    wait_closed(world, u["id"])
    assert_closed(world, u)


def test_cli_expire_dry_run_refusal_and_run(world, clock, run_usher):
    world.start_worker()
    u = subscribe_and_cancel(world, "cli")
    world.stop_workers()  # the command alone acts from here on
    env = world.env()

    rc, out, err = run_usher(["user", "expire", "cli"], env=env)
    assert rc == 3, (out, err)
    assert "final expiry" in err and "has not passed" in err
    rc, out, err = run_usher(["user", "expire", "--dry-run", "cli"], env=env)
    assert rc == 3, (out, err)
    assert world.user("cli")["subscription_status"] == "canceled"

    clock(PAST_EXPIRY)
    snapshot = (world.user("cli"), world.seats(u["id"]),
                world.db.rows("SELECT * FROM user_groups ORDER BY group_id"),
                world.db.rows("SELECT id, allocated_seats FROM instances ORDER BY id"))
    rc, out, err = run_usher(["user", "expire", "cli", "--dry-run"], env=env)
    assert rc == 0, (out, err)
    assert "nextcloud on " in out
    group = next(g for g in world.kc_groups(u["keycloak_id"]) if g.startswith("nextcloud-"))
    assert group in out
    assert f"{u['keycloak_id']} (exists)" in out
    assert "canceled -> expired" in out
    assert "dry run: nothing was changed" in out
    assert snapshot == (world.user("cli"), world.seats(u["id"]),
                        world.db.rows("SELECT * FROM user_groups ORDER BY group_id"),
                        world.db.rows("SELECT id, allocated_seats FROM instances ORDER BY id"))
    assert world.kc_user(u["keycloak_id"]) is not None
    assert audit_rows(world, u["id"]) == []

    rc, out, err = run_usher(["user", "expire", "cli"], env=env)
    assert rc == 0, (out, err)
    assert "seats freed 1" in out and "Keycloak user deleted" in out
    actor, _ = assert_closed(world, u)
    assert actor == "cli"

    rc, out, err = run_usher(["user", "expire", "cli"], env=env)
    assert rc == 0, (out, err)
    assert "already closed" in out
    assert len(audit_rows(world, u["id"])) == 1

    rc, out, err = run_usher(["user", "expire", "nobody"], env=env)
    assert rc == 1 and "no user named" in err
    rc, out, err = run_usher(["user", "expire", "cli", "--force"], env=env)
    assert rc == 2


@pytest.mark.backend("sqlite")
def test_late_stripe_event_does_not_reopen_a_closed_account(world, clock):
    world.start_worker()
    sub_id, _ = world.signup("late@example.test", "late", [(NEXTCLOUD, 1)])
    u = world.user("late")
    world.st.update_subscription(sub_id, status="past_due", emit=False)
    ev = world.st.emit(sub_id, "invoice.payment_failed", deliver=False)
    world.deliver(ev["id"])
    world.wait_events([ev["id"]])
    # The final expiry of a failed payment (set here: the window's start is not this test's).
    final = int(time.time()) + WINDOW
    world.db.exec("UPDATE users SET access_expires_at = ? WHERE id = ?", final, u["id"])
    clock(PAST_EXPIRY)
    wait_closed(world, u["id"])
    assert world.user("late")["subscription_status"] == "expired"
    assert world.kc_user(u["keycloak_id"]) is None

    # Closing a past-due account also cancels its subscription in Stripe, which would go on
    # retrying the unpaid invoice; the deletion event that follows reopens nothing.
    wait_for(lambda: world.tasks("cancel_stale_subscription", "done"),
             "the unpaid subscription to be canceled in Stripe")
    assert world.st.state.subscriptions[sub_id]["status"] == "canceled"
    evs = [e["id"] for e in world.st.state.events.values()
           if e["type"] == "customer.subscription.deleted"]
    assert len(evs) == 1, evs
    # Signed at Stripe's time as Usher's moved clock sees it (the double's own delivery was
    # signed at the real time, which the moved clock finds a month old).
    for d in world.st.deliver(evs[0], timestamp_offset=PAST_EXPIRY):
        assert d["status"] == 200, d
    world.wait_events(evs)
    assert world.event_status(evs[0]) == "ignored"
    assert "closed for good" in world.db.scalar(
        "SELECT last_error FROM stripe_events WHERE event_id = ?", evs[0])
    assert len(audit_rows(world, u["id"])) == 1
    after = world.user("late")
    assert after["subscription_status"] == "expired"
    assert after["access_expires_at"] == final
    assert world.tasks("notify_subscription_canceled") == []
