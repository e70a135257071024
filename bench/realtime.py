"""Real-time push: connections one gateway process holds, its memory per connection,
and fan-out latency, against a bare python-socketio server in the same run.

`python -m bench.realtime [--connections 10000] [--events 300] [--team 1000] ...`

haunted: the gateway alone, as `haunted serve` runs it, in its own process, on SQLite, this
machine's Redis (db 11) and an embedded broker. Every connection is a user of its
own with a real token and session; the first `--team` users are members of one team.

baseline: a bare python-socketio server in its own process, under the same uvicorn,
reading the same topics with a raw aiokafka consumer and emitting the same payloads
(the event under its type name and, for a notification, `notification` too) to the
same rooms, with no authentication, audience rules, recovery or limits. It consumes
the same topics as the gateway's fan-out consumer with the same fetch wait
(HAUNTED_KAFKA_FETCH_MAX_WAIT_MS): the broker's fetch timing is the same for both.

The load generator runs in `--load-processes` processes of its own, each speaking
Engine.IO 4 / Socket.IO 5 over plain websockets (a python-socketio client per
connection would cost the generator more than the server). Each event carries its
send time; a client's latency is its receipt time minus that, from the driver's
produce to Kafka to the client's websocket. Phases, for each server:
1. connect every connection in one burst (at most 40 handshakes in flight per
   load process): the time until all are connected, and RSS growth / connections;
2. `--events` notifications, each to one random user's room, with all connected;
3. `--team-events` team broadcasts (subscription.activated) to the `--team` members;
4. all but `--team` connections closed, then `--events` notifications again.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from redis.asyncio import Redis

from bench.common import REDIS_BENCH_URL, embedded_broker, free_port, heading, line, percentile
from events.envelope import Envelope
from events.fanout import pushable_topics
from haunted import migrations
from haunted.keys import load_signing_key
from haunted.settings import Settings
from schemas import NotificationCreated, SubscriptionActivated
from services.auth import SessionStore, TokenIssuer
from services.notifications.ids import next_id

REDIS_URL = REDIS_BENCH_URL.rsplit("/", 1)[0] + "/11"  # not the tests' 13/15 nor the other benches'
TOPICS = ("notification.created", "subscription.activated")
# Handshakes in flight per load process. Above ~100 in all, `haunted serve` runs out
# of Redis connections (redis-py's pool holds 100 and refuses the next one).
CONNECT_CONCURRENCY = 40
WAIT_S = 60.0


# -- the load generator (its own process) ---------------------------------------------


@dataclass
class _Load:
    connections: dict[int, Any] = field(default_factory=dict)  # by index in the share
    readers: list[asyncio.Task[None]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    ready: int = 0
    failed: int = 0


async def _client(url: str, index: int, auth: dict[str, Any], load: _Load) -> None:
    import websockets

    ws = await websockets.connect(
        url, compression=None, max_size=None, ping_interval=None, open_timeout=WAIT_S
    )
    opening = await ws.recv()
    if not str(opening).startswith("0"):
        raise ConnectionError(f"unexpected Engine.IO opening {opening!r}")
    await ws.send("40" + json.dumps(auth))
    reply = str(await ws.recv())
    if not reply.startswith("40"):
        await ws.close()
        raise ConnectionError(f"refused: {reply}")
    load.connections[index] = ws
    load.readers.append(asyncio.create_task(_read(ws, load)))


async def _read(ws: Any, load: _Load) -> None:
    try:
        async for message in ws:
            if message == "2":  # Engine.IO ping
                await ws.send("3")
            elif isinstance(message, str) and message.startswith("42"):
                event, *args = json.loads(message[2:])
                if event == "connection_ready":
                    load.ready += 1
                elif event in ("notification", "subscription.activated"):
                    sent_at = ((args[0] if args else {}).get("data") or {}).get("sent_at")
                    if sent_at is not None:
                        load.latencies.append(time.time() - sent_at)
    except Exception:  # noqa: S110 - a closed connection ends its reader
        pass


async def _connect_all(url: str, auths: list[dict[str, Any]], load: _Load) -> float:
    limit = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one(index: int, auth: dict[str, Any]) -> None:
        async with limit:
            try:
                await _client(url, index, auth, load)
            except Exception:
                load.failed += 1

    started = time.perf_counter()
    await asyncio.gather(*(one(index, auth) for index, auth in enumerate(auths)))
    return time.perf_counter() - started


async def _load_main() -> None:
    """Obeys one JSON command per stdin line, answers one JSON line each."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 30)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    load = _Load()
    while raw := await reader.readline():
        command = json.loads(raw)
        answer: dict[str, Any] = {}
        if command["cmd"] == "connect":
            seconds = await _connect_all(command["url"], command["auths"], load)
            answer = {"connected": len(load.connections), "failed": load.failed, "s": seconds}
        elif command["cmd"] == "status":
            answer = {"connected": len(load.connections), "ready": load.ready}
        elif command["cmd"] == "take":
            answer = {"latencies": load.latencies}
            load.latencies = []
        elif command["cmd"] == "keep":  # the first `count` of the share stay connected
            for index in [i for i in load.connections if i >= command["count"]]:
                await load.connections.pop(index).close()
            answer = {"connected": len(load.connections)}
        elif command["cmd"] == "exit":
            for task in load.readers:
                task.cancel()
            print(json.dumps({"bye": True}), flush=True)
            return
        print(json.dumps(answer), flush=True)


