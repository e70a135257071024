"""The auth facade: accounts, sessions and the tokens that prove them."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from events.db import Database
from events.outbox import add_event
from schemas import (
    TeamCreated,
    TeamMemberAdded,
    UserLoggedIn,
    UserLoggedOut,
    UserLoginFailed,
    UserRegistered,
)
from services.auth.models import Membership, Team, User
from services.auth.passwords import PasswordHasher
from services.auth.sessions import Session, SessionStore
from services.auth.tokens import TokenIssuer
from services.errors import BadUserInput, Conflict, Unauthenticated
from services.principal import Principal

log = structlog.get_logger(__name__)

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True, slots=True)
class MembershipView:
    team_id: str
    team_name: str
    role: str


@dataclass(frozen=True, slots=True)
class UserView:
    id: str
    email: str
    memberships: list[MembershipView]


@dataclass(frozen=True, slots=True)
class AuthResult:
    token: str
    expires_at: datetime
    user: UserView


def normalize_email(email: str) -> str:
    normalized = email.strip().lower()
    if len(normalized) > 320 or not _EMAIL.match(normalized):
        raise BadUserInput("email is not a valid address", field="email")
    return normalized


def check_password_policy(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise BadUserInput(
            f"password must have at least {MIN_PASSWORD_LENGTH} characters", field="password"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise BadUserInput(
            f"password must have at most {MAX_PASSWORD_LENGTH} characters", field="password"
        )


class AuthService:
    def __init__(
        self, db: Database, sessions: SessionStore, tokens: TokenIssuer, passwords: PasswordHasher
    ) -> None:
        self._db = db
        self._sessions = sessions
        self._tokens = tokens
        self._passwords = passwords

    async def register(self, email: str, password: str, team_name: str | None = None) -> AuthResult:
        """Creates a user and the team they own, and starts a session."""
        email = normalize_email(email)
        check_password_policy(password)
        name = (team_name or "").strip() or f"{email.split('@')[0]}'s team"
        if len(name) > 200:
            raise BadUserInput("teamName must have at most 200 characters", field="teamName")
        password_hash = await self._passwords.hash(password)
        now = datetime.now(UTC)
        user_id, team_id = str(uuid.uuid4()), str(uuid.uuid4())
        try:
            async with self._db.transaction() as session:
                if await session.scalar(select(User.id).where(User.email == email)):
                    raise Conflict("email is already registered", field="email")
                session.add(
                    User(id=user_id, email=email, password_hash=password_hash, created_at=now)
                )
                session.add(Team(id=team_id, name=name, created_at=now))
                await session.flush()
                session.add(
                    Membership(team_id=team_id, user_id=user_id, role="owner", created_at=now)
                )
                add_event(session, UserRegistered(user_id=user_id, team_id=team_id))
                add_event(session, TeamCreated(team_id=team_id, owner_id=user_id))
                add_event(session, TeamMemberAdded(team_id=team_id, user_id=user_id, role="owner"))
        except IntegrityError as error:  # a concurrent registration won the race
            raise Conflict("email is already registered", field="email") from error
        user = UserView(user_id, email, [MembershipView(team_id, name, "owner")])
        return await self._start_session(user, announce=False)

    async def login(self, email: str, password: str) -> AuthResult:
        """Unknown email and wrong password cost the same and fail the same way."""
        try:
            email = normalize_email(email)
        except BadUserInput:
            email = ""
        async with self._db.read() as session:
            user = await session.scalar(select(User).where(User.email == email)) if email else None
        matches, new_hash = await self._passwords.verify(
            password[:MAX_PASSWORD_LENGTH], user.password_hash if user else None
        )
        if user is None or not matches:
            async with self._db.transaction() as session:
                add_event(
                    session,
                    UserLoginFailed(
                        user_id=user.id if user else None,
                        reason="wrong_password" if user else "unknown_email",
                        attempt=1,
                    ),
                )
            raise Unauthenticated("invalid email or password")
        if new_hash is not None:
            async with self._db.transaction() as session:
                stored = await session.get(User, user.id)
                if stored is not None:
                    stored.password_hash = new_hash
        return await self._start_session(await self._user_view(user.id), announce=True)

    async def _start_session(self, user: UserView, *, announce: bool) -> AuthResult:
        session_id = str(uuid.uuid4())
        teams = {m.team_id: m.role for m in user.memberships}
        await self._sessions.create(Session(session_id, user.id, teams))
        if announce:
            try:
                async with self._db.transaction() as session:
                    add_event(session, UserLoggedIn(user_id=user.id, session_id=session_id))
            except Exception:
                # No event, no session: the two never disagree.
                await self._sessions.delete(session_id)
                raise
        token, expires_at = self._tokens.issue(user.id, session_id)
        return AuthResult(token, expires_at, user)

    async def logout(self, principal: Principal) -> bool:
        """Ends the caller's session; its token stops working at once."""
        if not await self._sessions.delete(principal.session_id):
            return False
        async with self._db.transaction() as session:
            add_event(
                session, UserLoggedOut(user_id=principal.user_id, session_id=principal.session_id)
            )
        return True

    async def authenticate(self, token: str) -> Principal:
        """Verifies a bearer token in-process and checks its session (one Redis read)."""
        claims = self._tokens.verify(token)
        session = await self._sessions.touch(claims.session_id)
        if session is None or session.user_id != claims.user_id:
            raise Unauthenticated("session has ended")
        return Principal(
            user_id=session.user_id, session_id=session.session_id, teams=session.teams
        )

    async def me(self, principal: Principal) -> UserView:
        return await self._user_view(principal.user_id)

    async def _user_view(self, user_id: str) -> UserView:
        async with self._db.read() as session:
            user = await session.get(User, user_id)
            if user is None:
                raise Unauthenticated("user no longer exists")
            rows = (
                await session.execute(
                    select(Membership.team_id, Team.name, Membership.role)
                    .join(Team, Team.id == Membership.team_id)
                    .where(Membership.user_id == user_id)
                    .order_by(Membership.created_at)
                )
            ).all()
        return UserView(user.id, user.email, [MembershipView(*row) for row in rows])

    def jwks(self) -> dict[str, Any]:
        return self._tokens.jwks()
