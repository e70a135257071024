"""The teams facade on both backends: teams, invitations, roles, leaving and removal."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text, update

from events.dialect import SqlDialect
from haunted.runtime import Haunted
from services.auth.crypto import token_hash
from services.auth.models import Invite, Membership
from services.auth.teams import TeamService
from services.principal import ROLE_PERMISSIONS
from tests.conftest import eventually, unique_email
from tests.services.auth.conftest import (
    RoleTeam,
    join,
    outbox_topics,
    principal_of,
    refused,
    roles_in,
    sign_up,
)


def teams(facades: Haunted) -> TeamService:
    return facades.services.teams


async def test_create_team_makes_the_caller_owner(facades: Haunted) -> None:
    alice = await sign_up(facades)
    before = await principal_of(facades, alice)  # caches alice's roles
    assert set(before.teams) == {alice.own_team_id}
    events = await outbox_topics(facades)

    team = await teams(facades).create_team(before, "  Skunkworks ")

    assert team.name == "Skunkworks"
    assert await roles_in(facades, team.id) == {alice.user_id: "owner"}
    assert await outbox_topics(facades) - events == Counter(
        {"team.created": 1, "team.member_added": 1}
    )
    # The cached roles were dropped: the very next request sees the new team.
    after = await principal_of(facades, alice)
    assert after.teams == {alice.own_team_id: "owner", team.id: "owner"}
    assert after.permissions(team.id) == ROLE_PERMISSIONS["owner"]

    await refused(facades, "BAD_USER_INPUT", teams(facades).create_team(after, "   "))


async def test_invite_and_accept(facades: Haunted) -> None:
    owner = await sign_up(facades)
    bob = await sign_up(facades)
    bob_before = await principal_of(facades, bob)  # caches bob's roles
    team_id = owner.own_team_id

    invite = await teams(facades).invite(
        await principal_of(facades, owner), bob.email, "member", team_id=team_id
    )
    assert invite.token.startswith("hi_") and invite.role == "member"
    assert invite.expires_at > datetime.now(UTC) + timedelta(days=6)
    async with facades.db.read() as session:
        row = await session.get(Invite, invite.id)
    assert row is not None and row.token_hash == token_hash(invite.token) != invite.token
    events = await outbox_topics(facades)

    membership = await teams(facades).accept_invite(bob_before, invite.token)

    assert (membership.team_id, membership.role) == (team_id, "member")
    assert (await roles_in(facades, team_id))[bob.user_id] == "member"
    assert await outbox_topics(facades) - events == Counter({"team.member_added": 1})
    bob_after = await principal_of(facades, bob)
    assert bob_after.teams[team_id] == "member"
    assert bob_after.permissions(team_id) == ROLE_PERMISSIONS["member"]

    # Single use: the same token again.
    await refused(facades, "CONFLICT", teams(facades).accept_invite(bob_after, invite.token))

    # The invite's address matches the account's whatever its case and spacing.
    carol = await sign_up(facades, "Carol.Case@Example.COM")
    invite = await teams(facades).invite(
        await principal_of(facades, owner), " CAROL.case@example.com", "viewer", team_id=team_id
    )
    membership = await teams(facades).accept_invite(
        await principal_of(facades, carol), invite.token
    )
    assert membership.role == "viewer"
    assert (await roles_in(facades, team_id))[carol.user_id] == "viewer"


async def test_invite_needs_team_invite_and_owner_for_owners(
    facades: Haunted, role_team: RoleTeam
) -> None:
    team_id = role_team.team_id
    for role in ("viewer", "member"):
        principal = await principal_of(facades, role_team[role])
        await refused(
            facades,
            "FORBIDDEN",
            teams(facades).invite(principal, unique_email(), "viewer", team_id=team_id),
        )
    admin = await principal_of(facades, role_team["admin"])
    await refused(
        facades,
        "FORBIDDEN",
        teams(facades).invite(admin, unique_email(), "owner", team_id=team_id),
    )
    await refused(
        facades,
        "BAD_USER_INPUT",
        teams(facades).invite(admin, unique_email(), "superuser", team_id=team_id),
    )
    # Inviting into a team one is not in: the guard refuses, whatever one's role elsewhere.
    stranger = await sign_up(facades)
    await refused(
        facades,
        "FORBIDDEN",
        teams(facades).invite(
            await principal_of(facades, stranger), unique_email(), "viewer", team_id=team_id
        ),
    )
    assert (await teams(facades).invite(admin, unique_email(), "admin", team_id=team_id)).token
    owner = await principal_of(facades, role_team["owner"])
    dave = await sign_up(facades)
    invite = await teams(facades).invite(owner, dave.email, "owner", team_id=team_id)
    await teams(facades).accept_invite(await principal_of(facades, dave), invite.token)
    assert (await roles_in(facades, team_id))[dave.user_id] == "owner"


async def test_accept_invite_refusals(facades: Haunted) -> None:
    owner = await sign_up(facades)
    team_id = owner.own_team_id
    inviter = await principal_of(facades, owner)
    erin, mallory = await sign_up(facades), await sign_up(facades)
    erin_p, mallory_p = await principal_of(facades, erin), await principal_of(facades, mallory)

    invite = await teams(facades).invite(inviter, erin.email, "admin", team_id=team_id)
    # Someone else holding Erin's token.
    await refused(facades, "FORBIDDEN", teams(facades).accept_invite(mallory_p, invite.token))
    # An unknown token, and one tampered with.
    await refused(facades, "NOT_FOUND", teams(facades).accept_invite(erin_p, "hi_" + "x" * 43))
    await refused(facades, "NOT_FOUND", teams(facades).accept_invite(erin_p, invite.token + "x"))
    # Expired.
    async with facades.db.transaction() as session:
        await session.execute(
            update(Invite)
            .where(Invite.id == invite.id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    await refused(facades, "BAD_USER_INPUT", teams(facades).accept_invite(erin_p, invite.token))

    # Already a member: the owner invited to their own team.
    self_invite = await teams(facades).invite(inviter, owner.email, "viewer", team_id=team_id)
    await refused(facades, "CONFLICT", teams(facades).accept_invite(inviter, self_invite.token))
    async with facades.db.read() as session:
        rows = (await session.scalars(select(Invite).where(Invite.team_id == team_id))).all()
    assert len(rows) == 2 and all(row.accepted_at is None for row in rows)


async def test_change_role(facades: Haunted, role_team: RoleTeam) -> None:
    team_id = role_team.team_id
    owner = await principal_of(facades, role_team["owner"])
    admin = await principal_of(facades, role_team["admin"])
    member = role_team["member"]
    member_before = await principal_of(facades, member)  # caches the member's roles
    assert member_before.permissions(team_id) == ROLE_PERMISSIONS["member"]
    events = await outbox_topics(facades)

    changed = await teams(facades).change_role(admin, member.user_id, "admin", team_id=team_id)

    assert (changed.team_id, changed.role) == (team_id, "admin")
    assert (await roles_in(facades, team_id))[member.user_id] == "admin"
    assert await outbox_topics(facades) - events == Counter({"team.role_changed": 1})
    # The member's very next request, with the token they already hold, has the new role.
    member_after = await principal_of(facades, member)
    assert member_after.permissions(team_id) == ROLE_PERMISSIONS["admin"]

    # Same role again: nothing to announce.
    await teams(facades).change_role(admin, member.user_id, "admin", team_id=team_id)
    assert await outbox_topics(facades) - events == Counter({"team.role_changed": 1})

    viewer = await principal_of(facades, role_team["viewer"])
    for caller in (viewer, member_before):  # member_before: still only a member
        await refused(
            facades,
            "FORBIDDEN",
            teams(facades).change_role(
                caller, role_team["viewer"].user_id, "admin", team_id=team_id
            ),
        )
    # Only owners grant or take away the owner role.
    admin_id, owner_id = role_team["admin"].user_id, role_team["owner"].user_id
    await refused(
        facades, "FORBIDDEN", teams(facades).change_role(admin, admin_id, "owner", team_id=team_id)
    )
    await refused(
        facades, "FORBIDDEN", teams(facades).change_role(admin, owner_id, "viewer", team_id=team_id)
    )
    # The last owner cannot step down.
    await refused(
        facades, "CONFLICT", teams(facades).change_role(owner, owner_id, "admin", team_id=team_id)
    )
    await refused(
        facades,
        "NOT_FOUND",
        teams(facades).change_role(owner, str(uuid.uuid4()), "viewer", team_id=team_id),
    )
    await refused(
        facades,
        "BAD_USER_INPUT",
        teams(facades).change_role(owner, admin_id, "root", team_id=team_id),
    )

    # With a second owner, the first may step down.
    await teams(facades).change_role(owner, admin_id, "owner", team_id=team_id)
    await teams(facades).change_role(owner, owner_id, "admin", team_id=team_id)
    assert await roles_in(facades, team_id) == {
        owner_id: "admin",
        admin_id: "owner",
        member.user_id: "admin",
        role_team["viewer"].user_id: "viewer",
    }


async def race(facades: Haunted, team_id: str, *calls: Awaitable[object]) -> list[object]:
    """Runs `calls` at once, so that each has read the team before any writes.

    On PostgreSQL the team's membership rows are locked until every call waits on
    a lock (or is done); SQLite runs one writer at a time (BEGIN IMMEDIATE) anyway.
    """
    if facades.db.dialect is SqlDialect.SQLITE:
        return await asyncio.gather(*calls, return_exceptions=True)
    async with facades.db.transaction() as session:
        await session.execute(
            select(Membership).where(Membership.team_id == team_id).with_for_update()
        )
        tasks = [asyncio.ensure_future(call) for call in calls]

        async def all_blocked() -> bool:
            async with facades.db.read() as probe:
                waiting = await probe.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                )
            return (waiting or 0) + sum(task.done() for task in tasks) >= len(tasks)

        await eventually(all_blocked)
    return await asyncio.gather(*tasks, return_exceptions=True)


def outcomes(results: list[object]) -> list[str]:
    return sorted(type(result).__name__ for result in results)


async def test_concurrent_owner_changes_keep_an_owner(facades: Haunted) -> None:
    """Two owners demoting each other, or both leaving, at once: the team keeps one."""
    first = await sign_up(facades)
    team_id = first.own_team_id
    second = await join(facades, first, team_id, "owner")
    one, two = await principal_of(facades, first), await principal_of(facades, second)

    demotions = await race(
        facades,
        team_id,
        teams(facades).change_role(one, second.user_id, "admin", team_id=team_id),
        teams(facades).change_role(two, first.user_id, "admin", team_id=team_id),
    )
    assert "owner" in (await roles_in(facades, team_id)).values()
    assert outcomes(demotions) == ["Conflict", "MembershipView"]

    # Back to two owners; now both leave at once.
    roles = await roles_in(facades, team_id)
    keeper = first if roles[first.user_id] == "owner" else second
    other = second if keeper is first else first
    await teams(facades).change_role(
        await principal_of(facades, keeper), other.user_id, "owner", team_id=team_id
    )
    one, two = await principal_of(facades, first), await principal_of(facades, second)
    leaving = await race(
        facades,
        team_id,
        teams(facades).leave(one, team_id=team_id),
        teams(facades).leave(two, team_id=team_id),
    )
    assert list((await roles_in(facades, team_id)).values()) == ["owner"]
    assert outcomes(leaving) == ["Conflict", "bool"]


async def test_remove_member_and_leave(facades: Haunted, role_team: RoleTeam) -> None:
    team_id = role_team.team_id
    owner = await principal_of(facades, role_team["owner"])
    admin = await principal_of(facades, role_team["admin"])
    member = await principal_of(facades, role_team["member"])
    viewer = role_team["viewer"]
    viewer_before = await principal_of(facades, viewer)  # caches the viewer's roles
    assert team_id in viewer_before.teams

    for caller in (viewer_before, member):
        await refused(
            facades,
            "FORBIDDEN",
            teams(facades).remove_member(caller, role_team["admin"].user_id, team_id=team_id),
        )
    await refused(
        facades,
        "FORBIDDEN",
        teams(facades).remove_member(admin, role_team["owner"].user_id, team_id=team_id),
    )
    await refused(
        facades,
        "NOT_FOUND",
        teams(facades).remove_member(admin, str(uuid.uuid4()), team_id=team_id),
    )
    events = await outbox_topics(facades)

    assert await teams(facades).remove_member(admin, viewer.user_id, team_id=team_id)

    assert viewer.user_id not in await roles_in(facades, team_id)
    assert await outbox_topics(facades) - events == Counter({"team.member_removed": 1})
    viewer_after = await principal_of(facades, viewer)
    assert team_id not in viewer_after.teams
    assert viewer_after.permissions(team_id) == frozenset()
    await refused(facades, "FORBIDDEN", teams(facades).members(viewer_after, team_id=team_id))
    await refused(
        facades,
        "NOT_FOUND",
        teams(facades).remove_member(admin, viewer.user_id, team_id=team_id),
    )

    # A member leaves on their own, without team:manage.
    assert "team:manage" not in member.permissions(team_id)
    events = await outbox_topics(facades)
    assert await teams(facades).leave(member, team_id=team_id)
    assert role_team["member"].user_id not in await roles_in(facades, team_id)
    assert await outbox_topics(facades) - events == Counter({"team.member_removed": 1})
    assert team_id not in (await principal_of(facades, role_team["member"])).teams

    # The last owner may neither leave nor be removed by themself.
    await refused(facades, "CONFLICT", teams(facades).leave(owner, team_id=team_id))
    await refused(
        facades,
        "CONFLICT",
        teams(facades).remove_member(owner, role_team["owner"].user_id, team_id=team_id),
    )
