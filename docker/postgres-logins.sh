#!/bin/sh
# Runs once, when the PostgreSQL volume is first initialised (docker-entrypoint-initdb.d), as
# the superuser. Two logins, neither a superuser: the schema owner's, used only by the
# `migrate` service, and the gateways' application login, which is not a member of the owner
# role (so no gateway can SET ROLE to the owner and rewrite the audit log).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v owner_password="$SEALHUB_OWNER_DB_PASSWORD" \
    -v app_password="$SEALHUB_APP_DB_PASSWORD" <<'SQL'
CREATE ROLE sealhub_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS
    PASSWORD :'owner_password';
CREATE ROLE sealhub_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS
    PASSWORD :'app_password';
GRANT CREATE ON DATABASE :"DBNAME" TO sealhub_owner;
SQL
