#!/usr/bin/env bash
# A taskbench run on Kubernetes (README, "More than one machine"): applies deploy/kubernetes/ to
# kubectl's current context, then for each framework in turn, on a fresh database: scales its
# server up, seeds the scenario's data once, starts N load agents (an Indexed Job) at one common
# instant, reads each agent's result back from its pod's log, merges them with `taskbench merge`
# on this machine into one results document and report, REPEATS times in rotated order. It deletes what it created (the namespace
# `taskbench`) on exit, also on failure or Ctrl-C.
#
#   scripts/kubernetes-run.sh                   # IMAGE=taskbench:latest SCENARIO=crud-mix AGENTS=2
#   IMAGE=registry.example/taskbench:1f2e3d AGENTS=4 LOADGEN_ARGS="--duration 30s" scripts/kubernetes-run.sh
#   scripts/kubernetes-run.sh --render axum     # print what a run applies for axum; no cluster needed
#
# Parameters, from the environment:
#   IMAGE         the image built from ./Dockerfile, as the nodes pull it (default taskbench:latest)
#   SCENARIO      a scenario shipped in the image (default crud-mix)
#   AGENTS        load agents, N of `--agent I/N` (default 2); each takes 2 whole CPUs of a load node
#   FRAMEWORKS    measured one after the other (default "axum actix")
#   REPEATS       measured runs of each framework, in rotated order (default 1); 6 or more give
#                 the paired verdict of `taskbench run` (README, "Reading a comparison")
#   LEAD          seconds from launching the agents to their common start (default 60): room to
#                 pull the image and sign the users in; an agent ready only after it refuses to run
#   LOADGEN_ARGS  more `taskbench loadgen` flags for every agent, e.g. "--duration 30s --rate 2000"
#   TIMEOUT       seconds allowed for each wait: rollout, seeding, the agents after their start
#                 (default 900)
#   OUT           where results go (default results/kubernetes-<UTC time>/)
#   TASKBENCH     the CLI that merges (default target/release/taskbench, else `taskbench` on PATH)
#   KUBECTL       the kubectl to use (default kubectl; 1.22 or newer, for its built-in kustomize)
#   KEEP=1        leave the namespace in place at the end, to look around
#
# Results: OUT/results.json with every merged run (`taskbench merge --into`), and the report
# rendered from it (report.md, report.html, charts/), which `taskbench compare` also takes; per
# framework and repeat under OUT/<framework>/repeat-<R>/: agent-I.json and agent-I.log (each
# agent's result and whole log), merged.json, summary.txt (the merge's table), placement.txt
# (which node and which CPUs each part ran on: whether the static CPU manager pinned them).
# Exit code: 0 every merged run clean; 1 or 3 as `taskbench merge` (an agent ended early; the SLO
# broken or not a clean measurement; the first such framework's); 2 it could not run (says why).
set -Eeuo pipefail
cd "$(dirname "$0")/.."
IMAGE=${IMAGE:-taskbench:latest}
SCENARIO=${SCENARIO:-crud-mix}
AGENTS=${AGENTS:-2}
FRAMEWORKS=${FRAMEWORKS:-"axum actix"}
LEAD=${LEAD:-60}
REPEATS=${REPEATS:-1}
LOADGEN_ARGS=${LOADGEN_ARGS:-}
TIMEOUT=${TIMEOUT:-900}
KEEP=${KEEP:-0}
KUBECTL=${KUBECTL:-kubectl}
namespace=taskbench
roles="server database load"

die() {
    echo "kubernetes-run: $*" >&2
    exit 2
}
note() { echo "== $*" >&2; }
k() { "$KUBECTL" --namespace "$namespace" "$@"; }

