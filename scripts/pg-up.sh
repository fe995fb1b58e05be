#!/usr/bin/env bash
# Makes sure the PostgreSQL test server is up, with the test role and database. Idempotent.
# On these machines PostgreSQL is installed but not running; CI starts from the same state.
set -euo pipefail
ROLE=aftercare PASSWORD=aftercare DATABASE=aftercare_test

if ! command -v pg_lsclusters >/dev/null 2>&1; then
  echo "pg-up: PostgreSQL is not installed here: the PostgreSQL tests will skip (and fail in CI)."
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "pg-up: not root, so not starting a cluster; using whatever server is at 127.0.0.1:5432."
  exit 0
fi
if [ -z "$(pg_lsclusters -h)" ]; then
  version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  pg_createcluster "$version" main
fi
read -r version cluster port status _ < <(pg_lsclusters -h | head -n 1)
if [ "$status" != online ]; then
  pg_ctlcluster "$version" "$cluster" start
fi
as_postgres() { su postgres -c "psql -p $port -v ON_ERROR_STOP=1 -qtAc \"$1\""; }
# CREATEDB: each test run makes its own database, so runs side by side never collide.
if [ -z "$(as_postgres "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" ]; then
  as_postgres "CREATE ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD'"
else
  as_postgres "ALTER ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD'"
fi
# Dropping a test run's database WITH (FORCE) may have to end a background session on it.
as_postgres "GRANT pg_signal_backend TO $ROLE"
if [ -z "$(as_postgres "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'")" ]; then
  as_postgres "CREATE DATABASE $DATABASE OWNER $ROLE"
fi
echo "pg-up: PostgreSQL $version/$cluster is up on 127.0.0.1:$port with database $DATABASE."
