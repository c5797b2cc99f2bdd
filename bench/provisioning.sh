#!/usr/bin/env bash
# bench/provisioning.sh — end-to-end provisioning rate with the doubles (issue 5), on SQLite
# and PostgreSQL, with 1 and 2 `usher worker` processes. See bench/README.md.
#
#   bench/provisioning.sh                  300 users, WORKER_CONCURRENCY=8 per worker
#   USERS=1000 WORKER_CONCURRENCY=4 WORKERS="1 2 3" bench/provisioning.sh
#   MODE=sync bench/provisioning.sh        start from the sync tasks instead of webhooks
#   USHER_BIN=/path/to/usher bench/provisioning.sh
#
# For each database and worker count, on a fresh database, USERS customers are provisioned:
# - MODE=webhook (default): each pays a checkout session in the Stripe double (the demo
#   catalog's Nextcloud plan plus storage; events held back), then all their signed
#   checkout.session.completed events are delivered to `usher serve` (8 at a time) and the
#   workers do the rest: process_stripe_event creates the Keycloak account and the local
#   user, enqueues the password-setup email and the sync, and the sync takes a seat, joins
#   the instance's group and writes the attributes. Each user's latency runs from the
#   start of its webhook delivery.
# - MODE=sync: the customers already have accounts (local users linked to users of the
#   Keycloak double, active subscriptions), and their sync_user_post_checkout tasks — what
#   process_stripe_event leaves behind — are enqueued in one commit; latency runs from it.
# A user counts as provisioned when the Keycloak double has answered the sync's last call,
# the PUT of the user's attributes (the double's request log has the time of each call).
# Printed: users/s from the first delivery (enqueue) to the last user provisioned, and the
# per-user latency (median, p99); with everyone arriving at once that is mostly queueing,
# the median user waits for about half the batch. Instance caps are raised to USERS so that
# everyone gets a seat.
#
# There is no baseline server for this one: the doubles are part of what is measured (the
# Keycloak double is a Python server, and on a 2-core machine it competes with the workers
# for CPU), so read the figures as Usher plus doubles on this machine, and compare runs with
# each other (1 vs 2 workers, SQLite vs PostgreSQL). Exits 0 whatever the figures; non-zero
# only when something fails to start or the users are not all provisioned in time.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init
users="${USERS:-300}"
mode="${MODE:-webhook}"
case $mode in webhook | sync) ;; *) bench_die "MODE is webhook or sync, not $mode" ;; esac
worker_counts="${WORKERS:-1 2}"
concurrency="${WORKER_CONCURRENCY:-8}"
drain_timeout="${DRAIN_TIMEOUT:-600}"
py="$repo/.venv/bin/python"
[ -x "$py" ] || py=python3
"$py" -c 'import psycopg' 2>/dev/null ||
    bench_die "$py cannot import psycopg (scripts/bootstrap sets up .venv)"

# --- the Keycloak double, its own process -----------------------------------------------
kc_port="$(bench_free_port)"
(cd "$repo" && exec "$py" -m devstack.doubles.keycloak_double --port "$kc_port" \
    --realm usher --unmanaged-attribute-policy ADMIN_EDIT) >"$work/keycloak.log" 2>&1 &
kc_pid=$!
bench_pids+=("$kc_pid")
kc_url="http://127.0.0.1:$kc_port"
bench_wait_http "$kc_url/health/ready" "$kc_pid" ||
    { cat "$work/keycloak.log" >&2; bench_die "the Keycloak double did not start"; }

# --- the Stripe double (webhook mode) -------------------------------------------------------
webhook_secret="whsec_bench_provisioning"
if [ "$mode" = webhook ]; then
    st_port="$(bench_free_port)"
    (cd "$repo" && exec "$py" -m devstack.doubles.stripe_double --port "$st_port" \
        --webhook-secret "$webhook_secret" --catalog "$repo/devstack/catalog.json") \
        >"$work/stripe.log" 2>&1 &
    st_pid=$!
    bench_pids+=("$st_pid")
    st_url="http://127.0.0.1:$st_port"
    bench_wait_http "$st_url/_control/config" "$st_pid" ||
        { cat "$work/stripe.log" >&2; bench_die "the Stripe double did not start"; }
fi

