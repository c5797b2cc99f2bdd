"""Seat capacity under real concurrency (SPEC §5, issue 5): 1,000 subscribers' provisioning
syncs drained by two `usher worker` processes, eight handler threads each, into instances
whose allocation caps add up to far fewer seats than there are users.

Instances of the one instance product (allocation.h has the rules):

    name    soft  alloc  hard  active  auto_allocate
    foggy     60    150   160  yes     yes
    misty    120    200   220  yes     yes
    rainy      0    100   100  yes     yes     (never "under its soft cap")
    sunny    300    300   300  yes     no      (manual seats only)
    windy    300    300   300  no      yes     (inactive)

so exactly N = 450 users get a seat and 550 wait (`waiting_capacity`). After the drain:
each automatic instance is at its allocation_cap and no further; sunny and windy have none;
every instance's allocated_seats equals its count of active assignments; every task ran
exactly once, without a retry. The soft-cap preference is read from the order in which
seats were taken: assignments are inserted while the product's allocation lock is held, so
their ids are the serialization order; replaying them, every seat went to the instance the
rule picks (under soft cap first, then fewest seats, then name), so the first 180 seats are
foggy 60 + misty 120 and rainy gets its first seat only after that.

Then capacity appears the way an administrator adds it (foggy's caps raised by 30 and a new
instance, sleety, with 20) and the periodic fill_waiting_seats job, one clock minute later,
seats exactly those 50 waiting users — the 50 oldest — and their syncs follow.

Keycloak: users need a keycloak_id for a sync to call Keycloak. With ids, the double sees
1,000 users' group memberships and attributes (four Admin API calls per user): about 8 s a
round here, against 2 s without, so 20 such rounds would take most of the three minutes this
file may use. (Most of those 8 s is the double answering a reused keep-alive connection
~40 ms late — Nagle's algorithm against delayed ACKs in its http.server; with TCP_NODELAY on
its sockets a Keycloak round takes ~2.5 s and PG_KEYCLOAK_ROUNDS could be 20.) So: SQLite
runs once with Keycloak ids (and the fill); PostgreSQL runs the concurrent phase PG_ROUNDS =
20 times with fresh data each time (a schema of its own per round, in the same cluster, and
an emptied realm): round 1 with Keycloak ids (and the fill), the others seats only — users
without keycloak_id get seats and local groups and cause no remote call, which the double's
request log confirms.

Redis (TASK_BROKER_URL=redis://…, issue 5): test_capacity_redis runs the SQLite test once
more, and PostgreSQL's first round once, with both workers taking their tasks through a
throwaway redis-server (test_worker_redis.Redis): the same drain, invariants, soft-cap order,
Keycloak view and fill. One round on PostgreSQL: the allocator's locking is the database's
whichever broker delivers the task ids, so the 19 seat-only rounds add little there.

Faults (a Keycloak outage during a signup, a rolled-back enqueue) are in test_faults.py.
"""

import json
import re
import shutil
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, Db

sys.path.insert(0, str(REPO))
from devstack.doubles.pytest_plugin import keycloak_double  # noqa: E402,F401 - fixture
from test_oidc import oidc_env  # noqa: E402
from test_provisioning_sync import ADMIN, seed  # noqa: E402
from test_worker import assert_each_ran_once, wait_for  # noqa: E402
from test_worker import clock, migrated, workers  # noqa: E402,F401 - fixtures
from test_worker_redis import redis  # noqa: E402,F401 - fixture

USERS = 1000
PG_ROUNDS = 20
# Rounds with Keycloak ids on PostgreSQL (the docstring says why not all of them).
PG_KEYCLOAK_ROUNDS = 1
CONCURRENCY = 8
SYNC = "sync_user_post_checkout"
LONG_MAX_ATTEMPTS = 11  # db/task_store.h TASK_LONG_MAX_ATTEMPTS

