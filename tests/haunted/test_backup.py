"""Backups and recovery by replay (haunted/backup.py, infra/backup/pitr-restore.sh).

The drill: a scratch PostgreSQL cluster (initdb, pg_ctl on a free port) archiving
its WAL into a local folder, the embedded broker, the whole system under load; a
base backup; more load; the data directory destroyed; point-in-time recovery to
the latest archived point; `haunted restore --replay-only`; the state equals the
state the same run had before the failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import TopicPartition
from pydantic import SecretStr
from redis.asyncio import Redis
from sqlalchemy import text

from events.db import Database
from events.embedded import EmbeddedBroker
from events.replay import retention_gaps
from haunted.backup import KEY_STORE_TABLES, KEYS, MANIFEST, Manifest, prune
from haunted.runtime import Haunted
from haunted.services import replay_targets
from haunted.settings import Settings
from services.billing import LOCAL_WEBHOOK_SECRET
from tests.conftest import (
    REDIS_TEST_URL,
    Server,
    eventually,
    free_port,
    make_settings,
    register,
    serve,
    unique_email,
)
from tests.services.billing.conftest import (
    link_customer,
    new_id,
    signed,
    stripe_event,
    subscription,
)

ROOT = Path(__file__).resolve().parents[2]
PITR_RESTORE = ROOT / "infra" / "backup" / "pitr-restore.sh"
HAUNTED = Path(sys.executable).parent / "haunted"
PG_BIN = Path(
    subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
    or "/usr/lib/postgresql/15/bin"
)
LIVE = {t.consumer: set(t.topics) for t in replay_targets().values() if t.live}

INVITE = """mutation($team: ID!, $email: String!, $role: String!) {
  inviteMember(teamId: $team, email: $email, role: $role) { token } }"""
ACCEPT = "mutation($token: String!) { acceptInvite(token: $token) { role } }"
TRACK = "mutation($name: String!) { track(name: $name, properties: {n: 1}) }"
CALL = """mutation($text: String!) {
  callPrompt(path: "summarize", variables: {text: $text}) { text } }"""


def as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL's server refuses to run as root: as root, run it as `postgres`."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


class ScratchCluster:
    """A PostgreSQL cluster of its own, archiving every finished WAL segment."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.archive = root / "archive"
        self.port = free_port()

    def run(self, *command: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(as_postgres(list(command)), capture_output=True, text=True)
        assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
        return done

    def init(self) -> None:
        self.archive.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.archive, "postgres")
        self.run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {self.port}\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\n"
                "wal_level = replica\n"
                "archive_mode = on\n"
                f"archive_command = 'test ! -f {self.archive}/%f && cp %p {self.archive}/%f'\n"
                "max_wal_senders = 4\n"
                "fsync = off\n"  # a drill: the machine itself does not crash
            )

    def start(self) -> None:
        self.run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
                 "-w", "-t", "60", "start")  # fmt: skip

    def crash(self) -> None:
        """The server dies where it stands and its data directory is lost."""
        self.run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.data)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop"]),
                capture_output=True,
            )

    def url(self, database: str = "haunted", driver: str = "postgresql+asyncpg") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    async def connect(self, database: str = "haunted") -> asyncpg.Connection:
        return await asyncpg.connect(host="127.0.0.1", port=self.port, user="postgres",
                                     database=database)  # fmt: skip

    async def archive_now(self) -> str:
        """Closes the current WAL segment and waits until the archiver copied it: the
        latest archived point is now."""
        conn = await self.connect()
        try:
            segment = await conn.fetchval("SELECT pg_walfile_name(pg_switch_wal())")

            async def archived() -> bool:
                last = await conn.fetchval("SELECT last_archived_wal FROM pg_stat_archiver")
                return last is not None and last >= segment

            await eventually(archived, timeout_s=30)
            return str(segment)
        finally:
            await conn.close()


