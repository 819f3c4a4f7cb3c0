#!/usr/bin/env bash
# Login storm (a measurement, not a test): what do bursts of logins cost a server's memory, and
# how many logins per second does one core sustain? Each server in turn, pinned to SERVER_CPU
# with the default (OWASP) argon2 cost and the default hashing limits, on a throw-away cluster:
#   1. 4 connections of logins for DURATION on the fresh server: logins per second on its one
#      core (wrk pinned to LOADGEN_CPU);
#   2. CONCURRENT connections (default 1,000) send logins for DURATION (half for a registered
#      email, half for unknown ones, which verify against the dummy hash); then the server's
#      VmHWM (peak resident memory), its VmRSS right after and 5 s later, whether it still
#      answers /health, and the answers by status.
#
#   scripts/login-storm.sh            # CONCURRENT=1000 DURATION=10s FRAMEWORKS="axum actix"
#   SERVER_DIRS="target/server /tmp/old" scripts/login-storm.sh   # A/B builds in one run, interleaved
#
# Needs wrk (installed from Debian's packages when missing), PostgreSQL server binaries or
# DATABASE_URL. Builds exactly what `taskbench run` builds. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
CONCURRENT=${CONCURRENT:-1000}
DURATION=${DURATION:-10s}
FRAMEWORKS=${FRAMEWORKS:-"axum actix"}
SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}
source scripts/lib/bench-env.sh
ensure_wrk
build_like_run
start_postgres
# wrk keeps one descriptor per connection (and the soft limit may rise only to the hard one).
want=$((CONCURRENT + 1024)); hard=$(ulimit -Hn)
[ "$hard" = unlimited ] || [ "$hard" -ge "$want" ] || want=$hard
ulimit -n "$want"

# Half the logins for a registered user, half for unknown emails; answers tallied by status.
cat >"$work/login.lua" <<'LUA'
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) n = 0; ok = 0; unauthorized = 0; unavailable = 0; other = 0 end
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
local known = '{"email":"storm@example.com","password":"correct horse"}'
local unknown = '{"email":"nobody@example.com","password":"correct horse"}'
request = function()
  n = n + 1
  return wrk.format(nil, "/api/v1/auth/login", nil, (n % 2 == 0) and known or unknown)
end
response = function(status, headers, body)
  if status == 200 then ok = ok + 1
  elseif status == 401 then unauthorized = unauthorized + 1
  elseif status == 503 then unavailable = unavailable + 1
  else other = other + 1 end
end
function done(summary, latency, requests)
  local t = {ok = 0, unauthorized = 0, unavailable = 0, other = 0}
  for _, th in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + th:get(k) end
  end
  io.write(string.format("STATUS %d %d %d %d %d\n", t.ok, t.unauthorized, t.unavailable, t.other,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
# Only the known email's logins, for the rate.
sed 's/(n % 2 == 0) and known or unknown/known/' "$work/login.lua" >"$work/login-known.lua"

# A server that died (the case this script exists to see) reads as 0 KiB, and the table says so.
kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$server_pid/status" 2>/dev/null || echo 0; }
rows=()
for framework in $FRAMEWORKS; do
  for SERVER_DIR in ${SERVER_DIRS:-${SERVER_DIR:-target/server}}; do
    start_server "$framework" "$SERVER_CPU"
    curl -sf -o /dev/null -H 'content-type: application/json' \
        -d '{"email":"storm@example.com","password":"correct horse","name":"Storm"}' "$url/api/v1/auth/register" \
        || curl -sf -o /dev/null -H 'content-type: application/json' \
            -d '{"email":"storm@example.com","password":"correct horse"}' "$url/api/v1/auth/login"
    idle=$(kib VmRSS)
    # The rate first, on the fresh server: after the storm a server may still be working off
    # what the storm queued.
    on_loadgen wrk -t1 -c4 -d"$DURATION" -s "$work/login-known.lua" "$url" >"$work/rate.txt" 2>&1 || true
    rate=$(awk '/Requests\/sec/ {print $2}' "$work/rate.txt")
    on_loadgen wrk -t1 -c"$CONCURRENT" -d"$DURATION" --timeout 10s -s "$work/login.lua" "$url" >"$work/storm.txt" 2>&1 || true
    hwm=$(kib VmHWM); after=$(kib VmRSS)
    sleep 5
    later=$(kib VmRSS)
    alive=$(curl -s -o /dev/null -w '%{http_code}' "$url/health" || echo down)
    read -r ok unauth unavail other errors <<<"$(sed -n 's/^STATUS //p' "$work/storm.txt")"
    rows+=("$framework:$SERVER_DIR $idle $hwm $after $later $alive ${ok:-0} ${unauth:-0} ${unavail:-0} ${other:-0} ${errors:-0} ${rate:-0}")
    kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; server_pid=""
  done
done

echo "$CONCURRENT connections of logins for $DURATION, server on CPU $SERVER_CPU (1 worker), wrk on CPU $LOADGEN_CPU"
python3 - "${rows[@]}" <<'PY'
import sys
mib = lambda k: f"{int(k) / 1024:.0f} MiB"
print("| server (build) | idle RSS | VmHWM after the storm | RSS after | RSS 5 s later | /health | 200 | 401 | 503 | other | socket errors | logins/s on 1 core |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for row in sys.argv[1:]:
    f, idle, hwm, after, later, alive, ok, unauth, unavail, other, errors, rate = row.split()
    print(f"| {f} | {mib(idle)} | {mib(hwm)} | {mib(after)} | {mib(later)} | {alive} | {ok} | {unauth} | {unavail} | {other} | {errors} | {rate} |")
PY