# (name, soft, alloc, hard, is_active, auto_allocate); foggy is seed()'s instance 1.
INSTANCES = [
    ("foggy", 60, 150, 160, True, True),
    ("misty", 120, 200, 220, True, True),
    ("rainy", 0, 100, 100, True, True),
    ("sunny", 300, 300, 300, True, False),
    ("windy", 300, 300, 300, False, True),
]
SEATS = sum(alloc for _, _, alloc, _, active, auto in INSTANCES if active and auto)
RAISE_FOGGY = 30
SLEETY = ("sleety", 10, 20, 20)  # the instance added while users wait
FILLED = RAISE_FOGGY + SLEETY[2]


def base_url(name):
    return f"https://{name}.example.test"


def insert_many(db, sql, rows):
    """One transaction for all rows: the 1,000 tasks become visible to the workers at once."""
    with db.connect() as conn:
        if db.kind == "sqlite":
            conn.executemany(sql, rows)
        else:
            with conn.cursor() as cur:
                cur.executemany(db._sql(sql), rows)


def seed_instances(db, kc):
    seed(db)  # products cloud (group provisioner, requires an instance) and storage; foggy
    for i, (name, soft, alloc, hard, active, auto) in enumerate(INSTANCES, start=1):
        if i > 1:
            db.exec("INSERT INTO instances (id, product_id, name, base_url, created_at, "
                    "updated_at) VALUES (?, 1, ?, ?, 1, 1)", i, name, base_url(name))
            db.exec("INSERT INTO groups (id, name) VALUES (?, ?)", i, "cloud-" + name)
            db.exec("INSERT INTO instance_groups (instance_id, group_id) VALUES (?, ?)", i, i)
        db.exec("UPDATE instances SET soft_cap = ?, allocation_cap = ?, hard_cap = ?, "
                "is_active = ?, auto_allocate = ? WHERE id = ?",
                soft, alloc, hard, active, auto, i)
    for name, *_ in INSTANCES + [SLEETY]:
        kc.add_group("cloud-" + name)


def seed_users(db, kc, with_keycloak):
    """USERS active subscribers of the cloud plan; with_keycloak: each linked to a user of
    the double. Returns {local id: keycloak id or None}."""
    now = int(time.time())
    users = {}
    for uid in range(1, USERS + 1):
        users[uid] = kc.add_user(f"user{uid}", email=f"user{uid}@usher.test")["id"] \
            if with_keycloak else None
    insert_many(db, "INSERT INTO users (id, username, email, date_joined, subscription_status, "
                "keycloak_id) VALUES (?, ?, ?, ?, 'active', ?)",
                [(uid, f"user{uid}", f"user{uid}@usher.test", now, kc_id)
                 for uid, kc_id in users.items()])
    insert_many(db, "INSERT INTO subscription_items (user_id, product_id, stripe_price_id, "
                "quantity) VALUES (?, 1, 'price_cloud', 1)", [(uid,) for uid in users])
    return users


def enqueue_syncs(db, user_ids):
    """The outbox rows task_enqueue writes for sync_user_post_checkout, in one commit."""
    now = int(time.time())
    insert_many(db, "INSERT INTO tasks (name, args, state, attempts, max_attempts, run_at, "
                "created_at, updated_at) VALUES (?, ?, 'queued', 0, ?, ?, ?, ?)",
                [(SYNC, json.dumps({"user_id": uid}), LONG_MAX_ATTEMPTS, now - 1, now, now)
                 for uid in user_ids])


def syncs_finished(db, expected):
    """True once `expected` syncs are done; fails at once on a retry or a failure (the
    allocator retries its own conflicts, so under load a sync must still succeed first
    time), instead of waiting for a retry that the test clock would only bring later."""
    bad = db.rows("SELECT id, state, attempts, last_error FROM tasks WHERE name = ? "
                  "AND (state = 'failed' OR last_error IS NOT NULL)", SYNC)
    assert bad == [], f"syncs failed under concurrency: {bad[:5]}"
    return db.scalar("SELECT count(*) FROM tasks WHERE name = ? AND state = 'done'",
                     SYNC) == expected


