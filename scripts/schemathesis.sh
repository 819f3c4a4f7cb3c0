#!/usr/bin/env bash
# The contract, fuzzed: schemathesis (property-based testing from the OpenAPI document) against
# each server's own GET /openapi.json, every check, the stateful phase included (links inferred
# from `location` headers), authenticated as a registered user. Both servers must come out clean.
#
#   scripts/schemathesis.sh                      # EXAMPLES=30 SEED=42 FRAMEWORKS="axum actix"
#   EXAMPLES=500 SEED=$RANDOM scripts/schemathesis.sh   # by hand: more cases, another seed
#
# `.ci/run` runs it after the README's test command, whose build leaves the servers in
# target/debug (SERVER_DIR=target/server to fuzz the measured builds instead). schemathesis is
# installed, pinned, into a virtual environment under target/ from the Python package registry.
# A throw-away PostgreSQL cluster (or DATABASE_URL), servers on loopback only, stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
EXAMPLES=${EXAMPLES:-30}
SEED=${SEED:-42}
FRAMEWORKS=${FRAMEWORKS:-"axum actix"}
SERVER_DIR=${SERVER_DIR:-target/debug}
SCHEMATHESIS_VERSION=4.32.5
venv=target/schemathesis-venv
source scripts/lib/bench-env.sh

if [ "$("$venv/bin/schemathesis" --version 2>/dev/null)" != "schemathesis, version $SCHEMATHESIS_VERSION" ]; then
    echo "installing schemathesis $SCHEMATHESIS_VERSION into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
for framework in $FRAMEWORKS; do
    [ -x "$SERVER_DIR/taskbench-$framework" ] || {
        echo "$SERVER_DIR/taskbench-$framework is missing: run \`cargo test --workspace\` first (it builds the servers)" >&2
        exit 1
    }
done
start_postgres
failed=()
for framework in $FRAMEWORKS; do
    # The servers take turns on one database: the second finds the user registered (409) and logs in.
    export TASKBENCH_JWT_SECRET="schemathesis-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
    start_server "$framework" "0-$(($(nproc) - 1))"
    curl -sf -o /dev/null -H 'content-type: application/json' \
        -d '{"email":"fuzz@example.com","password":"correct horse","name":"Fuzz"}' "$url/api/v1/auth/register" || true
    token=$(curl -sf -H 'content-type: application/json' -d '{"email":"fuzz@example.com","password":"correct horse"}' \
        "$url/api/v1/auth/login" | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
    echo "== schemathesis against $framework ($url): all checks, $EXAMPLES examples per operation, seed $SEED" >&2
    if ! (cd "$work" && "$OLDPWD/$venv/bin/schemathesis" run "$url/openapi.json" --checks all --max-examples "$EXAMPLES" \
        --seed "$SEED" --generation-database none --header "Authorization: Bearer $token" --no-color); then
        failed+=("$framework")
    fi
    kill -TERM "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "schemathesis found failures against: ${failed[*]}" >&2
    exit 1
fi
echo "schemathesis: no failures against $FRAMEWORKS" >&2
