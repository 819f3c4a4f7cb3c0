#!/usr/bin/env bash
# Capacity check (a benchmark, not a test): can taskbench's open-model engine out-run the servers
# it measures? Runs wrk and then the open engine, each pinned to its own core, against the Axum
# server's GET /bench/plaintext pinned to another, and prints both rates and their ratio.
#
#   scripts/loadgen-capacity.sh            # DURATION=10s CONNECTIONS=64 by default
#
# Needs: wrk (installed from Debian's packages when missing), PostgreSQL server binaries (the
# server runs its migrations at start-up, although /bench/plaintext never touches the database)
# or DATABASE_URL pointing at a server.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}

if ! command -v wrk >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
cargo build --release -q -p taskbench-axum -p taskbench

work=$(mktemp -d /tmp/taskbench-capacity-XXXX)
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill -TERM "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
    if [ -f "$work/pg/postmaster.pid" ]; then
        runuser -u postgres -- pg_ctl -D "$work/pg" -m fast stop >/dev/null 2>&1 || pg_ctl -D "$work/pg" -m fast stop >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

if [ -z "${DATABASE_URL:-}" ]; then
    # A throw-away cluster, as the harness's embedded default does.
    bin=$(dirname "$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
    as_pg=(); [ "$(id -u)" = 0 ] && { chown postgres "$work"; as_pg=(runuser -u postgres --); }
    "${as_pg[@]}" "$bin/initdb" -D "$work/pg" -U postgres --auth=trust --no-sync >/dev/null
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "${as_pg[@]}" "$bin/pg_ctl" -D "$work/pg" -w -l "$work/pg.log" \
        -o "-p $port -k $work -c listen_addresses=127.0.0.1" start >/dev/null
    DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
fi

taskset -c "$SERVER_CPU" target/release/taskbench-axum --addr 127.0.0.1:0 --database-url "$DATABASE_URL" \
    >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
for _ in $(seq 100); do grep -q '^listening on' "$work/server.out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/server.out")
[ -n "$url" ] || { echo "the server did not start:" >&2; cat "$work/server.err" >&2; exit 1; }

echo "server: taskbench-axum on CPU $SERVER_CPU at $url; generators on CPU $LOADGEN_CPU; $CONNECTIONS connections, $DURATION"
wrk_rps=$(taskset -c "$LOADGEN_CPU" wrk -t1 -c"$CONNECTIONS" -d"$DURATION" "$url/bench/plaintext" | awk '/Requests\/sec/ {print $2}')
# Ask the open engine for half again what wrk achieved: more than the server can serve, so what
# it achieves is its own ceiling or the server's, whichever is lower.
ask=$(python3 -c "print(int(float('$wrk_rps') * 1.5) + 1)")
taskset -c "$LOADGEN_CPU" target/release/taskbench loadgen --scenario plaintext-floor --target "$url" \
    --rate "$ask" --max-in-flight "$CONNECTIONS" --warmup 1s --duration "$DURATION" --json --quiet >"$work/open.json" || true
open_rps=$(python3 -c "import json; print(round(json.load(open('$work/open.json'))['total']['rps'], 1))")
python3 - "$wrk_rps" "$open_rps" <<'PY'
import sys
wrk, open_ = float(sys.argv[1]), float(sys.argv[2])
print(f"wrk:                 {wrk:>10.1f} req/s")
print(f"taskbench open model: {open_:>9.1f} req/s")
print(f"ratio open/wrk:       {open_ / wrk:>9.2f}")
PY