def instance_rows(db):
    return db.dict_rows(
        "SELECT i.id, i.name, i.soft_cap, i.allocation_cap, i.hard_cap, i.is_active, "
        "i.auto_allocate, i.allocated_seats, (SELECT count(*) FROM instance_assignments a "
        "WHERE a.instance_id = i.id AND a.state = 'active') AS active FROM instances i "
        "ORDER BY i.id")


def check_invariants(db, expected_active):
    """The capacity invariants; returns {instance name: active seats}."""
    seats = {}
    for r in instance_rows(db):
        assert r["allocated_seats"] == r["active"], r
        assert r["active"] <= r["allocation_cap"] <= r["hard_cap"], r
        if not (r["is_active"] and r["auto_allocate"]):
            assert r["active"] == 0, f"a seat was taken automatically on {r['name']}"
        seats[r["name"]] = r["active"]
    states = dict(db.rows("SELECT state, count(*) FROM instance_assignments GROUP BY state"))
    assert states.get("active", 0) == expected_active, states
    assert states.get("waiting_capacity", 0) == USERS - expected_active, states
    assert db.scalar("SELECT count(*) FROM instance_assignments WHERE state = "
                     "'waiting_capacity' AND instance_id IS NOT NULL") == 0
    # Local groups follow the seats exactly: one group per seated user, its instance's.
    assert db.scalar("SELECT count(*) FROM user_groups") == expected_active
    assert db.scalar(
        "SELECT count(*) FROM instance_assignments a JOIN instance_groups ig "
        "ON ig.instance_id = a.instance_id JOIN user_groups ug ON ug.user_id = a.user_id "
        "AND ug.group_id = ig.group_id WHERE a.state = 'active'") == expected_active
    return seats


def check_soft_cap_order(db):
    """Replays the seats in the order they were taken (assignment ids, see the docstring):
    each went where the rule sends it, given the seats taken before it."""
    caps = {r["id"]: r for r in instance_rows(db) if r["is_active"] and r["auto_allocate"]}
    count = {i: 0 for i in caps}
    order = db.rows("SELECT instance_id FROM instance_assignments ORDER BY id")
    soft_total = sum(c["soft_cap"] for c in caps.values())
    for n, (instance_id,) in enumerate(order, start=1):
        room = [i for i in caps if count[i] < caps[i]["allocation_cap"]]
        if not room:
            assert instance_id is None, f"seat {n} taken with every instance full"
            continue
        want = min(room, key=lambda i: (count[i] >= caps[i]["soft_cap"], count[i],
                                        caps[i]["name"]))
        assert instance_id == want, (
            f"seat {n} went to instance {instance_id}, the rule picks {want}; "
            f"seats before it: {count}")
        count[instance_id] += 1
        if n == soft_total:
            assert all(count[i] == caps[i]["soft_cap"] for i in caps), count


def keycloak_view(kc):
    """{username: (group names, attributes)} as the double holds them."""
    with kc.lock:
        names = {g["id"]: g["name"] for g in kc.state.groups.values()}
        return {u["username"]: ({names[g] for g in u["groups"]},
                                {k: list(v) for k, v in u["attributes"].items()})
                for u in kc.state.users.values() if u["username"].startswith("user")}


def check_keycloak(db, kc):
    seat = dict(db.rows("SELECT a.user_id, i.name FROM instance_assignments a "
                        "LEFT JOIN instances i ON i.id = a.instance_id"))
    view = keycloak_view(kc)
    assert len(view) == USERS
    for uid in range(1, USERS + 1):
        groups, attrs = view[f"user{uid}"]
        assert attrs.get("has_cloud") == ["true"], (uid, attrs)
        if seat[uid]:
            assert groups == {"cloud-" + seat[uid]}, (uid, groups)
            assert attrs.get("cloud_instance") == [base_url(seat[uid])], (uid, attrs)
        else:
            assert groups == set(), (uid, groups)
            assert "cloud_instance" not in attrs, (uid, attrs)


