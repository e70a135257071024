"""The webhooks facade: URL checks (SSRF), permissions, and what a refusal leaves."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import func, select

from events.outbox import OutboxRecord
from haunted.runtime import Haunted
from services.errors import DomainError
from services.webhooks.models import WebhookEndpoint
from tests.services.webhooks.conftest import PROD_POLICY, FakeClock, owner_of, webhooks_service

PROD_REFUSED = [
    "http://example.com/hook",  # https only
    "https://127.0.0.1/hook",
    "https://localhost/hook",  # a name that resolves to loopback
    "https://10.1.2.3/hook",
    "https://192.168.0.1/hook",
    "https://169.254.169.254/latest/meta-data",  # link-local: cloud metadata
    "https://[::1]/hook",
    "https://[fe80::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",  # loopback written as IPv6
    "https://0.0.0.0/hook",
    "https://user:secret@example.com/hook",
    "ftp://example.com/hook",
    "not a url",
    "https:///no-host",
    "https://example.com:99999/hook",
    "https://" + "a" * 2050 + ".com/",
]


async def changes(app: Haunted) -> list[tuple[str, str]]:
    """The webhook.endpoint_changed events in the outbox: (endpoint id, change)."""
    async with app.db.read() as session:
        records = await session.scalars(
            select(OutboxRecord)
            .where(OutboxRecord.topic == "webhook.endpoint_changed")
            .order_by(OutboxRecord.seq)
        )
        return [
            (data["endpoint_id"], data["change"])
            for data in (json.loads(record.value) for record in records.all())
        ]


async def endpoint_count(app: Haunted) -> int:
    async with app.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(WebhookEndpoint)) or 0)


@pytest.mark.parametrize("url", PROD_REFUSED)
async def test_prod_refuses_unsafe_urls_and_writes_nothing(facades: Haunted, url: str) -> None:
    service = webhooks_service(facades.db, FakeClock(), PROD_POLICY)
    team = str(uuid.uuid4())
    with pytest.raises(DomainError) as caught:
        await service.create_endpoint(owner_of(team), url, ["team.created"], team_id=team)
    assert caught.value.code == "BAD_USER_INPUT"
    assert await endpoint_count(facades) == 0
    assert await changes(facades) == []


@pytest.mark.parametrize(
    "types", [[], ["no.such.type"], ["user.logged_in"], ["notification.requested"]]
)
async def test_only_events_a_team_may_see_can_be_subscribed(
    facades: Haunted, types: list[str]
) -> None:
    """User and internal events never leave: a team endpoint gets team and public ones."""
    service = webhooks_service(facades.db, FakeClock())
    team = str(uuid.uuid4())
    with pytest.raises(DomainError) as caught:
        await service.create_endpoint(owner_of(team), "http://127.0.0.1:9/h", types, team_id=team)
    assert caught.value.code == "BAD_USER_INPUT"
    assert await endpoint_count(facades) == 0


async def test_only_owners_and_admins_of_the_team_manage_its_endpoints(facades: Haunted) -> None:
    service = webhooks_service(facades.db, FakeClock())
    team, other = str(uuid.uuid4()), str(uuid.uuid4())
    url = "http://127.0.0.1:9/hook"
    created = await service.create_endpoint(owner_of(team), url, ["team.created"], team_id=team)
    admin = await service.create_endpoint(
        owner_of(team, "admin"), url, ["team.created"], team_id=team
    )
    assert created.secret and admin.secret and created.secret != admin.secret
    listed = await service.endpoints(owner_of(team), team_id=team)
    assert {each.id for each in listed} == {created.id, admin.id}
    before = await changes(facades)
    assert before == [(created.id, "created"), (admin.id, "created")]
    assert all(each.secret is None for each in listed)  # shown on creation only

    for role in ("member", "viewer"):
        principal = owner_of(team, role)
        for call in (
            service.create_endpoint(principal, url, ["team.created"], team_id=team),
            service.endpoints(principal, team_id=team),
            service.update_endpoint(principal, created.id, enabled=False),
            service.rotate_secret(principal, created.id),
            service.delete_endpoint(principal, created.id),
            service.deliveries(principal, created.id),
        ):
            with pytest.raises(DomainError) as caught:
                await call
            assert caught.value.code == "FORBIDDEN"
    stranger = owner_of(other)  # owns another team: this endpoint does not exist for it
    for call in (
        service.update_endpoint(stranger, created.id, enabled=False),
        service.rotate_secret(stranger, created.id),
        service.delete_endpoint(stranger, created.id),
        service.deliveries(stranger, created.id),
    ):
        with pytest.raises(DomainError) as caught:
            await call
        assert caught.value.code == "NOT_FOUND"
    with pytest.raises(DomainError) as caught:
        await service.create_endpoint(stranger, url, ["team.created"], team_id=team)
    assert caught.value.code == "FORBIDDEN"
    after = await service.endpoints(owner_of(team), team_id=team)
    assert {(each.id, each.enabled) for each in after} == {(created.id, True), (admin.id, True)}
    assert await endpoint_count(facades) == 2
    assert await changes(facades) == before  # refusals publish nothing

    updated = await service.update_endpoint(
        owner_of(team, "admin"), created.id, event_types=["invite.created", "team.created"]
    )
    assert updated.event_types == ["invite.created", "team.created"]
    assert await service.delete_endpoint(owner_of(team), created.id) is True
    assert await endpoint_count(facades) == 1
    assert (await changes(facades))[2:] == [(created.id, "updated"), (created.id, "deleted")]
