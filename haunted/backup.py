"""`haunted backup` / `haunted restore`: PostgreSQL backups that know where the topics were.

A backup is a folder `haunted-<UTC time>/` holding the database (a `pg_dump`
custom-format archive, or with `physical` a `pg_basebackup` tar for
point-in-time recovery with the WAL archive) and `manifest.json`: when it was
taken, the schema revision, the outbox's positions and, per consumer group, the
offsets it had committed. Those offsets are read *before* the database is
copied, so everything the copy holds was consumed from at or after them.

After a restore (of a dump here, or of a base backup plus WAL by
infra/backup/pitr-restore.sh), every live replay target is fed again from those
offsets: events the restored tables missed are applied, the ones they hold are
duplicates (processed_events) and change nothing. When a topic's retention has
dropped records after an offset, the restore refuses before touching anything.
docs/deploy.md has the runbook.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import func, select, text
from sqlalchemy.engine import URL, make_url

from events.broker import KafkaSettings
from events.consumer import EventConsumers
from events.db import Database
from events.dialect import SqlDialect, dialect_of
from events.outbox import OutboxRecord
from events.replay import ReplayError, ReplayReport, ReplayTarget, replay, retention_gaps
from services.auth.models import Erasure, UserKey

MANIFEST = "manifest.json"
DUMP = "database.pgdump"
# The key store beside the dump, never in it: an erase rewrites this file in every backup
# of the backup directory (docs/privacy.md). The dump leaves these tables out, so that a
# restore's --clean keeps the live ones: a key deleted since the backup stays deleted.
KEYS = "keys.json"
KEY_STORE_TABLES = ("auth_user_keys", "auth_erasures")
BASE = "base"  # pg_basebackup's tar output folder
PREFIX = "haunted-"
FORMAT = 1
Kind = Literal["logical", "physical"]
# consumer -> topic -> partition -> offset (JSON keys are strings)
Positions = dict[str, dict[str, dict[str, int]]]

LOSS_WINDOW = {
    "logical": (
        "the services' own rows written after taken_at are lost (restore a newer backup or "
        "use point-in-time recovery); read models and consumer state are replayed from the "
        "topics as long as their retention reaches taken_at"
    ),
    "physical": (
        "with the WAL archive, nothing before the last archived segment (archive_timeout: "
        "at most 60 s with the shipped settings); read models past it are replayed"
    ),
}


class BackupError(Exception):
    """A backup or restore that cannot run as asked; said in one line."""


@dataclass(frozen=True)
class Manifest:
    kind: Kind
    taken_at: str
    schema_revisions: list[str]
    outbox: dict[str, int]
    positions: Positions
    loss_window: str
    format: int = FORMAT
    files: list[str] = field(default_factory=list)

    def start_offsets(self, consumer: str) -> dict[TopicPartition, int]:
        return {
            TopicPartition(topic, int(partition)): offset
            for topic, partitions in self.positions.get(consumer, {}).items()
            for partition, offset in partitions.items()
        }

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        path = folder / MANIFEST
        try:
            raw: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            raise BackupError(f"{folder} is not a backup: no {MANIFEST}") from None
        except json.JSONDecodeError as error:
            raise BackupError(f"{path} is not JSON: {error}") from None
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            found = raw.get("format") if isinstance(raw, dict) else None
            raise BackupError(f"{path}: unknown format {found!r}")
        try:
            return cls(**raw)
        except TypeError as error:
            raise BackupError(f"{path}: not a backup manifest ({error})") from None


def _libpq(database_url: str, folder: Path) -> tuple[str, Path | None]:
    """A libpq connection string for the pg_* tools, and the password file it names:
    the password goes to a 0600 file, never onto a command line."""
    url: URL = make_url(database_url)
    try:
        postgresql = dialect_of(database_url) is SqlDialect.POSTGRESQL
    except ValueError:
        postgresql = False
    if not postgresql:
        raise BackupError(
            "HAUNTED_DATABASE_URL: backups need PostgreSQL (the embedded SQLite file is "
            "copied as it is, with the processes stopped)"
        )
    parts = {
        "host": url.host or "localhost",
        "port": str(url.port or 5432),
        "user": url.username or "",
        "dbname": url.database or "",
    }
    passfile = None
    if url.password:
        passfile = folder / "pgpass"
        passfile.touch(mode=0o600)
        escaped = str(url.password).replace("\\", "\\\\").replace(":", "\\:")
        passfile.write_text(f"*:*:*:*:{escaped}\n")
        parts["passfile"] = str(passfile)
    conninfo = " ".join(f"{key}='{_quoted(value)}'" for key, value in parts.items() if value)
    return conninfo, passfile


def _quoted(value: str) -> str:
    """A value inside a libpq conninfo's single quotes."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


async def _run(*command: str) -> None:
    try:
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
    except FileNotFoundError:
        raise BackupError(f"{command[0]} is not installed (PostgreSQL's client tools)") from None
    _, stderr = await process.communicate()
    if process.returncode != 0:
        raise BackupError(f"{command[0]} failed: {stderr.decode(errors='replace').strip()}")