def drain(db, start_worker, env, with_keycloak, kc):
    """One concurrent phase on a fresh, migrated database; returns the two workers."""
    seed_instances(db, kc)
    users = seed_users(db, kc, with_keycloak)
    w1, w2 = start_worker(env), start_worker(env)
    t0 = time.monotonic()
    enqueue_syncs(db, list(users))
    wait_for(lambda: syncs_finished(db, USERS), what=f"{USERS} syncs", interval=0.25)
    elapsed = time.monotonic() - t0

    assert_each_ran_once(db, [w1, w2], USERS, name=SYNC)
    for w in (w1, w2):
        assert w.done(SYNC), "one worker did all the work"
        pid = str(w.proc.pid)
        threads = db.scalar("SELECT count(DISTINCT worker) FROM tasks WHERE name = ? "
                            "AND worker LIKE ?", SYNC, f"%:{pid}:%")
        assert threads >= 2, f"worker {pid} ran its tasks on {threads} thread(s)"
    seats = check_invariants(db, SEATS)
    expected = {name: (alloc if active and auto else 0)
                for name, _, alloc, _, active, auto in INSTANCES}
    assert seats == expected
    check_soft_cap_order(db)
    if with_keycloak:
        check_keycloak(db, kc)
    else:
        assert kc.admin_requests == [], "a user without keycloak_id caused Keycloak calls"
    print(f"{db.kind}: {USERS} syncs in {elapsed:.1f} s "
          f"({'with' if with_keycloak else 'without'} Keycloak ids)")
    return w1, w2


def between_fill_runs(db, clock_file):
    """Waits until the periodic fill is idle and its next slot is far enough away that the
    capacity change is committed between two runs. A run that started before the change
    and saw it half-way would seat later waiting users before the ones it had already
    passed over — a legitimate outcome, but not the one this test pins down."""
    def quiet():
        usher_now = time.time() + int(Path(clock_file).read_text().strip() or 0)
        busy = db.scalar("SELECT count(*) FROM tasks WHERE name = 'fill_waiting_seats' "
                         "AND state IN ('queued', 'running')")
        return 3 < usher_now % 60 < 45 and busy == 0
    wait_for(quiet, timeout=90, what="a quiet moment between fill runs", interval=0.2)


def fill_after_raise(db, kc, clock, clock_file, logs):
    """Capacity appears; the next fill_waiting_seats run seats exactly FILLED waiting users,
    the oldest ones."""
    between_fill_runs(db, clock_file)
    waiting = [r[0] for r in db.rows("SELECT user_id FROM instance_assignments "
                                     "WHERE state = 'waiting_capacity' ORDER BY created_at, id")]
    now = int(time.time())
    with db.connect() as conn:  # one commit, so one fill run sees both changes
        conn.execute(db._sql("UPDATE instances SET allocation_cap = allocation_cap + ?, "
                             "hard_cap = hard_cap + ?, updated_at = ? WHERE name = 'foggy'"),
                     (RAISE_FOGGY, RAISE_FOGGY, now))
        name, soft, alloc, hard = SLEETY
        conn.execute(db._sql("INSERT INTO instances (id, product_id, name, base_url, soft_cap, "
                             "allocation_cap, hard_cap, created_at, updated_at) "
                             "VALUES (6, 1, ?, ?, ?, ?, ?, ?, ?)"),
                     (name, base_url(name), soft, alloc, hard, now, now))
        conn.execute(db._sql("INSERT INTO groups (id, name) VALUES (6, ?)"), ("cloud-" + name,))
        conn.execute(db._sql("INSERT INTO instance_groups (instance_id, group_id) "
                             "VALUES (6, 6)"))
    clock(61)  # the next slot of the periodic job
    wait_for(lambda: db.scalar("SELECT count(*) FROM instance_assignments "
                               "WHERE state = 'active'") == SEATS + FILLED,
             what="the waiting seats to be filled")
    wait_for(lambda: syncs_finished(db, USERS + FILLED), what="the syncs after seating")
    seats = check_invariants(db, SEATS + FILLED)
    assert seats["foggy"] == 150 + RAISE_FOGGY and seats["sleety"] == SLEETY[2], seats
    seated = {r[0] for r in db.rows("SELECT user_id FROM instance_assignments "
                                    "WHERE state = 'active'")}
    assert seated & set(waiting) == set(waiting[:FILLED]), "not the oldest waiting users"
    def filled():  # the workers' logs are read from their pipes, which may lag under load
        return sum(int(n) for log in logs
                   for n in re.findall(r'msg="waiting seats filled" count=(\d+)', log()))
    wait_for(lambda: filled() >= FILLED, timeout=30, what="the fill's log line")
    assert filled() == FILLED
    if kc is not None:
        check_keycloak(db, kc)