class LoadProcess:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls) -> LoadProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.realtime",
            "load",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 30,
        )
        return cls(process)

    async def send(self, command: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command).encode() + b"\n")
        await self.process.stdin.drain()

    async def answer(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), 600)
        if not raw:
            raise RuntimeError("a load process died")
        result: dict[str, Any] = json.loads(raw)
        return result

    async def ask(self, command: dict[str, Any]) -> dict[str, Any]:
        await self.send(command)
        return await self.answer()

    async def stop(self) -> None:
        if self.process.returncode is None:
            try:
                await self.ask({"cmd": "exit"})
                await asyncio.wait_for(self.process.wait(), 10)
            except Exception:
                self.process.kill()
                await self.process.wait()


# -- the bare python-socketio server (its own process) -----------------------------------


async def _bare_main(port: int, bootstrap: str, fetch_max_wait_ms: int) -> None:
    import socketio
    import uvicorn

    sio = socketio.AsyncServer(
        async_mode="asgi", cors_allowed_origins="*", logger=False, engineio_logger=False
    )

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: dict[str, Any]) -> None:
        await sio.enter_room(sid, f"user:{auth['user']}")
        if auth.get("team"):
            await sio.enter_room(sid, f"team:{auth['team']}")

    # The same topics as the gateway's fan-out: the broker's fetches then behave alike.
    consumer = AIOKafkaConsumer(
        *pushable_topics(),
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="latest",
        fetch_max_wait_ms=fetch_max_wait_ms,
    )

    async def fan_out() -> None:
        async for record in consumer:
            headers = {name: value.decode() for name, value in record.headers}
            data = json.loads(record.value or b"{}")
            push = {
                "id": headers["ce_id"],
                "type": headers["ce_type"],
                "source": headers["ce_source"],
                "time": headers["ce_time"],
                "subject": headers.get("ce_subject"),
                "data": data,
            }
            if record.topic not in TOPICS:
                continue
            if record.topic == "notification.created":
                room = f"user:{data['user_id']}"
                await sio.emit(record.topic, push, room=room)
                notification = {
                    "id": data["notification_id"],
                    "type": data["type"],
                    "title": data["title"],
                    "body": data.get("body"),
                    "data": data.get("data"),
                    "createdAt": data["created_at"],
                    "readAt": None,
                }
                await sio.emit("notification", notification, room=room)
            else:
                await sio.emit(record.topic, push, room=f"team:{data['team_id']}")

    await consumer.start()
    while not consumer.assignment():
        await asyncio.sleep(0.02)
    for partition in consumer.assignment():
        await consumer.position(partition)
    task = asyncio.create_task(fan_out())
    config = uvicorn.Config(
        socketio.ASGIApp(sio),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        log_config=None,
        ws="websockets-sansio",
    )
    try:
        await uvicorn.Server(config).serve()
    finally:
        task.cancel()
        await consumer.stop()


# -- the Haunted gateway (its own process) ---------------------------------------------


async def _haunted_main() -> None:
    """What `haunted serve` runs: the gateway alone, settings from HAUNTED_* variables."""
    import uvicorn

    from haunted.logging import configure_logging
    from haunted.runtime import Haunted
    from haunted.settings import load_settings

    settings = load_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    config = uvicorn.Config(
        Haunted.build(settings, workers=()).asgi_app(),
        host=settings.host,
        port=settings.port,
        lifespan="on",
        log_config=None,
        ws="websockets-sansio",
    )
    await uvicorn.Server(config).serve()