@pytest.fixture
def cluster() -> Iterator[ScratchCluster]:
    # Not under pytest's tmp_path: `postgres` must reach it when the tests run as root.
    root = Path(tempfile.mkdtemp(prefix="haunted-drill-"))
    root.chmod(0o755)
    scratch = ScratchCluster(root)
    try:
        yield scratch
    finally:
        scratch.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def fresh_redis() -> AsyncIterator[str]:
    client = Redis.from_url(REDIS_TEST_URL)
    await client.flushdb()
    yield REDIS_TEST_URL
    await client.flushdb()
    await client.aclose()


@pytest.fixture
async def settings(
    cluster: ScratchCluster,
    kafka: EmbeddedBroker,
    fresh_redis: str,
    signing_key_files: tuple[Path, Path],
) -> Settings:
    """The scratch cluster started with a migrated `haunted` database, and settings for it."""
    cluster.init()
    cluster.start()
    admin = await cluster.connect("postgres")
    await admin.execute("CREATE DATABASE haunted")
    await admin.close()
    configured = make_settings(
        database_url=cluster.url(),
        redis_url=fresh_redis,
        kafka_bootstrap=kafka.bootstrap_servers,
        data_dir=cluster.root / "haunted",
        backup_dir=cluster.root / "backups",
        jwt_private_key_file=signing_key_files[0],
        jwt_public_key_file=signing_key_files[1],
        # Webhooks signed as the billing tests sign them (no local checkout outside dev).
        stripe_webhook_secret=SecretStr(LOCAL_WEBHOOK_SECRET),
    )
    migrated = await haunted_cli(configured, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    return configured


def cli_env(settings: Settings) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HAUNTED_ENV": "test",
        "HAUNTED_DATABASE_URL": settings.database_url,
        "HAUNTED_REDIS_URL": settings.redis_url,
        "HAUNTED_KAFKA_BOOTSTRAP": settings.kafka.bootstrap,
        "HAUNTED_DATA_DIR": str(settings.data_dir),
        "HAUNTED_BACKUP_DIR": str(settings.backup_dir),
        "HAUNTED_LOG_JSON": "false",
    }


async def haunted_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """The real console script, as an operator runs it."""
    process = await asyncio.create_subprocess_exec(
        str(HAUNTED), *args, env=cli_env(settings),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), 300)
    assert process.returncode is not None
    return subprocess.CompletedProcess(args, process.returncode, stdout.decode(), stderr.decode())


async def snapshot(db: Database, redis_url: str) -> dict[str, Any]:
    """The state the drill compares: ids the system generates anew on a replay
    (notification ids, times) left out, everything else in."""
    queries = {
        "users": "SELECT id FROM auth_users",
        "teams": "SELECT id, name FROM auth_teams",
        "memberships": "SELECT team_id, user_id, role FROM auth_memberships",
        "subscriptions": "SELECT team_id, plan_id, status FROM billing_subscriptions",
        "inboxes": "SELECT user_id, source_event_id, type, title FROM notifications",
        "notification_members": "SELECT team_id, user_id, role FROM notification_team_members",
        "analytics_events": "SELECT id, type FROM analytics_events",
        "analytics_members": "SELECT team_id, user_id, active FROM analytics_team_members",
        "llm_plans": "SELECT team_id, plan_id, status FROM llm_team_plans",
        "flags_plans": "SELECT team_id, plan_id, status FROM flags_team_plans",
    }
    state: dict[str, Any] = {}
    async with db.read() as session:
        for name, sql in queries.items():
            state[name] = sorted(tuple(row) for row in (await session.execute(text(sql))).all())
    state["analytics_counts"] = dict(Counter(type_ for _, type_ in state["analytics_events"]))
    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        usage = {}
        async for key in redis.scan_iter("haunted:llm:*"):
            if ":cache:" not in key and await redis.type(key) == "string":
                usage[key] = await redis.get(key)
        state["llm_usage"] = usage
    finally:
        await redis.aclose()
    return state


