"""services/notifications/handlers.py: who gets which notification, once, in order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from events.consumer import EventConsumers, Outcome
from events.db import Database
from events.envelope import Envelope
from schemas import (
    FlagUpdated,
    NotificationRequested,
    PaymentFailed,
    PromptFailed,
    SubscriptionActivated,
    TeamMemberAdded,
    TeamMemberRemoved,
    TeamRoleChanged,
    UserErased,
    UserLocked,
    UserRegistered,
)
from services.notifications import HANDLERS
from services.notifications.handlers import add_to_inboxes, catch_up
from services.notifications.templates import requested
from tests.services.notifications.conftest import (
    created_events,
    handle,
    inbox,
    new_id,
    outbox_size,
    registered,
)


def test_consumes_requests_memberships_and_the_events_worth_a_notification() -> None:
    for topic in (
        "notification.requested",
        "user.registered",
        "team.member_added",
        "team.member_removed",
        "team.role_changed",
        "user.locked",
        "subscription.activated",
        "subscription.canceled",
        "payment.failed",
        "prompt.failed",
    ):
        assert topic in HANDLERS.topics
    assert "notification.created" not in HANDLERS.topics  # its own output


async def test_a_request_for_a_user_lands_once_and_is_announced(
    db: Database, consumers: EventConsumers
) -> None:
    user_id = new_id()
    request = NotificationRequested(
        user_id=user_id, type="welcome", title="Hello", body="Welcome aboard", data={"k": 1}
    )
    envelope = Envelope.wrap(request)

    assert await handle(consumers, request, envelope) is Outcome.HANDLED
    assert await handle(consumers, request, envelope) is Outcome.DUPLICATE

    rows = await inbox(db, user_id)
    assert [(r.type, r.title, r.body, r.data, r.source_event_id) for r in rows] == [
        ("welcome", "Hello", "Welcome aboard", {"k": 1}, envelope.id)
    ]
    assert rows[0].read_at is None
    created = await created_events(db)
    assert len(created) == 1
    assert created[0]["notification_id"] == rows[0].id
    assert created[0]["user_id"] == user_id
    assert created[0]["title"] == "Hello"


async def test_the_inbox_row_is_unique_per_source_event_and_recipient(db: Database) -> None:
    """Even without the consumer's processed-event record (a replay under another
    name, a purge), the same source event never lands twice in one inbox."""
    user_id, other = new_id(), new_id()
    rendered = requested("welcome", "Hello", None, None)
    async with db.transaction() as session:
        first = await add_to_inboxes(session, [user_id], rendered, "event-1")
    async with db.transaction() as session:
        again = await add_to_inboxes(session, [user_id, other, other], rendered, "event-1")

    assert len(first) == 1
    assert len(again) == 1  # only `other`, once
    assert len(await inbox(db, user_id)) == 1
    assert len(await inbox(db, other)) == 1
    assert len(await created_events(db)) == 2


async def test_a_team_request_reaches_every_current_member(
    db: Database, consumers: EventConsumers
) -> None:
    owner, team_id = await registered(consumers)
    member, leaver = new_id(), new_id()
    await handle(consumers, TeamMemberAdded(team_id=team_id, user_id=member, role="member"))
    await handle(consumers, TeamMemberAdded(team_id=team_id, user_id=leaver, role="viewer"))
    await handle(consumers, TeamMemberRemoved(team_id=team_id, user_id=leaver))

    await handle(
        consumers, NotificationRequested(team_id=team_id, type="maintenance", title="Tonight")
    )

    assert [r.title for r in await inbox(db, owner)] == ["Tonight"]
    assert [r.type for r in await inbox(db, member)] == ["team.member_added", "maintenance"]
    assert [r.type for r in await inbox(db, leaver)] == ["team.member_added"]


async def test_domain_events_use_their_templates_and_recipients(
    db: Database, consumers: EventConsumers
) -> None:
    owner, team_id = await registered(consumers)
    admin, member = new_id(), new_id()
    await handle(consumers, TeamMemberAdded(team_id=team_id, user_id=admin, role="admin"))
    await handle(consumers, TeamMemberAdded(team_id=team_id, user_id=member, role="member"))
    await handle(consumers, TeamRoleChanged(team_id=team_id, user_id=member, role="viewer"))

    locked_until = datetime(2030, 1, 2, 15, 4, tzinfo=UTC)
    await handle(consumers, UserLocked(user_id=owner, locked_until=locked_until))
    await handle(
        consumers,
        PaymentFailed(
            team_id=team_id, invoice_id="in_1", amount_cents=1999, currency="usd", attempt=2
        ),
    )
    await handle(
        consumers,
        PromptFailed(
            request_id="r1",
            user_id=member,
            team_id=team_id,
            prompt_path="support/answer",
            error_code="QUOTA_EXCEEDED",
        ),
    )
    await handle(consumers, FlagUpdated(flag="beta", enabled=True))  # no template: nothing

    owner_inbox = {r.type: r for r in await inbox(db, owner)}
    assert set(owner_inbox) == {"user.locked", "payment.failed"}  # not their own joining
    assert owner_inbox["user.locked"].title == "Your account is locked"
    assert "2030-01-02 15:04 UTC" in (owner_inbox["user.locked"].body or "")
    assert owner_inbox["payment.failed"].body == (
        "We could not charge 19.99 usd (attempt 2). Please check your payment method."
    )
    assert owner_inbox["payment.failed"].data == {
        "team_id": team_id,
        "invoice_id": "in_1",
        "amount_cents": 1999,
        "currency": "usd",
        "attempt": 2,
    }
    admin_inbox = [r.type for r in await inbox(db, admin)]
    assert admin_inbox == ["team.member_added", "payment.failed"]
    member_inbox = {r.type: r for r in await inbox(db, member)}
    assert member_inbox["team.member_added"].body == "You are now a member of the team."
    assert member_inbox["prompt.failed"].body == "support/answer failed with QUOTA_EXCEEDED."
    # Billing notices go to roles that may read billing; the viewer role may.
    assert "payment.failed" in member_inbox


async def test_ids_grow_per_user_in_the_order_notifications_land(
    db: Database, consumers: EventConsumers
) -> None:
    user_id = new_id()
    for n in range(20):
        await handle(consumers, NotificationRequested(user_id=user_id, type="n", title=f"n{n}"))
    rows = await inbox(db, user_id)
    assert [r.title for r in rows] == [f"n{n}" for n in range(20)]  # sorted by id
    assert len({r.id for r in rows}) == 20
    assert await outbox_size(db) == 20


async def test_a_member_whose_membership_event_comes_late_still_gets_the_team_notification(
    db: Database, consumers: EventConsumers
) -> None:
    """Topics have no order between them: the owner's user.registered (auth) can be
    handled after their team's subscription.activated (billing)."""
    owner, team_id, later_member, leaver = new_id(), new_id(), new_id(), new_id()
    joined = datetime.now(UTC) - timedelta(minutes=10)
    activated_at = joined + timedelta(minutes=1)
    activated = SubscriptionActivated(
        team_id=team_id,
        subscription_id="sub_1",
        plan_id="pro",
        status="active",
        current_period_end=datetime(2030, 1, 2, tzinfo=UTC),
    )
    activation = Envelope.wrap(activated, time=activated_at)
    registration = UserRegistered(user_id=owner, team_id=team_id)
    registration_envelope = Envelope.wrap(registration, time=joined)
    # The leaver was in the team when the event happened, but their removal (later)
    # was handled first: the tombstone wins, the late addition delivers nothing.
    removal = TeamMemberRemoved(team_id=team_id, user_id=leaver)
    await handle(consumers, removal, Envelope.wrap(removal, time=activated_at + timedelta(1)))

    assert await handle(consumers, activated, activation) is Outcome.HANDLED
    assert await inbox(db, owner) == []
    assert await handle(consumers, registration, registration_envelope) is Outcome.HANDLED
    added = TeamMemberAdded(team_id=team_id, user_id=owner, role="owner")
    await handle(consumers, added, Envelope.wrap(added, time=joined))
    # A member who joined after the event is not told of it.
    late = TeamMemberAdded(team_id=team_id, user_id=later_member, role="admin")
    await handle(consumers, late, Envelope.wrap(late, time=activated_at + timedelta(minutes=1)))
    gone = TeamMemberAdded(team_id=team_id, user_id=leaver, role="member")
    await handle(consumers, gone, Envelope.wrap(gone, time=joined))
    # Redelivered, neither event changes anything.
    assert await handle(consumers, activated, activation) is Outcome.DUPLICATE
    assert await handle(consumers, registration, registration_envelope) is Outcome.DUPLICATE

    rows = await inbox(db, owner)
    assert [(r.type, r.title, r.source_event_id) for r in rows] == [
        ("subscription.activated", "Your subscription is active", activation.id)
    ]
    assert [r.type for r in await inbox(db, later_member)] == ["team.member_added"]
    assert [r.type for r in await inbox(db, leaver)] == ["team.member_added"]
    created = await created_events(db)  # each pushed through the outbox, once
    assert [(e["user_id"], e["type"]) for e in created].count(
        (owner, "subscription.activated")
    ) == 1
    # Even without the processed-event records, catching up again adds nothing.
    async with db.transaction() as session:
        assert await catch_up(session, team_id, owner, joined) == []
    assert len(await inbox(db, owner)) == 1


async def test_a_late_member_gets_a_team_request_but_an_erased_user_gets_nothing(
    db: Database, consumers: EventConsumers
) -> None:
    owner, team_id = await registered(consumers)
    member, erased = new_id(), new_id()
    joined = datetime.now(UTC) - timedelta(minutes=10)
    request = NotificationRequested(team_id=team_id, type="maintenance", title="Tonight")
    await handle(consumers, request, Envelope.wrap(request, time=joined + timedelta(minutes=1)))
    # The erased user's erasure is handled before their (older) addition and removal.
    erasure = UserErased(user_id=erased, anonymous_id=new_id(), reason="deleted_by_user")
    await handle(consumers, erasure, Envelope.wrap(erasure, time=joined + timedelta(minutes=2)))

    for user_id in (member, erased):
        added = TeamMemberAdded(team_id=team_id, user_id=user_id, role="member")
        await handle(consumers, added, Envelope.wrap(added, time=joined))

    assert [r.type for r in await inbox(db, member)] == ["team.member_added", "maintenance"]
    assert [r.title for r in await inbox(db, owner)] == ["Tonight"]
    # The erased user's addition was handled after their erasure: the log gives them nothing.
    assert "maintenance" not in [r.type for r in await inbox(db, erased)]