# -- the driver ---------------------------------------------------------------------------


def progress(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


def rss_kib(pid: int) -> int:
    for entry in Path(f"/proc/{pid}/status").read_text().splitlines():
        if entry.startswith("VmRSS:"):
            return int(entry.split()[1])
    raise RuntimeError(f"no RSS for process {pid}")


@dataclass
class Figures:
    connections: int = 0
    failed: int = 0
    connect_s: float = 0.0
    rss_before_kib: int = 0
    rss_after_kib: int = 0
    user_room: dict[int, list[float]] = field(default_factory=dict)
    team: list[float] = field(default_factory=list)

    @property
    def kib_per_connection(self) -> float:
        return (self.rss_after_kib - self.rss_before_kib) / max(self.connections, 1)


@dataclass(frozen=True)
class Users:
    ids: list[str]
    tokens: list[str]
    team_id: str
    team_size: int


async def _prepare(settings: Settings, count: int, team_size: int) -> Users:
    """Users with sessions and cached roles in Redis, and a token each (no bcrypt)."""
    issuer = TokenIssuer(
        load_signing_key(settings),
        issuer=settings.auth.jwt_issuer,
        audience=settings.auth.jwt_audience,
        ttl=timedelta(hours=2),
    )
    redis = Redis.from_url(REDIS_URL)
    sessions = SessionStore(redis, 7200, roles_ttl_s=7200)
    team_id = str(uuid.uuid4())
    ids, tokens = [], []
    try:
        for index in range(count):
            user_id, session_id = str(uuid.uuid4()), str(uuid.uuid4())
            await sessions.create(session_id, user_id)
            await sessions.cache_roles(user_id, {team_id: "member"} if index < team_size else {})
            ids.append(user_id)
            tokens.append(issuer.issue(user_id, session_id)[0])
    finally:
        await redis.aclose()
    return Users(ids, tokens, team_id, team_size)


class Publisher:
    """Produces the events straight to Kafka, stamped with their send time."""

    def __init__(self, bootstrap: str) -> None:
        self._producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
        # Notification ids grow per user, as the notifications service makes them.
        self._last_ids: dict[str, str] = {}

    async def __aenter__(self) -> Publisher:
        await self._producer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._producer.stop()

    async def send(self, envelope: Envelope) -> None:
        headers = [(name, value.encode()) for name, value in envelope.headers().items()]
        await self._producer.send_and_wait(
            envelope.type, envelope.value(), key=envelope.key, headers=headers
        )

    async def notification(self, user_id: str) -> None:
        sent_at = time.time()
        now = datetime.now(UTC)
        notification_id = self._last_ids[user_id] = next_id(now, self._last_ids.get(user_id))
        event = NotificationCreated(
            notification_id=notification_id,
            user_id=user_id,
            type="bench",
            title="bench",
            data={"sent_at": sent_at},
            created_at=now,
        )
        await self.send(Envelope.wrap(event))

    async def team_broadcast(self, team_id: str) -> None:
        sent_at = time.time()
        event = SubscriptionActivated(
            team_id=team_id,
            subscription_id="sub_bench",
            plan_id="pro",
            status="active",
            current_period_end=datetime(2030, 1, 1, tzinfo=UTC),
        )
        envelope = Envelope.wrap(event)
        envelope.data["sent_at"] = sent_at  # extra fields travel: consumers ignore them
        await self.send(envelope)


async def _collect(loads: list[LoadProcess], expected: int) -> list[float]:
    latencies: list[float] = []
    deadline = time.monotonic() + WAIT_S
    while len(latencies) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        for load in loads:
            latencies += (await load.ask({"cmd": "take"}))["latencies"]
    if len(latencies) < expected:
        print(f"  (only {len(latencies)} of {expected} deliveries arrived)", file=sys.stderr)
    return latencies


async def _user_room_latency(
    publisher: Publisher, loads: list[LoadProcess], user_ids: Sequence[str], events: int
) -> list[float]:
    for _ in range(events):
        await publisher.notification(random.choice(user_ids))
        await asyncio.sleep(0.005)
    return await _collect(loads, events)


async def _measure(
    name: str,
    url: str,
    pid: int,
    users: Users,
    auths: list[dict[str, Any]],
    bootstrap: str,
    args: argparse.Namespace,
) -> Figures:
    figures = Figures()
    loads = [await LoadProcess.start() for _ in range(args.load_processes)]
    ws_url = url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    try:
        await asyncio.sleep(1.0)  # settle after start-up
        figures.rss_before_kib = rss_kib(pid)
        progress(f"{name}: connecting {len(auths)}")
        shares = [auths[index :: len(loads)] for index in range(len(loads))]
        started = time.perf_counter()
        for load, share in zip(loads, shares, strict=True):
            await load.send({"cmd": "connect", "url": ws_url, "auths": share})
        answers = [await load.answer() for load in loads]
        figures.connect_s = time.perf_counter() - started
        figures.connections = sum(a["connected"] for a in answers)
        figures.failed = sum(a["failed"] for a in answers)
        if name == "haunted":  # live (past connection_ready) before measuring latency
            deadline = time.monotonic() + WAIT_S
            while time.monotonic() < deadline:
                status = [await load.ask({"cmd": "status"}) for load in loads]
                if sum(s["ready"] for s in status) >= figures.connections:
                    break
                await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)
        figures.rss_after_kib = rss_kib(pid)
        progress(f"{name}: {figures.connections} connected in {figures.connect_s:.1f} s")

        async with Publisher(bootstrap) as publisher:
            for _ in range(20):  # warm-up, not measured
                await publisher.notification(random.choice(users.ids))
            await _collect(loads, 20)
            everyone = users.ids[: figures.connections]
            progress(f"{name}: {args.events} events to user rooms")
            figures.user_room[len(everyone)] = await _user_room_latency(
                publisher, loads, everyone, args.events
            )
            progress(f"{name}: {args.team_events} team broadcasts")
            for _ in range(args.team_events):
                await publisher.team_broadcast(users.team_id)
                await asyncio.sleep(0.05)
            figures.team = await _collect(loads, args.team_events * users.team_size)
            if figures.connections > users.team_size:
                # Load process i holds users i, i + n, i + 2n...: keeping the first k of
                # each keeps users 0 .. k * n - 1.
                keep = users.team_size // len(loads)
                for load in loads:
                    await load.ask({"cmd": "keep", "count": keep})
                kept_ids = users.ids[: keep * len(loads)]
                progress(f"{name}: {args.events} events to user rooms, {len(kept_ids)} connected")
                await asyncio.sleep(1.0)
                figures.user_room[len(kept_ids)] = await _user_room_latency(
                    publisher, loads, kept_ids, args.events
                )
    finally:
        for load in loads:
            await load.stop()
    return figures


