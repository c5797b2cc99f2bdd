#!/usr/bin/env bash
# bench/admin_users.sh — the admin console's users list at a million users (issue 12 item 5),
# beside the same list at a thousand users in the same run, on SQLite and PostgreSQL. See
# bench/README.md.
#
#   bench/admin_users.sh                          1,000 and 1,000,000 users, both databases
#   SIZES="1000 100000" BENCH_PG=0 bench/admin_users.sh
#   REQUESTS=1000 WARMUP=50 bench/admin_users.sh
#
# For each database and size: a throwaway usher (migrated), seeded by admin_users_seed.py
# (users with groups, subscription items and seats in proportion, made by the database
# itself in one transaction), an admin session (admin_users_measure.py login: a row in
# `sessions`, as the integration tests make one), then sequential GETs on one keep-alive
# connection through the real `usher serve`: the first page, a page 99 % down the list
# (keyset cursor), a search for a random user, and a status filter. Prints p50 and p99 per
# case and size, and the ratio of the largest size's p99 to the smallest's, so the cost
# growth shows. Every admin request also asks the Keycloak double whether the admin is still
# in ADMIN_GROUP (SPEC §9: re-checked on every request): that round trip (~1 ms, a Python
# server on the same cores) is part of each figure. Goal: p99 < 20 ms on PostgreSQL at 1M.
# Exits 0 whatever the figures; non-zero when something fails to start or answers non-200.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init
sizes="${SIZES:-1000 1000000}"
target_p99_ms=20
py="$repo/.venv/bin/python"
[ -x "$py" ] || py=python3
seed="$repo/bench/admin_users_seed.py"
driver="$repo/bench/admin_users_measure.py"
results="$work/results.tsv"
: >"$results"

# --- the Keycloak double: the admin and the group the console checks ---------------------
kc_port="$(bench_free_port)"
(cd "$repo" && exec "$py" -m devstack.doubles.keycloak_double --port "$kc_port" \
    --realm usher --group usher-admins \
    --user "benchadmin:bench:benchadmin@example.test:usher-admins") >"$work/keycloak.log" 2>&1 &
kc_pid=$!
bench_pids+=("$kc_pid")
kc_url="http://127.0.0.1:$kc_port"
bench_wait_http "$kc_url/health/ready" "$kc_pid" ||
    { cat "$work/keycloak.log" >&2; bench_die "the Keycloak double did not start"; }
export KEYCLOAK_SERVER_URL="$kc_url" KEYCLOAK_REALM=usher ADMIN_GROUP=usher-admins
export OIDC_RP_CLIENT_ID=usher OIDC_RP_CLIENT_SECRET=usher-secret
export KEYCLOAK_ADMIN_CLIENT_ID=usher-admin KEYCLOAK_ADMIN_CLIENT_SECRET=usher-admin-secret
export SECRET_KEY="${SECRET_KEY:-$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')}"

# run ENGINE SIZE DATABASE_URL — seed, log in, measure, stop.
run() {
    local engine=$1 size=$2 url=$3 name="usher-$1-$2" t0 cookie
    bench_start_usher "$name" "$url"
    t0=$(date +%s)
    bench_log "$engine: seeding $size users"
    case $engine in
        sqlite) "$py" "$seed" sqlite "${url#sqlite://}" "$size" ;;
        postgres) "$py" "$seed" pg "$size" | psql -X -q "$url" >"$work/$name/seed.log" 2>&1 ||
            { cat "$work/$name/seed.log" >&2; bench_die "seeding failed ($name)"; } ;;
    esac
    bench_log "$engine: seeded $size users in $(($(date +%s) - t0)) s"
    cookie="$("$py" "$driver" login "$url" "$kc_url" "$size")"
    "$py" "$driver" measure "http://127.0.0.1:$usher_port" "$cookie" "$size" "$engine" \
        >>"$results" || bench_die "measuring failed ($name)"
    bench_usher_alive "$name"
    bench_stop_usher
}

for size in $sizes; do
    run sqlite "$size" "sqlite:///$work/usher-sqlite-$size/usher.sqlite3"
done
if [ "${BENCH_PG:-1}" != 0 ]; then
    for size in $sizes; do
        if bench_start_pg "pg-$size"; then
            run postgres "$size" "$pg_url"
        else
            bench_log "no PostgreSQL cluster could be started: PostgreSQL skipped"
            break
        fi
    done
fi

# --- the table: each case per size, and the growth from the smallest to the largest size ----
"$py" - "$results" "$sizes" "$target_p99_ms" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
sizes = sys.argv[2].split()
target = float(sys.argv[3])
# rows come in run order: (engine, case, p50, p99, rows shown), one block per size
table = {}
seen = {}
for engine, case, p50, p99, shown in rows:
    k = (engine, case)
    i = seen.get(k, 0)
    seen[k] = i + 1
    table[(engine, case, sizes[i])] = (float(p50), float(p99), shown)
print(f"GET /admin/users/ through usher serve (sequential, one connection; p50 / p99 in ms)")
head = "  %-9s %-7s" % ("database", "case") + "".join(f" {s + ' users':>22}" for s in sizes)
print(head + "   p99 growth")
for engine in ("sqlite", "postgres"):
    for case in ("first", "deep", "search", "status"):
        cells = [table.get((engine, case, s)) for s in sizes]
        if not any(cells):
            continue
        line = "  %-9s %-7s" % (engine, case)
        for c in cells:
            line += f" {('%.2f / %.2f' % c[:2]) if c else '-':>22}"
        if cells[0] and cells[-1] and len(sizes) > 1:
            line += f"   x{cells[-1][1] / cells[0][1]:.2f}"
        big = cells[-1]
        if engine == "postgres" and big:
            line += "   (target p99 < %g ms: %s)" % (target, "ok" if big[1] < target else "ABOVE")
        print(line)
PY
bench_keep admin_users
