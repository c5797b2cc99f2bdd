#!/usr/bin/env bash
# bench/cost_growth.sh — does the cost of the hot paths grow with the number of users? For
# each size, a fresh database seeded with that many users (bench/seed/*.sql: seats, sessions,
# events, tasks in proportion), on SQLite and on PostgreSQL. See bench/README.md.
#
#   bench/cost_growth.sh                        1,000 and 100,000 users (about 5 minutes)
#   SIZES="1000 100000 1000000" bench/cost_growth.sh   the million too (about 25 minutes)
#   BENCH_PG=0 / BENCH_SQLITE=0 bench/cost_growth.sh   one engine only
#
# Per size it prints: GET /dashboard/ of seated users, 1,000 (VISITORS) logged-in visitors in
# turn (wrk, p50 and p99, median of ROUNDS rounds), POST /onboarding/webhook/ (signed new
# events, p99 ack, median of rounds, with `usher worker` processing them meanwhile), taking a
# seat (alloc_assign) and claiming the next task (task_claim_next), timed by build/bench_scale
# on the same database (p50, p99 of COUNT calls), and the resident memory of `usher serve` and
# `usher worker` after the load: RSS, PSS, and a line splitting each RSS into code (executable
# and shared libraries, the same pages in both), own (heap, arenas, stacks) and files
# (SQLite's -shm), with what the two occupy together when each physical page is counted once
# (bench/rss_breakdown.py). Then the same load once more on one `usher serve` with
# WORKER_IN_SERVE=true (the small-install layout), whose RSS is web + worker in one process.
# The figure to read is the ratio of each size to the smallest one (the first in SIZES), on
# the same engine in the same run (goal: within 1.5× at a million users). Exits 0 whatever
# the figures; non-zero only when something fails to start.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
DURATION="${DURATION:-3s}"
bench_init
sizes="${SIZES:-1000 100000}"
count="${COUNT:-300}"
visitor_count="${VISITORS:-1000}"
driver="${BENCH_SCALE_BIN:-$(dirname "$usher_bin")/bench_scale}"
[ -x "$driver" ] || bench_die "$driver not found: build first (ninja -C build bench_scale)"
command -v psql >/dev/null 2>&1 || [ "${BENCH_PG:-1}" = 0 ] ||
    bench_die "psql is not installed (or set BENCH_PG=0)"
secret="whsec_bench$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
export STRIPE_WEBHOOK_SECRET="$secret"
export WORKER_CONCURRENCY="${WORKER_CONCURRENCY:-2}"
run_tag="$(date +%s)"
duration_s="$(awk -v d="$duration" 'BEGIN { v = d + 0; if (d ~ /m$/) v *= 60; print v }')"

bench_p50() { awk '$1 == "50%" {print $2}' "$1"; }
# Proportional set size in kB: the process's own pages plus its share of pages it shares
# (mostly the shared libraries, ~11 MB of each process's RSS, counted again in every process).
bench_pss() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup"; }

# db_exec URL SQL — one statement with write access, either engine. The SQL goes through
# stdin: a thousand visitors' rows are longer than one command-line argument may be.
db_exec() {
    case $1 in
        sqlite://*) python3 -c 'import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
con.execute(sys.stdin.read())
con.commit()' "${1#sqlite://}" <<<"$2" ;;
        *) psql -X -q -v ON_ERROR_STOP=1 "$1" -f - <<<"$2" >/dev/null ;;
    esac
}

# seed URL N — the rows of bench/seed/<engine>.sql for N users.
seed() {
    local now
    now="$(date +%s)"
    case $1 in
        sqlite://*) python3 -c 'import sqlite3, sys
sql = open(sys.argv[2]).read().replace("{n}", str(int(sys.argv[3]))).replace("{now}", str(int(sys.argv[4])))
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.executescript(sql)' "${1#sqlite://}" "$repo/bench/seed/sqlite.sql" "$2" "$now" ;;
        *) psql -X -q -v ON_ERROR_STOP=1 -v n="$2" -v now="$now" "$1" \
            -f "$repo/bench/seed/postgres.sql" >/dev/null ;;
    esac
}

# visitors URL SIZE FILE — logged-in sessions (hand-made rows: what a login stores) for
# VISITORS users spread evenly over the SIZE seeded ones; writes their Cookie headers to FILE,
# one per line, for count_status.lua (BENCH_COOKIES). Many visitors, not one: one user's rows
# would all stay in SQLite's and PostgreSQL's caches, hiding what a million users cost.
visitors() {
    local url=$1 size=$2 file=$3 n i cookie hash now values=""
    n=$((size < visitor_count ? size : visitor_count))
    now="$(date +%s)"
    : >"$file"
    for i in $(seq 1 "$n"); do
        cookie="$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
        hash="$(printf '%s' "$cookie" | sha256sum | cut -d' ' -f1)"
        values+="${values:+,}('$hash', $(((i - 1) * size / n + 1)), '$(printf '%064d' 0)', '{}', $now, $now)"
        echo "__Host-usher_session=$cookie" >>"$file"
    done
    db_exec "$url" "INSERT INTO sessions (id_hash, user_id, csrf_token, data, created_at, last_seen_at) VALUES $values"
}

