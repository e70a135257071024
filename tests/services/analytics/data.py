"""Known events for analytics tests: two teams, logins, tracked steps, prompts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from events.envelope import Envelope
from schemas import (
    AnalyticsTracked,
    Event,
    PromptCompleted,
    TeamMemberAdded,
    TeamMemberRemoved,
    UserLoggedIn,
    UserRegistered,
)
from services.principal import Principal

DAY0 = datetime(2026, 3, 2, 9, tzinfo=UTC)  # a Monday
TEAM, OTHER = "team-a", "team-b"


def at(event: Event, moment: datetime) -> Envelope:
    return Envelope.wrap(event, time=moment)


def login(user: str, moment: datetime) -> Envelope:
    return at(UserLoggedIn(user_id=user, session_id=str(uuid.uuid4())), moment)


def step(user: str, name: str, moment: datetime, team: str = TEAM) -> Envelope:
    return at(AnalyticsTracked(name=name, user_id=user, team_id=team, properties={}), moment)


def prompt(user: str, moment: datetime, tokens: tuple[int, int], cost: float) -> Envelope:
    event = PromptCompleted(
        request_id=str(uuid.uuid4()),
        user_id=user,
        team_id=TEAM,
        prompt_path="p",
        prompt_version="1",
        model="m",
        prompt_tokens=tokens[0],
        completion_tokens=tokens[1],
        latency_ms=5,
        cost_usd=cost,
        cached=False,
    )
    return at(event, moment)


def known_events() -> list[Envelope]:
    """u1, u2, u3 in TEAM (u3 leaves on day 8); x1 in OTHER."""
    d = timedelta(days=1)
    return [
        at(UserRegistered(user_id="u1", team_id=TEAM), DAY0),
        at(TeamMemberAdded(team_id=TEAM, user_id="u2", role="member"), DAY0),
        at(TeamMemberAdded(team_id=TEAM, user_id="u3", role="member"), DAY0),
        at(UserRegistered(user_id="x1", team_id=OTHER), DAY0),
        login("u1", DAY0),
        login("u2", DAY0 + timedelta(hours=2)),
        login("u1", DAY0 + d),
        login("x1", DAY0 + d),  # another team's login: never counted for TEAM
        login("u3", DAY0 + 7 * d),
        at(TeamMemberRemoved(team_id=TEAM, user_id="u3"), DAY0 + 8 * d),
        login("u3", DAY0 + 9 * d),  # after leaving: no longer TEAM's
        # Funnel: u1 does all three steps in time; u2 two, the third too late.
        step("u1", "signup", DAY0),
        step("u1", "upload", DAY0 + timedelta(hours=1)),
        step("u1", "share", DAY0 + timedelta(hours=2)),
        step("u2", "signup", DAY0),
        step("u2", "upload", DAY0 + timedelta(hours=3)),
        step("u2", "share", DAY0 + 3 * d),
        step("u3", "upload", DAY0),  # never signed up
        step("x1", "signup", DAY0, team=OTHER),
        prompt("u1", DAY0, (100, 20), 0.5),
        prompt("u2", DAY0 + timedelta(hours=5), (50, 10), 0.25),
        prompt("u1", DAY0 + d, (10, 1), 0.125),
    ]


def viewer(team: str = TEAM, user: str = "u1") -> Principal:
    return Principal(user_id=user, session_id="s", teams={team: "viewer"})
