"""`usher worker` and `usher task …` on the database backend (SPEC §8), SQLite and PostgreSQL.

Workers are real processes of the binary. Tasks are `queue_probe` tasks (the built-in probe
that `usher task probe` enqueues; args {"sleep_ms": N} keep one busy), the built-in `cleanup`
periodic job, and rows naming a handler this version does not have (how a task of a newer
version, or a typo, looks to a worker). Time is moved with the USHER_TEST_CLOCK_FILE offset,
never slept through.

Each task's execution is counted from the workers' logs: every handler run that finishes logs
exactly one outcome line with the task id, so "exactly once" is one `task done` line per id
across all workers, together with attempts = 1 on the row (a claim increments it).
"""

import collections
import re
import signal
import subprocess
import time

import pytest

from conftest import merge_env

DONE_RE = re.compile(r'msg="task done" id=(\d+) name="([^"]*)"')
TIMEOUT = 180  # generous: the ASan build is several times slower


class Worker:
    """One running `usher worker` with its log file."""

    def __init__(self, binary, env, cwd, log_path):
        self.binary, self.env, self.cwd, self.log_path = binary, env, cwd, log_path
        self.proc = None

    def start(self, timeout=30):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(self.binary), "worker"], env=self.env, cwd=self.cwd,
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while "worker started" not in self.log:
            if self.proc.poll() is not None:
                raise RuntimeError(f"usher worker exited with {self.proc.returncode}:\n{self.log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"usher worker did not start in {timeout} s:\n{self.log}")
            time.sleep(0.05)
        return self

    @property
    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def done(self, name=None):
        """Ids of the tasks this worker logged as done (with repeats)."""
        return [int(m.group(1)) for m in DONE_RE.finditer(self.log)
                if name is None or m.group(2) == name]

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout):
        return self.proc.wait(timeout=timeout)

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=timeout)
        assert rc == 0, f"usher worker exited with {rc}:\n{self.log[-4000:]}"
        return rc

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if getattr(self, "_log", None):
            self._log.close()


@pytest.fixture
def migrated(run_usher):
    rc, out, err = run_usher(["migrate"], timeout=60)
    assert rc == 0, (out, err)


@pytest.fixture
def workers(request, usher_bin, base_env, workdir, tmp_path, migrated):
    """workers(env_overrides=None) -> a started Worker; all are stopped at the end."""
    started = []

    def _start(env=None):
        n = len(started) + 1
        w = Worker(usher_bin, merge_env(base_env, env), workdir, tmp_path / f"worker{n}.log")
        started.append(w)
        return w.start()

    yield _start

    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for i, w in enumerate(started, 1):
        if w.proc and w.proc.poll() is None:
            w.proc.send_signal(signal.SIGTERM)
            try:
                w.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        w.kill()
        if failed:
            print(f"--- worker{i} log (exit {w.proc.returncode if w.proc else None}) ---")
            print(w.log[-6000:])


@pytest.fixture
def clock(base_env):
    """clock(seconds) moves the binaries' clock forward (cumulative) and waits until seen."""
    path = base_env["USHER_TEST_CLOCK_FILE"]
    state = {"offset": 0}

    def _advance(seconds):
        state["offset"] += int(seconds)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{state['offset']}\n")
        import os

        os.replace(tmp, path)
        time.sleep(1.1)  # the binary re-reads the file at most once per real second

    return _advance


