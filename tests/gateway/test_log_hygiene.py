"""The logs of a whole session, as production writes them (JSON at INFO), hold no
email, password, token or key: registration, a wrong and a right password, a
refresh, an API key, a Socket.IO connection, a subscription and a logout."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import socketio

from haunted.logging import configure_logging
from haunted.settings import Settings
from tests.conftest import LOGIN, PASSWORD, eventually, register, serve
from tests.gateway.test_walking_skeleton import EVENTS_SUBSCRIPTION, graphql_ws
from tests.haunted import logging_restored

REFRESH = "mutation($r: String!) { refreshToken(refreshToken: $r) { token refreshToken } }"
CREATE_KEY = 'mutation { createApiKey(name: "ci", permissions: ["analytics:read"]) { key } }'


@pytest.fixture
def production_logs(tmp_path: Path) -> Iterator[Path]:
    """JSON lines at INFO, as production writes them, into a file the test reads."""
    path = tmp_path / "haunted.log"
    with logging_restored(), path.open("w") as sink:
        configure_logging("INFO", json=True, stream=sink)
        yield path


async def test_an_end_to_end_session_logs_no_secret_and_no_email(
    production_logs: Path, settings: Settings
) -> None:
    async with serve(settings) as server:
        registered = await register(server)
        email, token = registered["user"]["email"], registered["token"]
        refresh_token = registered["refreshToken"]
        wrong = await server.graphql(LOGIN, {"email": email, "password": "wrong " + PASSWORD})
        assert wrong["errors"]
        login = await server.graphql(LOGIN, {"email": email, "password": PASSWORD})
        assert "errors" not in login, login
        refreshed = await server.graphql(REFRESH, {"r": refresh_token})
        assert "errors" not in refreshed, refreshed
        created = await server.graphql(CREATE_KEY, token=token)
        assert "errors" not in created, created
        api_key = created["data"]["createApiKey"]["key"]
        assert "errors" not in await server.graphql("{ me { id } }", token=api_key)

        sio = socketio.AsyncClient(reconnection=False)
        await sio.connect(
            server.url, auth={"token": token}, transports=["websocket"], wait_timeout=10
        )
        ws = await graphql_ws(server, token)
        await ws.send(
            json.dumps({"id": "1", "type": "subscribe", "payload": {"query": EVENTS_SUBSCRIPTION}})
        )
        await eventually(lambda: _listening(server))
        await ws.send(json.dumps({"id": "1", "type": "complete"}))
        await asyncio.sleep(0)  # the completion is handled before the socket closes
        await ws.close()
        await sio.disconnect()
        logout = await server.graphql("mutation { logout }", token=token)
        assert logout["data"]["logout"] is True

        # A later positive marker: the logout's own access line has been written.
        async def logged_out() -> str | None:
            for handler in logging.getLogger().handlers:
                handler.flush()
            whole = production_logs.read_text()
            lines = (line for line in whole.splitlines() if line.startswith("{"))
            return (
                whole
                if any(json.loads(line).get("event") == "user.logged_out" for line in lines)
                else None
            )

        logs = await eventually(logged_out)

    records = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert any(r.get("event") == "request" and r.get("status") == 200 for r in records)
    assert any(r.get("logger") == "haunted.audit" for r in records)
    secrets = {
        "email": email,
        "password": PASSWORD,
        "access token": token,
        "refresh token": refresh_token,
        "new access token": refreshed["data"]["refreshToken"]["token"],
        "api key": api_key,
    }
    for what, secret in secrets.items():
        assert secret not in logs, f"the {what} is in the logs"
        assert secret.lower() not in logs.lower(), f"the {what} is in the logs"


async def _listening(server: object) -> bool:
    return server.haunted.hub.listener_count > 0  # type: ignore[attr-defined]
