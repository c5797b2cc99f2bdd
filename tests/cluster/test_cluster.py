"""Two `usher serve` behind nginx and two `usher worker` on one PostgreSQL and Redis, under
concurrent customer journeys (journeys.py), with faults in the middle of the load:

    kill -9 of web1 (restarted 8 s later), kill -9 of worker1 while it holds leased tasks
    (not restarted: worker2 takes them over once their lease, TASK_LEASE_SECONDS=5, ends),
    a restart of PostgreSQL, and Redis stopped for REDIS_DOWN_SECONDS (30).

Afterwards every event is delivered once more (late duplicates) and the final state must be
the one the customers' orders determine, i.e. what a run without faults gives: every
customer provisioned exactly once (one Keycloak account, one local user, the items bought,
the Keycloak groups of the seats held), no instance over its cap and the seats that exist
all used, every task done, one password-setup mail per customer, and no session refused by
the web process it was not made on.

What each fault cost — failed requests by kind and status, and the delay until things
worked again — is printed and written to test-artifacts/cluster/report.txt. A failed
request is not an error here: the driver retries like a customer or Stripe would; whether a
database restart shows as 500 or 503 is counted, not asserted.

CLUSTER_SIGNUPS (default 40) sets the number of journeys; `make cluster-demo` runs 200.
CLUSTER_FAULTS=0 runs them without faults, CLUSTER_REDIS_DOWN_SECONDS shortens the outage.
The load is spread over LOAD_SECONDS whatever the number, so the faults land mid-load.
"""

import collections
import os
import random
import re
import shutil
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from cluster_stack import REPO, Stack
from journeys import IMMICH, NEXTCLOUD, Driver, Record, customer
from test_worker import DONE_RE, wait_for

pytestmark = [
    pytest.mark.skipif(shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(),
                       reason="nginx is not installed (scripts/bootstrap installs nginx-light)"),
    pytest.mark.skipif(shutil.which("redis-server") is None,
                       reason="redis-server is not installed"),
]

SIGNUPS = int(os.environ.get("CLUSTER_SIGNUPS", "40"))
LOAD_SECONDS = 50
REDIS_DOWN_SECONDS = int(os.environ.get("CLUSTER_REDIS_DOWN_SECONDS", "30"))
# CLUSTER_FAULTS=0: the same journeys and checks without the faults (the baseline run).
FAULTS = os.environ.get("CLUSTER_FAULTS", "1") != "0"
LEASE_SECONDS = 5
ARTIFACTS = REPO / "test-artifacts" / "cluster"
ID_GET = re.compile(r"^/admin/realms/[^/]+/users/[0-9a-f-]+$")


def usher_bin():
    return Path(os.environ.get("USHER_BIN") or REPO / "build" / "usher")


