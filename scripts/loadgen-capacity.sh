#!/usr/bin/env bash
# Capacity check (a benchmark, not a test): can taskbench's load generators out-run the servers
# they measure, and what does a request cost them? The Axum server pinned to one CPU; pinned to
# another, one after the other:
#   1. wrk (closed, CONNECTIONS connections) and the open engine asked for 1.5× wrk's rate on
#      GET /bench/plaintext: both rates and their ratio;
#   2. the closed model (Goose users, USERS of them) and wrk with as many connections on
#      GET /bench/json: CPU time per request of each (user + system, from the kernel) and the
#      ratio (the target is at most 2×); with wrk2 installed, also wrk2 at the closed model's
#      rate, the same request rate.
#
#   scripts/loadgen-capacity.sh      # DURATION=10s CONNECTIONS=64 USERS=32
#
# Needs wrk (installed from Debian's packages when missing), PostgreSQL server binaries or
# DATABASE_URL. Builds exactly what `taskbench run` builds (nothing is rebuilt).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
USERS=${USERS:-32}
SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}
source scripts/lib/bench-env.sh

prepare_axum_target
echo "server: taskbench-axum on CPU $SERVER_CPU at $url; generators on CPU $LOADGEN_CPU; $DURATION each"
secs=$(python3 -c "import sys; s='$DURATION'; print(float(s[:-1]) * (60 if s.endswith('m') else 1))")

# 1. Rates.
wrk_rps=$(on_loadgen wrk -t1 -c"$CONNECTIONS" -d"$DURATION" "$url/bench/plaintext" | awk '/Requests\/sec/ {print $2}')
# Ask the open engine for half again what wrk achieved: more than the server can serve, so what
# it achieves is its own ceiling or the server's, whichever is lower.
ask=$(python3 -c "print(int(float('$wrk_rps') * 1.5) + 1)")
on_loadgen target/release/taskbench loadgen --scenario plaintext-floor --target "$url" \
    --rate "$ask" --max-in-flight "$CONNECTIONS" --warmup 1s --duration "$DURATION" --json --quiet >"$work/open.json" || true
open_rps=$(python3 -c "import json; print(round(json.load(open('$work/open.json'))['total']['rps'], 1))")

# 2. CPU per request, closed model against wrk, GET /bench/json.
cat >"$work/closed-json.toml" <<TOML
name = "closed-json"
description = "GET /bench/json by closed-model users (loadgen-capacity.sh)"
[data]
users = 0
tasks_per_user = 0
seed = 42
[load]
model = "closed"
users = $USERS
warmup = "0s"
duration = "$DURATION"
[[steps]]
op = "json"
weight = 1
TOML
closed_cpu=$(cpu_seconds "$work/closed.json" taskset -c "$LOADGEN_CPU" target/release/taskbench loadgen \
    --scenario "$work/closed-json.toml" --target "$url" --json --quiet)
read -r closed_n closed_rps <<<"$(python3 -c "
import json; r = json.load(open('$work/closed.json')); print(r['total']['requests'], r['total']['rps'])")"
wrk_cpu=$(cpu_seconds "$work/wrk-json.txt" taskset -c "$LOADGEN_CPU" wrk -t1 -c"$USERS" -d"$DURATION" "$url/bench/json")
wrk_n=$(awk '/requests in/ {print $1}' "$work/wrk-json.txt")
wrk2_line=""
if command -v wrk2 >/dev/null; then
    rate=$(python3 -c "print(max(1, int(float('$closed_rps'))))")
    wrk2_cpu=$(cpu_seconds "$work/wrk2-json.txt" taskset -c "$LOADGEN_CPU" wrk2 -t1 -c"$USERS" -R"$rate" -d"$DURATION" "$url/bench/json")
    wrk2_n=$(awk '/requests in/ {print $1}' "$work/wrk2-json.txt")
    wrk2_line="$wrk2_cpu $wrk2_n $rate"
fi

python3 - "$wrk_rps" "$open_rps" "$closed_cpu" "$closed_n" "$closed_rps" "$wrk_cpu" "$wrk_n" "$secs" $wrk2_line <<'PY'
import sys
a = sys.argv[1:]
wrk, open_ = float(a[0]), float(a[1])
closed_cpu, closed_n, closed_rps, wrk_cpu, wrk_n, secs = map(float, a[2:8])
print(f"wrk:                  {wrk:>10.1f} req/s   (plaintext, closed)")
print(f"taskbench open model: {open_:>10.1f} req/s   (plaintext, asked for 1.5x wrk)")
print(f"ratio open/wrk:       {open_ / wrk:>10.2f}")
closed_us = closed_cpu / closed_n * 1e6
wrk_us = wrk_cpu / wrk_n * 1e6
print()
print(f"closed model (Goose users): {closed_n / secs:>9.0f} req/s, {closed_us:6.1f} µs CPU per request")
print(f"wrk, as many connections:   {wrk_n / secs:>9.0f} req/s, {wrk_us:6.1f} µs CPU per request")
print(f"ratio closed/wrk CPU per request: {closed_us / wrk_us:.2f} (target <= 2)")
if len(a) > 8:
    w2_cpu, w2_n, rate = float(a[8]), float(a[9]), a[10]
    w2_us = w2_cpu / w2_n * 1e6
    print(f"wrk2 -R{rate} (the closed model's rate): {w2_n / secs:.0f} req/s, {w2_us:.1f} µs CPU per request; ratio closed/wrk2 {closed_us / w2_us:.2f}")
PY