async def consumer_positions(kafka: KafkaSettings, targets: list[ReplayTarget]) -> Positions:
    """Each live group's committed offsets; where it committed none, the topic's
    beginning (it will read from there when it starts)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=kafka.bootstrap_servers, request_timeout_ms=kafka.request_timeout_ms
    )
    reader = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        enable_auto_commit=False,
        request_timeout_ms=kafka.request_timeout_ms,
    )
    await admin.start()
    await reader.start()
    try:
        positions: Positions = {}
        for target in targets:
            partitions = [
                TopicPartition(topic, partition)
                for topic in target.topics
                for partition in sorted(reader.partitions_for_topic(topic) or ())
            ]
            if not partitions:
                positions[target.consumer] = {}
                continue
            # Partitions named: some brokers (Tansu) answer "all of the group's" badly.
            committed = await admin.list_consumer_group_offsets(
                f"haunted.{target.consumer}", partitions=partitions
            )
            beginnings = await reader.beginning_offsets(partitions)
            by_topic: dict[str, dict[str, int]] = {}
            for partition in partitions:
                done = committed.get(partition)
                offset = done.offset if done is not None and done.offset >= 0 else None
                by_topic.setdefault(partition.topic, {})[str(partition.partition)] = (
                    beginnings[partition] if offset is None else offset
                )
            positions[target.consumer] = by_topic
        return positions
    finally:
        await reader.stop()
        await admin.close()


async def _database_state(db: Database) -> tuple[list[str], dict[str, int]]:
    async with db.read() as session:
        revisions = sorted(await session.scalars(text("SELECT version_num FROM alembic_version")))
        last_seq, pending = (
            await session.execute(
                select(
                    func.coalesce(func.max(OutboxRecord.seq), 0),
                    func.count().filter(OutboxRecord.sent_at.is_(None)),
                )
            )
        ).one()
        last_sent = await session.scalar(
            select(func.coalesce(func.max(OutboxRecord.seq), 0)).where(
                OutboxRecord.sent_at.is_not(None)
            )
        )
    outbox = {"last_seq": int(last_seq), "last_sent_seq": int(last_sent or 0)}
    outbox["pending"] = int(pending)
    return list(revisions), outbox


async def backup(
    database_url: str,
    kafka: KafkaSettings,
    targets: list[ReplayTarget],
    directory: Path,
    *,
    physical: bool = False,
    keep: int | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Path:
    """Takes one backup into a new folder of `directory`; with `keep`, deletes the
    oldest complete backups there beyond that many. Returns the new folder."""
    if keep is not None and keep < 1:
        raise BackupError("--keep must be at least 1")
    taken = now()
    folder = directory / f"{PREFIX}{taken:%Y%m%dT%H%M%S%fZ}"
    folder.mkdir(parents=True)
    kind: Kind = "physical" if physical else "logical"
    db = Database(database_url)
    try:
        with tempfile.TemporaryDirectory(prefix="haunted-backup-") as scratch:
            conninfo, _ = _libpq(database_url, Path(scratch))
            # Offsets first: the copy below then holds at least what they stand for.
            positions = await consumer_positions(kafka, targets)
            revisions, outbox = await _database_state(db)
            if physical:
                await _run(
                    "pg_basebackup",
                    f"--dbname={conninfo}",
                    f"--pgdata={folder / BASE}",
                    "--format=tar",
                    "--gzip",
                    "--wal-method=fetch",
                    "--checkpoint=fast",
                    "--no-password",
                )
                files = sorted(str(p.relative_to(folder)) for p in (folder / BASE).iterdir())
            else:
                await _run(
                    "pg_dump",
                    f"--dbname={conninfo}",
                    "--format=custom",
                    f"--file={folder / DUMP}",
                    "--no-password",
                    *(f"--exclude-table={table}" for table in KEY_STORE_TABLES),
                )
                # Read after the dump: a key deleted meanwhile is not written here.
                await _write_keys(db, folder / KEYS)
                files = [DUMP, KEYS]
                # Wherever an erase ran, the older backups here lose the keys it deleted.
                await shred_erased(db, directory)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        await db.dispose()
    manifest = Manifest(
        kind=kind,
        taken_at=taken.isoformat(),
        schema_revisions=revisions,
        outbox=outbox,
        positions=positions,
        loss_window=LOSS_WINDOW[kind],
        files=files,
    )
    # Written last: a folder without a manifest is an interrupted backup.
    (folder / MANIFEST).write_text(json.dumps(asdict(manifest), indent=2) + "\n")
    if keep is not None:
        prune(directory, keep)
    return folder


async def _write_keys(db: Database, path: Path) -> None:
    """The data keys, still wrapped with the PII key ring, one per user."""
    async with db.read() as session:
        rows = (await session.scalars(select(UserKey).order_by(UserKey.user_id))).all()
    keys = {
        row.user_id: {
            "ring_key_id": row.ring_key_id,
            "wrapped_key": base64.b64encode(row.wrapped_key).decode(),
            "created_at": row.created_at.isoformat(),
        }
        for row in rows
    }
    _replace_file(path, keys)


def _replace_file(path: Path, keys: dict[str, Any]) -> None:
    """Written whole under another name, then renamed over: never half a key file."""
    scratch = path.with_name(f".{path.name}.tmp")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(keys, handle, indent=1, sort_keys=True)
    os.replace(scratch, path)


def shred_keys(directory: Path, user_ids: set[str]) -> int:
    """Removes these users' data keys from the key file of every backup in `directory`
    (an erase): returns how many files held one. Base backups (--physical) copy the
    whole cluster and are not rewritten: docs/privacy.md says what that means."""
    rewritten = 0
    for path in sorted(directory.glob(f"{PREFIX}*/{KEYS}")):
        keys = json.loads(path.read_text())
        kept = {user_id: key for user_id, key in keys.items() if user_id not in user_ids}
        if len(kept) != len(keys):
            _replace_file(path, kept)
            rewritten += 1
    return rewritten


def shred_key(directory: Path, user_id: str) -> int:
    return shred_keys(directory, {user_id})


async def shred_erased(db: Database, directory: Path) -> int:
    """Removes every erased user's key (the ledger) from the key files in `directory`."""
    async with db.read() as session:
        erased = set((await session.scalars(select(Erasure.user_id))).all())
    return await asyncio.to_thread(shred_keys, directory, erased)