async def settled(db: Database) -> bool:
    """Nothing pending in the outbox, and every event in it applied by every live
    consumer of its topic (analytics: stored; the others: in processed_events)."""
    async with db.read() as session:
        outbox = (await session.execute(text("SELECT event_id, topic, sent_at FROM outbox"))).all()
        processed = set(
            (await session.execute(text("SELECT consumer, event_id FROM processed_events"))).all()
        )
        stored = set(await session.scalars(text("SELECT id FROM analytics_events")))
    for event_id, topic, sent_at in outbox:
        if sent_at is None:
            return False
        for consumer, topics in LIVE.items():
            if topic not in topics:
                continue
            done = (
                event_id in stored if consumer == "analytics" else (consumer, event_id) in processed
            )
            if not done:
                return False
    return True


async def invite(server: Server, owner: dict[str, Any], team: str, role: str) -> dict[str, Any]:
    invitee = await register(server, unique_email())
    body = await server.graphql(
        INVITE, {"team": team, "email": invitee["user"]["email"], "role": role}, owner["token"]
    )
    assert "errors" not in body, body
    token = body["data"]["inviteMember"]["token"]
    accepted = await server.graphql(ACCEPT, {"token": token}, invitee["token"])
    assert "errors" not in accepted, accepted
    return invitee


async def activity(server: Server, user: dict[str, Any], tracks: int, prompt: str) -> None:
    for i in range(tracks):
        body = await server.graphql(TRACK, {"name": f"drill.step{i}"}, user["token"])
        assert body.get("data", {}).get("track") is True, body
    called = await server.graphql(CALL, {"text": prompt}, user["token"])
    assert "errors" not in called, called


async def subscribe(server: Server, team: str) -> None:
    customer = new_id("cus")
    await link_customer(server.haunted.db, team, customer)
    payload, signature = signed(
        stripe_event("customer.subscription.created", subscription(new_id("sub"), customer))
    )
    async with server.client() as client:
        response = await client.post(
            "/webhooks/stripe",
            content=payload,
            headers={"Content-Type": "application/json", "Stripe-Signature": signature},
        )
    assert response.status_code == 200, response.text


def team_of(user: dict[str, Any]) -> str:
    return str(user["user"]["memberships"][0]["team"]["id"])


async def wait_settled(settings: Settings) -> None:
    db = Database(settings.database_url)
    try:
        await eventually(lambda: settled(db), timeout_s=60, interval_s=0.2)
    finally:
        await db.dispose()


async def state_of(settings: Settings) -> dict[str, Any]:
    db = Database(settings.database_url)
    try:
        return await snapshot(db, settings.redis_url)
    finally:
        await db.dispose()


