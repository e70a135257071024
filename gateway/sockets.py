"""Socket.IO on the gateway's port: the protocol of runtime.md."""

from __future__ import annotations

import asyncio
from typing import Any

import socketio
import structlog

from gateway.push import AUTHENTICATED_ROOM, session_room, team_room, user_room
from services.auth import AuthService
from services.errors import DomainError

log = structlog.get_logger(__name__)


def build_socketio(
    auth: AuthService, *, cors_origins: list[str] | str = "*"
) -> socketio.AsyncServer:
    sio = socketio.AsyncServer(
        async_mode="asgi", cors_allowed_origins=cors_origins, logger=False, engineio_logger=False
    )

    async def announce_when_connected(sid: str, payload: dict[str, Any]) -> None:
        # The server sends its CONNECT packet after the handler returns; an event
        # emitted before it would reach the client before the connection does.
        for _ in range(200):
            if sio.manager.is_connected(sid, "/"):
                await sio.emit("connection_ready", payload, to=sid)
                return
            await asyncio.sleep(0.005)

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth_data: Any = None) -> None:
        token = auth_data.get("token") if isinstance(auth_data, dict) else None
        if not isinstance(token, str) or not token:
            raise socketio.exceptions.ConnectionRefusedError("unauthorized")
        try:
            principal = await auth.authenticate(token)
        except DomainError as error:
            raise socketio.exceptions.ConnectionRefusedError("unauthorized") from error
        rooms = [user_room(principal.user_id), *(team_room(t) for t in principal.teams)]
        for room in (*rooms, session_room(principal.session_id), AUTHENTICATED_ROOM):
            await sio.enter_room(sid, room)
        await sio.save_session(
            sid, {"user_id": principal.user_id, "session_id": principal.session_id}
        )
        sio.start_background_task(
            announce_when_connected, sid, {"userId": principal.user_id, "rooms": rooms}
        )

    return sio