async def restore_keys(db: Database, archive: Path) -> int:
    """After a restore: the backup's data keys of users that have none in the live key
    store and were never erased (auth_erasures, left alone by the restore). Returns how
    many were put back."""
    path = archive / KEYS
    if not path.exists():
        return 0
    keys: dict[str, dict[str, str]] = json.loads(path.read_text())
    async with db.transaction() as session:
        live = set((await session.scalars(select(UserKey.user_id))).all())
        erased = set((await session.scalars(select(Erasure.user_id))).all())
        missing = sorted(set(keys) - live - erased)
        for user_id in missing:
            key = keys[user_id]
            session.add(
                UserKey(
                    user_id=user_id,
                    ring_key_id=key["ring_key_id"],
                    wrapped_key=base64.b64decode(key["wrapped_key"]),
                    created_at=datetime.fromisoformat(key["created_at"]),
                )
            )
    return len(missing)


def prune(directory: Path, keep: int) -> list[Path]:
    """Deletes all but the newest `keep` complete backups, and interrupted ones older
    than the newest complete one. Returns what it deleted."""
    folders = sorted(p for p in directory.glob(f"{PREFIX}*") if p.is_dir())
    complete = [p for p in folders if (p / MANIFEST).exists()]
    doomed = complete[:-keep] if len(complete) > keep else []
    if complete:
        doomed += [p for p in folders if p not in complete and p.name < complete[-1].name]
    for folder in doomed:
        shutil.rmtree(folder)
    return sorted(doomed)


@dataclass(frozen=True)
class Replayed:
    target: str
    report: ReplayReport


async def check_retention(
    kafka: KafkaSettings, manifest: Manifest, targets: list[ReplayTarget]
) -> None:
    """Refuses (ReplayError, every gap named) when a topic no longer reaches back to
    the backup's positions: then replay cannot make the read models whole."""
    reader = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        enable_auto_commit=False,
        request_timeout_ms=kafka.request_timeout_ms,
    )
    await reader.start()
    try:
        gaps: list[str] = []
        for target in targets:
            start = manifest.start_offsets(target.consumer)
            if start:
                beginnings = await reader.beginning_offsets(list(start))
                gaps += retention_gaps(target.consumer, start, beginnings)
    finally:
        await reader.stop()
    if gaps:
        raise ReplayError(
            "the topics' retention no longer reaches the restore point: "
            + "; ".join(gaps)
            + ". Restore a newer backup, or accept the loss and rebuild the read models "
            "with `haunted replay SERVICE --rebuild`"
        )


async def restore_database(database_url: str, archive: Path, manifest: Manifest) -> None:
    """Loads a logical backup into the database, replacing the objects it holds."""
    if manifest.kind != "logical":
        raise BackupError(
            f"{archive} is a base backup: restore it with infra/backup/pitr-restore.sh "
            "(docs/deploy.md), then run `haunted restore ARCHIVE --replay-only`"
        )
    with tempfile.TemporaryDirectory(prefix="haunted-restore-") as scratch:
        conninfo, _ = _libpq(database_url, Path(scratch))
        await _run(
            "pg_restore",
            f"--dbname={conninfo}",
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            "--exit-on-error",
            "--no-password",
            str(archive / DUMP),
        )


async def replay_from(
    manifest: Manifest,
    targets: dict[str, ReplayTarget],
    consumers: EventConsumers,
    db: Database,
    kafka: KafkaSettings,
) -> list[Replayed]:
    """Feeds every live target again from the backup's positions, one after another."""
    done = []
    for name, target in targets.items():
        if not target.live:
            continue
        report = await replay(
            target, consumers, db, kafka, start=manifest.start_offsets(target.consumer)
        )
        done.append(Replayed(name, report))
    return done
