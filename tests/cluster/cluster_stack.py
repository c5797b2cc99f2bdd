"""The processes of one throwaway Usher cluster, for test_cluster.py and `make cluster-demo`.

    nginx (Debian's nginx-light, unprivileged config in a temp dir)
      ├── usher serve  web1 ─┐
      └── usher serve  web2 ─┼── PostgreSQL (scripts/pg-cluster) ── usher worker ×2 ── Redis
                             └── Stripe, Keycloak and Mailgun doubles (devstack/doubles)

nginx balances round robin over both web processes with passive health checks only: a
backend that refuses a connection or answers 502/503 is marked failed (`max_fails=1`) and
skipped for `fail_timeout`, and the request is retried on the other backend
(`proxy_next_upstream error timeout http_502 http_503`) — a POST only if the failed backend
never received it (a refused connection; nginx's default without `non_idempotent`), so a
webhook that reached the dying process fails and Stripe (here: the journey driver) delivers
it again. Open-source nginx has
no active health checks (`health_check` is NGINX Plus only): a dead backend is noticed only
by the requests that hit it.

Every request nginx forwards is logged with the backend that answered ($upstream_addr) and
its status; the test reads that log for the per-fault figures.
"""

import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.path.insert(0, str(REPO))

from conftest import (PgCluster, Server, clean_environ, free_port,  # noqa: E402
                      new_secret_key, wait_for_pg)
from test_worker import Worker  # noqa: E402
from test_worker_redis import Redis  # noqa: E402

from devstack.doubles.keycloak_double import KeycloakDouble  # noqa: E402
from devstack.doubles.mailgun_double import MailgunDouble  # noqa: E402
from devstack.doubles.stripe_double import StripeDouble  # noqa: E402

CATALOG = REPO / "devstack" / "catalog.json"
WEBHOOK_SECRET = "whsec_cluster_tests"
STRIPE_KEY = "sk_test_cluster"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

NGINX_CONF = """\
# Written by tests/cluster/cluster_stack.py for one test run; see its docstring.
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 1024; }}
http {{
    log_format cluster '$msec $request_method "$request_uri" $status '
                       'up=$upstream_addr ups=$upstream_status rt=$request_time';
    access_log {dir}/access.log cluster;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;

    upstream usher {{
        # Passive health checks: one failure takes a backend out for fail_timeout.
{servers}
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://usher;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_connect_timeout 2s;
            proxy_read_timeout 30s;
            # Idempotent requests only (no non_idempotent): a POST is never sent twice.
            proxy_next_upstream error timeout http_502 http_503;
            proxy_next_upstream_tries 2;
        }}
    }}
}}
"""


class Nginx:
    """nginx in the foreground with its own prefix, config, logs and temp dirs."""

    def __init__(self, root, backends, fail_timeout=5):
        self.dir = Path(root) / "nginx"
        (self.dir / "tmp").mkdir(parents=True)
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        servers = "\n".join(f"        server {b} max_fails=1 fail_timeout={fail_timeout}s;"
                            for b in backends)
        self.conf = self.dir / "nginx.conf"
        self.conf.write_text(NGINX_CONF.format(dir=self.dir, port=self.port, servers=servers))
        self.proc = None

    def start(self):
        # -e: the error log before the config is read (not /var/log/nginx, which an
        # unprivileged user cannot open).
        self._out = open(self.dir / "stderr.log", "ab")
        self.proc = subprocess.Popen([NGINX, "-p", str(self.dir), "-c", str(self.conf),
                                      "-e", str(self.dir / "error.log")],
                                     stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=subprocess.STDOUT, preexec_fn=self._unprivileged())
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("nginx exited:\n" + (self.dir / "stderr.log").read_text()
                                   + (self.dir / "error.log").read_text())
            with contextlib.suppress(OSError):
                import socket

                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            if time.monotonic() > deadline:
                raise RuntimeError("nginx did not listen")
            time.sleep(0.05)

    def _unprivileged(self):
        """As root, a function that makes the child "nobody" (which then owns the nginx
        directory), so nginx runs unprivileged as it does for any other user."""
        if os.geteuid() != 0:
            return None
        nobody = pwd.getpwnam("nobody")
        for d, _, files in os.walk(self.dir):
            for p in [d] + [os.path.join(d, f) for f in files]:
                os.chown(p, nobody.pw_uid, nobody.pw_gid)

        def drop():
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)

        return drop

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        with contextlib.suppress(Exception):
            self._out.close()

    def access_log(self):
        """[(time, method, uri, status, upstream_addrs, upstream_statuses)]"""
        out = []
        path = self.dir / "access.log"
        if not path.exists():
            return out
        for line in path.read_text(errors="replace").splitlines():
            try:
                t, method, rest = line.split(" ", 2)
                uri, rest = rest[1:].split('" ', 1)
                status, up, ups, _ = rest.split(" ", 3)
                out.append((float(t), method, uri, int(status), up[3:], ups[4:]))
            except ValueError:
                continue
        return out


