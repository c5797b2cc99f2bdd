"""`usher worker` on the Redis backend (TASK_BROKER_URL=redis://…), SQLite and PostgreSQL.

Each test starts its own throwaway redis-server on a free loopback port, without
persistence (`--save '' --appendonly no`), so a restart loses everything Redis held: the
stream, the consumer group and its pending entries. The tasks table is the record, so
nothing may be lost and nothing may run twice.
"""

import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import free_port
from test_worker import (Worker, assert_each_ran_once, enqueue_probes, task_row,  # noqa: F401
                         wait_for)
from test_worker import clock, migrated, workers  # noqa: F401 (fixtures)

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="redis-server is not installed")


class Redis:
    def __init__(self, tmp_path):
        self.port = free_port()
        self.dir = tmp_path / "redis"
        self.dir.mkdir()
        self.proc = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self._log = open(self.dir / "redis.log", "ab")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir)],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if getattr(self, "_log", None):
            self._log.close()

    def cli(self, *args):
        p = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True,
                           text=True, timeout=10)
        return p.stdout.strip()


@pytest.fixture
def redis(tmp_path):
    r = Redis(tmp_path).start()
    try:
        yield r
    finally:
        r.stop()


def done_count(db):
    return db.scalar("SELECT count(*) FROM tasks WHERE name = 'queue_probe' AND state = 'done'")


def test_redis_two_workers_drain_500_tasks_each_exactly_once(workers, run_usher, db, redis):
    env = {"TASK_BROKER_URL": redis.url, "WORKER_CONCURRENCY": 2}
    w1, w2 = workers(env), workers(env)
    assert "backend=redis" in w1.log
    enqueue_probes(run_usher, 500)
    wait_for(lambda: done_count(db) == 500, what="500 probes done")
    assert_each_ran_once(db, [w1, w2], 500)
    assert w1.done("queue_probe") and w2.done("queue_probe"), "one worker did all the work"
    assert db.scalar("SELECT count(*) FROM tasks WHERE relayed_at IS NULL "
                     "AND name = 'queue_probe'") == 0
    # Acknowledged entries are deleted: the stream holds no backlog.
    wait_for(lambda: redis.cli("XLEN", "usher:tasks") == "0", timeout=10, what="an empty stream")
    w1.stop()
    w2.stop()


def test_redis_restart_mid_run_loses_no_task(workers, run_usher, db, redis):
    env = {"TASK_BROKER_URL": redis.url, "WORKER_CONCURRENCY": 2}
    w1, w2 = workers(env), workers(env)
    enqueue_probes(run_usher, 500, sleep_ms=10)
    wait_for(lambda: done_count(db) >= 50, what="the first probes")
    redis.stop()  # everything Redis held is gone: stream, group, pending entries
    at_restart = done_count(db)
    time.sleep(1.5)
    redis.start()
    wait_for(lambda: done_count(db) == 500, what="all 500 probes after the restart")
    print(f"probes done when Redis stopped: {at_restart} of 500")
    assert at_restart < 500, "the restart came too late to test anything"
    assert_each_ran_once(db, [w1, w2], 500)
    log = w1.log + w2.log
    assert "redis unavailable" in log and "redis available again" in log
    assert "relaying queued tasks again" in log
    w1.stop()
    w2.stop()


def test_redis_killed_worker_task_is_taken_over(workers, run_usher, db, redis):
    env = {"TASK_BROKER_URL": redis.url, "WORKER_CONCURRENCY": 1, "TASK_LEASE_SECONDS": 2}
    victim = workers(env)
    first, _ = enqueue_probes(run_usher, 1, sleep_ms=4000)
    wait_for(lambda: (r := task_row(db, first)) and r["state"] == "running",
             what="the probe to start")
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait(timeout=10)
    rescuer = workers(env)
    row = wait_for(lambda: (r := task_row(db, first)) and r["state"] == "done" and r,
                   what="the task to be completed by the second worker")
    assert row["attempts"] == 2
    assert row["worker"].split(":")[1] == str(rescuer.proc.pid)
    assert victim.done("queue_probe") == []
    assert rescuer.done("queue_probe") == [first]
    rescuer.stop()


def test_redis_retry_is_relayed_when_due(workers, db, redis, clock):
    now = int(time.time())
    db.exec("INSERT INTO tasks (name, args, state, attempts, max_attempts, run_at, created_at, "
            "updated_at) VALUES ('no_such_task', '{}', 'queued', 0, 2, ?, ?, ?)",
            now - 1, now, now)
    task_id = db.scalar("SELECT max(id) FROM tasks")
    w = workers({"TASK_BROKER_URL": redis.url})
    row = wait_for(lambda: (r := task_row(db, task_id)) and r["attempts"] == 1
                   and r["state"] == "queued" and r["relayed_at"] is None and r,
                   what="the first failed attempt")
    time.sleep(1)
    assert task_row(db, task_id)["attempts"] == 1, "a delayed retry ran early"
    clock(row["run_at"] - row["updated_at"] + 1)
    wait_for(lambda: task_row(db, task_id)["state"] == "failed", timeout=60,
             what="the retry, then failed")
    assert task_row(db, task_id)["attempts"] == 2
    w.stop()


