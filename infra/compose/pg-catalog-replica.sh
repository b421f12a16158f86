#!/usr/bin/env bash
# Entrypoint of pg-catalog-replica: on an empty volume, clone the primary with
# pg_basebackup (-R writes standby.signal and primary_conninfo, -X stream
# copies the WAL written during the backup, -S uses the slot that
# pg-catalog-primary-init.sh created), then hand over to the image's own
# entrypoint, which sees an existing data directory and just starts postgres
# as a hot standby.
#
# A replica cloned from an earlier primary cannot follow a new one: after
# recreating the primary's volume, recreate this one too (docker compose down -v).
set -Eeuo pipefail

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	echo "pg-catalog-replica: cloning $PRIMARY_HOST into $PGDATA (slot $REPLICATION_SLOT)"
	mkdir -p "$PGDATA"
	chown postgres:postgres "$PGDATA"
	chmod 700 "$PGDATA"
	PGPASSWORD="$REPLICATION_PASSWORD" gosu postgres pg_basebackup \
		--dbname="host=$PRIMARY_HOST port=5432 user=$REPLICATION_USER application_name=pg-catalog-replica" \
		--pgdata="$PGDATA" --write-recovery-conf --wal-method=stream \
		--slot="$REPLICATION_SLOT" --checkpoint=fast --progress
fi

exec docker-entrypoint.sh "$@"
