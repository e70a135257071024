"""One ASGI app on one port: GraphQL, Socket.IO, health, metrics and keys."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import socketio
import structlog
from ariadne.asgi import GraphQL
from ariadne.asgi.handlers import GraphQLHTTPHandler, GraphQLTransportWSHandler
from ariadne.exceptions import HttpError
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.websockets import WebSocket

from gateway.errors import format_error
from gateway.graphql import Services, build_schema
from gateway.push import PushHub
from services.errors import DomainError, Unauthenticated

log = structlog.get_logger(__name__)

ReadinessCheck = Callable[[], Awaitable[object]]


def _graphql_error(message: str, code: str, status: int) -> JSONResponse:
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": code}}]}, status_code=status
    )


class _HTTPHandler(GraphQLHTTPHandler):
    """Ariadne's handler, with refusals that are GraphQL errors rather than plain text."""

    def __init__(self, max_body_bytes: int) -> None:
        super().__init__()
        self._max_body_bytes = max_body_bytes

    async def graphql_http_server(self, request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and (
            not declared.isdigit() or int(declared) > self._max_body_bytes
        ):
            return _graphql_error(
                f"request body exceeds {self._max_body_bytes} bytes", "BAD_USER_INPUT", 413
            )
        body = await request.body()
        if len(body) > self._max_body_bytes:
            return _graphql_error(
                f"request body exceeds {self._max_body_bytes} bytes", "BAD_USER_INPUT", 413
            )
        try:
            data = await self.extract_data_from_request(request)
        except HttpError as error:
            return _graphql_error(error.message or "bad request", "BAD_USER_INPUT", 400)
        success, result = await self.execute_graphql_query(request, data)
        return await self.create_json_response(request, result, success)


def _bearer(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def create_app(
    services: Services,
    hub: PushHub,
    sio: socketio.AsyncServer,
    *,
    readiness: Mapping[str, ReadinessCheck],
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
    max_body_bytes: int = 1_000_000,
    debug: bool = False,
) -> socketio.ASGIApp:
    app = FastAPI(
        title="Haunted", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )

    async def context_for(request: Request | WebSocket, _data: Any = None) -> dict[str, Any]:
        if isinstance(request, WebSocket):
            return {"request": request, "principal": request.scope.get("haunted.principal")}
        context: dict[str, Any] = {"request": request, "principal": None, "auth_error": None}
        header = request.headers.get("authorization")
        if header:
            token = _bearer(header)
            try:
                if token is None:
                    raise Unauthenticated("Authorization must be 'Bearer <token>'")
                context["principal"] = await services.auth.authenticate(token)
            except Unauthenticated as error:
                context["auth_error"] = error
        return context

    async def on_ws_connect(websocket: WebSocket, payload: Any) -> None:
        token = _bearer(payload.get("authorization")) if isinstance(payload, dict) else None
        try:
            if token is None:
                raise Unauthenticated("connection_init must carry authorization")
            websocket.scope["haunted.principal"] = await services.auth.authenticate(token)
        except DomainError:
            await websocket.close(code=4403, reason="Forbidden")
            raise

    graphql = GraphQL(
        build_schema(services, hub),
        context_value=context_for,
        error_formatter=format_error,
        debug=debug,
        # Expected errors are answered, unexpected ones logged by format_error: no double log.
        logger="haunted.graphql.ariadne",
        http_handler=_HTTPHandler(max_body_bytes),
        websocket_handler=GraphQLTransportWSHandler(on_connect=on_ws_connect),
    )
    app.add_route("/graphql", graphql.handle_request, methods=["GET", "POST", "OPTIONS"])
    app.router.add_websocket_route("/graphql", graphql.handle_websocket)  # type: ignore[arg-type]

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        names = list(readiness)
        results = await asyncio.gather(
            *(asyncio.wait_for(readiness[name](), 2.0) for name in names), return_exceptions=True
        )
        down = {
            name: repr(result)
            for name, result in zip(names, results, strict=True)
            if isinstance(result, BaseException)
        }
        if down:
            log.warning("not ready", down=sorted(down))
            return JSONResponse({"status": "unavailable", "down": sorted(down)}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/.well-known/jwks.json")
    async def jwks() -> dict[str, Any]:
        return services.auth.jwks()

    return socketio.ASGIApp(sio, other_asgi_app=app, socketio_path="socket.io")