# --- the driver: seeds a database, enqueues, waits, measures -------------------------------
cat >"$work/driver.py" <<'PY'
"""seed|measure MODE DB_URL USERS KC_URL ST_URL USHER_URL RUN [TIMEOUT]"""
import json, sqlite3, statistics, sys, time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote, urlencode, urlparse
from urllib.request import Request, urlopen

cmd, mode, url, users, kc, st, usher, run = sys.argv[1:9]
users = int(users)
SYNC = "sync_user_post_checkout"
CATALOG_PRICES = [("price_demo_nextcloud_monthly", 1), ("price_demo_storage_100_monthly", 2)]
GOT_SEAT = "has_nextcloud" if mode == "webhook" else "has_cloud"


def call(base, method, path, body=None, form=None, headers=None):
    h, data = dict(headers or {}), None
    if body is not None:
        data, h["Content-Type"] = json.dumps(body).encode(), "application/json"
    if form is not None:
        data, h["Content-Type"] = urlencode(form).encode(), "application/x-www-form-urlencoded"
    with urlopen(Request(base + path, data=data, method=method, headers=h), timeout=60) as r:
        return json.loads(r.read() or b"null")


def connect():
    if url.startswith("sqlite"):
        return sqlite3.connect(unquote(urlparse(url).path), timeout=30), "?"
    import psycopg
    return psycopg.connect(url), "%s"


def execute(cur, m, text, rows=None, many=False):
    text = text.replace("?", m)
    return cur.executemany(text, rows) if many else cur.execute(text, rows or ())


def scalar(cur, m, text, *params):
    execute(cur, m, text, params)
    return cur.fetchone()[0]


def seed_sync(cur, m):
    call(kc, "POST", "/_control/groups", {"name": "cloud-bench"})
    ids = [call(kc, "POST", "/_control/users",
                {"username": f"{run}-u{i}", "email": f"{run}-u{i}@bench.test"})["id"]
           for i in range(1, users + 1)]
    now = int(time.time())
    execute(cur, m, "INSERT INTO products (id, name, slug, page, provisioner, requires_instance, "
            "created_at, updated_at) VALUES (1, 'Cloud', 'cloud', 'plan', 'group', true, 1, 1)")
    execute(cur, m, "INSERT INTO instances (id, product_id, name, base_url, soft_cap, "
            "allocation_cap, hard_cap, created_at, updated_at) VALUES (1, 1, 'bench', "
            "'https://bench.example.test', ?, ?, ?, 1, 1)", (users, users, users))
    execute(cur, m, "INSERT INTO groups (id, name) VALUES (1, 'cloud-bench')")
    execute(cur, m, "INSERT INTO instance_groups (instance_id, group_id) VALUES (1, 1)")
    execute(cur, m, "INSERT INTO users (id, username, email, date_joined, subscription_status, "
            "keycloak_id) VALUES (?, ?, ?, ?, 'active', ?)",
            [(i, f"{run}-u{i}", f"{run}-u{i}@bench.test", now, kc_id)
             for i, kc_id in enumerate(ids, start=1)], many=True)
    execute(cur, m, "INSERT INTO subscription_items (user_id, product_id, stripe_price_id) "
            "VALUES (?, 1, 'price_cloud')", [(i,) for i in range(1, users + 1)], many=True)
    return [f"{run}-u{i}@bench.test" for i in range(1, users + 1)]


def seed_webhook(cur, m):
    # Everyone gets a seat: the demo catalog's instances hold fewer than USERS.
    execute(cur, m, "UPDATE instances SET soft_cap = ?, allocation_cap = ?, hard_cap = ?",
            (users, users, users))
    for g in json.load(open(sys.argv[10]))["groups"]:
        call(kc, "POST", "/_control/groups", {"name": g})
    call(st, "POST", "/_control/config", {"webhook_url": usher + "/onboarding/webhook/"})
    auth = {"Authorization": "Bearer sk_test_bench"}
    events = []
    for i in range(1, users + 1):
        form = {"mode": "subscription", "customer_email": f"{run}-u{i}@bench.test",
                "success_url": usher + "/onboarding/success/?session_id={CHECKOUT_SESSION_ID}",
                "cancel_url": usher + "/onboarding/cancel/", "ui_mode": "hosted_page",
                "metadata[first_name]": "Bench", "metadata[last_name]": f"User{i}",
                "metadata[username]": f"{run}-u{i}"}
        for n, (price, qty) in enumerate(CATALOG_PRICES):
            form[f"line_items[{n}][price]"] = price
            form[f"line_items[{n}][quantity]"] = str(qty)
        sid = call(st, "POST", "/v1/checkout/sessions", form=form, headers=auth)["id"]
        out = call(st, "POST", f"/_control/checkout/sessions/{sid}/complete", {"deliver": False})
        events += [(e["id"], f"{run}-u{i}@bench.test") for e in out["events"]
                   if e["type"] == "checkout.session.completed"]
    return events


