#!/bin/sh
# Run once by the postgres image at initdb (/docker-entrypoint-initdb.d): lets the
# `base-backup` service stream a base backup (pg_basebackup is a replication
# connection, which the image's pg_hba.conf allows from localhost only).
set -e
echo "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
