#!/bin/sh
# PostgreSQL first-start script for docker-compose.yml (mounted into
# /docker-entrypoint-initdb.d; the image runs it once, on an empty data
# volume, as the superuser).
#
# Database per service: each service gets a role and a database of the
# same name, owned by that role. CONNECT is revoked from PUBLIC on every
# database, so a role can open only its own: `users` cannot even connect
# to `payments`, let alone read its tables.
#
# Passwords come from the environment (`.env`, see `.env.example`); psql
# variables (:'password') quote them, so no value can break the SQL.
set -eu

create_service_database() {
  service=$1
  password=$2
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v service="$service" -v password="$password" <<'SQL'
CREATE ROLE :"service" LOGIN PASSWORD :'password';
CREATE DATABASE :"service" OWNER :"service";
REVOKE ALL ON DATABASE :"service" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"service" TO :"service";
SQL
}

create_service_database users "$USERS_DB_PASSWORD"
create_service_database courses "$COURSES_DB_PASSWORD"
create_service_database payments "$PAYMENTS_DB_PASSWORD"
create_service_database progress "$PROGRESS_DB_PASSWORD"

# The maintenance databases are reachable by every role by default; only
# the superuser needs them.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<'SQL'
REVOKE CONNECT ON DATABASE postgres FROM PUBLIC;
REVOKE CONNECT ON DATABASE template1 FROM PUBLIC;
SQL
