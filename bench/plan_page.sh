#!/usr/bin/env bash
# bench/plan_page.sh — GET /onboarding/plan/ (issue 4) of usher against nginx serving a static
# copy of the same page, same machine, same run, same load. See bench/README.md.
#
#   bench/plan_page.sh                defaults: 3 alternating rounds of wrk -t2 -c32 -d5s
#   ROUNDS=5 DURATION=10s CONNECTIONS=64 bench/plan_page.sh
#   BENCH_PG=0 bench/plan_page.sh     SQLite only (default: PostgreSQL too when a cluster starts)
#
# Each usher (SQLite, then a throwaway PostgreSQL cluster from scripts/pg-cluster) gets the demo
# catalog (devstack/catalog.json) and one session that has completed step 1, whose cookie wrk
# sends on every request: each request loads that session, reads the plan and add-on products
# with their prices and renders the page. Answers other than 200 (a redirect to step 1 when the
# session is gone) are counted and printed. Exits 0 whatever the figures; non-zero only when
# something fails to start or wrk fails.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init
target_ratio="0.3"
target_p99_ms="10"
lua="$repo/bench/count_status.lua"
path="/onboarding/plan/"

# prepare NAME DATABASE_URL — usher with the catalog and a step-1 session; sets cookie.
prepare() {
    bench_start_usher "$1" "$2"
    bench_usher_cli "$1" catalog apply "$repo/devstack/catalog.json" >"$work/$1/catalog.log" 2>&1 ||
        { cat "$work/$1/catalog.log" >&2; bench_die "usher catalog apply failed ($1)"; }
    cookie="$(python3 "$repo/bench/onboarding_session.py" "http://127.0.0.1:$usher_port" \
        "$work/$1/plan.html")" || bench_die "no step-1 session on $1"
}

# measure NAME ENGINE — alternating rounds against nginx and the running usher; prints the
# figures of NAME.
measure() {
    local name=$1 engine=$2 ratios=() round n u bad
    for round in $(seq 1 "$rounds"); do
        bench_round "$name" "$round" "http://127.0.0.1:$nginx_port$path" \
            "http://127.0.0.1:$usher_port$path" -s "$lua" -H "Cookie: $cookie"
        ratios+=("$round_ratio")
        for n in nginx usher; do
            bad="$(bench_lua_value "$work/$name.$n.$round.wrk" other)"
            [ "${bad:-x}" = 0 ] || bench_log "$name round $round: $n answered ${bad:-?} times with a status other than 200"
        done
    done
    bench_usher_alive "$name"
    # The session was used on every request: it must still be there, and still be step 2.
    local status
    status="$(curl -sS -o /dev/null -w '%{http_code}' -H "Cookie: $cookie" \
        "http://127.0.0.1:$usher_port$path" || true)"
    [ "$status" = 200 ] ||
        bench_log "$name: after the run the plan page answers $status to the session, not 200"
    local rss_kb hwm_kb
    read -r rss_kb hwm_kb <<<"$(bench_rss "$usher_pid")"
    n="$work/$name.nginx.$rounds.wrk"
    u="$work/$name.usher.$rounds.wrk"
    awk -v n="$(bench_rps "$n")" -v u="$(bench_rps "$u")" \
        -v np="$(bench_p99 "$n")" -v up="$(bench_p99 "$u")" -v upms="$(bench_ms "$(bench_p99 "$u")")" \
        -v ne="$(bench_errors "$n")" -v ue="$(bench_errors "$u")" \
        -v nbad="$(bench_lua_value "$n" other)" -v ubad="$(bench_lua_value "$u" other)" \
        -v ratio="$(bench_median "${ratios[@]}")" -v all="${ratios[*]}" \
        -v tr="$target_ratio" -v tp="$target_p99_ms" -v rss="$rss_kb" -v hwm="$hwm_kb" \
        -v bytes="$(wc -c <"$work/$name/plan.html")" -v engine="$engine" -v path="$path" \
        -v load="wrk -t$threads -c$connections -d$duration, $rounds alternating rounds" \
        -v cores="$cores" -v wt="$web_threads" 'BEGIN {
        printf "GET %s  (%s, %d cores, usher WEB_THREADS=%d, %s, page %d bytes)\n", path, load, cores, wt, engine, bytes
        printf "  nginx  %10.0f req/s   p99 %s   (last round, static copy)%s%s\n", n, np, ne, (nbad > 0 ? "; non-200: " nbad : "")
        printf "  usher  %10.0f req/s   p99 %s   (last round)%s%s\n", u, up, ue, (ubad > 0 ? "; non-200: " ubad : "")
        printf "  ratio usher/nginx  %.2f median of rounds [%s]   (target >= %s)  %s\n", ratio, all, tr, (ratio >= tr ? "ok" : "BELOW TARGET")
        printf "  usher p99          %s   (target < %s ms)  %s\n", up, tp, (upms < tp ? "ok" : "ABOVE TARGET")
        printf "  usher VmRSS        %.1f MB (peak %.1f MB)\n", rss / 1024, hwm / 1024
    }'
}

# --- usher on SQLite first: its page is the static copy nginx serves ------------------------
prepare usher-sqlite "sqlite:///$work/usher-sqlite/usher.sqlite3"
mkdir -p "$work/nginx/html/onboarding/plan"
cp "$work/usher-sqlite/plan.html" "$work/nginx/html/onboarding/plan/index.html"
bench_start_nginx "$path" "
        location = $path {
            default_type text/html;
            try_files /onboarding/plan/index.html =404;
        }"
measure usher-sqlite SQLite
bench_stop_usher

# --- the same on PostgreSQL ------------------------------------------------------------------
if [ "${BENCH_PG:-1}" != 0 ]; then
    if bench_start_pg pg; then
        prepare usher-pg "$pg_url"
        measure usher-pg PostgreSQL
        bench_stop_usher
    else
        bench_log "no PostgreSQL cluster could be started (scripts/pg-cluster): PostgreSQL skipped"
        echo "GET $path on PostgreSQL: skipped, no cluster could be started"
    fi
fi

bench_keep plan_page
