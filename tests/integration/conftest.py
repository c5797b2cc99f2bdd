"""Fixtures that run the real `usher` binary against SQLite and PostgreSQL.

Every test that uses `usher`, `run_usher`, `base_env` or `db` is run once per backend:
`db_url` is parametrized over a fresh SQLite file and a fresh PostgreSQL database (one
database per test, in one throwaway cluster shared by the whole session). Skip PostgreSQL
with `-m "not postgres"`; restrict a test to one backend with `@pytest.mark.backend("sqlite")`.

Environment knobs:
  USHER_BIN          the binary (default <repo>/build/usher)
  USHER_DATA_DIR     passed through to the binary (migrations, templates, static)
  USHER_PG_CLUSTER   the cluster script (default <repo>/scripts/pg-cluster)
  USHER_TEST_PG_URL  use this running PostgreSQL instead of starting a cluster (tests that
                     stop and restart PostgreSQL are skipped then)

Servers run with an empty temporary working directory (so no stray `.env` is read) and an
environment stripped of every Usher configuration variable the caller's shell may carry.
"""

import codecs
import contextlib
import html
import itertools
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
# What AddressSanitizer, LeakSanitizer and UBSan write when they find something.
SANITIZER_FINDING = re.compile(r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:")


# The replaced system's brand must never reach a page or an email. It is not spelled out
# anywhere in Usher's tree: tests hold it in ROT13.
_OLD_BRAND_ROT13 = "fxlynagvk"


def mentions_old_brand(text):
    """Whether text contains the replaced system's brand, in any letter case."""
    return codecs.encode(_OLD_BRAND_ROT13, "rot13") in text.lower()


HTTP_TIMEOUT = 15

# Configuration variables that must not leak from the developer's shell into a test server.
_CONFIG_NAMES = {
    "SECRET_KEY", "DJANGO_SECRET_KEY", "DEBUG", "PUBLIC_BASE_URL", "BIND", "TAILSCALE_IP",
    "DATABASE_URL", "ADMIN_GROUP", "CELERY_BROKER_URL", "PROMETHEUS_METRICS_API_KEY",
    "SITE_NAME", "SUPPORT_EMAIL", "LOGOUT_REDIRECT_URL", "RECOVERY_WINDOW_DAYS",
    "RECOVERY_NOTIFY_UNKNOWN", "RECOVERY_REQUESTS_PER_IP_PER_HOUR",
    "WEB_THREADS", "WORKER_CONCURRENCY", "SESSION_NEW_PER_IP_PER_MINUTE",
}
_CONFIG_PREFIXES = ("POSTGRES_", "KEYCLOAK_", "OIDC_", "STRIPE_", "MAILGUN_", "TASK_", "PG",
                    "USHER_")
_PASS_THROUGH = {"USHER_DATA_DIR"}


def clean_environ():
    """os.environ without Usher configuration (and libpq's PG* variables)."""
    env = {}
    for k, v in os.environ.items():
        if k in _PASS_THROUGH:
            env[k] = v
        elif k in _CONFIG_NAMES or k.startswith(_CONFIG_PREFIXES):
            continue
        else:
            env[k] = v
    return env


def merge_env(base, overrides):
    """base updated with overrides; an override of None removes the variable."""
    env = dict(base)
    for k, v in (overrides or {}).items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    return env


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def new_secret_key():
    return secrets.token_hex(32)


def usher_binary():
    return Path(os.environ.get("USHER_BIN") or REPO / "build" / "usher")


# --- result helpers used by several test files ---------------------------------------------

def number_near(word, text):
    """Integers written next to `word` ("applied 3", "3 applied", "created: 2"), in order."""
    out = []
    pat = re.compile(
        r"(\d+)\s+(?:\w+\s+)?%s\b|\b%s\b\s*[:=]?\s*(\d+)" % (re.escape(word), re.escape(word)),
        re.IGNORECASE)
    for m in pat.finditer(text):
        out.append(int(m.group(1) or m.group(2)))
    return out


# --- PostgreSQL cluster --------------------------------------------------------------------

class PgCluster:
    """A throwaway PostgreSQL cluster run by scripts/pg-cluster."""

    def __init__(self):
        self.script = Path(os.environ.get("USHER_PG_CLUSTER") or REPO / "scripts" / "pg-cluster")
        self.root = Path(tempfile.mkdtemp(prefix="usher-pg-", dir="/tmp"))
        os.chmod(self.root, 0o755)  # the server runs as the postgres user
        self.dir = self.root / "cluster"
        self.port = free_port()
        self.url = None
        self.running = False
        self.managed = True

    def start(self):
        if not self.script.exists():
            raise RuntimeError(f"{self.script} is missing (it starts the test PostgreSQL)")
        p = subprocess.run([str(self.script), "start", str(self.dir), str(self.port)],
                           capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            raise RuntimeError(f"pg-cluster start failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        lines = [ln.strip() for ln in p.stdout.splitlines() if ln.strip().startswith("postgres")]
        if not lines:
            raise RuntimeError(f"pg-cluster start printed no URL:\n{p.stdout}\n{p.stderr}")
        self.url = lines[-1]
        self.running = True
        return self.url

    def stop(self):
        p = subprocess.run([str(self.script), "stop", str(self.dir)],
                           capture_output=True, text=True, timeout=120)
        self.running = False
        if p.returncode != 0:
            raise RuntimeError(f"pg-cluster stop failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")

    @contextlib.contextmanager
    def down(self):
        """Stops the cluster for the duration of the block, and starts it again after."""
        if not self.managed:
            pytest.skip("USHER_TEST_PG_URL is set: this test stops and restarts PostgreSQL")
        self.stop()
        try:
            yield self
        finally:
            self.start()
            wait_for_pg(self.url)

    def destroy(self):
        if self.running:
            with contextlib.suppress(Exception):
                self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class ExternalPg:
    """A PostgreSQL the caller runs (USHER_TEST_PG_URL)."""

    managed = False

    def __init__(self, url):
        self.url = url

    def down(self):
        pytest.skip("USHER_TEST_PG_URL is set: this test stops and restarts PostgreSQL")

    def destroy(self):
        pass


def wait_for_pg(url, timeout=30):
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(url, connect_timeout=3):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def replace_db_name(url, name):
    u = urlparse(url)
    return u._replace(path="/" + name).geturl()


def superuser_url(url):
    """The same server as url, as the "postgres" superuser, database "postgres"."""
    u = urlparse(url)
    netloc = f"postgres@{u.hostname}" + (f":{u.port}" if u.port else "")
    return u._replace(netloc=netloc, path="/postgres").geturl()


@pytest.fixture(scope="session")
def pg_cluster():
    ext = os.environ.get("USHER_TEST_PG_URL")
    cluster = ExternalPg(ext) if ext else PgCluster()
    try:
        if not ext:
            cluster.start()
        wait_for_pg(cluster.url)
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def pg_url(pg_cluster):
    """postgres://usher:usher@127.0.0.1:PORT/usher of the session's cluster."""
    return pg_cluster.url


_db_counter = itertools.count(1)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """A fresh, empty database: a new SQLite file, or a new database in the PG cluster."""
    if request.param == "sqlite":
        path = tmp_path / "db" / "usher.sqlite3"
        path.parent.mkdir()
        return "sqlite:///" + str(path)  # sqlite:////tmp/.../usher.sqlite3
    import psycopg

    base = request.getfixturevalue("pg_url")
    name = f"usher_t{os.getpid()}_{next(_db_counter)}"
    owner = urlparse(base).username
    try:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.errors.InsufficientPrivilege:
        # The cluster's "usher" role may not have CREATEDB; scripts/pg-cluster trusts the
        # "postgres" superuser on 127.0.0.1.
        with psycopg.connect(superuser_url(base), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" OWNER "{owner}"')
    return replace_db_name(base, name)


@pytest.fixture
def backend(db_url):
    """'sqlite' or 'postgres'."""
    return "sqlite" if db_url.startswith("sqlite") else "postgres"


def pytest_collection_modifyitems(config, items):
    """@pytest.mark.backend("postgres") keeps only that parametrization of a test."""
    keep, drop = [], []
    for item in items:
        m = item.get_closest_marker("backend")
        callspec = getattr(item, "callspec", None)
        if m and callspec and "db_url" in callspec.params and callspec.params["db_url"] not in m.args:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    setattr(item, "rep_" + rep.when, rep)
    return rep


# --- direct database access for assertions -------------------------------------------------

class Db:
    """Opens a short-lived connection per call. SQL uses `?` placeholders on both backends."""

    def __init__(self, url):
        self.url = url
        self.kind = "sqlite" if url.startswith("sqlite") else "postgres"

    @property
    def sqlite_path(self):
        return unquote(urlparse(self.url).path) if self.url.startswith("sqlite:////") else \
            self.url[len("sqlite:///"):]

    @contextlib.contextmanager
    def connect(self):
        if self.kind == "sqlite":
            conn = sqlite3.connect(self.sqlite_path, timeout=10)
            try:
                yield conn
                conn.commit()
            finally:
                conn.close()
        else:
            import psycopg

            with psycopg.connect(self.url, connect_timeout=5) as conn:
                yield conn

    def _sql(self, sql):
        return sql if self.kind == "sqlite" else sql.replace("?", "%s")

    def rows(self, sql, *params):
        with self.connect() as conn:
            cur = conn.execute(self._sql(sql), params)
            return [tuple(r) for r in cur.fetchall()]

    def dict_rows(self, sql, *params):
        with self.connect() as conn:
            cur = conn.execute(self._sql(sql), params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r)) for r in cur.fetchall()]

    def scalar(self, sql, *params):
        r = self.rows(sql, *params)
        return r[0][0] if r else None

    def exec(self, sql, *params):
        with self.connect() as conn:
            conn.execute(self._sql(sql), params)

    def tables(self):
        if self.kind == "sqlite":
            return {r[0] for r in self.rows("SELECT name FROM sqlite_master WHERE type='table'")}
        return {r[0] for r in self.rows(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}

    def columns(self, table):
        """[(name, type, notnull, has_default)]"""
        if self.kind == "sqlite":
            return [(r[1], (r[2] or "").upper(), bool(r[3]), r[4] is not None or bool(r[5]))
                    for r in self.rows(f"PRAGMA table_info({table})")]
        return [(r[0], r[1].upper(), r[2] == "NO", r[3] is not None) for r in self.rows(
            "SELECT column_name, data_type, is_nullable, column_default "
            "FROM information_schema.columns WHERE table_schema = 'public' AND table_name = ? "
            "ORDER BY ordinal_position", table)]


@pytest.fixture
def db(db_url):
    return Db(db_url)


# --- the usher binary ----------------------------------------------------------------------

@pytest.fixture(scope="session")
def usher_bin():
    return usher_binary()


def parse_set_cookie(header):
    """'name=value; Path=/; Secure' -> (name, value, {'path': '/', 'secure': True})"""
    parts = [p.strip() for p in header.split(";")]
    name, _, value = parts[0].partition("=")
    attrs = {}
    for p in parts[1:]:
        if not p:
            continue
        k, eq, v = p.partition("=")
        attrs[k.strip().lower()] = v.strip() if eq else True
    return name.strip(), value.strip(), attrs


def set_cookie_headers(resp):
    return list(resp.raw.headers.getlist("Set-Cookie"))


_CSRF_META = re.compile(r"<meta\b[^>]*\bname=[\"']csrf-token[\"'][^>]*>", re.IGNORECASE)
_CONTENT_ATTR = re.compile(r"\bcontent=[\"']([^\"']*)[\"']", re.IGNORECASE)
_CSRF_INPUT = re.compile(r"<input\b[^>]*\bname=[\"']csrf_token[\"'][^>]*>", re.IGNORECASE)
_VALUE_ATTR = re.compile(r"\bvalue=[\"']([^\"']*)[\"']", re.IGNORECASE)


def csrf_from_meta(page):
    m = _CSRF_META.search(page)
    if not m:
        return None
    c = _CONTENT_ATTR.search(m.group(0))
    return html.unescape(c.group(1)) if c else None


def csrf_from_inputs(page):
    out = []
    for m in _CSRF_INPUT.finditer(page):
        v = _VALUE_ATTR.search(m.group(0))
        out.append(html.unescape(v.group(1)) if v else "")
    return out


class Client:
    """An HTTP client that keeps Usher's session cookie itself.

    `requests` never sends a Secure cookie over plain HTTP, so the session cookie is taken
    from Set-Cookie and sent back in an explicit Cookie header. Redirects are not followed.
    """

    def __init__(self, server):
        self.server = server
        self.http = requests.Session()
        self.cookies = {}
        self.token = None

    def request(self, method, path, headers=None, cookies=True, **kw):
        h = {}
        if cookies and self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        h.update(headers or {})
        kw.setdefault("timeout", HTTP_TIMEOUT)
        kw.setdefault("allow_redirects", False)
        r = self.http.request(method, self.server.url + path, headers=h, **kw)
        self.http.cookies.clear()
        for raw in set_cookie_headers(r):
            name, value, attrs = parse_set_cookie(raw)
            if value == "" or attrs.get("max-age") in ("0", "-1"):
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return r

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    @property
    def session_cookie(self):
        for name in ("__Host-usher_session", "usher_session"):
            if name in self.cookies:
                return self.cookies[name]
        return None

    def csrf(self, refresh=False):
        """The session's CSRF token (from the <meta> of /onboarding/); starts a session."""
        if self.token is None or refresh:
            r = self.get("/onboarding/")
            assert r.status_code == 200, (r.status_code, r.text[:500])
            self.token = csrf_from_meta(r.text)
            assert self.token, "no <meta name=csrf-token> on /onboarding/"
        return self.token

    def post_json(self, path, body, csrf=True, headers=None, **kw):
        """POSTs a JSON body (a str is sent as is) with the token in X-CSRF-Token."""
        import json

        h = {"Content-Type": "application/json"}
        if csrf:
            h["X-CSRF-Token"] = self.csrf()
        h.update(headers or {})
        data = body if isinstance(body, (str, bytes)) else json.dumps(body)
        return self.post(path, data=data, headers=h, **kw)

    def post_form(self, path, fields, csrf=True, headers=None, **kw):
        data = dict(fields)
        if csrf:
            data.setdefault("csrf_token", self.csrf())
        return self.post(path, data=data, headers=headers, **kw)


class Server:
    """One running `usher serve`."""

    def __init__(self, binary, env, cwd, workdir):
        self.binary = binary
        self.env = env
        self.cwd = cwd
        self.workdir = workdir
        self.port = int(env["BIND"].rsplit(":", 1)[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.clock_file = Path(env["USHER_TEST_CLOCK_FILE"])
        self.clock_offset = int(self.clock_file.read_text().strip() or 0)
        self.log_path = workdir / "serve.log"
        self.proc = None
        self.returncode = None

    def start(self, timeout=20):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(self.binary), "serve"], env=self.env, cwd=self.cwd,
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.returncode = rc
                raise RuntimeError(f"usher serve exited with {rc} while starting:\n{self.log}")
            try:
                r = requests.get(self.url + "/health/", timeout=2)
                if r.status_code == 200:
                    return self
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"usher serve did not answer /health/ in {timeout} s:\n{self.log}")
            time.sleep(0.05)

    @property
    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    @property
    def pid(self):
        return self.proc.pid

    def client(self):
        return Client(self)

    def get(self, path, **kw):
        kw.setdefault("timeout", HTTP_TIMEOUT)
        kw.setdefault("allow_redirects", False)
        return requests.get(self.url + path, **kw)

    def request(self, method, path, **kw):
        kw.setdefault("timeout", HTTP_TIMEOUT)
        kw.setdefault("allow_redirects", False)
        return requests.request(method, self.url + path, **kw)

    def advance_clock(self, seconds):
        """Moves Usher's clock forward by `seconds` (cumulative) and waits until it sees it."""
        self.clock_offset += int(seconds)
        tmp = self.clock_file.with_suffix(".tmp")
        tmp.write_text(f"{self.clock_offset}\n")
        tmp.replace(self.clock_file)
        time.sleep(1.1)  # the binary re-reads the file at most once per real second

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout):
        self.returncode = self.proc.wait(timeout=timeout)
        return self.returncode

    def stop(self, timeout=10):
        """SIGTERM, wait, and insist on a clean exit."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"usher serve did not exit within {timeout} s of SIGTERM")
        assert rc == 0, f"usher serve exited with {rc}:\n{self.log[-4000:]}"
        return rc

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc:
            self.returncode = self.proc.returncode
        with contextlib.suppress(Exception):
            self._log.close()


def run(binary, args, env, cwd, timeout=30):
    """Runs `usher ARGS`; returns (rc, stdout, stderr). rc is None on a time-out."""
    p = subprocess.Popen([str(binary), *args], env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         errors="replace")
    try:
        out, err = p.communicate(timeout=timeout)
        return p.returncode, out, err
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate(timeout=10)
        return None, out, err


@pytest.fixture
def workdir(tmp_path):
    """An empty working directory for the binary (where it would read `.env`)."""
    d = tmp_path / "cwd"
    d.mkdir()
    return d


@pytest.fixture
def base_env(db_url, tmp_path):
    """The environment a test server gets before overrides (port chosen per server)."""
    clock = tmp_path / "clock"
    if not clock.exists():
        clock.write_text("0\n")
    port = free_port()
    env = clean_environ()
    env.update({
        "BIND": f"127.0.0.1:{port}",
        "DATABASE_URL": db_url,
        "SECRET_KEY": new_secret_key(),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "DEBUG": "false",
        "WEB_THREADS": "4",
        "USHER_TEST_CLOCK_FILE": str(clock),
    })
    return env


@pytest.fixture
def run_usher(usher_bin, base_env, workdir):
    """run_usher(args, env=None, cwd=None, timeout=30) -> (rc, stdout, stderr).

    env holds overrides of base_env (None removes a variable)."""

    def _run(args, env=None, cwd=None, timeout=30):
        return run(usher_bin, args, merge_env(base_env, env), cwd or workdir, timeout)

    return _run


@pytest.fixture
def usher(request, usher_bin, base_env, tmp_path, workdir):
    """usher(env_overrides=None, cwd=None, migrate=True) -> a running Server.

    Each call gets its own port (BIND and PUBLIC_BASE_URL follow it unless overridden)."""
    servers = []
    seq = itertools.count(1)

    def _start(env=None, cwd=None, migrate=True, timeout=20):
        n = next(seq)
        port = free_port()
        e = dict(base_env)
        e["BIND"] = f"127.0.0.1:{port}"
        e["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
        e = merge_env(e, env)
        d = tmp_path / f"server{n}"
        d.mkdir()
        cwd = cwd or workdir
        if migrate:
            rc, out, err = run(usher_bin, ["migrate"], e, cwd, timeout=60)
            if rc != 0:
                raise RuntimeError(f"usher migrate exited with {rc}:\n{out}\n{err}")
        s = Server(usher_bin, e, cwd, d)
        servers.append(s)
        return s.start(timeout=timeout)

    yield _start

    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    findings = []
    for s in servers:
        s.kill()
        if failed:
            print(f"--- usher serve log ({s.url}, exit {s.returncode}) ---")
            print(s.log[-8000:])
        # The sanitizer build reports leaks and UB when the process exits on SIGTERM; a report
        # nobody reads is no test (tests/e2e/conftest.py does the same for its servers).
        findings += [line for line in s.log.splitlines() if SANITIZER_FINDING.search(line)]
    assert not findings, "sanitizer findings in usher serve's log:\n" + "\n".join(findings[:20])


@pytest.fixture
def server(usher):
    """A server with the default configuration."""
    return usher()


@pytest.fixture
def client(server):
    return server.client()


@pytest.fixture
def world_env():
    """Extra configuration for stripe_events_support's `world` (server and workers); a test
    module overrides this fixture to add its own, e.g. the Mailgun double."""
    return {}