async def _wait_http(url: str, path: str, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + WAIT_S
    async with httpx.AsyncClient(base_url=url, timeout=2) as client:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise RuntimeError("the server process exited while starting")
            try:
                if (await client.get(path)).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{url} did not start")


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()


def _summary(values: list[float]) -> str:
    if not values:
        return "no deliveries"
    ms = [v * 1000 for v in values]
    return f"p50 {percentile(ms, 50):7.2f} ms  p99 {percentile(ms, 99):7.2f} ms  (n={len(ms)})"


def _ratio(haunted: list[float], bare: list[float], q: int) -> str:
    if not haunted or not bare:
        return "-"
    return f"{percentile(haunted, q) / percentile(bare, q):.2f}x"


async def run(args: argparse.Namespace) -> tuple[Figures, Figures]:
    with tempfile.TemporaryDirectory(prefix="haunted-bench-rt-") as directory:
        redis = Redis.from_url(REDIS_URL)
        try:
            await redis.flushdb()
        except OSError as error:
            raise SystemExit(f"Redis is needed at {REDIS_URL}: {error}") from None
        async with embedded_broker() as tansu:
            database_url = f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
            await migrations.upgrade(database_url)
            env = {
                "HAUNTED_ENV": "test",
                "HAUNTED_DATA_DIR": str(Path(directory) / ".haunted"),
                "HAUNTED_DATABASE_URL": database_url,
                "HAUNTED_REDIS_URL": REDIS_URL,
                "HAUNTED_KAFKA_BOOTSTRAP": tansu.bootstrap_servers,
                "HAUNTED_LOG_LEVEL": "WARNING",
                "HAUNTED_LOG_JSON": "false",
                "HAUNTED_SOCKETIO_MAX_CONNECTIONS": str(args.connections + 100),
                "HAUNTED_KAFKA_SESSION_TIMEOUT_MS": "1000",
                "HAUNTED_KAFKA_HEARTBEAT_INTERVAL_MS": "200",
            }
            settings = Settings(
                _env_file=None,
                env="test",
                data_dir=Path(directory) / ".haunted",
            )
            users = await _prepare(settings, args.connections, args.team)

            port = free_port()
            env["HAUNTED_PORT"] = str(port)
            server = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.realtime", "haunted", env={**os.environ, **env}
            )
            try:
                url = f"http://127.0.0.1:{port}"
                await _wait_http(url, "/healthz", server)
                haunted = await _measure(
                    "haunted",
                    url,
                    server.pid,
                    users,
                    [{"token": token} for token in users.tokens],
                    tansu.bootstrap_servers,
                    args,
                )
            finally:
                await _stop(server)

            port = free_port()
            bare_server = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.realtime",
                "bare",
                str(port),
                tansu.bootstrap_servers,
                str(settings.realtime.fanout_fetch_max_wait_ms),
            )
            try:
                url = f"http://127.0.0.1:{port}"
                await _wait_http(url, "/socket.io/?EIO=4&transport=polling", bare_server)
                bare = await _measure(
                    "bare",
                    url,
                    bare_server.pid,
                    users,
                    [
                        {"user": user_id, "team": users.team_id if i < args.team else None}
                        for i, user_id in enumerate(users.ids)
                    ],
                    tansu.bootstrap_servers,
                    args,
                )
            finally:
                await _stop(bare_server)
        await redis.flushdb()
        await redis.aclose()
    return haunted, bare


