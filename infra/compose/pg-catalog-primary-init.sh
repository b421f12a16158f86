#!/usr/bin/env bash
# Runs once, from docker-entrypoint-initdb.d, when the catalog primary's data
# directory is first created. It prepares what pg-catalog-replica's
# pg_basebackup needs: a replication role, a pg_hba line that lets it in over
# the compose network, and a physical slot so the primary keeps the WAL the
# replica has not replayed yet (the replica may be stopped on purpose in drills).
#
# The slot is made here rather than with pg_basebackup -C so that wiping only
# the replica's volume and bootstrapping it again reuses the slot instead of
# failing on "already exists".
set -Eeo pipefail

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
	--set=role="$REPLICATION_USER" --set=password="$REPLICATION_PASSWORD" --set=slot="$REPLICATION_SLOT" <<'SQL'
CREATE ROLE :"role" WITH REPLICATION LOGIN PASSWORD :'password';
SELECT pg_create_physical_replication_slot(:'slot');
SQL

# "host all all all" (added by the image) does not match replication connections.
printf 'host replication %s all scram-sha-256\n' "$REPLICATION_USER" >>"$PGDATA/pg_hba.conf"
