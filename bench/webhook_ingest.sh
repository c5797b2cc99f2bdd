#!/usr/bin/env bash
# bench/webhook_ingest.sh — POST /onboarding/webhook/ (issue 5): signed Stripe deliveries, each
# a new event (verified, stored and enqueued), against nginx answering a static 200 to the same
# requests, same machine, same run, same load. See bench/README.md.
#
#   bench/webhook_ingest.sh           defaults: 3 alternating rounds of wrk -t2 -c32 -d5s
#   ROUNDS=5 DURATION=10s CONNECTIONS=64 bench/webhook_ingest.sh
#   BENCH_PG=0 bench/webhook_ingest.sh        SQLite only (default: PostgreSQL too)
#   BENCH_SQLITE=0 bench/webhook_ingest.sh    PostgreSQL only
#   EVENT_RATE=8000 bench/webhook_ingest.sh   events/s the first round's file is sized for
#
# wrk's Lua has no HMAC, so bench/webhook_events.py signs the deliveries before each round (a
# file per round: the signatures must be within Stripe's 300 s tolerance when they arrive) and
# bench/webhook.lua hands them out, each once. After each usher round the database is asked
# how many events and processing tasks were stored, and that is checked against the 200s wrk
# saw. Exits 0 whatever the figures; non-zero only when something fails to start or wrk fails.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init
target_rate_pg="2000"
target_p99_ms="20"
lua="$repo/bench/webhook.lua"
path="/onboarding/webhook/"
duration_s="$(awk -v d="$duration" 'BEGIN { v = d + 0; if (d ~ /m$/) v *= 60; else if (d ~ /h$/) v *= 3600; print v }')"
event_rate="${EVENT_RATE:-5000}"
secret="whsec_bench$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
export STRIPE_WEBHOOK_SECRET="$secret"
run_tag="$(date +%s)"

# --- nginx: a static 200 to the same POSTs ----------------------------------------------------
bench_start_nginx /health/ "
        location = /health/ {
            return 200 'ok';
        }
        location = $path {
            default_type application/json;
            return 200 '{\"received\":true}';
        }"

stored_events() { bench_count "$usher_db" "SELECT count(*) FROM stripe_events"; }
stored_tasks() { bench_count "$usher_db" "SELECT count(*) FROM tasks WHERE name = 'process_stripe_event'"; }

# settle — waits until usher has finished what was in flight when wrk stopped (the stored
# count stays the same for 0.3 s).
settle() {
    local prev now
    prev="$(stored_events)"
    for _ in $(seq 50); do
        sleep 0.3
        now="$(stored_events)"
        [ "$now" = "$prev" ] && break
        prev=$now
    done
}

