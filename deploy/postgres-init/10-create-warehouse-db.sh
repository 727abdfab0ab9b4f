#!/bin/sh
# Runs once, when the postgres volume is first initialised: the Dagster instance lives in
# POSTGRES_DB, the warehouse tables in a database of their own (GTM_WAREHOUSE_DB).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v db="$GTM_WAREHOUSE_DB" -v owner="$POSTGRES_USER" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'owner')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SQL
