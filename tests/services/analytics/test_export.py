"""AnalyticsService.export_events / export_llm_usage: a user's part of their data export."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from haunted.runtime import Haunted
from schemas import InviteCreated, PasswordResetRequested
from services.analytics import service as analytics_service
from services.errors import Forbidden
from services.principal import ExportSubject, Operator, Principal
from tests.services.analytics.data import DAY0, at, login, prompt, step
from tests.services.analytics.test_service import store


async def test_every_event_of_the_user_in_order_across_pages_and_no_one_elses(
    facades: Haunted, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(analytics_service, "EXPORT_PAGE", 2)  # page boundaries inside ties
    same = DAY0 + timedelta(hours=1)
    mine = [
        login("u1", DAY0),
        step("u1", "opened", same),
        step("u1", "clicked", same),
        step("u1", "closed", same),
        prompt("u1", same + timedelta(minutes=1), (3, 4), 0.5),
    ]
    theirs = [login("u2", same), step("u2", "opened", same), prompt("u2", same, (1, 1), 0.1)]
    await store(facades.db, mine + theirs)
    analytics = facades.services.analytics
    me = ExportSubject("u1", {})

    exported = [item async for item in analytics.export_events(Operator("test"), me)]
    expected = sorted(mine, key=lambda e: (e.time, e.id))
    assert [item.id for item in exported] == [e.id for e in expected]
    assert [c.prompt_tokens async for c in analytics.export_llm_usage(Operator("test"), me)] == [3]

    intruder = Principal("u2", "s2")
    with pytest.raises(Forbidden):
        [item async for item in analytics.export_events(intruder, me)]


async def test_sealed_fields_of_events_stay_out(facades: Haunted) -> None:
    reset = PasswordResetRequested(
        user_id="u1",
        request_id=str(uuid.uuid4()),
        expires_at=DAY0 + timedelta(hours=1),
        address_key_id="k1",
        sealed_address="c2VhbGVk",
        code_key_id="k1",
        sealed_code="Y29kZQ==",
    )
    invite = InviteCreated(
        team_id="t1",
        invite_id="i1",
        role="member",
        invited_by="u1",
        expires_at=DAY0 + timedelta(days=7),
    )
    await store(facades.db, [at(reset, DAY0), at(invite, DAY0)])
    me = ExportSubject("u1", {})
    (item,) = [i async for i in facades.services.analytics.export_events(Operator("t"), me)]
    assert item.type == "user.password_reset_requested"
    assert set(item.data) == {"user_id", "request_id", "expires_at"}