@pytest.fixture
def stack():
    s = Stack(usher_bin(), nextcloud_cap=max(1, SIGNUPS // 4), lease_seconds=LEASE_SECONDS)
    try:
        yield s.start()
    except Exception:
        print(s.logs())
        raise
    finally:
        s.stop()
        shutil.rmtree(s.root, ignore_errors=True)


def wait_until(predicate, what):
    return wait_for(predicate, timeout=300, what=what, interval=0.2)


class Faults:
    """The fault schedule, run in a thread; each fault notes what it measured."""

    def __init__(self, stack, db):
        self.stack, self.db = stack, db
        self.log = []  # {"name", "start", "end", notes...}
        self.error = None

    def note(self, name, start, **kw):
        self.log.append({"name": name, "start": start, **kw})

    def run(self, t0):
        if not FAULTS:
            return
        try:
            self._run(t0)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e

    def _at(self, t0, second):
        time.sleep(max(0.0, t0 + second - time.monotonic()))

    def _run(self, t0):
        s = self.stack
        self._at(t0, 6)
        start = time.monotonic()
        s.kill_web(0)
        self._at(t0, 14)
        s.restart_web(0)
        self.note("kill -9 web1 (restarted after 8 s)", start, restarted=time.monotonic())

        # Slow Keycloak reads for a moment, so that worker1 is killed while it holds tasks.
        orig = s.kc.app.dispatch

        def slow(req):
            if req.method == "GET" and ID_GET.match(req.path):
                time.sleep(1.5)
            return orig(req)

        self._at(t0, 16)
        s.kc.app.dispatch = slow
        self._at(t0, 18)
        start = time.monotonic()
        victim = s.workers[0]
        s.kill_worker(0)
        held = [r[0] for r in self.db.rows(
            "SELECT id FROM tasks WHERE state = 'running' AND worker LIKE ?",
            f"%:{victim.proc.pid}:%")]
        s.kc.app.dispatch = orig
        wait_until(lambda: not held or self.db.scalar(
            "SELECT count(*) FROM tasks WHERE id IN (%s) AND state = 'running'"
            % ",".join(str(i) for i in held)) == 0, "the killed worker's tasks to be taken over")
        self.note("kill -9 worker1 (holding tasks)", start, held=held,
                  taken_over=time.monotonic() - start if held else None)

        self._at(t0, 24)
        start = time.monotonic()
        s.restart_pg()
        self.note("PostgreSQL restart", start, downtime=time.monotonic() - start)

        self._at(t0, 32)
        start = time.monotonic()
        s.redis.stop()
        time.sleep(REDIS_DOWN_SECONDS)
        queued = self.db.scalar("SELECT count(*) FROM tasks WHERE state IN ('queued', 'running')")
        s.redis.start()
        back = time.monotonic()
        wait_until(lambda: self.db.scalar(
            "SELECT count(*) FROM tasks WHERE state IN ('queued', 'running')") == 0,
            "the queue to drain after Redis is back")
        self.note(f"Redis stopped for {REDIS_DOWN_SECONDS} s", start, back=back,
                  queued_when_back=queued, drained=time.monotonic() - back)


def mail_delays(stack, driver, t0, t1):
    """Seconds from payment to the password-setup mail, for payments in [t0, t1)."""
    wall = time.time() - time.monotonic()
    with stack.kc.lock:
        sent = {e["to"]: e["sent_at"] for e in stack.kc.state.emails}
    return sorted(sent[email] - paid for email, paid in driver.paid_at.items()
                  if email in sent and t0 + wall <= paid < t1 + wall)


def fault_report(faults, record, nginx_log, t_end, delays):
    """Per fault: failed attempts by kind and outcome in its window, the nginx retries on the
    other backend, and the delay from the fault to the last failure it caused."""
    lines = []
    windows = faults.log + [{"start": t_end}]
    wall = time.time() - time.monotonic()  # nginx logs wall-clock time
    for f, nxt in zip(faults.log, windows[1:]):
        t0, t1 = f["start"], nxt["start"]
        failed = [a for a in record.between(t0, t1) if a[3] != 200 and not (
            isinstance(a[3], int) and 300 <= a[3] < 500)]
        by = collections.Counter(f"{a[1]}→{a[2]}:{a[3]}" for a in failed)
        ngx = [e for e in nginx_log if t0 + wall <= e[0] < t1 + wall]
        retried = sum(1 for e in ngx if "," in e[4])
        ngx_5xx = collections.Counter(e[3] for e in ngx if e[3] >= 500)
        last = max((a[0] for a in failed), default=None)
        lines.append(f"{f['name']}:")
        lines.append(f"  failed attempts (client view): {sum(by.values())} "
                     f"{dict(sorted(by.items())) or ''}")
        lines.append(f"  nginx: {len(ngx)} requests, {retried} retried on the other backend, "
                     f"5xx to clients {dict(ngx_5xx) or 0}")
        lines.append("  last failure %s after the fault" %
                     (f"{last - t0:.1f} s" if last is not None else "— none"))
        d = delays(t0, t1)
        if d:
            lines.append(f"  payment → password-setup mail for the {len(d)} customers who paid "
                         f"meanwhile: median {d[len(d) // 2]:.1f} s, max {d[-1]:.1f} s")
        if "restarted" in f:
            lines.append(f"  web1 back after {f['restarted'] - t0:.1f} s")
        if "held" in f:
            took = f"{f['taken_over']:.1f} s" if f["taken_over"] is not None else "—"
            lines.append(f"  tasks held by the killed worker: {len(f['held'])}, "
                         f"all finished by worker2 after {took} (lease {LEASE_SECONDS} s)")
        if "downtime" in f:
            lines.append(f"  database down (stop + start) {f['downtime']:.1f} s")
        if "back" in f:
            lines.append(f"  tasks queued when Redis came back: {f['queued_when_back']}, "
                         f"queue drained {f['drained']:.1f} s later")
    return "\n".join(lines)


def expected_state(customers, cap):
    """The final state a fault-free run gives, from the orders alone."""
    n_nc = sum(1 for c in customers if any(p == NEXTCLOUD for p, _ in c["prices"]))
    seated = min(n_nc, 2 * cap)
    n_im = sum(1 for c in customers if any(p == IMMICH for p, _ in c["prices"]))
    return {
        "users": sorted((c["username"], c["email"], "active") for c in customers),
        "items": sorted((c["username"], p, q) for c in customers for p, q in c["prices"]),
        "nextcloud seats": seated, "nextcloud waiting": n_nc - seated, "immich seats": n_im,
        "keycloak accounts per email": {1}, "password mails per customer": {1},
        "tasks not done": [], "events not settled": [],
    }


def final_state(stack, db, customers):
    users = db.rows("SELECT username, email, subscription_status FROM users")
    items = db.rows("SELECT u.username, i.stripe_price_id, i.quantity FROM subscription_items i "
                    "JOIN users u ON u.id = i.user_id")
    seats = db.rows("SELECT p.slug, a.state, count(*) FROM instance_assignments a "
                    "JOIN instances n ON n.id = a.instance_id JOIN products p "
                    "ON p.id = n.product_id GROUP BY p.slug, a.state")
    seat = collections.Counter({(p, s): n for p, s, n in seats})
    waiting = db.scalar("SELECT count(*) FROM users WHERE id IN (SELECT user_id FROM "
                        "subscription_items WHERE stripe_price_id = ?) AND id NOT IN (SELECT "
                        "user_id FROM instance_assignments a JOIN instances n ON n.id = "
                        "a.instance_id JOIN products p ON p.id = n.product_id WHERE p.slug = "
                        "'nextcloud' AND a.state = 'active')", NEXTCLOUD)
    with stack.kc.lock:
        per_email = collections.Counter(u["email"] for u in stack.kc.state.users.values()
                                        if u.get("email"))
    with stack.mg.lock:
        mails = collections.Counter(str(m.get("to")) for m in stack.mg.state.messages
                                    if m.get("source") == "keycloak")
    return {
        "users": sorted(tuple(u) for u in users),
        "items": sorted(tuple(i) for i in items),
        "nextcloud seats": seat[("nextcloud", "active")], "nextcloud waiting": waiting,
        "immich seats": seat[("immich", "active")],
        "keycloak accounts per email": {per_email[c["email"]] for c in customers},
        "password mails per customer": {sum(n for to, n in mails.items() if c["email"] in to)
                                        for c in customers},
        "tasks not done": db.rows("SELECT id, name, state, last_error FROM tasks "
                                  "WHERE state <> 'done'"),
        "events not settled": db.rows("SELECT event_id, status FROM stripe_events "
                                      "WHERE status NOT IN ('processed', 'ignored')"),
    }


def test_cluster_journeys_with_faults(stack):
    try:
        run_and_check(stack)
    except BaseException:
        print(stack.logs())
        raise


def run_and_check(stack):
    from conftest import Db

    db = Db(stack.pg.url)
    customers = [customer(i) for i in range(SIGNUPS)]
    record = Record()
    driver = Driver(stack, record, seed=SIGNUPS)
    faults = Faults(stack, db)
    errors = []

    def run_one(c, at):
        time.sleep(max(0.0, at - time.monotonic()))
        try:
            driver.journey(c)
        except BaseException as e:  # noqa: BLE001 - collected and asserted below
            errors.append((c["username"], "".join(
                traceback.format_exception(e, limit=-3)).strip()))

    started = time.monotonic()
    t0 = started + 1
    fault_thread = threading.Thread(target=faults.run, args=(t0,), daemon=True)
    fault_thread.start()
    # A thread per journey: one blocked on its mail while Redis is down must not hold back
    # the payments scheduled after it.
    with ThreadPoolExecutor(max_workers=SIGNUPS) as pool:
        for k, c in enumerate(customers):
            pool.submit(run_one, c, t0 + LOAD_SECONDS * k / SIGNUPS)
    fault_thread.join(timeout=600)
    t_end = time.monotonic()
    assert faults.error is None, repr(faults.error)
    assert not errors, errors[:10]

    # Late duplicates: a quarter of all events once more, in random order, after the faults.
    late = random.Random(7).sample(driver.events, len(driver.events) // 4)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(driver.deliver, late))
    wait_until(lambda: db.scalar("SELECT count(*) FROM tasks WHERE state IN "
                                 "('queued', 'running')") == 0, "the queue to drain")
    t_done = time.monotonic()

    report = fault_report(faults, record, stack.nginx.access_log(), t_end,
                          lambda a, b: mail_delays(stack, driver, a, b))
    totals = collections.Counter(a[3] for a in record.attempts)
    before = mail_delays(stack, driver, t0 - 10,
                         faults.log[0]["start"] if faults.log else t_end)
    retried = db.rows("SELECT name, count(*) FROM tasks WHERE attempts > 1 GROUP BY name "
                      "ORDER BY name")
    both = sum(1 for s in driver.served_by.values() if len(s) == 2)
    summary = (f"{SIGNUPS} journeys ({len(driver.events)} events, {len(record.attempts)} "
               f"HTTP attempts: {dict(totals)}), load {t_end - t0:.0f} s, drained after "
               f"{t_done - t0:.0f} s, whole test {time.monotonic() - started:.0f} s\n"
               f"before the first fault: payment → password-setup mail median "
               f"{before[len(before) // 2] if before else 0:.1f} s\n"
               f"tasks that needed more than one attempt: {dict(retried) or 0}\n"
               f"sessions served by both web processes: {both} of {SIGNUPS}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "report.txt").write_text(summary + "\n" + report + "\n")
    print("\n" + summary + "\n" + report)

    assert record.broken_sessions == [], record.broken_sessions[:10]
    assert both >= SIGNUPS // 2, "sessions did not move between the web processes"
    # No task ran to completion twice (a killed worker's task is re-run, not finished twice).
    done = collections.Counter()
    for w in stack.workers:
        done.update(int(m.group(1)) for m in DONE_RE.finditer(w.log))
    assert [i for i, n in done.items() if n > 1] == []
    # No instance over its cap, and its count of seats is the assignments it has.
    over = db.rows("SELECT n.name, n.allocated_seats, n.allocation_cap, count(a.id) "
                   "FROM instances n LEFT JOIN instance_assignments a ON a.instance_id = n.id "
                   "AND a.state = 'active' GROUP BY n.id, n.name, n.allocated_seats, "
                   "n.allocation_cap HAVING count(a.id) > n.allocation_cap "
                   "OR count(a.id) <> n.allocated_seats")
    assert over == []
    # Each event stored once however often it came.
    assert db.scalar("SELECT count(*) FROM stripe_events") == len(set(driver.events))
    cap = max(1, SIGNUPS // 4)
    assert final_state(stack, db, customers) == expected_state(customers, cap)
    assert_groups(stack, db, customers)


def assert_groups(stack, db, customers):
    """Each customer's Keycloak groups are those of the seats they hold."""
    seats = collections.defaultdict(set)
    for username, group in db.rows(
            "SELECT u.username, n.name FROM instance_assignments a JOIN instances n "
            "ON n.id = a.instance_id JOIN users u ON u.id = a.user_id WHERE a.state = 'active'"):
        seats[username].add(group)
    groups_of = {f"nextcloud-{n}" for n in ("foggy", "cirrus")} | {"immich-main"}
    with stack.kc.lock:
        by_name = {u["username"]: u for u in stack.kc.state.users.values()}
        names = {g["id"]: g["name"] for g in stack.kc.state.groups.values()}
        wrong = []
        for c in customers:
            u = by_name[c["username"]]
            got = {names[g] for g in u["groups"]} & groups_of
            want = {("immich-" if n == "main" else "nextcloud-") + n for n in seats[c["username"]]}
            if got != want:
                wrong.append((c["username"], sorted(got), sorted(want)))
    assert wrong == [], wrong[:10]
