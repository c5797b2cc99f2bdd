#!/usr/bin/env bash
# bench/health.sh — GET /health/ throughput and latency of usher against nginx, same machine,
# same run, same load. See bench/README.md.
#
#   bench/health.sh                   defaults: 3 alternating rounds of wrk -t2 -c32 -d5s
#   ROUNDS=5 DURATION=10s CONNECTIONS=64 THREADS=2 bench/health.sh
#   USHER_BIN=/path/to/usher bench/health.sh
#
# Expects a built binary (build/usher; `make bench` builds it first). Starts a throwaway
# SQLite-backed usher and an nginx serving a small static file, both on loopback, runs wrk
# against nginx first and then usher, and prints requests/s, the ratio usher/nginx, p99
# latencies and usher's resident memory after the run, next to the targets. Exits 0 whatever
# the figures (timings are not assertions on a shared 2-core machine); non-zero only when
# something fails to start or wrk fails.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init
target_ratio="0.8"
target_rss_mb="20"

# --- nginx: the baseline ----------------------------------------------------------------
mkdir -p "$work/nginx/html"
printf '{"status":"ok"}' >"$work/nginx/html/health.json"
bench_start_nginx /health/ '
        location = /health/ {
            default_type application/json;
            try_files /health.json =404;
        }'

# --- usher on SQLite ---------------------------------------------------------------------
bench_start_usher usher "sqlite:///$work/usher/usher.sqlite3"

# --- load ---------------------------------------------------------------------------------
# The machine's speed drifts (a shared VM), so nginx and usher are measured in alternating
# rounds and the median of the per-round ratios is the figure.
ratios=()
for round in $(seq 1 "$rounds"); do
    bench_round health "$round" "http://127.0.0.1:$nginx_port/health/" \
        "http://127.0.0.1:$usher_port/health/"
    ratios+=("$round_ratio")
done

bench_usher_alive usher
read -r rss_kb hwm_kb <<<"$(bench_rss "$usher_pid")"
median="$(bench_median "${ratios[@]}")"
nlast="$work/health.nginx.$rounds.wrk"
ulast="$work/health.usher.$rounds.wrk"

awk -v n="$(bench_rps "$nlast")" -v u="$(bench_rps "$ulast")" \
    -v np="$(bench_p99 "$nlast")" -v up="$(bench_p99 "$ulast")" \
    -v ne="$(bench_errors "$nlast")" -v ue="$(bench_errors "$ulast")" \
    -v ratio="$median" -v all="${ratios[*]}" -v rss="$rss_kb" -v hwm="$hwm_kb" \
    -v tr="$target_ratio" -v tm="$target_rss_mb" \
    -v load="wrk -t$threads -c$connections -d$duration, $rounds alternating rounds" \
    -v cores="$cores" -v wt="$web_threads" 'BEGIN {
    rss_mb = rss / 1024
    printf "GET /health/  (%s, %d cores, usher WEB_THREADS=%d, SQLite)\n", load, cores, wt
    printf "  nginx  %10.0f req/s   p99 %s   (last round)%s\n", n, np, ne
    printf "  usher  %10.0f req/s   p99 %s   (last round)%s\n", u, up, ue
    printf "  ratio usher/nginx  %.2f median of rounds [%s]   (target >= %s)  %s\n", ratio, all, tr, (ratio >= tr ? "ok" : "BELOW TARGET")
    printf "  usher VmRSS        %.1f MB (peak %.1f MB)   (target < %s MB)  %s\n", rss_mb, hwm / 1024, tm, (rss_mb < tm ? "ok" : "ABOVE TARGET")
}'

bench_stop_usher
bench_keep health
