"""Socket.IO on the gateway's port: the protocol of runtime.md.

Connect with `auth: {token, since?}`. Refusals arrive as `connect_error`:
`unauthorized` for a bad, expired or revoked token; a sentence naming the
problem for a bad `since` or a full server. The connection's life after that
(rooms, catch-up, live events, revocation, slow clients) is in gateway/push.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import socketio
import structlog

from gateway.push import REFUSED, PushHub
from services.auth import AuthService
from services.errors import DomainError
from services.notifications import is_notification_id

log = structlog.get_logger(__name__)

UNAUTHORIZED = "unauthorized"
BAD_SINCE = "since must be the id of a notification"


def socketio_server(*, cors_origins: Sequence[str] = ()) -> socketio.AsyncServer:
    """A handshake with an Origin header from outside `cors_origins` (the one
    allowlist, HAUNTED_CORS_ORIGINS) is refused; one without an Origin (not a
    browser) is not. An empty allowlist means the server's own origin only."""
    return socketio.AsyncServer(
        async_mode="asgi",
        # None is python-engineio's same-origin-only; an empty list would turn the check off.
        cors_allowed_origins=list(cors_origins) or None,
        logger=False,
        engineio_logger=False,
    )


def _refuse(reason: str, message: str) -> socketio.exceptions.ConnectionRefusedError:
    REFUSED.labels(reason).inc()
    return socketio.exceptions.ConnectionRefusedError(message)


def build_socketio(auth: AuthService, hub: PushHub) -> socketio.AsyncServer:
    """Registers the protocol's handlers on the hub's server and returns it."""
    sio = hub.sio

    def full() -> socketio.exceptions.ConnectionRefusedError:
        return _refuse(
            "limit",
            f"server full: this gateway holds its limit of {hub.limits.max_connections} "
            "connections; retry later or connect to another gateway",
        )

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth_data: Any = None) -> None:
        if hub.full:
            raise full()
        data = auth_data if isinstance(auth_data, dict) else {}
        token, since = data.get("token"), data.get("since")
        if not isinstance(token, str) or not token:
            raise _refuse("unauthorized", UNAUTHORIZED)
        if since is not None and not is_notification_id(since):
            raise _refuse("since", BAD_SINCE)
        try:
            principal = await auth.authenticate(token)
        except DomainError as error:
            raise _refuse("unauthorized", UNAUTHORIZED) from error
        if hub.full:  # others connected while this one authenticated
            raise full()
        await hub.open(sid, principal, since)

    @sio.event
    async def disconnect(sid: str, reason: Any = None) -> None:
        await hub.close(sid)

    return sio
