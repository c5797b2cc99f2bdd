"""Two admins (or one double click) acting on the same row at once, on SQLite and
PostgreSQL: a task retried, an event retried and a waiting seat allocated from several
requests in parallel change the row once, write one audit entry, and never answer 5xx; two
waiting seats racing for the last place: one gets it, the instance stays within its cap."""

from concurrent.futures import ThreadPoolExecutor

from admin_ops_support import NOW, add_event, add_task, add_user, audit, post
from admin_support import admin_app, admin_client, kc, keycloak_double  # noqa: F401 - fixtures

PARALLEL = 6


def race(client, paths):
    with ThreadPoolExecutor(max_workers=len(paths)) as pool:
        return list(pool.map(lambda p: post(client, p).status_code, paths))


def test_parallel_retries_of_one_task_and_one_event(admin_client, db):
    tid = add_task(db, "sync_user_post_checkout", "failed")
    eid = add_event(db, "evt_race", "failed")
    codes = race(admin_client, [f"/admin/tasks/{tid}/retry/"] * PARALLEL +
                 [f"/admin/stripe-events/{eid}/retry/"] * PARALLEL)
    assert codes == [303] * (2 * PARALLEL)
    assert len(audit(db, "task.retry")) == 1
    assert len(audit(db, "stripe_event.retry")) == 1
    assert db.scalar("SELECT count(*) FROM tasks WHERE name = 'process_stripe_event'") == 1


def test_two_waiting_seats_race_for_the_last_place(admin_client, db):
    db.exec("INSERT INTO products (id, name, slug, page, provisioner, created_at, updated_at) "
            "VALUES (1, 'Cloud', 'cloud', 'plan', 'group', 1, 1)")
    db.exec("INSERT INTO instances (id, product_id, name, base_url, soft_cap, allocation_cap, "
            "hard_cap, allocated_seats, created_at, updated_at) VALUES "
            "(1, 1, 'foggy', 'https://foggy.example.test', 1, 1, 1, 0, 1, 1)")
    ids = []
    for name in ("ann", "carl"):
        uid = add_user(db, name)
        db.exec("INSERT INTO instance_assignments (user_id, product_id, state, created_at) "
                "VALUES (?, 1, 'waiting_capacity', ?)", uid, NOW)
        ids.append(db.scalar("SELECT id FROM instance_assignments WHERE user_id = ?", uid))
    paths = [f"/admin/assignments/{i}/allocate/" for i in ids] * (PARALLEL // 2)
    assert race(admin_client, paths) == [303] * len(paths)
    assert db.scalar("SELECT allocated_seats FROM instances WHERE id = 1") == 1
    assert db.scalar("SELECT count(*) FROM instance_assignments WHERE state = 'active'") == 1
    assert len(audit(db, "assignment.allocate")) == 1
    assert db.scalar("SELECT count(*) FROM tasks WHERE name = 'sync_user_post_checkout'") == 1