# measure NAME ENGINE — alternating rounds against nginx and the running usher, a check of
# the database after each usher round; prints the figures of NAME.
measure() {
    local name=$1 engine=$2 ratios=() rates=() checks=() round n u file count rate
    local ev0 ev1 tk0 tk1 issued ok other repeats inflight stored tasks verdict
    rate=$event_rate
    for round in $(seq 1 "$rounds"); do
        # Enough events that usher never runs out at 1.5 times the rate it last managed.
        count="$(awk -v r="$rate" -v d="$duration_s" 'BEGIN { printf "%d", r * d * 1.5 + 1000 }')"
        file="$work/$name.events.$round"
        python3 "$repo/bench/webhook_events.py" "$file" "$count" "$secret" "${run_tag}r$round$name" "$threads" ||
            bench_die "could not write the signed events"
        ev0="$(stored_events)"
        tk0="$(stored_tasks)"
        bench_round "$name" "$round" "http://127.0.0.1:$nginx_port$path" \
            "http://127.0.0.1:$usher_port$path" -s "$lua" -- "$file"
        ratios+=("$round_ratio")
        u="$work/$name.usher.$round.wrk"
        settle
        ev1="$(stored_events)"
        tk1="$(stored_tasks)"
        rm -f "$file".*
        issued="$(bench_lua_value "$u" issued)"
        ok="$(bench_lua_value "$u" ok)"
        other="$(bench_lua_value "$u" other)"
        repeats="$(bench_lua_value "$u" repeats)"
        if [ -z "$issued" ] || [ -z "$ok" ]; then
            bench_die "could not read webhook.lua's counts"
        fi
        stored=$((ev1 - ev0))
        tasks=$((tk1 - tk0))
        # wrk asks thread 0's request() once before the run to check the script (that event
        # is never sent), and stops with up to one request per connection sent but not yet
        # answered: usher still stores those, so the stored count is the 200s plus at most
        # that many.
        inflight=$((issued - 1 - ok - other))
        if [ "$repeats" = 0 ] && [ "$other" = 0 ] && [ "$stored" -ge "$ok" ] &&
            [ "$stored" -le $((ok + inflight)) ] && [ "$tasks" = "$stored" ]; then
            verdict=ok
        else
            verdict=MISMATCH
        fi
        checks+=("$(printf 'round %d: %d events and %d tasks stored, %d answers 200: stored - 200s = %+d (allowed 0..%d, in flight when wrk stopped); %d other answers; %d repeated events  %s' \
            "$round" "$stored" "$tasks" "$ok" $((stored - ok)) "$inflight" "$other" "$repeats" "$verdict")")
        bench_log "$name ${checks[-1]}"
        rates+=("$(bench_rps "$u")")
        rate="$(awk -v r="$(bench_rps "$u")" 'BEGIN { r *= 1.5; printf "%d", (r < 500) ? 500 : r }')"
    done
    bench_usher_alive "$name"
    local rss_kb hwm_kb
    read -r rss_kb hwm_kb <<<"$(bench_rss "$usher_pid")"
    n="$work/$name.nginx.$rounds.wrk"
    u="$work/$name.usher.$rounds.wrk"
    awk -v n="$(bench_rps "$n")" -v u="$(bench_rps "$u")" \
        -v np="$(bench_p99 "$n")" -v up="$(bench_p99 "$u")" -v upms="$(bench_ms "$(bench_p99 "$u")")" \
        -v ne="$(bench_errors "$n")" -v ue="$(bench_errors "$u")" \
        -v ratio="$(bench_median "${ratios[@]}")" -v all="${ratios[*]}" \
        -v rate="$(bench_median "${rates[@]}")" -v allrates="${rates[*]}" \
        -v tr="$target_rate_pg" -v tp="$target_p99_ms" -v rss="$rss_kb" -v hwm="$hwm_kb" \
        -v engine="$engine" -v path="$path" \
        -v load="wrk -t$threads -c$connections -d$duration, $rounds alternating rounds" \
        -v cores="$cores" -v wt="$web_threads" 'BEGIN {
        printf "POST %s  (%s, %d cores, usher WEB_THREADS=%d, %s, every event new)\n", path, load, cores, wt, engine
        printf "  nginx  %10.0f req/s      p99 %s   (last round, static 200)%s\n", n, np, ne
        printf "  usher  %10.0f events/s   p99 %s   (last round)%s\n", u, up, ue
        printf "  ratio usher/nginx  %.2f median of rounds [%s]\n", ratio, all
        if (engine == "PostgreSQL")
            printf "  usher events/s     %.0f median of rounds [%s]   (target >= %s)  %s\n", rate, allrates, tr, (rate >= tr ? "ok" : "BELOW TARGET")
        else
            printf "  usher events/s     %.0f median of rounds [%s]   (the target, >= %s, is for PostgreSQL)\n", rate, allrates, tr
        printf "  usher p99 ack      %s   (target < %s ms)  %s\n", up, tp, (upms < tp ? "ok" : "ABOVE TARGET")
        printf "  usher VmRSS        %.1f MB (peak %.1f MB)\n", rss / 1024, hwm / 1024
    }'
    printf '  stored vs 200s     %s\n' "${checks[@]}"
}

# --- usher on SQLite, then on a throwaway PostgreSQL cluster ----------------------------------
if [ "${BENCH_SQLITE:-1}" != 0 ]; then
    bench_start_usher usher-sqlite "sqlite:///$work/usher-sqlite/usher.sqlite3"
    measure usher-sqlite SQLite
    bench_stop_usher
fi

if [ "${BENCH_PG:-1}" != 0 ]; then
    if bench_start_pg pg; then
        bench_start_usher usher-pg "$pg_url"
        measure usher-pg PostgreSQL
        bench_stop_usher
    else
        bench_log "no PostgreSQL cluster could be started (scripts/pg-cluster): PostgreSQL skipped"
        echo "POST $path on PostgreSQL: skipped, no cluster could be started"
    fi
fi

bench_keep webhook_ingest
