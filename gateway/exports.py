"""`GET /exports/<id>?exp=...&sig=...`: the archive an `exportMyData` link names, streamed.

A changed, made-up or another signed-in user's link is 403, an expired one 410: a
short plain answer that says nothing about the export or its user.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse

from services.errors import DomainError, Unauthenticated
from services.exports import DataExports, LinkExpired, LinkRefused
from services.exports.service import PATH
from services.principal import Principal

log = structlog.get_logger(__name__)

Authenticator = Callable[[str], Awaitable[Principal]]


def export_router(exports: DataExports, authenticate: Authenticator) -> APIRouter:
    router = APIRouter()

    @router.get(PATH + "/{export_id}")
    async def download(request: Request, export_id: str) -> Response:
        bearer: Principal | None = None
        header = request.headers.get("authorization")
        no_store = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
        try:
            if header:
                scheme, _, token = header.partition(" ")
                if scheme.lower() != "bearer" or not token.strip():
                    raise Unauthenticated("Authorization must be 'Bearer <token>'")
                bearer = await authenticate(token.strip())
            owner = await exports.redeem(
                export_id,
                request.query_params.get("exp", ""),
                request.query_params.get("sig", ""),
                bearer,
            )
            body = await exports.archive(owner, owner.user_id)
        except (LinkRefused, Unauthenticated) as error:
            return PlainTextResponse(error.message + "\n", status_code=403, headers=no_store)
        except LinkExpired as error:
            return PlainTextResponse(error.message + "\n", status_code=410, headers=no_store)
        except DomainError as error:  # the user is gone (NOT_FOUND): nothing to export
            log.info("data export refused", code=error.code)
            return PlainTextResponse("this export link is not valid\n", status_code=403)
        return StreamingResponse(
            body,
            media_type="application/json",
            headers={
                **no_store,
                "Content-Disposition": 'attachment; filename="haunted-export.json"',
            },
        )

    return router
