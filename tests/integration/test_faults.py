"""Faults on the way from a signup to a provisioned user (issue 5), SQLite and PostgreSQL.

- Keycloak down for five minutes during a signup: the user's sync fails while it is down,
  is retried on the long schedule (src/tasks/retry.c: 30 s, 1, 2, 4 min … ±20 %), and the
  first attempt after Keycloak returns provisions the user — groups and attributes in the
  double, one seat however many attempts it took, the task done with attempts > 1. The five
  minutes pass on Usher's test clock (USHER_TEST_CLOCK_FILE, the `clock` fixture), not in
  real time. Two ways in: test_keycloak_outage_during_signup_is_outlasted starts from the
  signup's last step, the sync_user_post_checkout task a processed checkout enqueues (and
  checks that failed attempts take one seat, not one per attempt);
  test_keycloak_outage_during_webhook_signup starts from a real signed
  checkout.session.completed webhook (Stripe double), so process_stripe_event is the task
  that waits out the outage and the Keycloak account itself is created after it.

Covered elsewhere, not repeated here:
- a transaction rolled back after an enqueue leaves no task: tests/unit/test_task_store.c,
  test_enqueue_rolled_back_leaves_no_task (SQLite and PostgreSQL);
- a worker killed with SIGKILL mid-task, its task completed once by another:
  test_worker.py test_killed_worker_task_is_completed_once_by_another (database broker) and
  test_worker_redis.py test_redis_killed_worker_task_is_taken_over (Redis broker);
- Redis restarted (losing its stream and consumer group) mid-run, nothing lost or run twice:
  test_worker_redis.py test_redis_restart_mid_run_loses_no_task, and Redis unreachable at
  start: test_redis_unreachable_at_start_then_recovers.
"""

import json
import re
import sys

import pytest

from conftest import REPO
from stripe_events_support import NEXTCLOUD, STORAGE, world  # noqa: F401 - fixture

sys.path.insert(0, str(REPO))
from devstack.doubles.pytest_plugin import keycloak_double  # noqa: E402,F401 - fixture
from test_oidc import oidc_env  # noqa: E402
from test_provisioning_sync import ADMIN, group_names, seed  # noqa: E402
from test_worker import insert_task, task_row, wait_attempt, wait_for  # noqa: E402
from test_worker import clock, migrated, workers  # noqa: E402,F401 - fixtures

SYNC = "sync_user_post_checkout"
LONG_MAX_ATTEMPTS = 11  # db/task_store.h TASK_LONG_MAX_ATTEMPTS
RETRY_BASE = 30  # TASK_RETRY_DELAY's default
OUTAGE = 300  # seconds of Usher's clock


def signed_up_user(db, kc):
    """A user as a processed checkout leaves them: in Keycloak, linked, an active
    subscription to the cloud plan and 3 storage add-ons."""
    seed(db)
    kc_user = kc.add_user("carol", email="carol@usher.test", firstName="Carol")
    db.exec("INSERT INTO users (id, username, email, date_joined, subscription_status, "
            "keycloak_id) VALUES (7, 'carol', 'carol@usher.test', 1, 'active', ?)",
            kc_user["id"])
    db.exec("INSERT INTO subscription_items (user_id, product_id, stripe_price_id, quantity) "
            "VALUES (7, 1, 'price_cloud', 1), (7, 2, 'price_storage', 3)")
    return 7, kc_user["id"]


def ride_out_outage(db, kc, clock, task_id, worker, name, during):
    """Fails attempts while Keycloak is down, moving the clock to each retry; brings
    Keycloak back once OUTAGE seconds of Usher time have passed. during() checks the state
    after each failed attempt. Returns the attempt that ran after the outage."""
    elapsed, attempt = 0, 1
    while True:
        row = wait_attempt(db, task_id, attempt)
        delay = row["run_at"] - row["updated_at"]
        nominal = RETRY_BASE * 2 ** (attempt - 1)
        assert 0.8 * nominal - 1 <= delay <= 1.2 * nominal + 1, (attempt, delay)
        assert row["max_attempts"] == LONG_MAX_ATTEMPTS
        assert "keycloak" in row["last_error"].lower() or "upstream" in \
            row["last_error"].lower(), row["last_error"]
        assert re.search(rf'id={task_id} name="{name}" attempt={attempt}/{LONG_MAX_ATTEMPTS} '
                         r'retry_in=\d+s', worker.log), worker.log[-2000:]
        during()
        if elapsed + delay + 1 >= OUTAGE:
            clock(OUTAGE - elapsed)
            kc.up()
            clock(elapsed + delay + 1 - OUTAGE)
            return attempt + 1
        clock(delay + 1)
        elapsed += delay + 1
        attempt += 1


