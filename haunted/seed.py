"""`haunted seed`: demo data for a dev instance, written through the facades only.

A demo team with an owner, an admin, a member and a viewer (one known password),
the team on a paid plan through the offline checkout (which turns the plan's flags
on), a few LLM calls, and a month of product events. Every write is a facade call,
so each change commits its rows and its events together: the instance's relay
publishes them and its consumers fill the inboxes, the audit log, the flags' and
LLM's plan views and the analytics store, exactly as for real use. Nothing needs
the broker here; `make dev` (now or later) applies what the outbox holds.

Idempotent: the owner's account is the mark. When it exists, the demo data was
seeded before and nothing is written (a second run adds nothing).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from gateway import Services
from services.analytics import PastEvent
from services.errors import Conflict
from services.principal import Principal

PASSWORD = "haunted-demo-password"  # noqa: S105 - printed by `haunted seed`; dev only
DOMAIN = "demo.haunted.dev"
TEAM = "Demo Co"
ROLES = ("admin", "member", "viewer")  # the owner registers the team; these are invited
PLAN = "pro"
DAYS = 30
# uuid5 namespace of the imported events: the same run twice yields the same ids.
NAMESPACE = uuid.UUID("6f1c3f1e-8a0b-4c59-9d0e-6a5e2f1d7c42")
# A product's events, the funnel's steps first: most users view, fewer create, fewer export.
FUNNEL = ("page.viewed", "project.created", "report.exported")
PAGES = ("/app", "/app/analytics", "/app/billing", "/app/llm", "/app/team", "/app/flags")
TEXTS = (
    "Haunted is an event-driven SaaS backend: services talk by typed events on Kafka.",
    "Each state change commits its rows and its events in one transaction (an outbox).",
    "Consumers apply each event once, however often it is delivered.",
    "The gateway serves GraphQL and Socket.IO; every push to a client is an event.",
)


@dataclass
class SeedReport:
    """What a run did: the accounts (email, role) and how much it wrote; `seeded` is
    False when the demo data was there already (nothing written)."""

    seeded: bool
    accounts: list[tuple[str, str]] = field(default_factory=list)
    team_id: str | None = None
    plan: str | None = None
    prompts: int = 0
    events: int = 0


def email(role: str) -> str:
    return f"{role}@{DOMAIN}"


async def seed(services: Services, *, now: datetime | None = None) -> SeedReport:
    """Seeds the demo team through `services` (the built facades); see the module."""
    now = now or datetime.now(UTC)
    auth, teams = services.auth, services.teams
    report = SeedReport(seeded=False, accounts=[(email("owner"), "owner")])
    report.accounts += [(email(role), role) for role in ROLES]
    try:  # the mark: bcrypt runs in a thread (services/auth/passwords.py)
        registered = await auth.register(email("owner"), PASSWORD, TEAM)
    except Conflict:
        return report
    report.seeded = True
    owner = await auth.authenticate(registered.token)
    team_id = owner.default_team_id
    assert team_id is not None  # register made the owner's team
    report.team_id = team_id
    people = {"owner": owner}
    for role in ROLES:
        joined = await auth.register(email(role), PASSWORD)
        invite = await teams.invite(owner, email(role), role, team_id=team_id)
        person = await auth.authenticate(joined.token)
        await teams.accept_invite(person, invite.token)
        people[role] = await auth.reauthorize(person)
    report.plan = await _subscribe(services, owner, team_id)
    report.prompts = await _prompts(services, [people["owner"], people["member"]], team_id)
    history = month_of_events([people[role].user_id for role in people], team_id, now)
    await services.analytics.import_events(history)
    report.events = len(history)
    return report


async def _subscribe(services: Services, owner: Principal, team_id: str) -> str | None:
    """The team on the paid plan through the offline checkout: the same signed webhook
    the checkout page sends. None where that checkout is off (Stripe configured, or
    not dev): a real checkout needs a buyer."""
    billing = services.billing
    if not billing.local_checkout_enabled:
        return None
    checkout = await billing.create_checkout_session(owner, PLAN, team_id=team_id)
    body, signature = await billing.complete_local_checkout(checkout.id)
    await billing.handle_webhook(body, signature)
    return PLAN


async def _prompts(services: Services, callers: Sequence[Principal], team_id: str) -> int:
    """A few prompt calls (the offline model without an API key): usage and cost."""
    calls = 0
    for caller in callers:
        for text in TEXTS:
            await services.llm.call_prompt(
                caller,
                "summarize",
                {"text": f"{text} (asked by {caller.user_id[:8]})"},
                team_id=team_id,
            )
            calls += 1
    return calls


def month_of_events(user_ids: Sequence[str], team_id: str, now: datetime) -> list[PastEvent]:
    """DAYS days of product events for the team's users, the same for the same input:
    weekdays busier than weekends, and a funnel that narrows at each step (in order
    within a user's day)."""
    rng = random.Random(team_id)  # noqa: S311 - demo data, not a secret
    steps: list[tuple[str, str, datetime]] = []  # (user, name, time)
    start = (now - timedelta(days=DAYS)).replace(hour=0, minute=0, second=0, microsecond=0)
    for day in range(DAYS):
        date = start + timedelta(days=day)
        busy = 1.0 if date.weekday() < 5 else 0.4
        for user_id in user_ids:
            if rng.random() > 0.85 * busy:
                continue  # not active that day
            moment = date + timedelta(seconds=rng.randint(8 * 3600, 17 * 3600))
            names = [FUNNEL[0]] * rng.randint(2, 8)
            if rng.random() < 0.5:
                names.append(FUNNEL[1])
                if rng.random() < 0.4:
                    names.append(FUNNEL[2])
            for name in names:
                moment += timedelta(seconds=rng.randint(20, 600))
                steps.append((user_id, name, moment))
    return [
        PastEvent(
            id=str(uuid.uuid5(NAMESPACE, f"{team_id}:{index}")),
            name=name,
            user_id=user_id,
            team_id=team_id,
            time=moment,
            properties={"seeded": True}
            | ({"path": rng.choice(PAGES)} if name == FUNNEL[0] else {}),
        )
        for index, (user_id, name, moment) in enumerate(steps)
        if moment < now
    ]