async def test_drill_recovers_the_state_of_the_run_without_the_failure(
    cluster: ScratchCluster, settings: Settings
) -> None:
    backups = cluster.root / "backups"
    backups.mkdir(mode=0o755)

    # 1. Load: the whole system (gateway and every worker).
    async with serve(settings) as server:
        alpha = await register_with_team(server, "alpha")
        beta = await register_with_team(server, "beta")
        await invite(server, alpha, team_of(alpha), "member")
        await activity(server, alpha, 3, "the first text")
        await subscribe(server, team_of(alpha))
        await wait_settled(settings)

    # 2. The base backup (positions first, then pg_basebackup).
    taken = await haunted_cli(settings, "backup", "--physical", "--dir", str(backups))
    assert taken.returncode == 0, taken.stderr
    (folder,) = backups.iterdir()
    manifest = Manifest.read(folder)
    assert manifest.kind == "physical" and manifest.schema_revisions
    assert set(manifest.positions) == set(LIVE)

    # 3. More load. The services' writes reach the archive; the consumers' do not:
    #    they run after the latest archived point, so only replay can bring them back.
    async with serve(settings, workers=()) as server:
        delta = await register_with_team(server, "delta")
        await invite(server, alpha, team_of(alpha), "admin")
        await activity(server, delta, 2, "the second text")
        # Beta's members are all from before: who gets the notification does not
        # depend on the order the consumer meets the topics of this backlog in
        # (notifications resolves recipients when it handles an event, live or replayed).
        await subscribe(server, team_of(beta))
        await eventually(lambda: relayed(server.haunted), timeout_s=30)
    await cluster.archive_now()
    async with Haunted.build(settings, gateway=False).running():
        await wait_settled(settings)
    expected = await state_of(settings)
    assert expected["subscriptions"] and expected["llm_plans"] and expected["flags_plans"]
    assert {"drill.step0", "prompt.completed", "notification.created"} <= set(
        expected["analytics_counts"]
    )
    assert len(expected["users"]) == 5 and len(expected["teams"]) == 5  # everyone gets a team

    # 4. The failure: the server dies and its data directory is gone.
    cluster.crash()

    # 5. Point-in-time recovery to the latest archived point.
    if os.geteuid() == 0:  # pg_basebackup wrote it 0700 as root; the server's user reads it
        for path in [folder, *folder.rglob("*")]:
            shutil.chown(path, "postgres")
    # A copy beside the cluster: the checkout may sit where `postgres` cannot reach it
    # (a clone in a 0700 temporary folder).
    script = shutil.copy(PITR_RESTORE, cluster.root / PITR_RESTORE.name)
    restored = subprocess.run(
        as_postgres([str(script), str(cluster.data), str(folder), str(cluster.archive)]),
        capture_output=True,
        text=True,
    )
    assert restored.returncode == 0, restored.stderr
    cluster.start()
    conn = await cluster.connect()
    await eventually(lambda: not_in_recovery(conn), timeout_s=60)
    await conn.close()
    before_replay = await state_of(settings)
    assert before_replay["users"] == expected["users"]  # the services' rows: archived
    assert before_replay["inboxes"] != expected["inboxes"]  # the consumers': lost

    # 6. Replay from the backup's positions, then the workers start again.
    replayed = await haunted_cli(settings, "restore", str(folder), "--replay-only")
    assert replayed.returncode == 0, replayed.stderr
    for consumer in LIVE:
        assert f"replayed {consumer} from the backup's positions" in replayed.stderr
    assert "loss window" in replayed.stderr
    async with Haunted.build(settings, gateway=False).running():
        await wait_settled(settings)
        after = await state_of(settings)
    assert set(after["inboxes"]) ^ set(expected["inboxes"]) == set(), (
        set(after["inboxes"]) - set(expected["inboxes"]),
        set(expected["inboxes"]) - set(after["inboxes"]),
    )
    assert after == expected


async def register_with_team(server: Server, team: str) -> dict[str, Any]:
    from tests.conftest import PASSWORD, REGISTER

    body = await server.graphql(
        REGISTER, {"email": unique_email(), "password": PASSWORD, "teamName": team}
    )
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["register"]
    return payload


