#!/usr/bin/env bash
# The latency floor (a benchmark, not a test): how much of an open-model latency is the load
# generator's own? The Axum server pinned to one CPU serves GET /bench/json; pinned to another,
# one after the other in one run: wrk -t1 -c1 (closed, one connection: the server's own
# round-trip plus one client wake-up), taskbench's open engine at 1,000 and 5,000 req/s, and
# wrk2 -R at the same rates when it is installed (the reference open-model tool). Prints each
# one's p50 and p99, the engine's send-lag p99, and the ratios of the engine's p50 to wrk's
# and to wrk2's.
#
#   scripts/latency-floor.sh          # DURATION=10s RATES="1000 5000 20000" CONNECTIONS=16
#
# Needs wrk (installed from Debian's packages when missing), PostgreSQL server binaries (the
# server migrates at start-up, though /bench/json never touches the database) or DATABASE_URL.
# wrk2 is not packaged: build it from its source and put it on PATH as `wrk2` to include it.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
RATES=${RATES:-"1000 5000 20000"}
CONNECTIONS=${CONNECTIONS:-16}
SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}
source scripts/lib/bench-env.sh

prepare_axum_target
echo "server: taskbench-axum on CPU $SERVER_CPU at $url; each generator alone on CPU $LOADGEN_CPU; $DURATION each"

rows=()
# Warm the server (first connections, allocator) before anything is measured.
on_loadgen wrk -t1 -c1 -d2s "$url/bench/json" >/dev/null

on_loadgen wrk -t1 -c1 -d"$DURATION" --latency "$url/bench/json" >"$work/wrk.txt"
wrk_p50=$(wrk_pct_us "$work/wrk.txt" 50)
rows+=("wrk -t1 -c1 (closed)|$wrk_p50|$(wrk_pct_us "$work/wrk.txt" 99)|-")

for rate in $RATES; do
    on_loadgen target/release/taskbench loadgen --scenario json-floor --target "$url" --rate "$rate" \
        --max-in-flight "$CONNECTIONS" --warmup 2s --duration "$DURATION" --json --quiet >"$work/open-$rate.json" || true
    read -r p50 p99 lag s50 s99 <<<"$(python3 -c "
import json; r = json.load(open('$work/open-$rate.json'))
t = r['total']
print(t['latency_us']['p50'], t['latency_us']['p99'], r['open']['send_lag_us']['p99'], t['service_us']['p50'], t['service_us']['p99'])")"
    eval "open_p50_$rate=$p50"
    rows+=("taskbench open engine -R$rate (max in flight $CONNECTIONS)|$p50|$p99|$lag")
    rows+=("  its service time (actual send to answer)|$s50|$s99|-")
    if command -v wrk2 >/dev/null; then
        on_loadgen wrk2 -t1 -c"$CONNECTIONS" -R"$rate" -d"$DURATION" --latency "$url/bench/json" >"$work/wrk2-$rate.txt"
        w2=$(wrk_pct_us "$work/wrk2-$rate.txt" 50)
        eval "wrk2_p50_$rate=$w2"
        rows+=("wrk2 -R$rate -c$CONNECTIONS|$w2|$(wrk_pct_us "$work/wrk2-$rate.txt" 99)|-")
    fi
done

printf '\n%-46s %10s %10s %16s\n' "generator" "p50 µs" "p99 µs" "send-lag p99 µs"
for row in "${rows[@]}"; do
    IFS='|' read -r name p50 p99 lag <<<"$row"
    printf '%-46s %10s %10s %16s\n' "$name" "$p50" "$p99" "$lag"
done
echo
for rate in $RATES; do
    open_p50=$(eval echo "\$open_p50_$rate")
    python3 -c "print(f'ratio engine p50 at $rate req/s / wrk -c1 p50: {$open_p50 / $wrk_p50:.2f}')"
    if command -v wrk2 >/dev/null; then
        w2=$(eval echo "\$wrk2_p50_$rate")
        python3 -c "print(f'ratio engine p50 at $rate req/s / wrk2 p50 at $rate req/s: {$open_p50 / $w2:.2f}')"
    else
        echo "wrk2 not installed: no open-model reference at $rate req/s"
    fi
done
