#!/usr/bin/env bash
# bench/plan_page.sh — the onboarding start page (GET /onboarding/, a first visit: no cookie)
# and the plan page (GET /onboarding/plan/ with a step-1 session, issue 4) of usher against
# nginx serving static copies of the same pages, same machine, same run, same load. See
# bench/README.md.
#
#   bench/plan_page.sh                defaults: 3 alternating rounds of wrk -t2 -c32 -d5s per page
#   ROUNDS=5 DURATION=10s CONNECTIONS=64 bench/plan_page.sh
#   BENCH_PG=0 bench/plan_page.sh     SQLite only (default: PostgreSQL too when a cluster starts)
#
# Each usher (SQLite, then a throwaway PostgreSQL cluster from scripts/pg-cluster) gets the demo
# catalog (devstack/catalog.json). The start page is requested without a cookie, as by a new
# visitor or a crawler: each request gets a fresh session id and the form; the rows the run
# left in `sessions` are printed (0 since sessions are lazy). The plan page is requested with
# one session that has completed step 1, whose cookies (the session and its state tag, as a
# browser holds them after step 1) wrk sends on every request: each request finds that session
# (from the process's copy when the tag matches, domain/session_cache.h, else the database),
# takes the plan and add-on listings (cached per catalog version) and renders the page. Answers other than 200 (a redirect to step 1 when the session is gone) are counted and
# printed. Exits 0 whatever the figures; non-zero only when something fails to start or wrk
# fails.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init
target_ratio="0.5"
target_p99_ms="10"
lua="$repo/bench/count_status.lua"
start_path="/onboarding/"
plan_path="/onboarding/plan/"

# prepare NAME DATABASE_URL — usher with the catalog, its start page saved (no cookie) and a
# step-1 session; sets cookie.
prepare() {
    bench_start_usher "$1" "$2"
    bench_usher_cli "$1" catalog apply "$repo/devstack/catalog.json" >"$work/$1/catalog.log" 2>&1 ||
        { cat "$work/$1/catalog.log" >&2; bench_die "usher catalog apply failed ($1)"; }
    curl -fsS -o "$work/$1/start.html" "http://127.0.0.1:$usher_port$start_path" ||
        bench_die "no start page on $1"
    cookie="$(python3 "$repo/bench/onboarding_session.py" "http://127.0.0.1:$usher_port" \
        "$work/$1/plan.html")" || bench_die "no step-1 session on $1"
}

# measure NAME ENGINE PATH PAGE [WRK ARGS…] — alternating rounds against nginx and the running
# usher; prints the figures of NAME (PAGE: the saved copy nginx serves, for its size).
measure() {
    local name=$1 engine=$2 path=$3 page=$4 ratios=() round n u bad
    shift 4
    for round in $(seq 1 "$rounds"); do
        bench_round "$name" "$round" "http://127.0.0.1:$nginx_port$path" \
            "http://127.0.0.1:$usher_port$path" -s "$lua" "$@"
        ratios+=("$round_ratio")
        for n in nginx usher; do
            bad="$(bench_lua_value "$work/$name.$n.$round.wrk" other)"
            [ "${bad:-x}" = 0 ] || bench_log "$name round $round: $n answered ${bad:-?} times with a status other than 200"
        done
    done
    bench_usher_alive "$name"
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
        -v bytes="$(wc -c <"$page")" -v engine="$engine" -v path="$path" \
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

# plan_after NAME — the session was used on every request: it must still be there, and still
# be step 2.
plan_after() {
    local status
    status="$(curl -sS -o /dev/null -w '%{http_code}' -H "Cookie: $cookie" \
        "http://127.0.0.1:$usher_port$plan_path" || true)"
    [ "$status" = 200 ] ||
        bench_log "$1: after the run the plan page answers $status to the session, not 200"
}

# both NAME ENGINE — the start page (no cookie), then the plan page (the step-1 session).
both() {
    local before after
    before="$(bench_count "$usher_db" "SELECT count(*) FROM sessions")"
    measure "$1-start" "$2" "$start_path" "$work/$1/start.html"
    after="$(bench_count "$usher_db" "SELECT count(*) FROM sessions")"
    echo "  sessions rows written by the start-page rounds: $((after - before))"
    measure "$1-plan" "$2" "$plan_path" "$work/$1/plan.html" -H "Cookie: $cookie"
    plan_after "$1"
}

# --- usher on SQLite first: its pages are the static copies nginx serves ---------------------
prepare usher-sqlite "sqlite:///$work/usher-sqlite/usher.sqlite3"
mkdir -p "$work/nginx/html/onboarding/plan"
cp "$work/usher-sqlite/start.html" "$work/nginx/html/onboarding/index.html"
cp "$work/usher-sqlite/plan.html" "$work/nginx/html/onboarding/plan/index.html"
bench_start_nginx "$plan_path" "
        location = $start_path {
            default_type text/html;
            try_files /onboarding/index.html =404;
        }
        location = $plan_path {
            default_type text/html;
            try_files /onboarding/plan/index.html =404;
        }"
both usher-sqlite SQLite
bench_stop_usher

# --- the same on PostgreSQL ------------------------------------------------------------------
if [ "${BENCH_PG:-1}" != 0 ]; then
    if bench_start_pg pg; then
        prepare usher-pg "$pg_url"
        both usher-pg PostgreSQL
        bench_stop_usher
    else
        bench_log "no PostgreSQL cluster could be started (scripts/pg-cluster): PostgreSQL skipped"
        echo "GET $start_path and $plan_path on PostgreSQL: skipped, no cluster could be started"
    fi
fi

bench_keep plan_page
