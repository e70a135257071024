"""The event contracts: one typed model per topic of the catalog (events.md).

This package depends on nothing else in the project. `CATALOG` is the one
list of topics: consumers, topic creation and the AsyncAPI document read it. It
is built from each owner's module: its `EVENTS` tuple lists its models (a model
missing from it fails tests/schemas/test_catalog.py).
"""

from schemas import analytics, auth, billing, flags, llm, notifications, webhooks
from schemas.analytics import AnalyticsTracked
from schemas.auth import (
    ApiKeyRevoked,
    DataExportRequested,
    EmailVerificationRequested,
    EmailVerified,
    InviteCreated,
    InviteRevoked,
    PasswordChanged,
    PasswordResetRequested,
    SessionRevoked,
    TeamCreated,
    TeamMemberAdded,
    TeamMemberRemoved,
    TeamRoleChanged,
    TeamTwoFactorRequired,
    TwoFactorChanged,
    UserErased,
    UserLocked,
    UserLoggedIn,
    UserLoggedOut,
    UserLoginFailed,
    UserRegistered,
)
from schemas.base import SEALED_FIELDS, Audience, Event, Timestamp
from schemas.billing import (
    Entitlements,
    InvoicePaid,
    PaymentFailed,
    SubscriptionActivated,
    SubscriptionCanceled,
    SubscriptionUpdated,
)
from schemas.flags import FlagEvaluated, FlagUpdated
from schemas.llm import PromptCompleted, PromptFailed
from schemas.notifications import NotificationCreated, NotificationRequested
from schemas.webhooks import WebhookEndpointChanged

# One tuple per owner, `EVENTS` in its module: a new event joins the catalog from there.
OWNERS = (auth, billing, llm, flags, notifications, analytics, webhooks)
CATALOG: dict[str, type[Event]] = {model.topic: model for owner in OWNERS for model in owner.EVENTS}

__all__ = [
    "CATALOG",
    "SEALED_FIELDS",
    "AnalyticsTracked",
    "ApiKeyRevoked",
    "Audience",
    "DataExportRequested",
    "EmailVerificationRequested",
    "EmailVerified",
    "Entitlements",
    "Event",
    "FlagEvaluated",
    "FlagUpdated",
    "InviteCreated",
    "InviteRevoked",
    "InvoicePaid",
    "NotificationCreated",
    "NotificationRequested",
    "PasswordChanged",
    "PasswordResetRequested",
    "PaymentFailed",
    "PromptCompleted",
    "PromptFailed",
    "SessionRevoked",
    "SubscriptionActivated",
    "SubscriptionCanceled",
    "SubscriptionUpdated",
    "TeamCreated",
    "TeamMemberAdded",
    "TeamMemberRemoved",
    "TeamRoleChanged",
    "TeamTwoFactorRequired",
    "Timestamp",
    "TwoFactorChanged",
    "UserErased",
    "UserLocked",
    "UserLoggedIn",
    "UserLoggedOut",
    "UserLoginFailed",
    "UserRegistered",
    "WebhookEndpointChanged",
]
