"""gateway/sockets.py and gateway/push.py over real sockets: the Socket.IO protocol of
runtime.md (python-socketio and the official JavaScript client), recovery with
`since`, presence, revocation and the limits."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri

from gateway.push import SLOW_DISCONNECTS, Presence, RealtimeLimits
from gateway.sockets import BAD_SINCE
from haunted.keys import load_signing_key
from haunted.runtime import Haunted
from schemas import (
    FlagUpdated,
    SessionRevoked,
    SubscriptionActivated,
    TeamMemberAdded,
    TeamMemberRemoved,
    UserLocked,
    UserLoginFailed,
)
from services.auth import TokenIssuer
from tests.conftest import LOGIN, PASSWORD, Server, eventually, register
from tests.gateway.realtime import (
    Recorder,
    inbox,
    notify,
    publish,
    session_id_of,
)

NOTIFICATION_KEYS = {"id", "type", "title", "body", "data", "createdAt", "readAt"}
EVENT_KEYS = {"id", "type", "source", "time", "subject", "data"}
JS_DIR = Path(__file__).parent / "js"
ONLINE = "query($teamId: ID) { onlineMembers(teamId: $teamId) { userId connections } }"


@pytest.fixture(scope="module")
def server(shared_server: Server) -> Server:
    return shared_server


@pytest.fixture
async def clients() -> AsyncIterator[list[Recorder]]:
    """Socket.IO clients that the test opens; all closed afterwards."""
    opened: list[Recorder] = []
    yield opened
    for client in opened:
        await client.close()


def open_client(clients: list[Recorder], *, reconnection: bool = False) -> Recorder:
    client = Recorder(reconnection=reconnection)
    clients.append(client)
    return client


async def connected(
    clients: list[Recorder], server: Server, token: str, since: str | None = None
) -> Recorder:
    client = open_client(clients)
    await client.connect(server.url, {"token": token, **({"since": since} if since else {})})
    await client.wait_for("connection_ready")
    return client


def subscription_activated(team_id: str) -> SubscriptionActivated:
    return SubscriptionActivated(
        team_id=team_id,
        subscription_id=f"sub_{uuid.uuid4().hex[:8]}",
        plan_id="pro",
        status="active",
        current_period_end=datetime(2030, 1, 1, tzinfo=UTC),
    )


async def test_connection_ready_domain_events_by_audience_and_notifications(
    server: Server, clients: list[Recorder]
) -> None:
    me, other = await register(server), await register(server)
    user_id = me["user"]["id"]
    team_id = me["user"]["memberships"][0]["team"]["id"]
    client = await connected(clients, server, me["token"])
    assert client.named("connection_ready") == [
        {"userId": user_id, "rooms": [f"user:{user_id}", f"team:{team_id}"]}
    ]

    await publish(
        server.haunted,
        UserLoginFailed(user_id=user_id, reason="wrong_password", attempt=1),  # internal
        UserLocked(user_id=other["user"]["id"], locked_until=datetime.now(UTC)),  # not mine
        subscription_activated(team_id),
        FlagUpdated(flag="beta", enabled=True),
        UserLocked(user_id=user_id, locked_until=datetime(2030, 1, 2, 15, 4, tzinfo=UTC)),
    )
    await notify(server.haunted, user_id, "last", body="the end", data={"n": 1})
    # user.locked, subscription.activated (its template) and the request: topics are
    # consumed side by side, so the three may land in any order.
    notifications = {n["type"]: n for n in await client.wait_for("notification", 3)}

    names = [name for name, _ in client.events]
    assert "user.login_failed" not in names
    assert len(client.named("user.locked")) == 1
    (activated,) = client.named("subscription.activated")
    assert set(activated) == EVENT_KEYS
    assert activated["source"] == "haunted/billing"
    assert activated["subject"] == team_id
    assert activated["data"]["team_id"] == team_id
    assert [f["data"] for f in client.named("flag.updated")] == [{"flag": "beta", "enabled": True}]

    assert set(notifications) == {"user.locked", "subscription.activated", "test"}
    last = notifications["test"]
    assert set(last) == NOTIFICATION_KEYS
    assert notifications["user.locked"]["title"] == "Your account is locked"
    assert notifications["subscription.activated"]["body"] == (
        "The pro plan is active until 2030-01-01 00:00 UTC."
    )
    assert (last["type"], last["title"], last["body"], last["data"]) == (
        "test",
        "last",
        "the end",
        {"n": 1},
    )
    assert last["readAt"] is None
    assert last["createdAt"].endswith("Z")
    ids = [n["id"] for n in client.named("notification")]
    assert ids == sorted(ids)  # a user's notifications arrive in id order
    created = client.named("notification.created")
    assert [c["data"]["notification_id"] for c in created] == ids
    # Each domain event comes before the `notification` made of it.
    assert names.index("notification.created") < names.index("notification")


async def test_recovery_with_since_sends_missed_then_live_with_no_gap_or_duplicate(
    server: Server, clients: list[Recorder]
) -> None:
    me = await register(server)
    user_id = me["user"]["id"]
    first = await connected(clients, server, me["token"])
    for n in range(5):
        await notify(server.haunted, user_id, f"n{n}")
    seen = await first.wait_for("notification", 5)
    await first.close()

    for n in range(5, 15):  # missed while away
        await notify(server.haunted, user_id, f"n{n}")
    await inbox(server.haunted, user_id, 15)

    async def keep_notifying() -> None:  # and more keep coming during the catch-up
        for n in range(15, 40):
            await notify(server.haunted, user_id, f"n{n}")

    producer = asyncio.create_task(keep_notifying())
    second = await connected(clients, server, me["token"], since=seen[-1]["id"])
    await producer
    await second.wait_for("notification", 35)
    # A later marker: a duplicate of any earlier one would have come before it.
    await notify(server.haunted, user_id, "marker")
    received = await second.wait_for("notification", 36)

    assert second.titles() == [f"n{n}" for n in range(5, 40)] + ["marker"]
    ids = [n["id"] for n in second.named("notification")]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    stored = [n.id for n in await inbox(server.haunted, user_id, 41)]
    assert ids == stored[5:]
    assert received[0]["title"] == "n5"


async def test_refusals_are_connect_errors_that_say_why(
    server: Server, clients: list[Recorder]
) -> None:
    me = await register(server)
    settings = server.haunted.settings
    key = load_signing_key(settings)
    expired, _ = TokenIssuer(
        key,
        issuer=settings.auth.jwt_issuer,
        audience=settings.auth.jwt_audience,
        ttl=timedelta(seconds=-120),
    ).issue(me["user"]["id"], session_id_of(me["token"]))
    other_issuer, _ = TokenIssuer(
        key, issuer="someone-else", audience=settings.auth.jwt_audience, ttl=timedelta(minutes=5)
    ).issue(me["user"]["id"], session_id_of(me["token"]))

    for auth in (
        {},
        {"token": ""},
        {"token": 42},
        {"token": "not-a-jwt"},
        {"token": expired},
        {"token": other_issuer},
    ):
        error = await open_client(clients).try_connect(server.url, auth)
        assert error == {"message": "unauthorized"}, auth
    error = await open_client(clients).try_connect(
        server.url, {"token": me["token"], "since": "not-an-id"}
    )
    assert error == {"message": BAD_SINCE}

    # Revoked: the token of a session that logged out is refused at once.
    logout = await server.graphql("mutation { logout }", token=me["token"])
    assert logout == {"data": {"logout": True}}
    error = await open_client(clients).try_connect(server.url, {"token": me["token"]})
    assert error == {"message": "unauthorized"}


async def test_logout_and_revocation_disconnect_exactly_those_sessions(
    server: Server, clients: list[Recorder]
) -> None:
    me = await register(server)
    user_id = me["user"]["id"]
    login = await server.graphql(LOGIN, {"email": me["user"]["email"], "password": PASSWORD})
    second_token = login["data"]["login"]["token"]
    first = await connected(clients, server, me["token"])
    second = await connected(clients, server, second_token)

    assert await server.graphql("mutation { logout }", token=me["token"]) == {
        "data": {"logout": True}
    }
    await eventually(lambda: _true(bool(first.disconnects)))
    assert not first.sio.connected
    await notify(server.haunted, user_id, "still here")
    assert [n["title"] for n in await second.wait_for("notification")] == ["still here"]
    assert second.sio.connected

    await publish(
        server.haunted, SessionRevoked(user_id=user_id, session_id=None, reason="password_reset")
    )
    await eventually(lambda: _true(bool(second.disconnects)))
    assert first.titles() == []


async def test_a_removed_member_leaves_the_team_room_and_its_presence(
    server: Server, clients: list[Recorder]
) -> None:
    owner, joiner = await register(server), await register(server)
    team_id = owner["user"]["memberships"][0]["team"]["id"]
    joiner_id = joiner["user"]["id"]
    owner_client = await connected(clients, server, owner["token"])
    joiner_client = await connected(clients, server, joiner["token"])

    await publish(
        server.haunted, TeamMemberAdded(team_id=team_id, user_id=joiner_id, role="member")
    )

    async def joined() -> bool:  # (their own team's member_added may come too)
        return any(
            e["data"]["team_id"] == team_id for e in joiner_client.named("team.member_added")
        )

    await eventually(joined)
    await publish(server.haunted, subscription_activated(team_id))
    await joiner_client.wait_for("subscription.activated")

    async def online() -> list[dict[str, Any]]:
        body = await server.graphql(ONLINE, {"teamId": team_id}, token=owner["token"])
        assert "errors" not in body, body
        members: list[dict[str, Any]] = body["data"]["onlineMembers"]
        return members

    assert {m["userId"] for m in await online()} == {owner["user"]["id"], joiner_id}

    await publish(server.haunted, TeamMemberRemoved(team_id=team_id, user_id=joiner_id))
    await joiner_client.wait_for("team.member_removed")  # told of their own removal
    await publish(server.haunted, subscription_activated(team_id))
    await owner_client.wait_for("subscription.activated", 2)
    # A later marker for the joiner: the team's event would have reached it first.
    await notify(server.haunted, joiner_id, "marker")
    await joiner_client.wait_for("notification")
    assert len(joiner_client.named("subscription.activated")) == 1
    assert [m["userId"] for m in await online()] == [owner["user"]["id"]]
    assert joiner_client.sio.connected  # removed from the team, not disconnected


async def test_online_members_needs_team_read_and_counts_connections(
    server: Server, clients: list[Recorder]
) -> None:
    me, stranger = await register(server), await register(server)
    team_id = me["user"]["memberships"][0]["team"]["id"]
    await connected(clients, server, me["token"])
    await connected(clients, server, me["token"])

    body = await server.graphql(ONLINE, token=me["token"])
    assert body == {"data": {"onlineMembers": [{"userId": me["user"]["id"], "connections": 2}]}}
    refused = await server.graphql(ONLINE, {"teamId": team_id}, token=stranger["token"])
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    for client in clients:
        await client.close()

    async def nobody() -> bool:  # once the server has seen the disconnections
        body = await server.graphql(ONLINE, token=me["token"])
        return body == {"data": {"onlineMembers": []}}

    await eventually(nobody)


async def test_presence_of_a_process_that_stops_renewing_is_gone_after_the_ttl(
    server: Server,
) -> None:
    presence = Presence(server.haunted.redis, ttl_s=0.5, prefix=f"test:{uuid.uuid4().hex}:")
    await presence.add([("conn-1", "user-1", ["team-1"]), ("conn-2", "user-2", ["team-1"])])
    await presence.add([("conn-3", "user-1", ["team-1"])])
    online = await presence.online("team-1")
    assert [(m.user_id, m.connections) for m in online] == [("user-1", 2), ("user-2", 1)]
    await presence.remove("conn-2", "user-2", ["team-1"])
    assert [m.user_id for m in await presence.online("team-1")] == ["user-1"]

    # Nobody renews (the process died): no ghost past the TTL.
    async def gone() -> bool:
        return await presence.online("team-1") == []

    await eventually(gone, timeout_s=5)


async def test_a_redelivered_request_makes_one_notification(
    server: Server, clients: list[Recorder]
) -> None:
    me = await register(server)
    user_id = me["user"]["id"]
    client = await connected(clients, server, me["token"])
    envelope = await notify(server.haunted, user_id, "once")
    await client.wait_for("notification")

    await server.haunted.producer.publish(envelope)  # the broker delivers it again
    await notify(server.haunted, user_id, "after")  # same key: handled after the duplicate
    await client.wait_for("notification", 2)  # the marker: a second "once" came before it

    assert client.titles() == ["once", "after"]
    assert [n.title for n in await inbox(server.haunted, user_id, 2)] == ["once", "after"]


def test_the_limits_come_from_settings(server: Server) -> None:
    limits = Haunted.build(
        server.haunted.settings.model_copy(
            update={
                "socketio_max_connections": 7,
                "socketio_max_queued_packets": 70,
                "subscription_max_queued_events": 77,
            }
        )
    ).hub.limits
    assert (limits.max_connections, limits.max_queued_packets, limits.subscription_queue) == (
        7,
        70,
        77,
    )
    assert RealtimeLimits().max_connections == 10_000


@contextmanager
def limits(server: Server, **values: Any) -> Iterator[None]:
    """The running hub with other limits, for one test."""
    hub = server.haunted.hub
    before = hub.limits
    hub.limits = dataclasses.replace(before, **values)
    try:
        yield
    finally:
        hub.limits = before


async def test_connections_past_the_limit_are_refused_with_a_clear_message(
    server: Server, clients: list[Recorder]
) -> None:
    me = await register(server)
    hub = server.haunted.hub
    await eventually(lambda: _true(hub.connection_count == 0))  # earlier tests' clients
    with limits(server, max_connections=2):
        first = await connected(clients, server, me["token"])
        await connected(clients, server, me["token"])
        error = await open_client(clients).try_connect(server.url, {"token": me["token"]})
        assert error == {
            "message": "server full: this gateway holds its limit of 2 connections; "
            "retry later or connect to another gateway"
        }

        await first.close()
        await eventually(lambda: _true(hub.connection_count == 1))
        await connected(clients, server, me["token"])
        assert hub.connection_count == 2


class StuckClient:
    """A raw Engine.IO websocket client with a tiny receive buffer: it connects to the
    default namespace, then reads nothing, like a stuck or very slow client."""

    def __init__(self, server: Server) -> None:
        self.url = server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
        self.protocol = ClientProtocol(parse_uri(self.url))
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.setblocking(False)

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.sock_sendall(self.sock, b"".join(self.protocol.data_to_send()))

    async def _next_text(self) -> str:
        loop = asyncio.get_running_loop()
        while True:
            for event in self.protocol.events_received():
                if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                    return bytes(event.data).decode()
            data = await asyncio.wait_for(loop.sock_recv(self.sock, 4096), 5)
            assert data, "the server closed the connection"
            self.protocol.receive_data(data)

    async def connect(self, token: str) -> str:
        """Opens the connection; returns its Socket.IO sid."""
        loop = asyncio.get_running_loop()
        host, port = self.url.split("/")[2].split(":")
        await loop.sock_connect(self.sock, (host, int(port)))
        self.protocol.send_request(self.protocol.connect())
        await self._flush()
        opening = await self._next_text()  # the handshake's response comes first
        assert opening.startswith("0"), opening
        self.protocol.send_text(("40" + json.dumps({"token": token})).encode())
        await self._flush()
        reply = await self._next_text()
        assert reply.startswith("40"), reply
        sid: str = json.loads(reply[2:])["sid"]
        return sid

    def abort(self) -> None:
        self.sock.close()


async def test_a_client_that_stops_reading_is_dropped_and_recovers_with_since(
    server: Server, clients: list[Recorder]
) -> None:
    me = await register(server)
    user_id = me["user"]["id"]
    reader = await connected(clients, server, me["token"])
    await notify(server.haunted, user_id, "before")
    (before,) = await reader.wait_for("notification")
    dropped_before = SLOW_DISCONNECTS._value.get()
    body = "x" * 250_000
    with limits(server, max_queued_packets=10):
        stuck = StuckClient(server)
        sid = await stuck.connect(me["token"])
        try:
            sent = 0
            while server.haunted.sio.manager.is_connected(sid, "/"):
                assert sent < 300, "the stuck client was never dropped"
                await notify(server.haunted, user_id, f"n{sent}", body=body)
                sent += 1
                await reader.wait_for("notification", sent + 1)  # the others keep getting theirs
        finally:
            stuck.abort()
    assert SLOW_DISCONNECTS._value.get() == dropped_before + 1
    assert reader.titles() == ["before", *(f"n{n}" for n in range(sent))]

    # Reconnecting with the last id it had, it gets everything it missed, in order.
    recovered = await connected(clients, server, me["token"], since=before["id"])
    await recovered.wait_for("notification", sent)
    assert recovered.titles() == [f"n{n}" for n in range(sent)]
    assert all(n["body"] == body for n in recovered.named("notification"))


@pytest.fixture(scope="session")
def socketio_js() -> Path:
    """The official socket.io-client v4, installed once into tests/gateway/js/node_modules."""
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "Node.js and npm are needed for the JavaScript client test"
    if not (JS_DIR / "node_modules" / "socket.io-client").is_dir():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=JS_DIR,
            check=True,
            timeout=300,
        )
    return JS_DIR / "client.mjs"


class JsClient:
    """client.mjs under Node: what it prints, parsed, and the commands it obeys."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[dict[str, Any]] = []
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, script: Path, url: str, token: str, since: str | None = None) -> JsClient:
        process = await asyncio.create_subprocess_exec(
            "node",
            str(script),
            url,
            token,
            *([since] if since else []),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            self.lines.append(json.loads(line))

    def named(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["event"] == name]

    async def wait_for(self, name: str, count: int = 1) -> None:
        async def arrived() -> bool:
            return len(self.named(name)) >= count

        await eventually(arrived, timeout_s=20)

    async def command(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command.encode() + b"\n")
        await self.process.stdin.drain()

    async def stop(self) -> None:
        if self.process.returncode is None:
            await self.command("exit")
            await asyncio.wait_for(self.process.wait(), 10)
        await self._reader


def sequence(lines: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """Each line as (event, what identifies it), for comparing whole sequences."""
    result: list[tuple[str, ...]] = []
    for line in lines:
        data: dict[str, Any] = line.get("data") or {}
        if line["event"] in ("notification", "notification.created"):
            title = data["title"] if line["event"] == "notification" else data["data"]["title"]
            result.append((line["event"], title))
        elif line["event"] == "disconnect":
            result.append(("disconnect", line["reason"]))
        elif line["event"] == "connect_error":
            result.append(("connect_error", line["message"]))
        else:
            result.append((line["event"],))
    return result


async def test_the_javascript_client_connects_recovers_and_receives_live(
    server: Server, socketio_js: Path
) -> None:
    me = await register(server)
    user_id = me["user"]["id"]
    for n in range(3):
        await notify(server.haunted, user_id, f"n{n}")
    stored = await inbox(server.haunted, user_id, 3)

    client = await JsClient.start(socketio_js, server.url, me["token"], since=stored[0].id)
    try:
        await client.wait_for("notification", 2)
        await notify(server.haunted, user_id, "n3")
        await client.wait_for("notification", 3)
        await client.command("disconnect")
        await client.wait_for("disconnect")
        for n in (4, 5):  # missed while away
            await notify(server.haunted, user_id, f"n{n}")
        await inbox(server.haunted, user_id, 6)
        await client.command("connect")  # with since = n3, the last it got
        await client.wait_for("notification", 5)
        await asyncio.sleep(0.3)  # anything extra would be a duplicate
        received = list(client.lines)
    finally:
        await client.stop()

    assert sequence(received) == [
        ("connect",),
        ("connection_ready",),
        ("notification", "n1"),
        ("notification", "n2"),
        ("notification.created", "n3"),
        ("notification", "n3"),
        ("disconnect", "io client disconnect"),
        ("connect",),
        ("connection_ready",),
        ("notification", "n4"),
        ("notification", "n5"),
    ]
    ready = client.named("connection_ready")[0]["data"]
    team_id = me["user"]["memberships"][0]["team"]["id"]
    assert ready == {"userId": user_id, "rooms": [f"user:{user_id}", f"team:{team_id}"]}
    assert set(client.named("notification")[0]["data"]) == NOTIFICATION_KEYS
    assert set(client.named("notification.created")[0]["data"]) == EVENT_KEYS


async def test_the_javascript_client_is_refused_with_unauthorized(
    server: Server, socketio_js: Path
) -> None:
    client = await JsClient.start(socketio_js, server.url, "not-a-jwt")
    try:
        await client.wait_for("connect_error")
        await asyncio.sleep(0.3)  # refused by the server: no retry
        received = list(client.lines)
    finally:
        await client.stop()
    assert sequence(received) == [("connect_error", "unauthorized")]


async def _true(value: bool) -> bool:
    return value
