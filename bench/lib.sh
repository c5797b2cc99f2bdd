# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables set here are the calling script's
# bench/lib.sh — what the bench scripts share: start-up of nginx, throwaway Usher instances
# and PostgreSQL clusters in one private temporary directory, cleanup on exit or Ctrl-C,
# running wrk, and reading its output. Sourced, not run: see bench/README.md.
#
# A script calls bench_init first; it sets (overridable from the environment)
#   repo usher_bin threads connections duration rounds cores web_threads work
# and everything it starts is stopped, and $work removed, when the script exits.

bench_die() {
    echo "bench: $*" >&2
    exit 1
}

bench_log() {
    echo "bench: $*" >&2
}

bench_init() {
    repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    usher_bin="${USHER_BIN:-$repo/build/usher}"
    threads="${THREADS:-2}"
    connections="${CONNECTIONS:-32}"
    duration="${DURATION:-5s}"
    rounds="${ROUNDS:-3}"
    cores="$(nproc)"
    web_threads="${WEB_THREADS:-$cores}"

    local tool
    for tool in wrk nginx curl python3; do
        command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] ||
            bench_die "$tool is not installed (scripts/bootstrap installs it)"
    done
    nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
    [ -x "$usher_bin" ] || bench_die "$usher_bin not found: build first (make bench, or ninja -C build)"

    work="$(mktemp -d /tmp/usher-bench.XXXXXX)"
    # PostgreSQL runs as the user "postgres" when we are root: it must reach its cluster here.
    chmod 755 "$work"
    bench_pids=()
    bench_pg_dirs=()
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

bench_stop_pid() { # pid: TERM, up to 5 s, then KILL
    local pid=$1
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

bench_cleanup() {
    local pid dir
    for pid in "${bench_pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    for pid in "${bench_pids[@]}"; do
        bench_stop_pid "$pid"
    done
    for dir in "${bench_pg_dirs[@]}"; do
        "$repo/scripts/pg-cluster" stop "$dir" >/dev/null 2>&1 || true
    done
    [ -n "${work:-}" ] && rm -rf "$work"
}

bench_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

bench_wait_http() { # url pid
    for _ in $(seq 200); do
        if curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null; then
            return 0
        fi
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# bench_start_nginx PROBE_PATH LOCATIONS — nginx on a free loopback port with the baseline's
# location blocks (text inside `server { }`; $work/nginx/html is the root, fill it first).
# Sets nginx_port and nginx_pid.
bench_start_nginx() {
    local probe=$1 locations=$2 nginx_user=""
    mkdir -p "$work/nginx/html" "$work/nginx/tmp"
    chmod 755 "$work/nginx" "$work/nginx/html"
    find "$work/nginx/html" -type f -exec chmod 644 {} +
    nginx_port="$(bench_free_port)"
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
$locations
    }
}
EOF
    "$nginx_bin" -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" \
        >"$work/nginx/stdout.log" 2>&1 &
    nginx_pid=$!
    bench_pids+=("$nginx_pid")
    if ! bench_wait_http "http://127.0.0.1:$nginx_port$probe" "$nginx_pid"; then
        cat "$work/nginx/error.log" "$work/nginx/stdout.log" >&2 2>/dev/null || true
        bench_die "nginx did not start"
    fi
}

# bench_start_pg NAME — a throwaway PostgreSQL cluster (scripts/pg-cluster) in $work/NAME.
# Sets pg_url. Fails (non-zero, no exit) when no cluster can be started, so that a script can
# skip its PostgreSQL part on a machine without a server.
bench_start_pg() {
    local dir="$work/$1" port
    port="$(bench_free_port)"
    mkdir -p "$dir"
    bench_pg_dirs+=("$dir")
    pg_url="$("$repo/scripts/pg-cluster" start "$dir" "$port" 2>"$work/$1.log")" || {
        cat "$work/$1.log" >&2
        return 1
    }
}

