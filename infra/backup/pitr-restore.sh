#!/usr/bin/env bash
# Point-in-time recovery of PostgreSQL: a base backup written by
# `haunted backup --physical`, plus the WAL archive the server copies every
# finished segment into (archive_command in docker-compose.yml and
# infra/k8s/components/datastores/postgres.yaml).
#
#   infra/backup/pitr-restore.sh DATA_DIR BACKUP_FOLDER WAL_ARCHIVE [TARGET_TIME]
#
# DATA_DIR must be empty or absent (move the broken one aside first). Without
# TARGET_TIME the server recovers to the latest archived point; with it (e.g.
# "2026-12-05 14:30:00+00"), to that moment. Then start PostgreSQL on DATA_DIR: it
# replays the archive and promotes itself. Last step: `haunted restore
# BACKUP_FOLDER --replay-only` feeds the consumers again (docs/deploy.md).
set -euo pipefail

if [ $# -lt 3 ] || [ $# -gt 4 ]; then
  sed -n '2,15p' "$0" >&2
  exit 2
fi
data_dir=$1
backup=$2
archive=$3
target=${4:-}

[ -f "$backup/manifest.json" ] || { echo "error: $backup has no manifest.json" >&2; exit 2; }
[ -f "$backup/base/base.tar.gz" ] || { echo "error: $backup is not a base backup (no base/base.tar.gz)" >&2; exit 2; }
[ -d "$archive" ] || { echo "error: WAL archive $archive does not exist" >&2; exit 2; }
if [ -d "$data_dir" ] && [ -n "$(ls -A "$data_dir")" ]; then
  echo "error: $data_dir is not empty: move it aside first" >&2
  exit 2
fi

mkdir -p "$data_dir"
chmod 0700 "$data_dir"
tar -xzf "$backup/base/base.tar.gz" -C "$data_dir"
if [ -f "$backup/base/pg_wal.tar.gz" ]; then
  tar -xzf "$backup/base/pg_wal.tar.gz" -C "$data_dir/pg_wal"
fi

archive=$(cd "$archive" && pwd)
{
  echo "# Added by pitr-restore.sh: recovery from the WAL archive."
  echo "restore_command = 'cp \"$archive/%f\" \"%p\"'"
  echo "recovery_target_timeline = 'latest'"
  if [ -n "$target" ]; then
    echo "recovery_target_time = '$target'"
    echo "recovery_target_action = 'promote'"
  fi
} >> "$data_dir/postgresql.auto.conf"
touch "$data_dir/recovery.signal"

echo "ready: start PostgreSQL on $data_dir (it replays $archive${target:+ up to $target}), then run"
echo "  haunted restore $backup --replay-only"