def assert_provisioned(db, kc, user_id, kc_id):
    assert "cloud-foggy" in group_names(kc, kc_id)
    attrs = kc.user(kc_id)["attributes"]
    assert attrs["has_cloud"] == ["true"] and attrs["has_storage"] == ["true"], attrs
    assert attrs["cloud_instance"] == ["https://foggy.example.test"], attrs
    assert attrs["storage_gb"] == ["300"], attrs
    assert db.scalar("SELECT state FROM instance_assignments WHERE user_id = ?",
                     user_id) == "active"
    assert db.scalar("SELECT allocated_seats FROM instances WHERE id = 1") == 1
    assert db.scalar("SELECT count(*) FROM user_groups WHERE user_id = ?", user_id) == 1


@pytest.mark.parametrize("mode", ["refuse", "503"])
def test_keycloak_outage_during_signup_is_outlasted(db, keycloak_double, workers, clock, mode):
    """Keycloak refuses connections (or answers 503 to everything) for five minutes."""
    kc = keycloak_double
    kc.add_group("cloud-foggy")
    kc.set_unmanaged_policy("ADMIN_EDIT")
    user_id, kc_id = signed_up_user(db, kc)
    w = workers(oidc_env(kc, **ADMIN))
    kc.down(mode)
    task_id = insert_task(db, SYNC, max_attempts=LONG_MAX_ATTEMPTS,
                          args=json.dumps({"user_id": user_id}))

    def during():
        # The failing attempts took the seat once; retrying them takes no other.
        assert db.scalar("SELECT allocated_seats FROM instances WHERE id = 1") == 1
        assert db.scalar("SELECT count(*) FROM user_groups") == 0

    last = ride_out_outage(db, kc, clock, task_id, w, SYNC, during)
    row = wait_for(lambda: (r := task_row(db, task_id)) and r["state"] == "done" and r,
                   timeout=60, what="the sync after the outage")
    assert row["attempts"] == last > 1
    assert_provisioned(db, kc, user_id, kc_id)
    assert db.scalar("SELECT total FROM task_outcomes WHERE name = ? AND outcome = 'retry'",
                     SYNC) == last - 1
    assert db.scalar("SELECT total FROM task_outcomes WHERE name = ? AND outcome = 'done'",
                     SYNC) == 1
    w.stop()


def test_keycloak_outage_during_webhook_signup(world, clock):
    """A customer pays while Keycloak refuses connections; the webhook is acknowledged and
    stored, process_stripe_event fails and is retried until Keycloak is back five minutes
    later, then creates the account, and the sync it enqueues provisions it."""
    db, kc = world.db, world.kc
    w = world.start_worker()
    kc.down("refuse")
    sub_id, event_id = world.pay(world.checkout("grace@example.test", "ghopper",
                                                [(NEXTCLOUD, 1), (STORAGE, 2)]))
    assert [d["status"] for d in world.st.deliveries if d["event_id"] == event_id] == [200]
    task_id = db.scalar("SELECT id FROM tasks WHERE name = 'process_stripe_event'")

    def during():
        assert world.event_status(event_id) not in ("processed", "ignored")
        assert kc.find_user("grace@example.test") is None
        assert db.scalar("SELECT count(*) FROM tasks WHERE name = ?", SYNC) == 0

    last = ride_out_outage(db, kc, clock, task_id, w, "process_stripe_event", during)
    world.wait_events([event_id])
    row = task_row(db, task_id)
    assert row["state"] == "done" and row["attempts"] == last > 1, row
    kc_user = kc.find_user("grace@example.test")
    assert kc_user is not None and kc_user["username"] == "ghopper"
    u = world.user("ghopper")
    assert u["keycloak_id"] == kc_user["id"] and u["stripe_subscription_id"] == sub_id
    wait_for(lambda: world.tasks(SYNC, "done"), timeout=60, what="the sync")
    assert world.seats(u["id"]) == [("nextcloud", "active")]
    assert any(g.startswith("nextcloud-") for g in world.kc_groups(kc_user["id"]))
    attrs = world.kc_user(kc_user["id"])["attributes"]
    assert attrs["has_nextcloud"] == ["true"] and attrs["storage_gb"] == ["200"], attrs
    w.stop()