# bench_psql URL SQL — one value from PostgreSQL (the bench cluster trusts loopback).
bench_psql() {
    psql -X -q -tA -v ON_ERROR_STOP=1 "$1" -c "$2"
}

# bench_sqlite FILE SQL — one value from SQLite (python3's own module: no sqlite3 CLI needed).
bench_sqlite() {
    python3 -c 'import sqlite3, sys
con = sqlite3.connect("file:/" + sys.argv[1].lstrip("/") + "?mode=ro", uri=True)
print(con.execute(sys.argv[2]).fetchone()[0])' "$1" "$2"
}

# bench_count DATABASE_URL SQL — one value from the bench Usher's database, either engine.
bench_count() {
    case $1 in
        sqlite://*) bench_sqlite "${1#sqlite://}" "$2" ;;
        *) bench_psql "$1" "$2" ;;
    esac
}

# bench_start_usher NAME DATABASE_URL — a throwaway `usher serve` run from $work/NAME (so no
# .env of the repository is read), migrated first. Extra settings are taken from the
# environment (export them before). Sets usher_port, usher_pid, usher_db.
bench_start_usher() {
    local dir="$work/$1"
    mkdir -p "$dir"
    usher_port="$(bench_free_port)"
    usher_db=$2
    export BIND="127.0.0.1:$usher_port"
    export DATABASE_URL="$usher_db"
    export PUBLIC_BASE_URL="http://127.0.0.1:$usher_port"
    export SECRET_KEY="${SECRET_KEY:-$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')}"
    export DEBUG=false
    export WEB_THREADS="$web_threads"
    export USHER_DATA_DIR="$repo"
    unset PROMETHEUS_METRICS_API_KEY TASK_BROKER_URL CELERY_BROKER_URL USHER_TEST_CLOCK_FILE \
        USHER_ENV_FILE USHER_DEMO
    (cd "$dir" && "$usher_bin" migrate) >"$dir/migrate.log" 2>&1 ||
        { cat "$dir/migrate.log" >&2; bench_die "usher migrate failed ($1)"; }
    (cd "$dir" && exec "$usher_bin" serve) >"$dir/serve.log" 2>&1 &
    usher_pid=$!
    bench_pids+=("$usher_pid")
    if ! bench_wait_http "http://127.0.0.1:$usher_port/health/" "$usher_pid"; then
        tail -n 30 "$dir/serve.log" >&2 || true
        bench_die "usher did not start ($1)"
    fi
}

# bench_usher_cli NAME ARGS… — another usher subcommand against the instance NAME.
bench_usher_cli() {
    local dir="$work/$1"
    shift
    (cd "$dir" && "$usher_bin" "$@")
}

bench_stop_usher() {
    local pid kept=()
    bench_stop_pid "$usher_pid"
    # Forget it, so that cleanup never signals a later process that got the same id.
    for pid in "${bench_pids[@]}"; do
        [ "$pid" = "$usher_pid" ] || kept+=("$pid")
    done
    bench_pids=("${kept[@]}")
    usher_pid=""
}

# bench_usher_alive NAME — dies with the end of the log when usher is gone.
bench_usher_alive() {
    kill -0 "$usher_pid" 2>/dev/null ||
        { tail -n 30 "$work/$1/serve.log" >&2; bench_die "usher died under load ($1)"; }
}

# bench_wrk NAME URL [WRK ARGS…] — wrk -t -c -d --latency into $work/NAME.wrk.
bench_wrk() {
    local name=$1 url=$2
    shift 2
    # The session cookie is a credential: it stays out of the log.
    bench_log "wrk -t$threads -c$connections -d$duration --latency $url $(printf '%s ' "$@" |
        sed 's/Cookie: [^ ]*/Cookie: <session>/')"
    # The URL goes first: arguments after "--" are the Lua script's (getopt permutes the rest).
    wrk -t"$threads" -c"$connections" -d"$duration" --latency "$url" "$@" >"$work/$name.wrk" 2>&1 ||
        { cat "$work/$name.wrk" >&2; bench_die "wrk against $name failed"; }
}

