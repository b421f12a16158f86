#!/usr/bin/env bash
# Runs once, from docker-entrypoint-initdb.d, when an orders server's data
# directory is first created: one database per logical shard that this server
# holds (ORDERS_SHARDS, e.g. "0 1 2 3"). The services create their own tables.
set -Eeo pipefail

for shard in $ORDERS_SHARDS; do
	psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname postgres \
		--set=db="orders_shard_$shard" <<<'CREATE DATABASE :"db";'
done