def seed():
    conn, m = connect()
    cur = conn.cursor()
    out = seed_sync(cur, m) if mode == "sync" else seed_webhook(cur, m)
    conn.commit()
    conn.close()
    with open(f"{run}.seed", "w") as f:
        json.dump(out, f)


def deliver(item):
    event_id, email = item
    at = time.time()
    d = call(st, "POST", f"/_control/events/{event_id}/deliver", {})["deliveries"]
    if [x["status"] for x in d] != [200]:
        sys.exit(f"webhook for {event_id} not acknowledged: {d}")
    return email, at


def measure(timeout):
    seeded = json.load(open(f"{run}.seed"))
    already = len(call(kc, "GET", "/_control/admin-requests"))
    conn, m = connect()
    cur = conn.cursor()
    t0 = time.time()
    if mode == "sync":
        now = int(t0)
        # The rows task_enqueue writes for sync_user_post_checkout, all in one commit.
        execute(cur, m, "INSERT INTO tasks (name, args, state, attempts, max_attempts, run_at, "
                "created_at, updated_at) VALUES (?, ?, 'queued', 0, 11, ?, ?, ?)",
                [(SYNC, json.dumps({"user_id": i}), now - 1, now, now)
                 for i in range(1, users + 1)], many=True)
        conn.commit()
        start = {email: t0 for email in seeded}
    else:
        with ThreadPoolExecutor(8) as pool:
            start = dict(pool.map(deliver, seeded))
    while True:
        finished = scalar(cur, m, "SELECT count(*) FROM tasks WHERE name = ? "
                          "AND state IN ('done', 'failed')", SYNC)
        busy = scalar(cur, m, "SELECT count(*) FROM tasks WHERE name IN "
                      "('process_stripe_event', ?) AND state IN ('queued', 'running')", SYNC)
        conn.commit()
        if finished >= users and busy == 0:
            break
        if time.time() - t0 > timeout:
            sys.exit(f"only {finished} of {users} syncs finished in {timeout} s")
        time.sleep(0.05)
    bad = scalar(cur, m, "SELECT count(*) FROM tasks WHERE name IN ('process_stripe_event', ?) "
                 "AND (state = 'failed' OR attempts > 1)", SYNC)
    conn.close()
    email_of = {u["id"]: u["email"] for u in call(kc, "GET", "/_control/state")["users"]}
    done_at = {}
    for e in call(kc, "GET", "/_control/admin-requests")[already:]:
        uid = e["path"].rsplit("/", 1)[-1]
        body = e["body"] if isinstance(e["body"], dict) else {}
        if e["method"] == "PUT" and e["status"] == 204 and \
                GOT_SEAT in (body.get("attributes") or {}) and email_of.get(uid) in start:
            email = email_of[uid]
            done_at[email] = max(done_at.get(email, 0), e["at"])
    if len(done_at) != users or bad:
        sys.exit(f"{len(done_at)} of {users} users provisioned in Keycloak, "
                 f"{bad} tasks failed or retried")
    lat = sorted(done_at[e] - start[e] for e in done_at)
    wall = max(done_at.values()) - t0
    p99 = lat[min(len(lat) - 1, int(round(0.99 * len(lat))) - 1)]
    print(f"{users / wall:.1f} {statistics.median(lat) * 1000:.0f} {p99 * 1000:.0f} {wall:.2f}")


if cmd == "seed":
    seed()
else:
    measure(float(sys.argv[9]))
PY