def wait_for(predicate, timeout=TIMEOUT, what="condition", interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def enqueue_probes(run_usher, count, sleep_ms=0):
    rc, out, err = run_usher(["task", "probe", "--count", str(count), "--sleep-ms",
                              str(sleep_ms), "--no-wait"], timeout=120)
    assert rc == 0, (out, err)
    m = re.search(r"ids (\d+)\.\.(\d+)", out)
    assert m, out
    return int(m.group(1)), int(m.group(2))


def insert_task(db, name, max_attempts=4, args="{}"):
    now = int(time.time())
    db.exec("INSERT INTO tasks (name, args, state, attempts, max_attempts, run_at, created_at, "
            "updated_at) VALUES (?, ?, 'queued', 0, ?, ?, ?, ?)",
            name, args, max_attempts, now - 1, now, now)
    return db.scalar("SELECT max(id) FROM tasks WHERE name = ?", name)


def task_row(db, task_id):
    rows = db.dict_rows("SELECT * FROM tasks WHERE id = ?", task_id)
    return rows[0] if rows else None


def assert_each_ran_once(db, all_workers, count, name="queue_probe"):
    # A worker logs "task done" just after the commit the caller waited for: let the last
    # lines reach the log files before counting them.
    wait_for(lambda: sum(len(w.done(name)) for w in all_workers) >= count, timeout=30,
             what=f"{count} 'task done' log lines")
    done = collections.Counter()
    for w in all_workers:
        done.update(w.done(name))
    ids = [r[0] for r in db.rows("SELECT id FROM tasks WHERE name = ?", name)]
    assert len(ids) == count
    twice = {i: n for i, n in done.items() if n != 1}
    assert not twice, f"tasks run more than once: {sorted(twice.items())[:10]}"
    assert sorted(done) == sorted(ids), "a task finished without a log line, or vice versa"
    bad = db.rows("SELECT id, state, attempts FROM tasks WHERE name = ? "
                  "AND (state <> 'done' OR attempts <> 1)", name)
    assert bad == [], bad[:10]


# --- draining under concurrency ------------------------------------------------------------

def test_two_workers_drain_500_tasks_each_exactly_once(workers, run_usher, db):
    w1 = workers({"WORKER_CONCURRENCY": 2})
    w2 = workers({"WORKER_CONCURRENCY": 2})
    enqueue_probes(run_usher, 500)
    wait_for(lambda: db.scalar("SELECT count(*) FROM tasks WHERE name = 'queue_probe' "
                               "AND state = 'done'") == 500, what="500 probes done")
    assert_each_ran_once(db, [w1, w2], 500)
    assert w1.done("queue_probe") and w2.done("queue_probe"), "one worker did all the work"
    assert db.scalar("SELECT total FROM task_outcomes WHERE name = 'queue_probe' "
                     "AND outcome = 'done'") == 500
    w1.stop()
    w2.stop()


def test_probe_command_waits_for_a_worker(workers, run_usher):
    rc, out, err = run_usher(["task", "probe", "--timeout", "2"])
    assert rc == 1, (out, err)  # no worker yet
    assert "usher worker" in out
    workers()
    rc, out, err = run_usher(["task", "probe", "--count", "3", "--timeout", "60"])
    assert rc == 0, (out, err)
    assert "3 done" in out


# --- leases ----------------------------------------------------------------------------------

def test_killed_worker_task_is_completed_once_by_another(workers, run_usher, db):
    env = {"TASK_LEASE_SECONDS": 2, "WORKER_CONCURRENCY": 1}
    victim = workers(env)
    first, _ = enqueue_probes(run_usher, 1, sleep_ms=4000)
    row = wait_for(lambda: (r := task_row(db, first)) and r["state"] == "running" and r,
                   what="the probe to start")
    assert row["worker"].split(":")[1] == str(victim.proc.pid)
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait(timeout=10)

    rescuer = workers(env)
    row = wait_for(lambda: (r := task_row(db, first)) and r["state"] == "done" and r,
                   what="the task to be completed by the second worker")
    assert row["attempts"] == 2
    assert row["worker"].split(":")[1] == str(rescuer.proc.pid)
    assert victim.done("queue_probe") == []
    assert rescuer.done("queue_probe") == [first]
    assert "lease expired" in rescuer.log
    assert db.scalar("SELECT total FROM task_outcomes WHERE name = 'queue_probe' "
                     "AND outcome = 'expired'") == 1
    rescuer.stop()


# --- retries ---------------------------------------------------------------------------------

def wait_attempt(db, task_id, attempts, state=None):
    def ok():
        r = task_row(db, task_id)
        return r if r and r["attempts"] == attempts and r["state"] == (state or "queued") \
            and r["lease_until"] is None else None
    return wait_for(ok, timeout=60, what=f"attempt {attempts} of task {task_id}")


def test_retry_schedule_failed_kept_and_cli_retry(workers, run_usher, db, clock):
    task_id = insert_task(db, "no_such_task", max_attempts=4)
    w = workers()
    expected = [(30, 1), (60, 2), (120, 3)]
    for nominal, attempt in expected:
        row = wait_attempt(db, task_id, attempt)
        delay = row["run_at"] - row["updated_at"]
        assert 0.8 * nominal - 1 <= delay <= 1.2 * nominal + 1, (attempt, delay)
        assert "no handler registered" in row["last_error"]
        clock(delay + 1)
    row = wait_attempt(db, task_id, 4, state="failed")
    assert row["max_attempts"] == 4
    assert "task failed for good" in w.log
    assert re.search(rf'id={task_id} name="no_such_task" attempt=1/4 retry_in=\d+s', w.log)

    # Kept, listed, counted.
    rc, out, err = run_usher(["task", "list", "--failed"])
    assert rc == 0, err
    assert re.search(rf"^{task_id}\s+no_such_task\s+failed\s+4/4", out, re.M), out
    assert "1 failed task" in out
    assert db.scalar("SELECT total FROM task_outcomes WHERE name = 'no_such_task' "
                     "AND outcome = 'retry'") == 3
    assert db.scalar("SELECT total FROM task_outcomes WHERE name = 'no_such_task' "
                     "AND outcome = 'failed'") == 1

    # An operator retry gives it a fresh set of attempts at once.
    rc, out, err = run_usher(["task", "retry", str(task_id)])
    assert rc == 0, (out, err)
    row = wait_attempt(db, task_id, 1)
    assert row["state"] == "queued"
    rc, out, err = run_usher(["task", "retry", "987654"])
    assert rc == 1 and "not found" in err
    rc, out, err = run_usher(["task", "retry", "abc"])
    assert rc == 2
    w.stop()


def test_task_max_retries_sets_the_default_attempts(db, run_usher, migrated):
    """TASK_MAX_RETRIES=6: a task enqueued with the default policy gets 7 attempts."""
    rc, out, err = run_usher(["task", "probe", "--count", "1", "--no-wait"],
                             env={"TASK_MAX_RETRIES": "6"})
    assert rc == 0, err
    assert db.scalar("SELECT max_attempts FROM tasks WHERE name = 'queue_probe'") == 7


# --- stopping --------------------------------------------------------------------------------

def sigterm_finishes_the_running_task(process, run_usher, db):
    """SIGTERM to a process running a worker (usher worker, or usher serve with
    WORKER_IN_SERVE) while a probe runs: the probe finishes, nothing new is claimed, exit 0.
    Returns the process's log."""
    first, _ = enqueue_probes(run_usher, 1, sleep_ms=2500)
    wait_for(lambda: (r := task_row(db, first)) and r["state"] == "running",
             what="the probe to start")
    process.signal(signal.SIGTERM)
    time.sleep(0.5)
    assert process.proc.poll() is None, "the process exited with a task running"
    late, _ = enqueue_probes(run_usher, 1)
    assert process.wait(timeout=30) == 0, process.log[-3000:]
    assert task_row(db, first)["state"] == "done"
    assert task_row(db, late)["state"] == "queued", "a stopping worker claimed a new task"
    log = process.log
    assert log.index(f'msg="task done" id={first}') < log.index("worker stopped")
    return log


def test_sigterm_finishes_the_running_task_and_exits_0(workers, run_usher, db):
    sigterm_finishes_the_running_task(workers({"WORKER_CONCURRENCY": 1}), run_usher, db)


def test_sigint_when_idle_exits_promptly(workers):
    w = workers()
    t0 = time.monotonic()
    w.signal(signal.SIGINT)
    assert w.wait(timeout=15) == 0
    assert time.monotonic() - t0 < 5


# --- periodic jobs ---------------------------------------------------------------------------

def test_periodic_cleanup_runs_once_across_two_workers(workers, db, clock):
    w1, w2 = workers(), workers()

    def cleanup_done(n):
        return db.scalar("SELECT count(*) FROM tasks WHERE name = 'cleanup' "
                         "AND state = 'done'") == n

    wait_for(lambda: cleanup_done(1), what="the first cleanup")
    time.sleep(2.5)  # both workers' schedulers have ticked a few more times
    assert db.scalar("SELECT count(*) FROM tasks WHERE name = 'cleanup'") == 1
    clock(3600)
    wait_for(lambda: cleanup_done(2), what="the next hour's cleanup")
    time.sleep(2.5)
    assert db.scalar("SELECT count(*) FROM tasks WHERE name = 'cleanup'") == 2
    runs = w1.done("cleanup") + w2.done("cleanup")
    assert len(runs) == 2 and len(set(runs)) == 2, runs
    assert 'msg="cleanup"' in w1.log + w2.log


# --- misuse ----------------------------------------------------------------------------------

def test_worker_refuses_an_unmigrated_database(run_usher):
    rc, out, err = run_usher(["worker"], timeout=30)
    assert rc == 2, (out, err)
    assert "usher migrate" in err


def test_task_command_usage(run_usher, migrated):
    for args in (["task"], ["task", "frob"], ["task", "list", "--state", "lost"],
                 ["task", "probe", "--count", "0"]):
        rc, out, err = run_usher(args)
        assert rc == 2, (args, out, err)
    rc, out, err = run_usher(["task", "list"])
    assert rc == 0 and "0 tasks shown" in out, (out, err)


def test_bad_worker_settings_are_configuration_errors(run_usher):
    rc, out, err = run_usher(["worker"], env={"WORKER_CONCURRENCY": "0"})
    assert rc == 2 and "WORKER_CONCURRENCY" in err
    rc, out, err = run_usher(["worker"], env={"TASK_RETRY_DELAY": "soon"})
    assert rc == 2 and "TASK_RETRY_DELAY" in err


# --- the worker inside usher serve (WORKER_IN_SERVE) ----------------------------------------

def test_serve_with_worker_in_serve_runs_tasks_and_finishes_them_at_a_stop(usher, run_usher, db):
    server = usher({"WORKER_IN_SERVE": "true", "WORKER_CONCURRENCY": "1"})
    assert "worker started" in server.log
    assert server.get("/health/").status_code == 200
    rc, out, err = run_usher(["task", "probe", "--count", "3", "--timeout", "60"])
    assert rc == 0, (out, err)
    log = sigterm_finishes_the_running_task(server, run_usher, db)
    assert log.index('msg="stopped"') < log.index("worker stopped"), "requests first, then tasks"


def test_serve_without_worker_in_serve_runs_no_task(usher, run_usher):
    server = usher()
    rc, out, err = run_usher(["task", "probe", "--timeout", "2"])
    assert rc != 0, "a task ran with no worker"
    assert "worker started" not in server.log


def test_worker_in_serve_must_be_a_boolean(run_usher, migrated):
    rc, out, err = run_usher(["serve"], env={"WORKER_IN_SERVE": "sometimes"})
    assert rc == 2 and "WORKER_IN_SERVE" in err


# --- lease-lost warnings ---------------------------------------------------------------------

LEASE_LOST = "task lease lost"


def test_no_lease_lost_warning_when_a_task_finishes_during_a_heartbeat(workers, run_usher, db):
    # A short lease (heartbeat every 2/3 s) and a steady stream of short tasks: a heartbeat
    # often renews a task whose outcome is being written that very moment. That is no loss of
    # the lease, and must not read like one in the log.
    w = workers({"TASK_LEASE_SECONDS": 2, "WORKER_CONCURRENCY": 4})
    first, last = enqueue_probes(run_usher, 3000, sleep_ms=1)
    wait_for(lambda: db.scalar("SELECT count(*) FROM tasks WHERE name = 'queue_probe' "
                               "AND state = 'done'") == 3000, what="3000 probes done")
    assert_each_ran_once(db, [w], 3000)
    lines = [ln for ln in w.log.splitlines() if LEASE_LOST in ln or "discarded" in ln]
    assert lines == [], lines[:10]
    w.stop()


def test_lease_lost_warning_when_another_worker_took_the_task_over(workers, run_usher, db):
    env = {"TASK_LEASE_SECONDS": 2, "WORKER_CONCURRENCY": 1}
    stalled = workers(env)
    # long enough to be still running when it thaws (its sleep went on while it was frozen)
    task, _ = enqueue_probes(run_usher, 1, sleep_ms=10000)
    wait_for(lambda: (r := task_row(db, task)) and r["state"] == "running" and r,
             what="the probe to start")
    # Frozen (a long GC pause, a stopped VM): its heartbeat stops and its lease runs out.
    stalled.signal(signal.SIGSTOP)
    try:
        rescuer = workers(env)
        wait_for(lambda: (r := task_row(db, task)) and r["state"] == "running"
                 and r["worker"].split(":")[1] == str(rescuer.proc.pid) and r,
                 what="the second worker to take the task over")
    finally:
        stalled.signal(signal.SIGCONT)
    wait_for(lambda: LEASE_LOST in stalled.log, timeout=30, what="the lease-lost warning")
    line = next(ln for ln in stalled.log.splitlines() if LEASE_LOST in ln)
    assert f"id={task} " in line, line
    wait_for(lambda: (r := task_row(db, task)) and r["state"] == "done", what="the task done")
    wait_for(lambda: "discarded" in stalled.log, timeout=30, what="the stalled outcome")
    assert stalled.done("queue_probe") == [] and rescuer.done("queue_probe") == [task]
    assert LEASE_LOST not in rescuer.log
    stalled.stop()
    rescuer.stop()