def test_redis_unreachable_at_start_then_recovers(workers, run_usher, db, tmp_path):
    r = Redis(tmp_path)
    try:
        w = workers({"TASK_BROKER_URL": r.url})
        enqueue_probes(run_usher, 5)
        time.sleep(1.5)
        assert done_count(db) == 0
        r.start()
        wait_for(lambda: done_count(db) == 5, what="the probes once Redis is up")
        w.stop()
    finally:
        r.stop()


def xreadgroup_calls(redis):
    m = re.search(r"cmdstat_xreadgroup:calls=(\d+)", redis.cli("INFO", "commandstats"))
    return int(m.group(1)) if m else 0


def test_redis_error_reply_is_backed_off_and_recovery_logged(workers, run_usher, db, redis):
    """A Redis that answers XREADGROUP with an error (here WRONGTYPE: the stream's key holds
    a string; after a failover, READONLY) is retried after a pause, like a lost connection,
    not in a tight loop; and the recovery is logged once it answers again."""
    w = workers({"TASK_BROKER_URL": redis.url, "WORKER_CONCURRENCY": 2})
    enqueue_probes(run_usher, 1)
    wait_for(lambda: done_count(db) == 1, what="the first probe")
    redis.cli("DEL", "usher:tasks")
    redis.cli("SET", "usher:tasks", "not a stream")
    wait_for(lambda: w.log.count('msg="redis unavailable"') == 2, timeout=10,
             what="both consumers to log the error")
    redis.cli("CONFIG", "RESETSTAT")
    time.sleep(2)
    calls = xreadgroup_calls(redis)
    # Two consumers pausing RECONNECT_MS (0.5 s) between attempts: about 8 in 2 s.
    assert calls <= 20, f"{calls} XREADGROUP calls in 2 s: a tight loop on an error reply"
    redis.cli("DEL", "usher:tasks")
    enqueue_probes(run_usher, 5)
    wait_for(lambda: done_count(db) == 6, what="the probes once the stream is back")

    def recovered():
        return set(re.findall(r'msg="redis available again" who=(\S+)', w.log)) - {"relay"}

    # A consumer that took no probe learns that Redis is back when its blocking read
    # (BLOCK_MS, 1 s) times out with an empty answer.
    wait_for(lambda: len(recovered()) == 2, timeout=10, what="both consumers to log recovery")
    w.stop()


def refuse_claims(db, on):
    """Makes the database fail every claim of a queue_probe (a trigger failing the UPDATE to
    'running'), or lets it claim them again."""
    when = "NEW.state = 'running' AND NEW.name = 'queue_probe'"
    if db.kind == "sqlite":
        db.exec(f"CREATE TRIGGER refuse_claim BEFORE UPDATE ON tasks WHEN {when} "
                "BEGIN SELECT RAISE(ABORT, 'claim refused by the test'); END" if on else
                "DROP TRIGGER refuse_claim")
    elif on:
        db.exec("CREATE FUNCTION refuse_claim() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'claim refused by the test'; END $$")
        db.exec("CREATE TRIGGER refuse_claim BEFORE UPDATE ON tasks FOR EACH ROW "
                f"WHEN ({when}) EXECUTE FUNCTION refuse_claim()")
    else:
        db.exec("DROP TRIGGER refuse_claim ON tasks")
        db.exec("DROP FUNCTION refuse_claim()")


def entries_of(redis, task_id):
    """The stream entries (their ids) that carry task_id."""
    lines = redis.cli("XRANGE", "usher:tasks", "-", "+").splitlines()
    # redis-cli prints each entry as: entry id, "id", task id.
    return [lines[i] for i in range(len(lines) - 2)
            if lines[i + 1] == "id" and lines[i + 2] == str(task_id)]


def test_redis_failed_claim_hands_the_entry_back_at_once(workers, run_usher, db, redis):
    """The database fails the claim of a task the consumer has just read from Redis: the
    entry goes back to the group at once, instead of staying pending under that consumer
    for a lease (here 10 minutes) until XAUTOCLAIM; it runs once when the database claims
    again, and its entry is deleted."""
    w = workers({"TASK_BROKER_URL": redis.url, "WORKER_CONCURRENCY": 1,
                 "TASK_LEASE_SECONDS": 600})
    refuse_claims(db, True)
    first, _ = enqueue_probes(run_usher, 1)
    # Each hand-back replaces the task's entry by a new one; left pending, it would keep its
    # first entry for the whole lease.
    seen = set()

    def handed_back_twice():
        seen.update(entries_of(redis, first))
        return len(seen) >= 3

    wait_for(handed_back_twice, timeout=30, interval=0.02,
             what="the entry to be handed back twice")
    assert "task claim failed; entry handed back to the queue" in w.log
    assert done_count(db) == 0
    row = task_row(db, first)
    assert row["state"] == "queued" and row["attempts"] == 0
    assert len(entries_of(redis, first)) == 1  # replaced, never doubled
    refuse_claims(db, False)
    wait_for(lambda: done_count(db) == 1, timeout=30, what="the probe once claims work again")
    assert_each_ran_once(db, [w], 1)
    wait_for(lambda: entries_of(redis, first) == [], timeout=10, what="its entry deleted")
    w.stop()
