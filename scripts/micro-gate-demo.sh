#!/usr/bin/env bash
# Shows that the instruction-count gate fails a slower build: runs the Callgrind benchmarks of
# task-list serialization with the deliberately slow variant (TASKBENCH_MICRO_SLOW_VARIANT=1,
# which serializes through a serde_json::Value first) and expects the run to fail, then runs them
# normally and expects them to pass. Exits 0 only when both happen.
# Needs valgrind and gungraun-runner (see README, "Micro-benchmarks").
set -uo pipefail
cd "$(dirname "$0")/.."

run() {
    cargo bench -p taskbench-micro --bench instructions -- 'instructions::serialize::task_list_serde_json::*'
}

TASKBENCH_MICRO_SLOW_VARIANT=1 run
status=$?
if [ "$status" -eq 0 ]; then
    echo "micro-gate-demo: FAILED: the gate accepted the deliberately slow variant" >&2
    exit 1
fi
echo "micro-gate-demo: ok: the slow variant failed the gate (exit $status)" >&2

if ! run; then
    echo "micro-gate-demo: FAILED: the normal build does not pass the gate" >&2
    exit 1
fi
echo "micro-gate-demo: ok: the normal build passes the gate" >&2