def catalog_with_caps(nextcloud_cap, path):
    """The demo catalog with both Nextcloud instances' caps lowered to nextcloud_cap seats
    each, so that more customers buy Nextcloud than there are seats and the allocator's
    limit is tested under concurrency."""
    doc = json.loads(CATALOG.read_text())
    for inst in doc["instances"]:
        if inst["product"] == "nextcloud":
            inst["soft_cap"] = max(0, nextcloud_cap - 1)
            inst["allocation_cap"] = nextcloud_cap
            inst["hard_cap"] = nextcloud_cap
    path.write_text(json.dumps(doc))
    return doc


class Stack:
    """Everything started; stop() ends what is still running. Logs stay under root."""

    def __init__(self, binary, nextcloud_cap, lease_seconds=5):
        self.binary = Path(binary)
        self.root = Path(tempfile.mkdtemp(prefix="usher-cluster-", dir="/tmp"))
        os.chmod(self.root, 0o755)
        self.cwd = self.root / "cwd"
        self.cwd.mkdir()
        self.catalog_path = self.root / "catalog.json"
        self.catalog = catalog_with_caps(nextcloud_cap, self.catalog_path)
        self.lease_seconds = lease_seconds
        self.pg = self.redis = self.nginx = self.st = self.kc = self.mg = None
        self.webs, self.workers = [], []

    # --- start ----------------------------------------------------------------------------

    def start(self):
        self.pg = PgCluster()
        self.pg.start()
        wait_for_pg(self.pg.url)
        self.redis = Redis(self.root).start()
        web_ports = [free_port(), free_port()]
        self.nginx = Nginx(self.root, [f"127.0.0.1:{p}" for p in web_ports])
        self.kc = KeycloakDouble(redirect_uris=[self.nginx.url + "/*"],
                                 groups=list(self.catalog["groups"])).start()
        self.kc.set_unmanaged_policy("ADMIN_EDIT")
        self.mg = MailgunDouble().start()
        # Keycloak's mails land in the Mailgun double's inbox, as in devstack/doubles/run.py.
        self.kc.on_email = lambda rec: self.mg.inject(rec["to"], rec["subject"], rec["text"],
                                                      sender="keycloak@mg.example.test",
                                                      source="keycloak")
        self.st = StripeDouble(webhook_secret=WEBHOOK_SECRET, catalog=str(self.catalog_path),
                               webhook_url=self.nginx.url + "/onboarding/webhook/").start()
        self.st.config["extra_events"] = True  # customer.*, invoice.paid around checkout
        self.env = self._env()
        self._run(["migrate"])
        self._run(["catalog", "apply", str(self.catalog_path)])
        for i, port in enumerate(web_ports, 1):
            env = dict(self.env, BIND=f"127.0.0.1:{port}")
            d = self.root / f"web{i}"
            d.mkdir()
            self.webs.append(Server(self.binary, env, self.cwd, d).start(timeout=30))
        for i in (1, 2):
            w = Worker(self.binary, self.env, self.cwd, self.root / f"worker{i}.log")
            self.workers.append(w.start())
        self.nginx.start()
        return self

    def _env(self):
        clock = self.root / "clock"
        clock.write_text("0\n")
        env = clean_environ()
        env.update({
            "DATABASE_URL": self.pg.url, "SECRET_KEY": new_secret_key(),
            "PUBLIC_BASE_URL": self.nginx.url, "BIND": "127.0.0.1:1",
            # Plain-http cookies (the cluster has no TLS); also debug logging.
            "DEBUG": "true", "WEB_THREADS": "8",
            "USHER_TEST_CLOCK_FILE": str(clock),
            # Every request reaches Usher from nginx's address, so the per-address ceiling
            # on new sessions would be one for all customers.
            "SESSION_NEW_PER_IP_PER_MINUTE": "1000000",
            "STRIPE_SECRET_KEY": STRIPE_KEY, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "STRIPE_API_BASE": self.st.url, "STRIPE_CHECKOUT_UI": "hosted",
            "KEYCLOAK_SERVER_URL": self.kc.url, "KEYCLOAK_REALM": self.kc.realm,
            "OIDC_RP_CLIENT_ID": "usher", "OIDC_RP_CLIENT_SECRET": "usher-secret",
            "KEYCLOAK_ADMIN_CLIENT_ID": "usher-admin",
            "KEYCLOAK_ADMIN_CLIENT_SECRET": "usher-admin-secret",
            "MAILGUN_API_BASE": self.mg.url, "MAILGUN_API_KEY": "key-devstack",
            "MAILGUN_DOMAIN": "mg.example.test",
            "TASK_BROKER_URL": self.redis.url, "WORKER_CONCURRENCY": "4",
            # A killed worker's tasks are taken over after this many seconds (default 60);
            # retries of tasks that failed while PostgreSQL was down come after 2 s, 4 s, …
            "TASK_LEASE_SECONDS": str(self.lease_seconds), "TASK_RETRY_DELAY": "2",
        })
        return env

    def _run(self, args, timeout=120):
        p = subprocess.run([str(self.binary), *args], env=self.env, cwd=self.cwd,
                           capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError(f"usher {' '.join(args)} exited {p.returncode}:\n"
                               f"{p.stdout}\n{p.stderr}")
        return p.stdout

    # --- faults ---------------------------------------------------------------------------

    def kill_web(self, i):
        self.webs[i].proc.send_signal(signal.SIGKILL)
        self.webs[i].proc.wait(timeout=10)

    def restart_web(self, i):
        self.webs[i].start(timeout=30)

    def kill_worker(self, i):
        self.workers[i].proc.send_signal(signal.SIGKILL)
        self.workers[i].proc.wait(timeout=10)

    def restart_pg(self):
        self.pg.stop()
        self.pg.start()

    def backend_urls(self):
        return [w.url for w in self.webs]

    # --- stop -----------------------------------------------------------------------------

    def stop(self):
        for w in self.workers:
            if w.proc and w.proc.poll() is None:
                w.proc.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    w.proc.wait(timeout=30)
            w.kill()
        for s in self.webs:
            s.kill()
        for thing in (self.nginx, self.st, self.kc, self.mg, self.redis):
            if thing:
                with contextlib.suppress(Exception):
                    thing.stop()
        if self.pg:
            self.pg.destroy()

    def logs(self):
        """The tail of every process's log, for a failure report."""
        out = []
        for i, s in enumerate(self.webs, 1):
            out.append(f"--- web{i} ---\n{s.log[-4000:]}")
        for i, w in enumerate(self.workers, 1):
            out.append(f"--- worker{i} ---\n{w.log[-4000:]}")
        if self.nginx:
            with contextlib.suppress(OSError):
                out.append("--- nginx error.log ---\n"
                           + (self.nginx.dir / "error.log").read_text()[-3000:])
        return "\n".join(out)


def get(url, **kw):
    kw.setdefault("timeout", 15)
    kw.setdefault("allow_redirects", False)
    return requests.get(url, **kw)
