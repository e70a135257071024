"""Auth: users, teams, memberships, sessions and API keys; tokens everyone else verifies."""

from services.auth.accounts import Accounts, normalize_email
from services.auth.api_keys import ApiKeyService
from services.auth.crypto import DataKeyErased, PiiCipher, new_key_ring_spec, parse_key_ring
from services.auth.erasure import ErasureReport, Erasures, ServiceReport
from services.auth.handlers import build_handlers
from services.auth.passwords import PasswordHasher
from services.auth.ratelimit import AuthRateLimiter
from services.auth.service import AuthPolicy, AuthService
from services.auth.sessions import SessionStore
from services.auth.teams import TeamService
from services.auth.tokens import SigningKey, TokenIssuer, generate_signing_key
from services.auth.user_keys import EventUnsealer, UserKeys, user_of_event_key
from services.auth.views import (
    ApiKeyView,
    AuthResult,
    ClientInfo,
    InvitePreviewView,
    InviteView,
    MembershipView,
    MemberView,
    PendingInviteView,
    SessionView,
    TeamView,
    UserView,
)

__all__ = [
    "Accounts",
    "ApiKeyService",
    "ApiKeyView",
    "AuthPolicy",
    "AuthRateLimiter",
    "AuthResult",
    "AuthService",
    "ClientInfo",
    "DataKeyErased",
    "ErasureReport",
    "Erasures",
    "EventUnsealer",
    "InvitePreviewView",
    "InviteView",
    "MemberView",
    "MembershipView",
    "PasswordHasher",
    "PendingInviteView",
    "PiiCipher",
    "ServiceReport",
    "SessionStore",
    "SessionView",
    "SigningKey",
    "TeamService",
    "TeamView",
    "TokenIssuer",
    "UserKeys",
    "UserView",
    "build_handlers",
    "generate_signing_key",
    "new_key_ring_spec",
    "normalize_email",
    "parse_key_ring",
    "user_of_event_key",
]
