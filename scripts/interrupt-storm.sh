#!/usr/bin/env bash
# Interrupt storm (a robustness check, not a test: it takes minutes): `taskbench run --quick` is
# hit by SIGINT, SIGTERM and SIGKILL (of the parent only, as `kill` or a CI runner does it),
# ROUNDS times each, aimed at each phase of its life in turn (building, provisioning, seeding,
# measuring, rendering) at a random moment within it. After every hit:
#   - no process of the run remains (servers, load generators, Postgres and its supervisor:
#     found by an environment marker every child inherits), within 20 s;
#   - nothing remains in the run's own TMPDIR (its throw-away cluster directory);
#   - results.json, when one was written, is valid against bench/report/results.schema.json and
#     marked incomplete (unless the run had finished);
#   - the exit code is the documented one (README, "Failures, Ctrl-C and SIGTERM").
# Prints one line per hit and the tally; exits 1 if any hit broke a rule.
#
#   scripts/interrupt-storm.sh        # ROUNDS=10 SIGNALS="INT TERM KILL"
#
# Needs PostgreSQL server binaries. Builds exactly what `taskbench run` builds. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-10}
SIGNALS=${SIGNALS:-"INT TERM KILL"}
source scripts/lib/bench-env.sh
build_like_run
venv=target/storm-venv
if ! "$venv/bin/python" -c 'import jsonschema' 2>/dev/null; then
    python3 -m venv "$venv" && "$venv/bin/pip" install --quiet --disable-pip-version-check "jsonschema==4.26.0"
fi
tb=target/release/taskbench

# The phase a run is in, from the last milestone its log shows.
phase_of() {
    local log=$1
    if grep -q 'results in' "$log"; then echo done
    elif grep -q 'rendering the report' "$log"; then echo rendering
    elif grep -q 'run: ' "$log"; then echo measuring
    elif grep -q 'local PostgreSQL cluster ready' "$log"; then echo seeding
    elif grep -q 'provisioning Postgres' "$log"; then echo provisioning
    else echo building; fi
}
# Each run gets a TMPDIR of its own, where its throw-away cluster lives: what is left in it after
# a hit is the run's own. The cluster runs as `postgres`, who must be able to reach it.
chmod 755 "$work"
left_with() { grep -l -z -x -F "$1" /proc/[0-9]*/environ 2>/dev/null | sed 's#/proc/\([0-9]*\)/environ#\1#' | tr '\n' ' ' || true; }

# Each phase is aimed at in turn: wait for the log line that opens it, then hit at a random
# moment within its usual length (measured here: building about 0.5 s with the build done,
# provisioning about 1 s, seeding a fraction of a second, measuring about 15 s, rendering well
# under a second). The phase the log shows when the signal lands is what the tally counts.
phases=(building provisioning seeding measuring rendering)
declare -A opens=([building]="" [provisioning]="provisioning Postgres" [seeding]="local PostgreSQL cluster ready"
    [measuring]="run: " [rendering]="rendering the report")
declare -A within=([building]=0.4 [provisioning]=0.5 [seeding]=0.2 [measuring]=12 [rendering]=0.3)
echo "hitting \`taskbench run --quick\` $ROUNDS times per signal, aiming at each phase in turn" >&2

# Job control: without it, bash starts background jobs with SIGINT ignored, and a run would
# never see the SIGINT this script sends while it builds.
set -m
declare -A tally
broken=0
for sig in $SIGNALS; do
    for i in $(seq "$ROUNDS"); do
        aim=${phases[$(( (i - 1) % ${#phases[@]} ))]}
        marker="TASKBENCH_STORM=$$-$sig-$i"
        out="$work/run-$sig-$i"
        mkdir -m 1777 "$out.tmp"
        env "$marker" TMPDIR="$out.tmp" RUST_LOG=info "$tb" run --quick --quiet --db local --out "$out" 2>"$out.log" &
        pid=$!
        started=$(date +%s.%N)
        if [ -n "${opens[$aim]}" ]; then
            for _ in $(seq 6000); do
                grep -q -F "${opens[$aim]}" "$out.log" 2>/dev/null && break
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.02
            done
        fi
        sleep "$(python3 -c "import random; print(round(random.random() * ${within[$aim]}, 3))")"
        moment=$(python3 -c "print($(date +%s.%N) - $started)")
        phase=$(phase_of "$out.log")
        kill -s "$sig" "$pid" 2>/dev/null || true
        set +e
        waited=0
        while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 900 ]; do sleep 0.1; waited=$((waited + 1)); done
        if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
        wait "$pid"; code=$?
        set -e
        problems=()
        [ "$waited" -lt 900 ] || problems+=("did not exit within 90 s")
        case "$sig:$code" in
            *:0) [ "$(phase_of "$out.log")" = done ] || problems+=("exit 0 but the run had not finished") ;;
            INT:1|TERM:1) ;;
            INT:130|TERM:143) [ "$phase" = building ] || problems+=("killed by the signal outside the build ($phase)") ;;
            KILL:137) ;;
            *) problems+=("exit code $code") ;;
        esac
        for _ in $(seq 100); do [ -z "$(left_with "$marker")" ] && break; sleep 0.2; done
        left=$(left_with "$marker")
        [ -z "$left" ] || problems+=("processes left: $left")
        for _ in $(seq 100); do [ -z "$(ls -A "$out.tmp")" ] && break; sleep 0.2; done
        extra=$(ls -A "$out.tmp" | tr '\n' ' ')
        [ -z "$extra" ] || problems+=("left in its TMPDIR: $extra")
        results=absent
        if [ -f "$out/results.json" ]; then
            if verdict=$("$venv/bin/python" - "$out/results.json" "$code" <<'PY'
import json, sys, jsonschema
doc = json.load(open(sys.argv[1]))
jsonschema.validate(doc, json.load(open("bench/report/results.schema.json")))
if sys.argv[2] != "0" and not doc.get("incomplete"):
    sys.exit("not marked incomplete")
print("valid, " + ("incomplete: " + doc["incomplete"] if doc.get("incomplete") else "complete"))
PY
            ); then results=$verdict; else results="INVALID"; problems+=("results.json invalid or not marked incomplete"); fi
        fi
        status=ok
        if [ ${#problems[@]} -gt 0 ]; then status="FAILED: ${problems[*]}"; broken=$((broken + 1)); fi
        key="$sig $phase"
        tally[$key]=$(( ${tally[$key]:-0} + 1 ))
        printf 'SIG%-4s at %6.2fs (%-12s) exit %3s  results.json %s  %s\n' "$sig" "$moment" "$phase" "$code" "$results" "$status"
    done
done
echo
echo "tally (signal, phase hit: count):"
for key in "${!tally[@]}"; do echo "  $key: ${tally[$key]}"; done | sort
echo "hits that broke a rule: $broken"
[ "$broken" -eq 0 ]
