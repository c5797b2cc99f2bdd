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

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
usher_bin="${USHER_BIN:-$repo/build/usher}"
threads="${THREADS:-2}"
connections="${CONNECTIONS:-32}"
duration="${DURATION:-5s}"
cores="$(nproc)"
web_threads="${WEB_THREADS:-$cores}"
target_ratio="0.6"
target_rss_mb="20"

die() {
    echo "bench: $*" >&2
    exit 1
}

for tool in wrk nginx curl; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] ||
        die "$tool is not installed (scripts/bootstrap installs it)"
done
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
[ -x "$usher_bin" ] || die "$usher_bin not found: build first (make bench, or ninja -C build)"

work="$(mktemp -d /tmp/usher-bench.XXXXXX)"
usher_pid=""
nginx_pid=""

cleanup() {
    local pid
    for pid in "$usher_pid" "$nginx_pid"; do
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    for pid in "$usher_pid" "$nginx_pid"; do
        if [ -n "$pid" ]; then
            for _ in $(seq 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_http() { # url pid name
    local i
    for i in $(seq 200); do
        if curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null; then
            return 0
        fi
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# --- nginx: the baseline ----------------------------------------------------------------
nginx_port="$(free_port)"
mkdir -p "$work/nginx/html" "$work/nginx/tmp"
chmod 755 "$work" "$work/nginx" "$work/nginx/html"
printf '{"status":"ok"}' >"$work/nginx/html/health.json"
chmod 644 "$work/nginx/html/health.json"
nginx_user=""
if [ "$(id -u)" = 0 ]; then
    nginx_user="user root;"
fi
cat >"$work/nginx/nginx.conf" <<EOF
$nginx_user
worker_processes $cores;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/nginx/tmp/body;
    proxy_temp_path $work/nginx/tmp/proxy;
    fastcgi_temp_path $work/nginx/tmp/fastcgi;
    uwsgi_temp_path $work/nginx/tmp/uwsgi;
    scgi_temp_path $work/nginx/tmp/scgi;
    keepalive_requests 100000;
    server {
        listen 127.0.0.1:$nginx_port;
        root $work/nginx/html;
        location = /health/ {
            default_type application/json;
            try_files /health.json =404;
        }
    }
}
EOF
"$nginx_bin" -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" \
    >"$work/nginx/stdout.log" 2>&1 &
nginx_pid=$!
if ! wait_http "http://127.0.0.1:$nginx_port/health/" "$nginx_pid"; then
    cat "$work/nginx/error.log" "$work/nginx/stdout.log" >&2 2>/dev/null || true
    die "nginx did not start"
fi

# --- usher on SQLite ---------------------------------------------------------------------
usher_port="$(free_port)"
mkdir -p "$work/usher"
export BIND="127.0.0.1:$usher_port"
export DATABASE_URL="sqlite:///$work/usher/usher.sqlite3"
export SECRET_KEY="$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
export PUBLIC_BASE_URL="http://127.0.0.1:$usher_port"
export DEBUG=false
export WEB_THREADS="$web_threads"
unset PROMETHEUS_METRICS_API_KEY TASK_BROKER_URL CELERY_BROKER_URL USHER_TEST_CLOCK_FILE
(cd "$work/usher" && "$usher_bin" migrate) >"$work/usher/migrate.log" 2>&1 ||
    { cat "$work/usher/migrate.log" >&2; die "usher migrate failed"; }
(cd "$work/usher" && exec "$usher_bin" serve) >"$work/usher/serve.log" 2>&1 &
usher_pid=$!
if ! wait_http "http://127.0.0.1:$usher_port/health/" "$usher_pid"; then
    tail -n 30 "$work/usher/serve.log" >&2 || true
    die "usher did not start"
fi

# --- load ---------------------------------------------------------------------------------
run_wrk() { # name url
    echo "bench: wrk -t$threads -c$connections -d$duration --latency $2" >&2
    wrk -t"$threads" -c"$connections" -d"$duration" --latency "$2" >"$work/$1.wrk" 2>&1 ||
        { cat "$work/$1.wrk" >&2; die "wrk against $1 failed"; }
}

# wrk prints "Requests/sec:  12345.67" and, with --latency, "     99%    1.23ms".
rps_of() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
p99_of() { awk '$1 == "99%" {print $2}' "$1"; }
errors_of() {
    awk '/Socket errors|Non-2xx/ {sub(/^ +/, ""); printf "%s; ", $0}' "$1"
}

# The machine's speed drifts (a shared VM), so nginx and usher are measured in alternating
# rounds and the median of the per-round ratios is the figure.
rounds="${ROUNDS:-3}"
ratios=()
for round in $(seq 1 "$rounds"); do
    run_wrk "nginx.$round" "http://127.0.0.1:$nginx_port/health/"
    run_wrk "usher.$round" "http://127.0.0.1:$usher_port/health/"
    n="$(rps_of "$work/nginx.$round.wrk")"
    u="$(rps_of "$work/usher.$round.wrk")"
    [ -n "$n" ] && [ -n "$u" ] || die "could not read wrk's output"
    ratio="$(awk -v n="$n" -v u="$u" 'BEGIN { printf "%.3f", (n > 0) ? u / n : 0 }')"
    ratios+=("$ratio")
    printf 'bench: round %d: nginx %.0f req/s (p99 %s), usher %.0f req/s (p99 %s), ratio %s%s\n' \
        "$round" "$n" "$(p99_of "$work/nginx.$round.wrk")" "$u" \
        "$(p99_of "$work/usher.$round.wrk")" "$ratio" \
        "$(errors_of "$work/usher.$round.wrk")" >&2
done

kill -0 "$usher_pid" 2>/dev/null || { tail -n 30 "$work/usher/serve.log" >&2; die "usher died under load"; }
rss_kb="$(awk '/^VmRSS:/ {print $2}' "/proc/$usher_pid/status")"
hwm_kb="$(awk '/^VmHWM:/ {print $2}' "/proc/$usher_pid/status")"
median="$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')"
last=$rounds

awk -v n="$(rps_of "$work/nginx.$last.wrk")" -v u="$(rps_of "$work/usher.$last.wrk")" \
    -v np="$(p99_of "$work/nginx.$last.wrk")" -v up="$(p99_of "$work/usher.$last.wrk")" \
    -v ratio="$median" -v all="${ratios[*]}" -v rss="$rss_kb" -v hwm="$hwm_kb" \
    -v tr="$target_ratio" -v tm="$target_rss_mb" \
    -v load="wrk -t$threads -c$connections -d$duration, $rounds alternating rounds" \
    -v cores="$cores" -v wt="$web_threads" 'BEGIN {
    rss_mb = rss / 1024
    printf "GET /health/  (%s, %d cores, usher WEB_THREADS=%d, SQLite)\n", load, cores, wt
    printf "  nginx  %10.0f req/s   p99 %s   (last round)\n", n, np
    printf "  usher  %10.0f req/s   p99 %s   (last round)\n", u, up
    printf "  ratio usher/nginx  %.2f median of rounds [%s]   (target >= %s)  %s\n", ratio, all, tr, (ratio >= tr ? "ok" : "BELOW TARGET")
    printf "  usher VmRSS        %.1f MB (peak %.1f MB)   (target < %s MB)  %s\n", rss_mb, hwm / 1024, tm, (rss_mb < tm ? "ok" : "ABOVE TARGET")
}'

if [ -n "${BENCH_KEEP:-}" ]; then
    mkdir -p "$repo/bench/results"
    stamp="$(date -u +%Y%m%dT%H%M%SZ)"
    for f in "$work"/*.wrk; do cp "$f" "$repo/bench/results/health-$stamp-$(basename "$f" .wrk).txt"; done
    echo "bench: wrk outputs kept in bench/results/health-$stamp-*.txt" >&2
fi