[[ $AGENTS =~ ^[1-9][0-9]*$ ]] || die "AGENTS must be a positive whole number, found \`$AGENTS\`"
[[ $REPEATS =~ ^[1-9][0-9]*$ ]] || die "REPEATS must be a positive whole number, found \`$REPEATS\`"
[[ $LEAD =~ ^[1-9][0-9]*$ ]] || die "LEAD must be a positive whole number of seconds, found \`$LEAD\`"
[[ $TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "TIMEOUT must be a positive whole number of seconds, found \`$TIMEOUT\`"
[ -n "${FRAMEWORKS// /}" ] || die "FRAMEWORKS is empty: name one or more of axum, actix"
seen=" "
for framework in $FRAMEWORKS; do
    [ -f "deploy/kubernetes/server-$framework.yaml" ] \
        || die "FRAMEWORKS: no deploy/kubernetes/server-$framework.yaml for \`$framework\` (expected axum or actix)"
    [[ $seen != *" $framework "* ]] || die "FRAMEWORKS names \`$framework\` twice"
    seen="$seen$framework "
done
command -v "$KUBECTL" >/dev/null || die "$KUBECTL not found: install kubectl 1.22 or newer (or set KUBECTL)"

# The overlays live in target/kubernetes-run/run-XXXXXX/: kustomize takes a base only by a
# relative path.
mkdir -p target/kubernetes-run
work=$(mktemp -d target/kubernetes-run/run-XXXXXX)
created=0
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    rm -rf "$work"
    [ "$created" = 1 ] || return 0
    if [ "$KEEP" = 1 ]; then
        echo "KEEP=1: namespace $namespace kept; delete it with: $KUBECTL delete namespace $namespace" >&2
    else
        echo "deleting namespace $namespace (everything this run created)" >&2
        "$KUBECTL" delete namespace "$namespace" --timeout=180s >/dev/null \
            || echo "could not delete namespace $namespace: delete it with: $KUBECTL delete namespace $namespace" >&2
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# A command that failed without a message of this script's own (set -e) is a run that could not
# be made: exit code 2, as documented, never the command's own code (which could read as 1 or 3).
trap 'echo "kubernetes-run: line $LINENO: \`$BASH_COMMAND\` failed (its message above)" >&2; exit 2' ERR

# A YAML double-quoted scalar.
yaml_string() {
    local s=${1//\\/\\\\}
    s=${s//\"/\\\"}
    printf '"%s"' "$s"
}

# The `images:` entry that replaces the manifests' `taskbench`: IMAGE split into name, tag and
# digest (kustomize mangles a tag left in the name: taskbench:latest became taskbench:latest:latest).
images_block() {
    local name=$IMAGE tag="" digest=""
    if [[ $name == *@* ]]; then
        digest=${name#*@}
        name=${name%%@*}
    fi
    if [[ ${name##*/} == *:* ]]; then
        tag=${name##*:}
        name=${name%:*}
    fi
    echo "images:"
    echo "  - name: taskbench"
    echo "    newName: $(yaml_string "$name")"
    [ -z "$tag" ] || echo "    newTag: $(yaml_string "$tag")"
    [ -z "$digest" ] || echo "    digest: $(yaml_string "$digest")"
}

random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

# The standing part (deploy/kubernetes/) with the image and a Secret of fresh random values.
render_stack() {
    mkdir -p "$work/stack"
    {
        echo "apiVersion: kustomize.config.k8s.io/v1beta1"
        echo "kind: Kustomization"
        echo "resources:"
        echo "  - ../../../../deploy/kubernetes"
        images_block
        echo "secretGenerator:"
        echo "  - name: taskbench"
        echo "    namespace: $namespace"
        echo "    options:"
        echo "      disableNameSuffixHash: true"
        echo "    literals:"
        echo "      - postgres-password=$(random_hex 16)"
        echo "      - jwt-secret=$(random_hex 24)"
    } >"$work/stack/kustomization.yaml"
    "$KUBECTL" kustomize "$work/stack"
}

# The seed and agents Jobs (deploy/kubernetes/jobs/) for one framework and start instant.
render_jobs() {
    local framework=$1 start_at=$2 target="http://taskbench-$1:8080"
    mkdir -p "$work/jobs"
    cat >"$work/jobs/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../../../deploy/kubernetes/jobs
nameSuffix: -$framework
$(images_block)
patches:
  - patch: |-
      apiVersion: batch/v1
      kind: Job
      metadata:
        name: taskbench-seed
      spec:
        template:
          spec:
            containers:
              - name: seed
                env:
                  - name: SCENARIO
                    value: $(yaml_string "$SCENARIO")
                  - name: TARGET
                    value: $(yaml_string "$target")
  - patch: |-
      apiVersion: batch/v1
      kind: Job
      metadata:
        name: taskbench-agents
      spec:
        completions: $AGENTS
        parallelism: $AGENTS
        template:
          spec:
            containers:
              - name: agent
                env:
                  - name: AGENTS
                    value: "$AGENTS"
                  - name: SCENARIO
                    value: $(yaml_string "$SCENARIO")
                  - name: TARGET
                    value: $(yaml_string "$target")
                  - name: START_AT
                    value: "$start_at"
                  - name: LOADGEN_ARGS
                    value: $(yaml_string "$LOADGEN_ARGS")
EOF
    "$KUBECTL" kustomize "$work/jobs"
}

now_ms() { echo $(($(date +%s) * 1000)); }
# A Unix ms instant as a UTC time of day (GNU date, else BSD date).
clock() { date -u -d "@$(($1 / 1000))" +%H:%M:%S 2>/dev/null || date -u -r $(($1 / 1000)) +%H:%M:%S; }

if [ "${1:-}" = "--render" ]; then
    [ -n "${2:-}" ] || die "usage: $0 --render FRAMEWORK"
    [ -f "deploy/kubernetes/server-$2.yaml" ] || die "--render: no deploy/kubernetes/server-$2.yaml for \`$2\`"
    render_stack
    echo "---"
    render_jobs "$2" $(($(now_ms) + LEAD * 1000))
    exit 0
fi
[ $# -eq 0 ] || die "unexpected argument \`$1\` (parameters come from the environment; see the top of $0)"

# --- Before touching the cluster: everything that can be checked is.
if [ -n "${TASKBENCH:-}" ]; then
    [ -x "$TASKBENCH" ] || die "TASKBENCH=$TASKBENCH is not an executable"
elif [ -x target/release/taskbench ]; then
    TASKBENCH=target/release/taskbench
elif command -v taskbench >/dev/null; then
    TASKBENCH=$(command -v taskbench)
else
    die "the merge runs on this machine and needs the CLI: cargo build --release -p taskbench (or set TASKBENCH)"
fi
context=$("$KUBECTL" config current-context 2>/dev/null) || die "kubectl has no current context: point it at the cluster"
"$KUBECTL" get namespace "$namespace" >/dev/null 2>&1 \
    && die "namespace $namespace exists (a run kept with KEEP=1, or one still being deleted): $KUBECTL delete namespace $namespace"
"$KUBECTL" get nodes -o name >/dev/null || die "cannot list the nodes of context $context (its message above)"
for role in $roles; do
    [ -n "$("$KUBECTL" get nodes -l "taskbench.dev/role=$role" -o name)" ] || die "no node is labelled taskbench.dev/role=$role; give the server, the database and the load a node each:
  $KUBECTL label node NODE taskbench.dev/role=server     # and =database, =load on two other nodes
(README, \"Kubernetes\")"
done
OUT=${OUT:-results/kubernetes-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
{
    echo "context=$context"
    echo "image=$IMAGE"
    echo "scenario=$SCENARIO"
    echo "agents=$AGENTS"
    echo "frameworks=$FRAMEWORKS"
    echo "repeats=$REPEATS"
    echo "lead_s=$LEAD"
    echo "loadgen_args=$LOADGEN_ARGS"
} >"$OUT/run.txt"

# Shows what a failed wait left behind: the pods' state and the last lines of their logs.
explain() {
    local selector=$1
    k get pods -l "$selector" -o wide >&2 || true
    k logs -l "$selector" --all-containers --prefix --tail=40 >&2 || true
}

# Waits for a Job to end; fails with its pods' logs if it failed, or if it is not over by $2 s
# from now. With $3 (a Unix ms instant), also fails when any pod is still pending 5 s after it.
wait_job() {
    local job=$1 deadline=$((SECONDS + $2)) start_at=${3:-} checked=0 conditions pending
    while :; do
        conditions=$(k get job "$job" -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type}{" "}{end}')
        case " $conditions " in
            *" Complete "*) return 0 ;;
            *" Failed "*)
                explain "job-name=$job"
                die "job $job failed (its pods' logs above)"
                ;;
        esac
        if [ -n "$start_at" ] && [ "$checked" = 0 ] && [ "$(now_ms)" -gt $((start_at + 5000)) ]; then
            checked=1
            pending=$(k get pods -l "job-name=$job" --field-selector=status.phase=Pending -o name)
            if [ -n "$pending" ]; then
                # shellcheck disable=SC2086 # one pod name per word
                k describe $pending >&2 || true
                die "agents still pending after their start instant ($pending): not enough whole CPUs on the load nodes for $AGENTS agents, or the image is still being pulled (raise LEAD)"
            fi
        fi
        [ $SECONDS -lt "$deadline" ] || {
            explain "job-name=$job"
            die "job $job not finished after ${2} s (TIMEOUT)"
        }
        sleep 2
    done
}

# How many CPUs a Cpus_allowed_list such as 2-3,6 names.
cpu_count() {
    local n=0 part IFS=,
    for part in $1; do
        if [[ $part == *-* ]]; then n=$((n + ${part#*-} - ${part%-*} + 1)); else n=$((n + 1)); fi
    done
    echo "$n"
}

# One line on where a pod ran and whether it has its CPUs to itself: with the static CPU
# manager, a Guaranteed pod with whole CPUs is allowed exactly its limit's worth of cores.
placement() {
    local what=$1 pod=$2 limit=$3 cpus=$4 node qos
    node=$(k get pod "$pod" -o jsonpath='{.spec.nodeName}')
    qos=$(k get pod "$pod" -o jsonpath='{.status.qosClass}')
    if [ -z "$cpus" ]; then
        echo "$what: node $node, QoS $qos, CPUs unknown (could not read its Cpus_allowed_list)"
    elif [ "$(cpu_count "$cpus")" = "$limit" ]; then
        echo "$what: node $node, QoS $qos, CPUs $cpus: pinned to its $limit CPUs"
    else
        echo "$what: node $node, QoS $qos, CPUs $cpus: NOT pinned (limit $limit CPUs): is the kubelet's static CPU manager on for this node?"
    fi
}

# --- The standing part.
note "context $context: applying deploy/kubernetes/ (image $IMAGE) into namespace $namespace"
created=1
render_stack | "$KUBECTL" apply -f - >&2
note "waiting for Postgres"
k rollout status statefulset/postgres --timeout="${TIMEOUT}s" >&2 || {
    explain app.kubernetes.io/component=database
    die "Postgres not ready after ${TIMEOUT} s"
}

first_failure=0
for ((repeat = 1; repeat <= REPEATS; repeat++)); do
    # The order rotates, so that each framework takes each position (as in `taskbench run`).
    read -ra order <<<"$FRAMEWORKS"
    turn=$(((repeat - 1) % ${#order[@]}))
    order=("${order[@]:turn}" "${order[@]:0:turn}")
    for framework in "${order[@]}"; do
        dir=$OUT/$framework/repeat-$repeat
        mkdir -p "$dir"
        server=taskbench-$framework

        note "$framework, repeat $repeat/$REPEATS: a fresh database, then the server"
        k scale deployment -l app.kubernetes.io/component=server --replicas=0 >/dev/null
        deadline=$((SECONDS + TIMEOUT))
        while [ -n "$(k get pods -l app.kubernetes.io/component=server -o name)" ]; do
            [ $SECONDS -lt "$deadline" ] || die "the previous server did not stop within ${TIMEOUT} s"
            sleep 1
        done
        k exec postgres-0 -c postgres -- psql -q -v ON_ERROR_STOP=1 -U postgres -d postgres \
            -c 'DROP DATABASE IF EXISTS taskbench WITH (FORCE)' -c 'CREATE DATABASE taskbench' >&2
        k scale deployment "$server" --replicas=1 >/dev/null
        k rollout status deployment "$server" --timeout="${TIMEOUT}s" >&2 || {
            explain "taskbench.dev/framework=$framework"
            die "$server not ready after ${TIMEOUT} s"
        }

        note "$framework: seeding $SCENARIO's data"
        render_jobs "$framework" 0 | k apply -l app.kubernetes.io/component=seed -f - >&2
        wait_job "taskbench-seed-$framework" "$TIMEOUT"

        start_at=$(($(now_ms) + LEAD * 1000))
        note "$framework: $AGENTS agents, starting together at $(clock "$start_at") UTC ($LEAD s from now)"
        echo "start_at_unix_ms.$framework.$repeat=$start_at" >>"$OUT/run.txt"
        render_jobs "$framework" "$start_at" | k apply -l app.kubernetes.io/component=agent -f - >&2
        wait_job "taskbench-agents-$framework" $((LEAD + TIMEOUT)) "$start_at"

        note "$framework: collecting the agents' results"
        job=taskbench-agents-$framework
        pods=$(k get pods -l "job-name=$job" --field-selector=status.phase=Succeeded \
            -o jsonpath='{range .items[*]}{.metadata.annotations.batch\.kubernetes\.io/job-completion-index}{" "}{.metadata.name}{"\n"}{end}')
        parts=()
        {
            server_pod=$(k get pods -l "taskbench.dev/framework=$framework" -o jsonpath='{.items[0].metadata.name}')
            placement server "$server_pod" \
                "$(k get deployment "$server" -o jsonpath='{.spec.template.spec.containers[0].resources.limits.cpu}')" \
                "$(k exec "$server_pod" -- grep Cpus_allowed_list /proc/1/status | awk '{print $2}')"
            placement database postgres-0 \
                "$(k get statefulset postgres -o jsonpath='{.spec.template.spec.containers[0].resources.limits.cpu}')" \
                "$(k exec postgres-0 -c postgres -- grep Cpus_allowed_list /proc/1/status | awk '{print $2}')"
        } >"$dir/placement.txt"
        agent_limit=$(k get job "$job" -o jsonpath='{.spec.template.spec.containers[0].resources.limits.cpu}')
        for ((i = 0; i < AGENTS; i++)); do
            pod=$(awk -v i="$i" '$1 == i { print $2; exit }' <<<"$pods")
            [ -n "$pod" ] || die "no succeeded pod for agent $i of job $job"
            k logs "$pod" >"$dir/agent-$i.log"
            { grep -q '^=== taskbench agent result begin' "$dir/agent-$i.log" \
                && grep -q '^=== taskbench agent result end$' "$dir/agent-$i.log"; } \
                || die "agent $i's log ($dir/agent-$i.log) holds no complete result: was it rotated away (the kubelet's containerLogMaxSize)?"
            sed -n '/^=== taskbench agent result begin/,/^=== taskbench agent result end$/p' "$dir/agent-$i.log" \
                | sed '1d;$d' >"$dir/agent-$i.json"
            grep '^=== taskbench agent result begin' "$dir/agent-$i.log" | sed 's/^=== taskbench agent result begin: //' >&2
            placement "agent $i" "$pod" "$agent_limit" \
                "$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' "$dir/agent-$i.log" | head -n 1)" >>"$dir/placement.txt"
            parts+=("$dir/agent-$i.json")
        done
        k get pods -o wide >>"$dir/placement.txt"
        cat "$dir/placement.txt" >&2

        note "$framework: merged ($TASKBENCH merge)"
        code=0
        "$TASKBENCH" merge "${parts[@]}" --out "$dir/merged.json" --into "$OUT" --name "$framework" >"$dir/summary.txt" \
            || code=$?
        cat "$dir/summary.txt"
        [ "$code" != 2 ] || die "taskbench merge refused the agents' results (its message above)"
        [ "$code" = 0 ] || [ "$first_failure" != 0 ] || first_failure=$code
        k delete job "taskbench-seed-$framework" "$job" --cascade=foreground >/dev/null
    done

done

note "results in $OUT/"
exit "$first_failure"
