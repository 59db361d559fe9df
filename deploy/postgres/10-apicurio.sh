#!/bin/sh
# First start of PostgreSQL only: a database and role for the schema registry (Apicurio's sql
# storage), its password from the secret file that registry_datasource.properties repeats.
set -eu
password="$(cat /run/secrets/registry_db_password)"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  --set=password="$password" <<'SQL'
CREATE ROLE apicurio LOGIN PASSWORD :'password';
CREATE DATABASE apicurio OWNER apicurio;
SQL