# --- one measurement ------------------------------------------------------------------------
# run_one ENGINE DATABASE_URL WORKERS — prints one result line.
run_one() {
    local engine=$1 db=$2 nworkers=$3 run="$1-w$3" dir pids=() i out web=""
    dir="$work/$run"
    mkdir -p "$dir"
    export USHER_DATA_DIR="$repo" SECRET_KEY DEBUG=false KEYCLOAK_SERVER_URL="$kc_url" \
        KEYCLOAK_REALM=usher KEYCLOAK_ADMIN_CLIENT_ID=usher-admin \
        KEYCLOAK_ADMIN_CLIENT_SECRET=usher-admin-secret OIDC_RP_CLIENT_ID=usher \
        OIDC_RP_CLIENT_SECRET=usher-secret WORKER_CONCURRENCY="$concurrency"
    if [ "$mode" = webhook ]; then
        export STRIPE_API_BASE="$st_url" STRIPE_SECRET_KEY=sk_test_bench \
            STRIPE_WEBHOOK_SECRET="$webhook_secret"
        bench_start_usher "$run" "$db" # migrates; exports DATABASE_URL, PUBLIC_BASE_URL
        web="http://127.0.0.1:$usher_port"
        bench_usher_cli "$run" catalog apply "$repo/devstack/catalog.json" \
            >"$dir/catalog.log" 2>&1 ||
            { cat "$dir/catalog.log" >&2; bench_die "usher catalog apply failed ($run)"; }
    else
        export DATABASE_URL="$db" PUBLIC_BASE_URL="http://127.0.0.1:8000"
        unset TASK_BROKER_URL CELERY_BROKER_URL USHER_TEST_CLOCK_FILE USHER_ENV_FILE USHER_DEMO
        (cd "$dir" && "$usher_bin" migrate) >"$dir/migrate.log" 2>&1 ||
            { cat "$dir/migrate.log" >&2; bench_die "usher migrate failed ($run)"; }
    fi
    (cd "$dir" && "$py" "$work/driver.py" seed "$mode" "$db" "$users" "$kc_url" "${st_url:-}" \
        "$web" "$run" 0 "$repo/devstack/catalog.json") || bench_die "seeding failed ($run)"
    for i in $(seq 1 "$nworkers"); do
        (cd "$dir" && exec "$usher_bin" worker) >"$dir/worker$i.log" 2>&1 &
        pids+=($!)
        bench_pids+=($!)
    done
    for i in $(seq 1 "$nworkers"); do
        for _ in $(seq 100); do
            grep -q "worker started" "$dir/worker$i.log" && break
            kill -0 "${pids[$((i - 1))]}" 2>/dev/null ||
                { tail -n 20 "$dir/worker$i.log" >&2; bench_die "usher worker died ($run)"; }
            sleep 0.1
        done
        grep -q "worker started" "$dir/worker$i.log" || bench_die "usher worker did not start"
    done
    out="$(cd "$dir" && "$py" "$work/driver.py" measure "$mode" "$db" "$users" "$kc_url" \
        "${st_url:-}" "$web" "$run" "$drain_timeout")" ||
        { tail -n 20 "$dir/worker1.log" >&2; bench_die "drain failed ($run)"; }
    for pid in "${pids[@]}"; do
        bench_stop_pid "$pid"
    done
    [ "$mode" = webhook ] && bench_stop_usher
    read -r rate median p99 wall <<<"$out"
    printf '  %-10s %d worker(s)  %7.1f users/s   latency median %6d ms   p99 %6d ms   (%s s)\n' \
        "$engine" "$nworkers" "$rate" "$median" "$p99" "$wall"
}

SECRET_KEY="$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
if [ "$mode" = webhook ]; then
    what="checkout.session.completed webhook -> provisioned in the Keycloak double"
else
    what="sync task enqueued -> provisioned in the Keycloak double"
fi
echo "provisioning: $users users, $what (WORKER_CONCURRENCY=$concurrency per worker," \
    "$cores cores)"
for n in $worker_counts; do
    run_one sqlite "sqlite:///$work/sqlite-w$n.sqlite3" "$n"
done
if bench_start_pg pg; then
    for n in $worker_counts; do
        bench_psql "$pg_url" "CREATE SCHEMA prov_w$n" >/dev/null
        sep='?'
        case $pg_url in *\?*) sep='&' ;; esac
        run_one postgres "${pg_url}${sep}options=-csearch_path%3Dprov_w$n" "$n"
    done
else
    echo "  postgres   skipped: no PostgreSQL cluster could be started (scripts/pg-cluster)"
fi
