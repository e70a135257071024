"""Subscriptions: the events a caller may see, fed by this process's fan-out consumer.

A subscription lasts until the client completes it, or until the caller's
session ends (logout, revocation): then the whole WebSocket closes with 4403.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import Any

from ariadne import SchemaBindable, SubscriptionType
from graphql import GraphQLResolveInfo
from starlette.websockets import WebSocket

from gateway.push import PushHub, check_pushable
from gateway.resolvers.common import caller
from schemas import NotificationCreated
from services.notifications import NotificationView
from services.principal import Principal

SESSION_ENDED = 4403


async def _close_if_session_ended(
    hub: PushHub, principal: Principal, info: GraphQLResolveInfo
) -> None:
    if not hub.session_ended(principal.session_id):
        return  # the hub dropped a subscriber too far behind: this operation completes
    websocket = info.context.get("request")
    if isinstance(websocket, WebSocket):
        with contextlib.suppress(Exception):
            await websocket.close(code=SESSION_ENDED, reason="session ended")
        # The closing connection cancels its operations, this one included.
        await asyncio.Future()


def bindables(hub: PushHub) -> list[SchemaBindable]:
    subscription = SubscriptionType()

    async def events_stream(
        principal: Principal, types: list[str] | None, info: GraphQLResolveInfo
    ) -> AsyncGenerator[dict[str, Any], None]:
        async for envelope in hub.listen(principal, types):
            yield envelope.to_push()
        await _close_if_session_ended(hub, principal, info)

    @subscription.source("events")
    def events_source(
        _: None, info: GraphQLResolveInfo, types: list[str] | None = None
    ) -> AsyncGenerator[dict[str, Any], None]:
        # Checked before the stream is returned: the client gets an `error` message
        # (BAD_USER_INPUT) instead of a subscription that never fires.
        principal = caller(info)
        if types is not None:
            check_pushable(types)
        return events_stream(principal, types, info)

    @subscription.field("events")
    def events_field(event: dict[str, Any], info: GraphQLResolveInfo, **_: Any) -> dict[str, Any]:
        return event

    @subscription.source("notifications")
    async def notifications_source(
        _: None, info: GraphQLResolveInfo
    ) -> AsyncGenerator[NotificationView, None]:
        principal = caller(info)
        async for envelope in hub.listen(principal, ["notification.created"]):
            event = envelope.decode()
            if isinstance(event, NotificationCreated):
                yield NotificationView(
                    event.notification_id,
                    event.type,
                    event.title,
                    event.body,
                    event.data,
                    event.created_at,
                    None,
                )
        await _close_if_session_ended(hub, principal, info)

    @subscription.field("notifications")
    def notifications_field(item: NotificationView, info: GraphQLResolveInfo) -> NotificationView:
        return item

    return [subscription]
