"""Auth: users, teams, memberships and sessions; tokens everyone else verifies."""

from services.auth.passwords import PasswordHasher
from services.auth.service import AuthResult, AuthService, MembershipView, UserView
from services.auth.sessions import SessionStore
from services.auth.tokens import SigningKey, TokenIssuer, generate_signing_key

__all__ = [
    "AuthResult",
    "AuthService",
    "MembershipView",
    "PasswordHasher",
    "SessionStore",
    "SigningKey",
    "TokenIssuer",
    "UserView",
    "generate_signing_key",
]