def report(args: argparse.Namespace, haunted: Figures, bare: Figures) -> None:
    heading(
        f"realtime: {args.connections} Socket.IO connections (websocket), "
        f"{args.load_processes} load processes"
    )
    for name, figures in (("haunted", haunted), ("bare python-socketio", bare)):
        print(f"  {name}")
        line("connected (failed)", f"{figures.connections} ({figures.failed})")
        line("time to connect them all", f"{figures.connect_s:.2f} s")
        line(
            "RSS before / after",
            f"{figures.rss_before_kib / 1024:.1f} MiB / {figures.rss_after_kib / 1024:.1f} MiB",
        )
        line("memory per connection", f"{figures.kib_per_connection:.1f} KiB")
        for clients, values in sorted(figures.user_room.items()):
            line(f"user room, {clients} clients", _summary(values))
        line(f"team room of {args.team}", _summary(figures.team))
    print("  haunted / bare")
    line("time to connect", f"{haunted.connect_s / max(bare.connect_s, 1e-9):.2f}x")
    line(
        "memory per connection",
        f"{haunted.kib_per_connection / max(bare.kib_per_connection, 1e-9):.2f}x",
    )
    for clients in sorted(haunted.user_room):
        if clients in bare.user_room:
            ours, theirs = haunted.user_room[clients], bare.user_room[clients]
            line(
                f"user room, {clients} clients",
                f"p50 {_ratio(ours, theirs, 50)}  p99 {_ratio(ours, theirs, 99)}",
            )
    line(
        f"team room of {args.team}",
        f"p50 {_ratio(haunted.team, bare.team, 50)}  p99 {_ratio(haunted.team, bare.team, 99)}",
    )


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.realtime",
        description="Socket.IO connections, memory and fan-out latency vs bare python-socketio.",
    )
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=300, help="user-room events per phase")
    parser.add_argument("--team", type=int, default=1_000, help="members of the broadcast team")
    parser.add_argument("--team-events", type=int, default=20, help="team broadcasts")
    parser.add_argument("--load-processes", type=int, default=2)
    args = parser.parse_args(argv)
    if args.connections < 1 or args.team < 1 or args.team > args.connections:
        parser.error("need 1 <= --team <= --connections")
    if args.load_processes < 1 or args.events < 1 or args.team_events < 1:
        parser.error("--load-processes, --events and --team-events must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["load"]:
        asyncio.run(_load_main())
        return
    if argv[:1] == ["haunted"]:
        asyncio.run(_haunted_main())
        return
    if argv[:1] == ["bare"]:
        asyncio.run(_bare_main(int(argv[1]), argv[2], int(argv[3])))
        return
    args = parse(argv)
    haunted, bare = asyncio.run(run(args))
    report(args, haunted, bare)


if __name__ == "__main__":
    main()
