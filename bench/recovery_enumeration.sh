#!/usr/bin/env bash
# bench/recovery_enumeration.sh — does POST /recovery/send-code/ take longer for some accounts
# than for others? (issue 11: no account enumeration by timing). See bench/README.md.
#
#   bench/recovery_enumeration.sh          1,000 requests of each kind, SQLite then PostgreSQL
#   REQUESTS=200 BENCH_PG=0 bench/recovery_enumeration.sh
#
# A throwaway usher with four accounts (canceled inside its recovery window, active, expired,
# and a name nobody has) answers REQUESTS send-code requests for each, interleaved, each from
# a fresh browser session (bench/recovery_timing.py); the baseline is the unknown name's
# median in the same run. No worker runs: the lookup and the mail are the worker's, which is
# the point. Exits 0 whatever the figures.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init
requests="${REQUESTS:-1000}"
export RECOVERY_REQUESTS_PER_IP_PER_HOUR=1000000 SESSION_NEW_PER_IP_PER_MINUTE=1000000

seed_sql="INSERT INTO users (username, email, date_joined, subscription_status, access_expires_at)
VALUES ('gone', 'gone@example.test', 1, 'canceled', $(($(date +%s) + 864000))),
       ('live', 'live@example.test', 1, 'active', NULL),
       ('old', 'old@example.test', 1, 'expired', 1)"

seed() { # DATABASE_URL
    case $1 in
        sqlite://*) python3 -c 'import sqlite3, sys
con = sqlite3.connect(sys.argv[1]); con.execute(sys.argv[2]); con.commit()' "${1#sqlite://}" "$seed_sql" ;;
        *) bench_psql "$1" "$seed_sql" >/dev/null ;;
    esac
}

run() { # NAME DATABASE_URL ENGINE
    bench_start_usher "$1" "$2"
    seed "$2"
    echo "POST /recovery/send-code/  ($requests requests per kind, interleaved, $3, usher WEB_THREADS=$web_threads)"
    python3 "$repo/bench/recovery_timing.py" "http://127.0.0.1:$usher_port" "$requests" ||
        bench_die "the timing run failed ($1)"
    bench_usher_alive "$1"
    bench_stop_usher
}

run usher-sqlite "sqlite:///$work/usher-sqlite/usher.sqlite3" SQLite
if [ "${BENCH_PG:-1}" != 0 ]; then
    if bench_start_pg pg; then
        run usher-pg "$pg_url" PostgreSQL
    else
        bench_log "no PostgreSQL cluster could be started (scripts/pg-cluster): PostgreSQL skipped"
        echo "POST /recovery/send-code/ on PostgreSQL: skipped, no cluster could be started"
    fi
fi

bench_keep recovery_enumeration
