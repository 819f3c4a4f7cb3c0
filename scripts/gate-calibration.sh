#!/usr/bin/env bash
# The gate's error rates on this machine, measured rather than hoped for (README, "Gating CI on
# performance"). Runs TRIALS gates of each kind, each one interleaved `taskbench run` of two
# contenders judged by `taskbench gate`, exactly as CI runs it:
#   A/A  the same server binary on both sides: any failure is a false alarm;
#   +5%  head spends 5% more CPU per request (--inject-cpu-us, sized from base's measured CPU
#        per request on the gate scenario), which the gate should catch;
#   +10% the same with 10%.
# The kinds alternate within each trial, so a drifting machine affects all three alike.
#
#   TRIALS=20      gates of each kind
#   REPEATS=10     pairs per gate (taskbench run --repeats)
#   FRAMEWORK=axum the server measured
#   MIN_EFFECT=2%  the gate's practical threshold
#   KEEP=DIR       keep every trial's run directory (results, report, gate.md) there
#
# The last line reads exactly
#   calibration: A/A false alarms X/K, 5% caught Y/K, 10% caught Z/K
# so that other tools can read it. Everything runs on loopback; the script stops what it starts.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/bench-env.sh
source scripts/lib/bench-env.sh

TRIALS=${TRIALS:-20}
[ "$TRIALS" -ge 1 ] 2>/dev/null || { echo "TRIALS must be a whole number of at least 1, found '$TRIALS'" >&2; exit 2; }
REPEATS=${REPEATS:-10}
FRAMEWORK=${FRAMEWORK:-axum}
MIN_EFFECT=${MIN_EFFECT:-2%}
trials_dir=${KEEP:-$work/trials}
mkdir -p "$trials_dir"
build_like_run
tb=target/release/taskbench
bin=$(pwd)/target/server/taskbench-$FRAMEWORK

# Base's CPU per request on the gate scenario sizes the injected slowdowns.
"$tb" run --no-build --quiet --scenario gate --duration scenario --repeats 3 --contender "base=$bin" --out "$work/size" \
    >/dev/null || true
[ -f "$work/size/results.json" ] || { echo "the sizing run wrote no results; see $work/size/logs" >&2; exit 1; }
cpu_us=$(python3 - "$work/size/results.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(r["scenarios"][0]["summary"]["frameworks"][0]["server_cpu_ms_per_1k_requests"]["median"])
PY
)
inject() { python3 -c "print(round($cpu_us * $1, 3))"; }
echo "base ($FRAMEWORK) spends $cpu_us µs of CPU per request on the gate scenario: +5% = $(inject 0.05) µs, +10% = $(inject 0.10) µs" >&2

kinds=(aa p5 p10)
# flagged: the gate named a regression; failed: it failed for another reason (a broken run);
# unjudged: it could not judge (exit 2).
declare -A flagged=([aa]=0 [p5]=0 [p10]=0) failed=([aa]=0 [p5]=0 [p10]=0) unjudged=([aa]=0 [p5]=0 [p10]=0)
started=$(date +%s)
for trial in $(seq "$TRIALS"); do
    for k in 0 1 2; do
        kind=${kinds[$(((trial + k) % 3))]}
        case $kind in
            aa) head="head=$bin" ;;
            p5) head="head=$bin --inject-cpu-us $(inject 0.05)" ;;
            p10) head="head=$bin --inject-cpu-us $(inject 0.10)" ;;
        esac
        out="$trials_dir/$trial-$kind"
        "$tb" run --no-build --quiet --scenario gate --duration scenario --repeats "$REPEATS" --out "$out" \
            --contender "base=$bin" --contender "$head" >/dev/null 2>"$out.log" || true
        code=0
        "$tb" gate "$out" --min-effect "$MIN_EFFECT" --quiet 2>>"$out.log" || code=$?
        if [ "$code" = 1 ] && grep -q '\*\*regression\*\*' "$out/gate.md" 2>/dev/null; then
            verdict=REGRESSION; flagged[$kind]=$((flagged[$kind] + 1))
        elif [ "$code" = 1 ]; then
            verdict="FAILED (broken run)"; failed[$kind]=$((failed[$kind] + 1))
        elif [ "$code" = 0 ]; then
            verdict=passed
        else
            verdict="could not judge"; unjudged[$kind]=$((unjudged[$kind] + 1))
        fi
        # What the pairs measured: head/base - 1 of CPU per request and of throughput, and the
        # metrics the gate called regressions.
        python3 - "$out/results.json" "$out/gate.md" "$trial" "$kind" "$verdict" >>"$work/table" <<'PY' || true
import json, os, statistics, sys
r = json.load(open(sys.argv[1])) if os.path.exists(sys.argv[1]) else {"scenarios": [{"runs": []}]}
runs = [x for x in r["scenarios"][0]["runs"] if x.get("error") is None and x.get("load")]
def change(get):
    by = {}
    for x in runs:
        v = get(x)
        if v: by.setdefault(x["repeat"], {})[x["framework"]] = v
    ratios = [p["head"] / p["base"] - 1 for p in by.values() if "head" in p and "base" in p]
    return statistics.median(ratios) * 100 if ratios else float("nan")
cpu = change(lambda x: x["resources"].get("server", {}).get("cpu_ms_per_1k_requests"))
rps = change(lambda x: x["load"]["total"]["rps"])
flags = [l.split("|")[2].strip() for l in open(sys.argv[2]) if "**regression**" in l] if os.path.exists(sys.argv[2]) else []
print(f"{sys.argv[3]}\t{sys.argv[4]}\t{sys.argv[5]}\t{cpu:+.1f}\t{rps:+.1f}\t{','.join(flags) or '-'}")
PY
        tail -1 "$work/table" | awk -F'\t' '{printf "trial %s %-3s %-15s CPU/request %s%%, throughput %s%%, regressions: %s\n", $1, $2, $3, $4, $5, $6}' >&2
    done
    elapsed=$(($(date +%s) - started))
    echo "  $trial/$TRIALS trials in $((elapsed / 60)) min; one gate takes about $((elapsed / trial / 3)) s" >&2
done

echo
echo "| kind | gates | regression found | failed otherwise | could not judge | median CPU/request change | median throughput change |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for kind in aa p5 p10; do
    python3 - "$work/table" "$kind" "${flagged[$kind]}" "${failed[$kind]}" "${unjudged[$kind]}" "$TRIALS" <<'PY'
import math, statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.split("\t")[1] == sys.argv[2]]
def med(i):
    v = [float(r[i]) for r in rows if not math.isnan(float(r[i]))]
    return statistics.median(v) if v else float("nan")
name = {"aa": "A/A (same binary)", "p5": "head +5% CPU/request", "p10": "head +10% CPU/request"}[sys.argv[2]]
print(f"| {name} | {sys.argv[6]} | {sys.argv[3]} | {sys.argv[4]} | {sys.argv[5]} | {med(3):+.1f}% | {med(4):+.1f}% |")
PY
done
echo
echo "$REPEATS pairs per gate, threshold $MIN_EFFECT, $FRAMEWORK on the gate scenario; one gate took about $(( ($(date +%s) - started) / TRIALS / 3 )) s."
# On identical binaries any failure of the gate is a false alarm, whatever the reason.
echo "calibration: A/A false alarms $((flagged[aa] + failed[aa]))/$TRIALS, 5% caught ${flagged[p5]}/$TRIALS, 10% caught ${flagged[p10]}/$TRIALS"