def worker_env(kc, url=None):
    env = dict(oidc_env(kc, **ADMIN), WORKER_CONCURRENCY=CONCURRENCY)
    if url:
        env["DATABASE_URL"] = url
    return env


def stop_all(ws):
    for w in ws:
        w.stop()


def fresh_keycloak(kc):
    """An empty realm (its request log too), keeping Usher's clients."""
    kc.reset()
    kc.set_unmanaged_policy("ADMIN_EDIT")


@pytest.mark.backend("sqlite")
def test_capacity_sqlite(db, keycloak_double, workers, clock, base_env):
    fresh_keycloak(keycloak_double)
    ws = drain(db, workers, worker_env(keycloak_double), True, keycloak_double)
    fill_after_raise(db, keycloak_double, clock, base_env["USHER_TEST_CLOCK_FILE"],
                     [lambda w=w: w.log for w in ws])
    stop_all(ws)


@pytest.mark.backend("postgres")
def test_capacity_postgres_20_rounds(db, keycloak_double, workers, clock, run_usher, base_env):
    t0 = time.monotonic()
    for n in range(1, PG_ROUNDS + 1):
        fresh_keycloak(keycloak_double)
        with_keycloak = n <= PG_KEYCLOAK_ROUNDS
        if n == 1:  # the test's own database; then the fill
            ws = drain(db, workers, worker_env(keycloak_double), with_keycloak,
                       keycloak_double)
            fill_after_raise(db, keycloak_double, clock, base_env["USHER_TEST_CLOCK_FILE"],
                             [lambda w=w: w.log for w in ws])
            stop_all(ws)
            continue
        schema = f"capacity_round{n}"  # fresh data, same cluster
        db.exec(f"CREATE SCHEMA {schema}")
        url = db.url + ("&" if "?" in db.url else "?") + f"options=-csearch_path%3D{schema}"
        rc, out, err = run_usher(["migrate"], env={"DATABASE_URL": url}, timeout=60)
        assert rc == 0, (out, err)
        round_db = Db(url)
        assert round_db.scalar("SELECT count(*) FROM users") == 0
        stop_all(drain(round_db, workers, worker_env(keycloak_double, url), with_keycloak,
                       keycloak_double))
    print(f"postgres: {PG_ROUNDS} rounds in {time.monotonic() - t0:.0f} s")


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_capacity_redis(redis, db, keycloak_double, workers, clock, base_env):
    fresh_keycloak(keycloak_double)
    env = dict(worker_env(keycloak_double), TASK_BROKER_URL=redis.url)
    ws = drain(db, workers, env, True, keycloak_double)
    for w in ws:
        assert "backend=redis" in w.log
    fill_after_raise(db, keycloak_double, clock, base_env["USHER_TEST_CLOCK_FILE"],
                     [lambda w=w: w.log for w in ws])
    # Every delivery was acknowledged and deleted (periodic jobs may pass through).
    wait_for(lambda: redis.cli("XLEN", "usher:tasks") == "0", timeout=10,
             what="an empty stream")
    stop_all(ws)