async def relayed(process: Haunted) -> bool:
    """This gateway-only process runs no relay: publish by hand until nothing is pending."""
    await process.relay.publish_pending()
    async with process.db.read() as session:
        return not await session.scalar(text("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))


async def not_in_recovery(conn: asyncpg.Connection) -> bool:
    return not await conn.fetchval("SELECT pg_is_in_recovery()")


def test_retention_gaps_name_each_partition_that_lost_records() -> None:
    start = {TopicPartition("user.registered", 0): 12, TopicPartition("user.registered", 1): 5}
    beginnings = {TopicPartition("user.registered", 0): 40, TopicPartition("user.registered", 1): 5}
    (gap,) = retention_gaps("analytics", start, beginnings)
    assert "user.registered[0] from offset 12" in gap and "28 records gone" in gap
    assert retention_gaps("analytics", start, {p: 0 for p in start}) == []


def test_prune_keeps_the_newest_complete_backups(tmp_path: Path) -> None:
    names = [f"haunted-2026120{i}T000000000000Z" for i in range(1, 6)]
    for name in names:
        (tmp_path / name).mkdir()
        (tmp_path / name / MANIFEST).write_text("{}")
    (tmp_path / "haunted-20261203T120000000000Z").mkdir()  # interrupted: no manifest
    (tmp_path / "haunted-20261209T000000000000Z").mkdir()  # one being written now
    deleted = prune(tmp_path, 2)
    assert [p.name for p in deleted] == [*names[:3], "haunted-20261203T120000000000Z"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        *names[3:],
        "haunted-20261209T000000000000Z",
    ]


def test_a_folder_without_a_manifest_is_refused(tmp_path: Path) -> None:
    settings = make_settings(database_url="postgresql+asyncpg://postgres@127.0.0.1:5432/x")
    done = subprocess.run(
        [str(HAUNTED), "restore", str(tmp_path)],
        env=cli_env(settings),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "is not a backup: no manifest.json" in done.stderr
    (tmp_path / MANIFEST).write_text(json.dumps({"format": 99}))
    done = subprocess.run(
        [str(HAUNTED), "restore", str(tmp_path)], env=cli_env(settings), capture_output=True,
        text=True,
    )  # fmt: skip
    assert done.returncode == 2 and "unknown format 99" in done.stderr


async def test_a_dump_is_restored_then_every_consumer_replayed_and_a_gap_refused(
    cluster: ScratchCluster, settings: Settings
) -> None:
    backups = cluster.root / "backups"
    async with serve(settings) as server:
        alpha = await register_with_team(server, "alpha")
        await wait_settled(settings)
        taken = await haunted_cli(settings, "backup", "--dir", str(backups), "--keep", "2")
        assert taken.returncode == 0, taken.stderr
        (folder,) = backups.iterdir()
        assert f"backup written to {folder}" in taken.stderr.replace("\n", "")
        gamma = await register_with_team(server, "gamma")  # after the backup
        await activity(server, alpha, 1, "a text")
        await wait_settled(settings)
    manifest = Manifest.read(folder)
    assert manifest.kind == "logical" and manifest.files == ["database.pgdump", "keys.json"]
    assert manifest.outbox["pending"] == 0 and manifest.outbox["last_sent_seq"] > 0
    assert "lost" in manifest.loss_window
    head = await cluster.connect()
    assert manifest.schema_revisions == sorted(
        r["version_num"] for r in await head.fetch("SELECT version_num FROM alembic_version")
    )
    await head.close()

    # Retention that moved past the backup's positions: refused, nothing changed.
    # (Tansu has no DeleteRecords: a position before the first retained offset
    # stands in for records the retention dropped.)
    gapped = cluster.root / "gapped"
    shutil.copytree(folder, gapped)
    raw = json.loads((gapped / MANIFEST).read_text())
    raw["positions"]["analytics"]["user.registered"]["0"] = -5
    (gapped / MANIFEST).write_text(json.dumps(raw))
    refused = await haunted_cli(settings, "restore", str(gapped))
    assert refused.returncode == 2, refused.stderr
    assert "retention no longer reaches the restore point" in refused.stderr
    assert "analytics needs user.registered[0] from offset -5" in refused.stderr
    users_before = (await state_of(settings))["users"]
    assert (gamma["user"]["id"],) in users_before

    restored = await haunted_cli(settings, "restore", str(folder))
    assert restored.returncode == 0, restored.stderr
    assert f"restored {folder} (taken {manifest.taken_at}" in restored.stderr.replace("\n", "")
    lines = {line.split(":")[0]: line for line in restored.stderr.splitlines()}
    notifications = lines["replayed notifications from the backup's positions"]
    assert " 0 handled" not in notifications  # gamma's registration, among others
    after = await state_of(settings)
    # The services' rows are the backup's (gamma's account is in the loss window);
    # the read models were fed what the topics hold since (docs/deploy.md: loss window).
    assert (gamma["user"]["id"],) not in after["users"]
    assert (alpha["user"]["id"],) in after["users"]
    assert any(member[1] == gamma["user"]["id"] for member in after["notification_members"])


async def test_a_user_erased_after_a_backup_stays_unreadable_in_it_and_after_its_restore(
    cluster: ScratchCluster, settings: Settings
) -> None:
    """The key store is not in the dump; the backup's key file loses the user's key at the
    erase; a restore brings the user's rows back without a key, then drops them again."""
    from tests.conftest import LOGIN, PASSWORD

    async with serve(settings) as server:
        erased, kept = await register(server), await register(server)
        erased_id, kept_id = erased["user"]["id"], kept["user"]["id"]
        await wait_settled(settings)
        taken = await haunted_cli(settings, "backup")  # into HAUNTED_BACKUP_DIR
        assert taken.returncode == 0, taken.stderr
        (folder,) = settings.backup_dir.iterdir()
        assert {erased_id, kept_id} <= set(json.loads((folder / KEYS).read_text()))
        listed = subprocess.run(
            ["pg_restore", "--list", str(folder / "database.pgdump")],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert "auth_users" in listed.stdout
        assert not any(table in listed.stdout for table in KEY_STORE_TABLES)

        done = await haunted_cli(settings, "privacy", "erase", erased_id)
        assert done.returncode == 0, done.stderr
        report = done.stderr
        assert f"user {erased_id} erased on" in report
        assert "backup key files rewritten: 1" in report and "data keys deleted: 1" in report
        assert "analytics: events anonymised:" in report
        assert "billing: keeps nothing per user" in report
        keys = json.loads((folder / KEYS).read_text())
        assert erased_id not in keys and kept_id in keys
        again = await haunted_cli(settings, "privacy", "erase", erased_id)
        assert again.returncode == 0, again.stderr
        assert f"user {erased_id} already erased on" in again.stderr
        lines = [line for line in done.stderr.splitlines() if line.startswith("  ")]
        assert lines and [line for line in again.stderr.splitlines() if line.startswith("  ")] == (
            lines
        )
        unknown = await haunted_cli(settings, "privacy", "erase", "no-such-user")
        assert unknown.returncode == 2 and "no such user" in unknown.stderr
        await wait_settled(settings)

    restored = await haunted_cli(settings, "restore", str(folder))
    assert restored.returncode == 0, restored.stderr
    assert "1 users erased since the backup dropped again" in restored.stderr
    head = await cluster.connect()
    try:
        users = {r["id"] for r in await head.fetch("SELECT id FROM auth_users")}
        keys_live = {r["user_id"] for r in await head.fetch("SELECT user_id FROM auth_user_keys")}
    finally:
        await head.close()
    assert erased_id not in users and erased_id not in keys_live
    assert kept_id in users and kept_id in keys_live
    async with serve(settings) as server:
        kept_again = await server.data(
            LOGIN, {"email": kept["user"]["email"], "password": PASSWORD}
        )
        assert kept_again["login"]["user"]["email"] == kept["user"]["email"]
        gone = await server.graphql(LOGIN, {"email": erased["user"]["email"], "password": PASSWORD})
        assert gone["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_the_password_goes_to_a_private_file_never_onto_the_command_line(tmp_path: Path) -> None:
    from haunted.backup import BackupError, _libpq

    conninfo, passfile = _libpq("postgresql+asyncpg://app:s3:cr'et@db:6432/it's", tmp_path)
    assert "s3" not in conninfo and "cr'et" not in conninfo
    assert "host='db' port='6432' user='app' dbname='it\\'s'" in conninfo
    assert passfile is not None and passfile.stat().st_mode & 0o077 == 0
    assert passfile.read_text() == "*:*:*:*:s3\\:cr'et\n"
    with pytest.raises(BackupError, match="backups need PostgreSQL"):
        _libpq("sqlite+aiosqlite:///x.db", tmp_path)


def test_a_manifest_of_another_shape_is_refused(tmp_path: Path) -> None:
    from haunted.backup import BackupError

    (tmp_path / MANIFEST).write_text(json.dumps({"format": 1, "kind": "logical"}))
    with pytest.raises(BackupError, match="not a backup manifest"):
        Manifest.read(tmp_path)
