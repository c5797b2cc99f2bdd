#!/usr/bin/env python3
"""bench/admin_users_measure.py — the admin users list's latency through a running `usher serve`
(bench/admin_users.sh runs it; see bench/README.md).

    admin_users_measure.py login DB_URL KC_URL USERS     prints an admin session cookie
    admin_users_measure.py measure USHER_URL COOKIE USERS LABEL

login: links the seeded "benchadmin" (admin_users_seed.py) to the Keycloak double's user of
that name (the console asks Keycloak on every request whether they are in ADMIN_GROUP) and
inserts a live session for them, the way the integration tests' login_session does: no test
hook in the server, just a row in `sessions` (only the hash of the cookie is stored).

measure: sequential requests on one keep-alive connection, WARMUP then REQUESTS (environment,
default 20 and 300) per case, and prints p50/p99 per case:
  first    GET /admin/users/                         newest 50 users
  deep     GET /admin/users/?after=<cursor>          a page 99 % of the way down the list
  search   GET /admin/users/?q=user<random id>       a different user each request
  status   GET /admin/users/?status=past_due         the first page of a 10 % status
The cursor of the deep page is made like Usher makes it (core/cursor.c: the id, signed with
SECRET_KEY for the list "users"); an answer other than 200 stops the run.
"""

import hashlib
import hmac
import http.client
import json
import os
import random
import secrets
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request


def kc_user_id(kc_url, username):
    body = urllib.parse.urlencode({"grant_type": "client_credentials",
                                   "client_id": "usher-admin",
                                   "client_secret": "usher-admin-secret"}).encode()
    with urllib.request.urlopen(f"{kc_url}/realms/usher/protocol/openid-connect/token",
                                body, timeout=10) as r:
        token = json.load(r)["access_token"]
    req = urllib.request.Request(
        f"{kc_url}/admin/realms/usher/users?exact=true&username={username}",
        headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)[0]["id"]


def run_sql(db_url, sql, params):
    if db_url.startswith("sqlite"):
        path = db_url[len("sqlite://"):]
        con = sqlite3.connect(path, timeout=30)
        con.execute(sql.replace("%s", "?"), params)
        con.commit()
        con.close()
        return
    # psql variables keep the values out of the SQL text.
    args = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", db_url]
    text = sql
    for i, p in enumerate(params):
        args += ["-v", f"p{i}={p}"]
        text = text.replace("%s", f":'p{i}'", 1)
    subprocess.run(args, input=text + ";\n", text=True, check=True)


def login(db_url, kc_url, users):
    admin_id = int(users) + 1
    run_sql(db_url, "UPDATE users SET keycloak_id = %s WHERE id = %s",
            [kc_user_id(kc_url, "benchadmin"), admin_id])
    raw = secrets.token_hex(32)
    now = int(time.time())
    run_sql(db_url, "INSERT INTO sessions (id_hash, user_id, csrf_token, data, created_at, "
            "last_seen_at) VALUES (%s, %s, %s, '{}', %s, %s)",
            [hashlib.sha256(raw.encode()).hexdigest(), admin_id, secrets.token_hex(32), now, now])
    print(raw)


def cursor(secret, list_name, row_id):
    payload = str(row_id).encode()
    tag = hmac.new(secret.encode(), b"usher-cursor-v1\n" + list_name.encode() + b"\n" + payload,
                   hashlib.sha256).hexdigest()[:32]
    return payload.hex() + "." + tag


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def measure(usher_url, cookie, users, label):
    users = int(users)
    warmup = int(os.environ.get("WARMUP", "20"))
    requests = int(os.environ.get("REQUESTS", "300"))
    secret = os.environ["SECRET_KEY"]
    u = urllib.parse.urlsplit(usher_url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    # bench_start_usher runs with DEBUG=false: the production cookie name.
    headers = {"Cookie": f"__Host-usher_session={cookie}"}
    rng = random.Random(42)
    deep = cursor(secret, "users", max(2, users // 100))
    cases = [
        ("first", lambda: "/admin/users/"),
        ("deep", lambda: "/admin/users/?after=" + deep),
        ("search", lambda: f"/admin/users/?q=user{rng.randint(1, users)}"),
        ("status", lambda: "/admin/users/?status=past_due"),
    ]
    for name, path in cases:
        times = []
        rows = 0
        for i in range(warmup + requests):
            p = path()
            t0 = time.perf_counter()
            conn.request("GET", p, headers=headers)
            r = conn.getresponse()
            body = r.read()
            dt = (time.perf_counter() - t0) * 1000
            if r.status != 200:
                sys.exit(f"bench: {label} {name}: GET {p} answered {r.status}: {body[:300]!r}")
            if i >= warmup:
                times.append(dt)
                rows = body.count(b'name="ids"')
        print(f"{label}\t{name}\t{percentile(times, 50):.2f}\t{percentile(times, 99):.2f}\t{rows}")
    conn.close()


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "login":
        login(*sys.argv[2:])
    elif len(sys.argv) == 6 and sys.argv[1] == "measure":
        measure(*sys.argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
