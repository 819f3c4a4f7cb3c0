#!/usr/bin/env bash
# Regenerates servers/data/.sqlx, the offline query metadata that lets the workspace build
# without a database (SQLX_OFFLINE=true in .cargo/config.toml). Run it after changing a query or
# a migration. Needs a PostgreSQL server: ADMIN_URL (default: the local one on 5432).
set -euo pipefail
cd "$(dirname "$0")/.."
admin_url=${ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
db=taskbench_sqlx_prepare
psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
db_url="${admin_url%/*}/$db"
for f in servers/data/migrations/*.sql; do psql "$db_url" -q -v ON_ERROR_STOP=1 -f "$f"; done
rm -rf servers/data/.sqlx && mkdir -p servers/data/.sqlx
touch servers/data/src/service.rs
SQLX_OFFLINE=false DATABASE_URL="$db_url" SQLX_OFFLINE_DIR="$PWD/servers/data/.sqlx" cargo check -q -p taskbench-data
psql "$admin_url" -qc "DROP DATABASE $db"
echo "wrote $(ls servers/data/.sqlx | wc -l) query files to servers/data/.sqlx"