# bench_round TAG ROUND NGINX_URL USHER_URL [WRK ARGS…] — one alternating round: wrk against
# nginx, then against usher, with the same arguments; outputs in $work/TAG.{nginx,usher}.ROUND.wrk.
# Prints the round and sets round_ratio (usher/nginx requests/s).
bench_round() {
    local tag=$1 round=$2 nurl=$3 uurl=$4 n u
    shift 4
    bench_wrk "$tag.nginx.$round" "$nurl" "$@"
    bench_wrk "$tag.usher.$round" "$uurl" "$@"
    n="$(bench_rps "$work/$tag.nginx.$round.wrk")"
    u="$(bench_rps "$work/$tag.usher.$round.wrk")"
    if [ -z "$n" ] || [ -z "$u" ]; then
        bench_die "could not read wrk's output"
    fi
    round_ratio="$(bench_ratio "$u" "$n")"
    printf 'bench: %s round %d: nginx %.0f req/s (p99 %s), usher %.0f req/s (p99 %s), ratio %s%s\n' \
        "$tag" "$round" "$n" "$(bench_p99 "$work/$tag.nginx.$round.wrk")" "$u" \
        "$(bench_p99 "$work/$tag.usher.$round.wrk")" "$round_ratio" \
        "$(bench_errors "$work/$tag.usher.$round.wrk")" >&2
}

# wrk prints "Requests/sec:  12345.67" and, with --latency, "     99%    1.23ms".
bench_rps() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
bench_p99() { awk '$1 == "99%" {print $2}' "$1"; }
bench_errors() {
    awk '/Socket errors|Non-2xx/ {sub(/^ +/, ""); printf "; %s", $0}' "$1"
}
# "bench-lua: key=value" lines printed by a script's done().
bench_lua_value() { # file key
    awk -v k="$2" '$1 == "bench-lua:" { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] } }' "$1"
}

# p99 in ms from wrk's unit ("850.00us", "1.23ms", "1.05s").
bench_ms() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) printf "%.3f", v / 1000
        else if (v ~ /ms$/) printf "%.3f", v + 0
        else if (v ~ /m$/) printf "%.3f", v * 60000
        else if (v ~ /s$/) printf "%.3f", v * 1000
        else print "nan"
    }'
}

bench_ratio() { # usher nginx
    awk -v u="$1" -v n="$2" 'BEGIN { printf "%.3f", (n > 0) ? u / n : 0 }'
}

bench_median() { # values…
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# bench_rss PID — "VmRSS VmHWM" in kB.
bench_rss() {
    awk '/^VmRSS:/ {r = $2} /^VmHWM:/ {h = $2} END {print r, h}' "/proc/$1/status"
}

# bench_keep PREFIX — with BENCH_KEEP set, copies wrk's raw outputs and the usher logs (to
# look for sanitizer reports when USHER_BIN is an ASan build) to bench/results/. Call it after
# the last bench_stop_usher, so that the logs are complete.
bench_keep() {
    [ -n "${BENCH_KEEP:-}" ] || return 0
    local stamp f
    mkdir -p "$repo/bench/results"
    stamp="$(date -u +%Y%m%dT%H%M%SZ)"
    for f in "$work"/*.wrk; do
        [ -e "$f" ] || continue
        cp "$f" "$repo/bench/results/$1-$stamp-$(basename "$f" .wrk).txt"
    done
    for f in "$work"/*/serve.log; do
        [ -e "$f" ] || continue
        cp "$f" "$repo/bench/results/$1-$stamp-$(basename "$(dirname "$f")")-serve.log"
    done
    bench_log "wrk outputs and usher logs kept in bench/results/$1-$stamp-*"
}
