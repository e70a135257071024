"""What each domain event says in an inbox, and to whom: every template in one place.

A template's title and body are `str.format` strings over the event's fields,
plus `amount` (money as "12.34") and times as "2026-01-02 15:04 UTC".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from schemas import SEALED_FIELDS, Event


class Recipients(StrEnum):
    USER = "user"  # the user the event names (data.user_id)
    TEAM = "team"  # every member of the team the event names
    TEAM_BILLING = "team_billing"  # the team's members who may read billing


@dataclass(frozen=True, slots=True)
class Template:
    title: str
    body: str | None
    recipients: Recipients
    # False: this event makes no notification (e.g. the owner "joining" their new team).
    applies: Callable[[Event], bool] = lambda _: True


@dataclass(frozen=True, slots=True)
class Rendered:
    type: str
    title: str
    body: str | None
    data: dict[str, Any] | None


TEMPLATES: Mapping[str, Template] = {
    "user.locked": Template(
        "Your account is locked",
        "Too many failed sign-ins. You can sign in again after {locked_until}.",
        Recipients.USER,
    ),
    "subscription.activated": Template(
        "Your subscription is active",
        "The {plan_id} plan is active until {current_period_end}.",
        Recipients.TEAM_BILLING,
    ),
    "subscription.canceled": Template(
        "Your subscription was canceled",
        "The {plan_id} plan was canceled on {canceled_at}.",
        Recipients.TEAM_BILLING,
    ),
    "payment.failed": Template(
        "A payment failed",
        "We could not charge {amount} {currency} (attempt {attempt}). "
        "Please check your payment method.",
        Recipients.TEAM_BILLING,
    ),
    "team.member_added": Template(
        "You joined a team",
        "You are now a {role} of the team.",
        Recipients.USER,
        applies=lambda event: getattr(event, "role", None) != "owner",
    ),
    "prompt.failed": Template(
        "A prompt failed",
        "{prompt_path} failed with {error_code}.",
        Recipients.USER,
    ),
}

MAX_TITLE = 300


def _human(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return value


def render(topic: str, event: Event) -> Rendered | None:
    """The notification an event makes, or None when it makes none."""
    template = TEMPLATES.get(topic)
    if template is None or not template.applies(event):
        return None
    fields = {name: _human(getattr(event, name)) for name in type(event).model_fields}
    if isinstance(fields.get("amount_cents"), int):
        fields["amount"] = f"{fields['amount_cents'] / 100:.2f}"
    return Rendered(
        type=topic,
        title=template.title.format(**fields)[:MAX_TITLE],
        body=template.body.format(**fields) if template.body is not None else None,
        # Sealed values are for the email channel, not for an inbox.
        data={name: value for name, value in event.payload().items() if name not in SEALED_FIELDS},
    )


def requested(type_: str, title: str, body: str | None, data: dict[str, Any] | None) -> Rendered:
    """A notification another service asked for says what it was asked to say."""
    return Rendered(type=type_[:100], title=title[:MAX_TITLE], body=body, data=data)