results=()

# dashboard_rounds NAME COOKIES_FILE — ROUNDS wrk rounds of GET /dashboard/ on $usher_port,
# each request as the next visitor of the file; appends each round's p50 and p99 (ms) to d50
# and d99.
dashboard_rounds() {
    local name=$1 cookies=$2 round f
    for round in $(seq 1 "$rounds"); do
        BENCH_COOKIES="$cookies" bench_wrk "$name.dash.$round" \
            "http://127.0.0.1:$usher_port/dashboard/" -s "$repo/bench/count_status.lua"
        f="$work/$name.dash.$round.wrk"
        [ "$(bench_lua_value "$f" other)" = 0 ] ||
            bench_die "$name: /dashboard/ answered other than 200 ($(bench_lua_value "$f" other) times)"
        d50+=("$(bench_ms "$(bench_p50 "$f")")")
        d99+=("$(bench_ms "$(bench_p99 "$f")")")
    done
}

# webhook_rounds NAME TAG — ROUNDS wrk rounds of new signed events (ids unique per TAG) on
# $usher_port; appends each round's p99 (ms) and rate to w99 and wrate.
webhook_rounds() {
    local name=$1 tag=$2 round f
    for round in $(seq 1 "$rounds"); do
        f="$work/$name.events.$round"
        python3 "$repo/bench/webhook_events.py" "$f" \
            "$(awk -v d="$duration_s" 'BEGIN { printf "%d", 8000 * d + 1000 }')" "$secret" \
            "${run_tag}${name}$tag$round" "$threads" || bench_die "could not write the signed events"
        bench_wrk "$name.hook.$round" "http://127.0.0.1:$usher_port/onboarding/webhook/" \
            -s "$repo/bench/webhook.lua" -- "$f"
        rm -f "$f".*
        f="$work/$name.hook.$round.wrk"
        [ "$(bench_lua_value "$f" other)" = 0 ] && [ "$(bench_lua_value "$f" repeats)" = 0 ] ||
            bench_die "$name: webhook answers other than 200, or repeated events"
        w99+=("$(bench_ms "$(bench_p99 "$f")")")
        wrate+=("$(bench_rps "$f")")
    done
}

# measure ENGINE SIZE URL — one size on a fresh database; appends a row to results.
measure() {
    local engine=$1 size=$2 url=$3 name="$1-$2" t0 t1 cookies="$work/$1-$2.cookies" product
    local alloc claim srss shwm wrss whwm spss wpss worker_pid breakdown hook99 hookrate orss ohwm
    d50=() d99=() w99=() wrate=()
    bench_start_usher "$name" "$url"
    bench_usher_cli "$name" catalog apply "$repo/devstack/catalog.json" >/dev/null
    t0="$(date +%s.%N)"
    seed "$url" "$size"
    t1="$(date +%s.%N)"
    bench_log "$name: seeded in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
    visitors "$url" "$size" "$cookies"
    dashboard_rounds "$name" "$cookies"
    (cd "$work/$name" && exec "$usher_bin" worker) >"$work/$name/worker.log" 2>&1 &
    worker_pid=$!
    bench_pids+=("$worker_pid")
    webhook_rounds "$name" r
    bench_usher_alive "$name"
    kill -0 "$worker_pid" 2>/dev/null || bench_die "usher worker died ($name)"
    read -r srss shwm <<<"$(bench_rss "$usher_pid")"
    read -r wrss whwm <<<"$(bench_rss "$worker_pid")"
    spss="$(bench_pss "$usher_pid")"
    wpss="$(bench_pss "$worker_pid")"
    # "code own files" kB per process, and both together with each physical page once.
    breakdown="$(python3 "$repo/bench/rss_breakdown.py" "$usher_pid" "$worker_pid" |
        awk '$1 == "together" { t = $2; next } { printf "%s %s %s ", $3, $4, $5 } END { print t }')" ||
        bench_die "could not read the memory breakdown ($name)"
    bench_stop_pid "$worker_pid"
    product="$(bench_count "$url" "SELECT id FROM products WHERE slug = 'nextcloud'")"
    alloc="$("$driver" "$url" alloc "$product" 1 "$size" "$count")" || bench_die "bench_scale alloc failed ($name)"
    claim="$("$driver" "$url" claim "$count")" || bench_die "bench_scale claim failed ($name)"
    bench_stop_usher
    hook99="$(bench_median "${w99[@]}")"
    hookrate="$(bench_median "${wrate[@]}")"
    # The small-install layout: the same load on one `usher serve` that runs the worker too
    # (WORKER_IN_SERVE=true), whose RSS is then web + worker.
    export WORKER_IN_SERVE=true
    bench_start_usher "$name" "$url"
    unset WORKER_IN_SERVE
    dashboard_rounds "$name" "$cookies" # the load only: the table keeps the first rounds' figures
    w99=()
    webhook_rounds "$name" o
    bench_usher_alive "$name"
    read -r orss ohwm <<<"$(bench_rss "$usher_pid")"
    bench_stop_usher
    results+=("$(printf '%s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s' "$engine" "$size" \
        "$(bench_median "${d50[@]:0:$rounds}")" "$(bench_median "${d99[@]:0:$rounds}")" "$hook99" \
        "$hookrate" \
        "$(awk '{ sub("p50_ms=", "", $1); print $1 }' <<<"$alloc")" \
        "$(awk '{ sub("p99_ms=", "", $2); print $2 }' <<<"$alloc")" \
        "$(awk '{ sub("p50_ms=", "", $1); print $1 }' <<<"$claim")" \
        "$(awk '{ sub("p99_ms=", "", $2); print $2 }' <<<"$claim")" \
        "$srss" "$shwm" "$wrss" "$whwm" "$spss" "$wpss" "$breakdown" \
        "$orss" "$ohwm" "$(bench_median "${w99[@]}")")")
    bench_log "$name: ${results[-1]}"
}

