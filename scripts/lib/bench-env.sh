# Shared by the measuring scripts (sourced, not run): build exactly what `taskbench run` builds,
# start a throw-away Postgres cluster and a pinned server, measure a command's CPU time, and
# clean everything up on exit. Only loopback addresses are ever used.

# The same two cargo invocations as the README's first command (`cargo run --release -p
# taskbench`, which then builds both servers with `--profile server -p taskbench-axum --bin … -p
# taskbench-actix --bin …`): the same package sets unify features the same way, so nothing is
# rebuilt twice.
build_like_run() {
    echo "building taskbench (release) and the servers (profile server, fat LTO); cargo's progress follows" >&2
    cargo build --release -p taskbench
    cargo build --profile server -p taskbench-axum --bin taskbench-axum -p taskbench-actix --bin taskbench-actix
}

work=$(mktemp -d /tmp/taskbench-measure-XXXX)
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true; fi
    if [ -f "$work/pg/postmaster.pid" ]; then
        runuser -u postgres -- pg_ctl -D "$work/pg" -m fast stop >/dev/null 2>&1 \
            || pg_ctl -D "$work/pg" -m fast stop >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Sets DATABASE_URL to a throw-away cluster unless it is set already.
start_postgres() {
    [ -n "${DATABASE_URL:-}" ] && return
    local bin as_pg=() port
    bin=$(dirname "$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
    if [ "$(id -u)" = 0 ]; then chown postgres "$work"; as_pg=(runuser -u postgres --); fi
    "${as_pg[@]}" "$bin/initdb" -D "$work/pg" -U postgres --auth=trust --no-sync >/dev/null
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "${as_pg[@]}" "$bin/pg_ctl" -D "$work/pg" -w -l "$work/pg.log" \
        -o "-p $port -k $work -c listen_addresses=127.0.0.1" start >/dev/null
    DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

# start_server FRAMEWORK CPU: sets server_pid and url. SERVER_DIR (default target/server) is where
# the binaries are, to measure another build of the servers with the same script.
start_server() {
    taskset -c "$2" "${SERVER_DIR:-target/server}/taskbench-$1" --addr 127.0.0.1:0 --database-url "$DATABASE_URL" --workers 1 \
        >"$work/server.out" 2>"$work/server.err" &
    server_pid=$!
    for _ in $(seq 100); do grep -q '^listening on' "$work/server.out" 2>/dev/null && break; sleep 0.1; done
    url=$(sed -n 's/^listening on //p' "$work/server.out")
    [ -n "$url" ] || { echo "the server did not start:" >&2; cat "$work/server.err" >&2; exit 1; }
}

# Everything both measuring scripts start with: wrk (from Debian's packages when missing), the
# build, a throw-away cluster, and the Axum server pinned to SERVER_CPU; defines on_loadgen.
ensure_wrk() {
    if ! command -v wrk >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
    fi
}

prepare_axum_target() {
    ensure_wrk
    build_like_run
    start_postgres
    start_server axum "$SERVER_CPU"
}
on_loadgen() { taskset -c "$LOADGEN_CPU" "$@"; }

# cpu_seconds OUTFILE CMD...: runs CMD (stdout to OUTFILE) and prints the user+system CPU
# seconds it and its children used (bash's `times`, so no extra tool is needed).
cpu_seconds() {
    local out=$1; shift
    bash -c '"$@" >"$0"; times' "$out" "$@" 2>/dev/null | tail -1 | python3 -c '
import re, sys
parts = re.findall(r"(\d+)m([\d.]+)s", sys.stdin.read())
print(round(sum(int(m) * 60 + float(s) for m, s in parts), 3))'
}

# wrk's (and wrk2's) latency percentile from `--latency` output, in µs: pct_us FILE 50|99
wrk_pct_us() {
    python3 - "$1" "$2" <<'PY'
import re, sys
text, want = open(sys.argv[1]).read(), float(sys.argv[2])
unit = {"us": 1, "ms": 1e3, "s": 1e6, "m": 6e7}
for line in text.splitlines():
    m = re.match(r"\s*([\d.]+)%\s+([\d.]+)(us|ms|s|m)\s*$", line)
    if m and abs(float(m.group(1)) - want) < 1e-6:
        print(round(float(m.group(2)) * unit[m.group(3)]))
        break
else:
    print("nan")
PY
}
