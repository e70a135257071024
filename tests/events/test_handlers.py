"""Handlers registered by event class: topics follow, each event reaches its own."""

from __future__ import annotations

from typing import Any

import pytest

from events.envelope import Envelope
from events.handlers import BatchHandlers, Handlers
from schemas import TeamMemberAdded, TeamMemberRemoved, UserRegistered

ADDED = TeamMemberAdded(team_id="t1", user_id="u1", role="member")


async def test_topics_come_from_the_registered_classes_and_events_reach_their_handlers() -> None:
    handlers = Handlers("test")
    calls: list[tuple[str, str]] = []

    @handlers.on(TeamMemberAdded, TeamMemberRemoved)
    async def first(_: Any, event: Any, envelope: Envelope) -> None:
        calls.append(("first", envelope.type))

    @handlers.on(TeamMemberAdded)
    async def second(_: Any, event: Any, envelope: Envelope) -> None:
        calls.append(("second", envelope.type))

    assert handlers.topics == ("team.member_added", "team.member_removed")
    await handlers.handle(None, ADDED, Envelope.wrap(ADDED))  # type: ignore[arg-type]
    assert calls == [("first", "team.member_added"), ("second", "team.member_added")]
    target = handlers.replay_target()
    assert (target.consumer, target.topics, target.handler) == (
        "test",
        handlers.topics,
        handlers.handle,
    )


def test_a_handler_needs_an_event_class() -> None:
    with pytest.raises(ValueError, match="at least one event class"):
        Handlers("test").on()


def test_batch_handlers_topics() -> None:
    async def handler(*_: Any) -> None:
        return None

    batch = BatchHandlers.over("test", [UserRegistered, TeamMemberAdded], handler)
    assert batch.topics == ("user.registered", "team.member_added")
    assert batch.replay_target().batch_handler is handler