if [ "${BENCH_SQLITE:-1}" != 0 ]; then
    for size in $sizes; do
        mkdir -p "$work/sqlite-$size"
        measure SQLite "$size" "sqlite:///$work/sqlite-$size/usher.sqlite3"
        rm -f "$work/sqlite-$size"/usher.sqlite3*
    done
fi
if [ "${BENCH_PG:-1}" != 0 ]; then
    for size in $sizes; do
        if bench_start_pg "pg-$size"; then
            measure PostgreSQL "$size" "$pg_url"
            "$repo/scripts/pg-cluster" stop "$work/pg-$size" >/dev/null 2>&1 || true
            rm -rf "${work:?}/pg-$size"
        else
            bench_log "no PostgreSQL cluster could be started: PostgreSQL skipped"
            break
        fi
    done
fi

# The table: each figure, and in brackets its ratio to the first size of the same engine
# (medians: p50 for the dashboard, allocation and claim, which are steadier than their p99s;
# the webhook's p99, which is what its target is about).
printf '%s\n' "${results[@]}" | awk -v load="wrk -t$threads -c$connections -d$duration, $rounds rounds; $count calls" '
    BEGIN { printf "cost growth with the number of users  (%s; medians of rounds; [ratio to the smallest size], goal <= 1.5)\n", load }
    function r(v, b) { return (b > 0) ? sprintf("%.2f", v / b) : "-" }
    {
        if (!($1 in base)) {
            base[$1] = 1
            split($0, b0)
            printf "%s\n  %9s  %-24s %-24s %-24s %-24s %s\n", $1, "users", "dashboard p50 / p99 ms", "webhook p99 ms (ev/s)", "allocation p50 / p99 ms", "task claim p50 / p99 ms", "MB serve + worker: RSS (peak), PSS"
        }
        printf "  %9d  %-24s %-24s %-24s %-24s %s\n", $2,
            sprintf("%.2f / %.1f [%s]", $3, $4, r($3, b0[3])),
            sprintf("%.1f (%d) [%s]", $5, $6, r($5, b0[5])),
            sprintf("%.3f / %.2f [%s]", $7, $8, r($7, b0[7])),
            sprintf("%.3f / %.2f [%s]", $9, $10, r($9, b0[9])),
            sprintf("%.1f + %.1f = %.1f (%.1f + %.1f), %.1f + %.1f = %.1f", $11 / 1024, $13 / 1024, ($11 + $13) / 1024, $12 / 1024, $14 / 1024, $15 / 1024, $16 / 1024, ($15 + $16) / 1024)
        printf "  %9s  RSS MB, serve: code %.1f + own %.1f + files %.1f; worker: code %.1f + own %.1f + files %.1f; together, each page once: %s\n", "",
            $17 / 1024, $18 / 1024, $19 / 1024, $20 / 1024, $21 / 1024, $22 / 1024,
            ($23 == "-") ? "- (needs root)" : sprintf("%.1f", $23 / 1024)
        printf "  %9s  one process (usher serve with WORKER_IN_SERVE=true), the same load: RSS %.1f MB (peak %.1f), webhook p99 %.1f ms\n", "",
            $24 / 1024, $25 / 1024, $26
    }'
bench_keep cost_growth
