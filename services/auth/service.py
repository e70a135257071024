"""The auth facade: accounts, sessions and the tokens that prove them."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from redis.exceptions import RedisError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from schemas import (
    DataExportRequested,
    EmailVerified,
    PasswordChanged,
    SessionRevoked,
    TeamCreated,
    TeamMemberAdded,
    UserLocked,
    UserLoggedIn,
    UserLoggedOut,
    UserLoginFailed,
    UserRegistered,
)
from services.auth import account_tokens, export
from services.auth.accounts import EMAIL, Accounts, normalize_email, principal_of
from services.auth.api_keys import API_KEY_PREFIX, ApiKeyService
from services.auth.audit import add_audited_event
from services.auth.crypto import token_hash
from services.auth.erasure import DELETED_BY_USER, ErasureReport, Erasures, ShredBackupKeys
from services.auth.models import (
    Membership,
    RefreshToken,
    SecondFactor,
    Team,
    User,
    UserSession,
)
from services.auth.passwords import MAX_PASSWORD_LENGTH, PasswordHasher, check_password_policy
from services.auth.ratelimit import AuthRateLimiter, LoginLockout
from services.auth.sessions import SessionStore
from services.auth.tokens import TokenIssuer
from services.auth.two_factor import TwoFactor
from services.auth.user_keys import USER_KEY_ID, UserKeys, open_client, seal_client
from services.auth.views import AuthResult, ClientInfo, SessionView, UserView
from services.errors import (
    BadUserInput,
    Conflict,
    Forbidden,
    NotFound,
    SecondFactorRequired,
    Unauthenticated,
    Unavailable,
)
from services.principal import Caller, ExportSubject, Operator, Principal, require_self

log = structlog.get_logger(__name__)

REFRESH_PREFIX = "hr_"
CHALLENGE_PREFIX = "hc_"
_CHALLENGE = "haunted:2fa-challenge:"
CHALLENGE_TTL_S = 300
INVALID_CREDENTIALS = "invalid email or password"
# Not derived from the address: a team name is shown to every member and invitee.
DEFAULT_TEAM_NAME = "Personal team"
VERIFICATION_REQUIRED = (
    "this server requires a verified email address: sign up with signUp, then verifyEmail"
)


@dataclass(frozen=True, slots=True)
class AuthPolicy:
    refresh_ttl: timedelta = timedelta(days=30)
    # Failures from one client (account, client fingerprint) that lock it out.
    lockout_threshold: int = 5
    lockout_duration: timedelta = timedelta(minutes=30)
    # Failures from all clients together that lock the account everywhere: high enough
    # that one attacker cannot keep the owner out, low enough to stop a distributed guess.
    account_lockout_threshold: int = 50
    # Registration goes through signUp + verifyEmail, and reveals nothing (on in prod).
    require_email_verification: bool = False


class AuthService:
    """Register, log in and out, refresh, list and revoke sessions, authenticate requests."""

    def __init__(
        self,
        accounts: Accounts,
        tokens: TokenIssuer,
        passwords: PasswordHasher,
        api_keys: ApiKeyService,
        rate_limiter: AuthRateLimiter,
        policy: AuthPolicy | None = None,
        shred_backup_keys: ShredBackupKeys | None = None,
    ) -> None:
        self._accounts = accounts
        self._db = accounts.db
        self._sessions = accounts.sessions
        self._tokens = tokens
        self._passwords = passwords
        self._api_keys = api_keys
        self._rate = rate_limiter
        self._policy = policy or AuthPolicy()
        self._lockout = LoginLockout(
            accounts.sessions.redis,
            threshold=self._policy.lockout_threshold,
            duration=self._policy.lockout_duration,
        )
        self.two_factor = TwoFactor(accounts)
        self.erasures = Erasures(accounts, shred_backup_keys)

    async def register(
        self,
        email: str,
        password: str,
        team_name: str | None = None,
        client: ClientInfo | None = None,
    ) -> AuthResult:
        """Creates a user and the team they own, and starts a session (the contract's way
        in; refused where email verification is required: signUp then)."""
        client = client or ClientInfo()
        await self._rate.hit("register", ip=client.ip)
        if self._policy.require_email_verification:
            raise Forbidden(VERIFICATION_REQUIRED)
        user_id = await self._create_account(email, password, team_name, verify=False)
        return await self._start_session(user_id, client, announce=False)

    async def sign_up(
        self,
        email: str,
        password: str,
        team_name: str | None = None,
        client: ClientInfo | None = None,
    ) -> None:
        """Creates an unverified account and mails its verification link; answers the same
        whether the address was free or taken (the taken one gets nothing new)."""
        client = client or ClientInfo()
        await self._rate.hit("register", ip=client.ip)
        try:
            await self._create_account(email, password, team_name, verify=True)
        except Conflict:
            return

    async def _create_account(
        self, email: str, password: str, team_name: str | None, *, verify: bool
    ) -> str:
        email = normalize_email(email)
        check_password_policy(password)
        name = (team_name or "").strip() or DEFAULT_TEAM_NAME
        if len(name) > 200:
            raise BadUserInput("teamName must have at most 200 characters", field="teamName")
        password_hash = await self._passwords.hash(password)
        email_hash = self._accounts.email_hash(email)
        now = datetime.now(UTC)
        user_id, team_id = str(uuid.uuid4()), str(uuid.uuid4())
        try:
            async with self._db.transaction() as session:
                if await session.scalar(select(User.id).where(User.email_hash == email_hash)):
                    raise Conflict("email is already registered", field="email")
                # The user's own data key seals their address (crypto-shredding).
                key = self._accounts.keys.create(session, user_id, now)
                session.add(
                    User(
                        id=user_id,
                        email_hash=email_hash,
                        email_key_id=USER_KEY_ID,
                        email_ciphertext=UserKeys.seal(key, email, context=EMAIL),
                        password_hash=password_hash,
                        failed_logins=0,
                        created_at=now,
                    )
                )
                session.add(Team(id=team_id, name=name, created_at=now))
                await session.flush()
                session.add(
                    Membership(team_id=team_id, user_id=user_id, role="owner", created_at=now)
                )
                add_audited_event(session, UserRegistered(user_id=user_id, team_id=team_id))
                add_audited_event(session, TeamCreated(team_id=team_id, owner_id=user_id))
                add_audited_event(
                    session, TeamMemberAdded(team_id=team_id, user_id=user_id, role="owner")
                )
                if verify:
                    user = await session.get(User, user_id)
                    assert user is not None
                    account_tokens.issue(
                        session, self._accounts, user, account_tokens.VERIFY_EMAIL, now
                    )
        except IntegrityError as error:  # a concurrent registration won the race
            raise Conflict("email is already registered", field="email") from error
        return user_id

    async def verify_email(self, token: str) -> None:
        """Spends a verification token: the account's address is proved."""
        now = datetime.now(UTC)
        async with self._db.transaction() as session:
            user_id = await account_tokens.spend(session, account_tokens.VERIFY_EMAIL, token, now)
            await session.execute(
                update(User)
                .where(User.id == user_id, User.email_verified_at.is_(None))
                .values(email_verified_at=now)
            )
            add_audited_event(session, EmailVerified(user_id=user_id))

    async def request_password_reset(self, email: str, client: ClientInfo | None = None) -> None:
        """Mails a reset link if the address has an account; the same answer either way."""
        client = client or ClientInfo()
        try:
            email_hash: str | None = self._accounts.email_hash(normalize_email(email))
        except BadUserInput:
            email_hash = None
        await self._rate.hit("password_reset", ip=client.ip, account=email_hash)
        now = datetime.now(UTC)
        async with self._db.transaction() as session:
            user = (
                await session.scalar(select(User).where(User.email_hash == email_hash))
                if email_hash
                else None
            )
            if user is not None:
                account_tokens.issue(
                    session, self._accounts, user, account_tokens.RESET_PASSWORD, now
                )

    async def reset_password(
        self, token: str, new_password: str, client: ClientInfo | None = None
    ) -> None:
        """Spends a reset token: sets the password, unlocks the account everywhere, proves
        the address, and ends every session (whoever held one no longer does)."""
        client = client or ClientInfo()
        await self._rate.hit("password_reset", ip=client.ip)
        check_password_policy(new_password)
        password_hash = await self._passwords.hash(new_password)
        now = datetime.now(UTC)
        async with self._db.transaction() as session:
            user_id = await account_tokens.spend(session, account_tokens.RESET_PASSWORD, token, now)
            user = await session.get(User, user_id)
            assert user is not None  # tokens belong to users (foreign key)
            user.password_hash = password_hash
            user.failed_logins = 0
            user.locked_until = None
            user.email_verified_at = user.email_verified_at or now
            ended = await self._revoke_sessions(session, user_id, keep=None, now=now)
            add_audited_event(session, SessionRevoked(user_id=user_id, reason="password_reset"))
            add_audited_event(
                session,
                PasswordChanged(user_id=user_id, reason="reset", **account_tokens.mailed_to(user)),
            )
            email_hash = user.email_hash
        await self._sessions.delete(*ended)
        await self._lockout.clear(email_hash)

    async def change_password(self, principal: Principal, current: str, new: str) -> None:
        """Changes the caller's password (the current one proved first) and ends every
        other session of theirs; this one stays."""
        if principal.api_key_id is not None:
            raise Forbidden("API keys have no password")
        check_password_policy(new)
        async with self._db.read() as session:
            user = await session.get(User, principal.user_id)
        if user is None:
            raise Unauthenticated("user no longer exists")
        matches, _ = await self._passwords.verify(current[:MAX_PASSWORD_LENGTH], user.password_hash)
        if not matches:
            raise Forbidden("the current password is wrong", field="current")
        password_hash = await self._passwords.hash(new)
        now = datetime.now(UTC)
        async with self._db.transaction() as session:
            await session.execute(
                update(User).where(User.id == user.id).values(password_hash=password_hash)
            )
            ended = await self._revoke_sessions(
                session, user.id, keep=principal.session_id, now=now
            )
            for session_id in ended:
                add_audited_event(
                    session,
                    SessionRevoked(
                        user_id=user.id, session_id=session_id, reason="password_changed"
                    ),
                )
            add_audited_event(
                session,
                PasswordChanged(
                    user_id=user.id, reason="changed", **account_tokens.mailed_to(user)
                ),
            )
        await self._sessions.delete(*ended)

    async def delete_account(self, principal: Principal, password: str) -> ErasureReport:
        """Erases the caller's account (docs/privacy.md), once their password is proved
        again: a stolen session alone cannot. Refused to API keys."""
        if principal.api_key_id is not None:
            raise Forbidden("an API key cannot delete an account")
        async with self._db.read() as session:
            user = await session.get(User, principal.user_id)
        if user is None:
            raise Unauthenticated("user no longer exists")
        await self._rate.hit("login", ip=None, account=user.email_hash)
        matches, _ = await self._passwords.verify(
            password[:MAX_PASSWORD_LENGTH], user.password_hash
        )
        if not matches:
            raise Forbidden("the password is wrong: nothing was deleted", field="password")
        return await self.erasures.erase(principal.user_id, reason=DELETED_BY_USER)

    @staticmethod
    async def _revoke_sessions(
        session: Any, user_id: str, *, keep: str | None, now: datetime
    ) -> list[str]:
        """Marks the user's live sessions revoked (but `keep`); returns their ids."""
        conditions = [UserSession.user_id == user_id, UserSession.revoked_at.is_(None)]
        if keep is not None:
            conditions.append(UserSession.id != keep)
        ended = list((await session.scalars(select(UserSession.id).where(*conditions))).all())
        if ended:
            await session.execute(
                update(UserSession).where(UserSession.id.in_(ended)).values(revoked_at=now)
            )
        return ended

    def _client_fingerprint(self, client: ClientInfo) -> str:
        """Who is trying, as a keyed hash of the client's address (never the address)."""
        return self._accounts.cipher.lookup_hash(client.ip or "unknown", context="client")[:32]

    def _device(self, client: ClientInfo) -> str:
        """A device, as a keyed hash of the client's address and user agent."""
        seen = f"{client.ip or 'unknown'}\0{client.user_agent or ''}"
        return self._accounts.cipher.lookup_hash(seen, context="device")[:32]

    async def login(
        self, email: str, password: str, client: ClientInfo | None = None
    ) -> AuthResult:
        """Unknown email, wrong password and locked account: one bcrypt each, one write,
        and the same answer (no lockedUntil: a lock must not tell that an account exists)."""
        client = client or ClientInfo()
        try:
            email_hash: str | None = self._accounts.email_hash(normalize_email(email))
        except BadUserInput:
            email_hash = None
        await self._rate.hit("login", ip=client.ip, account=email_hash)
        # The user and whether a second factor is on, in one statement: the same work
        # whether the account exists or not, and no second read after the password.
        found = None
        if email_hash:
            async with self._db.read() as session:
                found = (
                    await session.execute(
                        select(User, SecondFactor.confirmed_at)
                        .outerjoin(SecondFactor, SecondFactor.user_id == User.id)
                        .where(User.email_hash == email_hash)
                    )
                ).first()
        user = found[0] if found is not None else None
        second_factor = found is not None and found[1] is not None
        matches, new_hash = await self._passwords.verify(
            password[:MAX_PASSWORD_LENGTH], user.password_hash if user else None
        )
        now = datetime.now(UTC)
        fingerprint = self._client_fingerprint(client)
        account = email_hash or "invalid"
        locked = await self._lockout.locked(account, fingerprint) or (
            user is not None and user.locked_until is not None and user.locked_until > now
        )
        if user is None or not matches or locked:
            await self._record_failure(user, account, fingerprint, now, locked=locked)
            raise Unauthenticated(INVALID_CREDENTIALS)
        await self._lockout.succeeded(account, fingerprint)
        if self._policy.require_email_verification and user.email_verified_at is None:
            # Told only to whoever knows the password: no oracle for anyone else.
            raise Unauthenticated(
                "the email address is not verified yet: follow the link mailed to it",
                reason="EMAIL_NOT_VERIFIED",
            )
        if new_hash is not None or user.failed_logins:
            async with self._db.transaction() as session:
                values: dict[str, Any] = {"failed_logins": 0}
                if new_hash is not None:  # made at a lower cost: upgrade it now
                    values["password_hash"] = new_hash
                await session.execute(update(User).where(User.id == user.id).values(**values))
        if second_factor:
            challenge = CHALLENGE_PREFIX + secrets.token_urlsafe(32)
            await self._sessions.redis.set(
                _CHALLENGE + token_hash(challenge), user.id, ex=CHALLENGE_TTL_S
            )
            raise SecondFactorRequired(
                "a second factor is required: call loginSecondFactor with this challenge "
                "and a code from the authenticator app (or a recovery code)",
                challenge=challenge,
            )
        return await self._start_session(user.id, client, announce=True)

    async def login_second_factor(
        self, challenge: str, code: str, client: ClientInfo | None = None
    ) -> AuthResult:
        """Completes a login that proved its password: one try per challenge (a wrong code
        means logging in again, so codes cannot be guessed faster than passwords)."""
        client = client or ClientInfo()
        await self._rate.hit("login", ip=client.ip)
        if not challenge.startswith(CHALLENGE_PREFIX) or len(challenge) > 200:
            raise Unauthenticated("invalid or expired challenge: log in again")
        owner = await self._sessions.redis.getdel(_CHALLENGE + token_hash(challenge))
        if owner is None:
            raise Unauthenticated("invalid or expired challenge: log in again")
        user_id = owner.decode() if isinstance(owner, bytes) else str(owner)
        async with self._db.transaction() as session:
            accepted = await self.two_factor.check(session, user_id, code)
        if not accepted:
            raise Unauthenticated("the code is wrong or already used: log in again")
        return await self._start_session(user_id, client, announce=True)

    async def _record_failure(
        self, user: User | None, account: str, client: str, now: datetime, *, locked: bool
    ) -> None:
        """A failed login: counted for (account, client) and, for a known account, on the
        account; a login refused by a lock is recorded but not counted."""
        client_locked_until = None if locked else await self._lockout.failed(account, client)
        async with self._db.transaction() as session:
            if user is None:
                add_audited_event(session, UserLoginFailed(reason="unknown_email", attempt=1))
                return
            if locked:
                add_audited_event(
                    session, UserLoginFailed(user_id=user.id, reason="locked", attempt=0)
                )
                return
            if client_locked_until is not None:
                add_audited_event(
                    session,
                    UserLocked(
                        user_id=user.id,
                        locked_until=client_locked_until,
                        scope="client",
                        **account_tokens.mailed_to(user),
                    ),
                )
            # One atomic increment, so concurrent failures all count.
            attempts = await session.scalar(
                update(User)
                .where(User.id == user.id)
                .values(failed_logins=User.failed_logins + 1)
                .returning(User.failed_logins)
            )
            attempt = int(attempts or 1)
            add_audited_event(
                session, UserLoginFailed(user_id=user.id, reason="wrong_password", attempt=attempt)
            )
            if attempt >= self._policy.account_lockout_threshold:
                locked_until = now + self._policy.lockout_duration
                await session.execute(
                    update(User)
                    .where(User.id == user.id)
                    .values(failed_logins=0, locked_until=locked_until)
                )
                add_audited_event(
                    session,
                    UserLocked(
                        user_id=user.id,
                        locked_until=locked_until,
                        scope="account",
                        **account_tokens.mailed_to(user),
                    ),
                )

    async def _start_session(
        self, user_id: str, client: ClientInfo, *, announce: bool, session_id: str | None = None
    ) -> AuthResult:
        session_id = session_id or str(uuid.uuid4())
        refresh = REFRESH_PREFIX + secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        # The hot copy first: if the commit then fails, it is deleted again, so a
        # session and its user.logged_in event never disagree.
        await self._sessions.create(session_id, user_id)
        try:
            async with self._db.transaction() as session:
                key = await self._accounts.keys.ensure(session, user_id, now)
                session.add(
                    UserSession(
                        id=session_id,
                        user_id=user_id,
                        created_at=now,
                        expires_at=now + self._policy.refresh_ttl,
                        client_ciphertext=seal_client(key, client),
                    )
                )
                await session.flush()
                self._add_refresh_token(session, refresh, session_id, user_id, now)
                if announce:
                    owner = await session.get(User, user_id)
                    assert owner is not None  # a session belongs to a user (foreign key)
                    add_audited_event(
                        session,
                        UserLoggedIn(
                            user_id=user_id,
                            session_id=session_id,
                            device=self._device(client),
                            **account_tokens.mailed_to(owner),
                        ),
                    )
                user = await self._accounts.user_view(session, user_id)
        except Exception:
            await self._sessions.delete(session_id)
            raise
        token, expires_at = self._tokens.issue(user_id, session_id)
        return AuthResult(token, expires_at, refresh, session_id, user)

    def _add_refresh_token(
        self, session: Any, refresh: str, session_id: str, user_id: str, now: datetime
    ) -> None:
        session.add(
            RefreshToken(
                token_hash=token_hash(refresh),
                session_id=session_id,
                user_id=user_id,
                expires_at=now + self._policy.refresh_ttl,
            )
        )

    async def refresh(self, refresh_token: str, client: ClientInfo | None = None) -> AuthResult:
        """Spends a refresh token for a new pair. A spent token used again revokes its session."""
        client = client or ClientInfo()
        await self._rate.hit("refresh", ip=client.ip)
        if not refresh_token.startswith(REFRESH_PREFIX) or len(refresh_token) > 200:
            raise Unauthenticated("invalid refresh token")
        now = datetime.now(UTC)
        new_refresh = REFRESH_PREFIX + secrets.token_urlsafe(32)
        reused: RefreshToken | None = None
        async with self._db.transaction() as session:
            row = await session.get(RefreshToken, token_hash(refresh_token))
            if row is None or row.expires_at <= now:
                raise Unauthenticated("invalid refresh token")
            user_session = await session.get(UserSession, row.session_id)
            if user_session is None or user_session.revoked_at is not None:
                raise Unauthenticated("session has ended")
            spent = await session.execute(
                update(RefreshToken)
                .where(RefreshToken.token_hash == row.token_hash, RefreshToken.used_at.is_(None))
                .values(used_at=now)
            )
            if spent.rowcount != 1:  # type: ignore[attr-defined]
                # A spent token came back: someone holds a copy. End the whole family.
                reused = row
                user_session.revoked_at = now
                add_audited_event(
                    session,
                    SessionRevoked(
                        user_id=row.user_id, session_id=row.session_id, reason="refresh_token_reuse"
                    ),
                )
            else:
                self._add_refresh_token(session, new_refresh, row.session_id, row.user_id, now)
                user = await self._accounts.user_view(session, row.user_id)
        if reused is not None:
            await self._sessions.delete(reused.session_id)
            log.warning("refresh token reuse: session revoked", session_id=reused.session_id)
            raise Unauthenticated("refresh token was already used; the session is revoked")
        # The session may have idled out of Redis; the database says it is alive.
        await self._sessions.create(row.session_id, row.user_id)
        token, expires_at = self._tokens.issue(row.user_id, row.session_id)
        return AuthResult(token, expires_at, new_refresh, row.session_id, user)

    @property
    def session_store(self) -> SessionStore:
        return self._sessions

    async def logout(self, principal: Principal) -> bool:
        """Ends the caller's session; its token stops working at once."""
        return await self._end_session(principal.user_id, principal.session_id, reason=None)

    async def revoke_session(self, principal: Principal, session_id: str) -> bool:
        """Ends one of the caller's sessions (any device)."""
        if principal.api_key_id is not None:
            raise Unauthenticated("API keys have no sessions")
        return await self._end_session(principal.user_id, session_id, reason="revoked_by_user")

    async def _end_session(self, user_id: str, session_id: str, *, reason: str | None) -> bool:
        """Revokes in the database, then deletes the session from Redis, which is what
        makes its token stop working. If Redis does not answer then, the call fails
        (retrying it deletes again) rather than report an ended session whose token
        still works; auth's consumer deletes it too once Redis is back."""
        now = datetime.now(UTC)
        async with self._db.transaction() as session:
            row = await session.get(UserSession, session_id)
            if row is None or row.user_id != user_id:
                raise NotFound("no such session")
            ended_now = row.revoked_at is None
            if ended_now:
                row.revoked_at = now
                if reason is None:
                    add_audited_event(
                        session, UserLoggedOut(user_id=user_id, session_id=session_id)
                    )
                else:
                    add_audited_event(
                        session,
                        SessionRevoked(user_id=user_id, session_id=session_id, reason=reason),
                    )
        try:
            await self._sessions.delete(session_id)
        except (RedisError, OSError) as error:
            log.warning("session revoked but not deleted from Redis", error=repr(error))
            raise Unavailable(
                "the session is revoked, but its token may work until the session store "
                "answers again: retry"
            ) from None
        return ended_now

    async def sessions(self, principal: Principal) -> list[SessionView]:
        now = datetime.now(UTC)
        async with self._db.read() as session:
            keys = await self._accounts.keys.get_many(session, [principal.user_id])
            key = keys.get(principal.user_id)
            rows = await session.scalars(
                select(UserSession)
                .where(
                    UserSession.user_id == principal.user_id,
                    UserSession.revoked_at.is_(None),
                    UserSession.expires_at > now,
                )
                .order_by(UserSession.created_at.desc())
            )
            return [
                SessionView(
                    s.id,
                    s.created_at,
                    s.expires_at,
                    s.id == principal.session_id,
                    *open_client(key, s.client_ciphertext),
                )
                for s in rows.all()
            ]

    async def authenticate(self, token: str) -> Principal:
        """Verifies a bearer token in-process, then one Redis round trip (session + roles)."""
        if token.startswith(API_KEY_PREFIX):
            return await self._api_keys.authenticate(token)
        claims = self._tokens.verify(token)
        alive, roles = await self._sessions.touch(claims.session_id, claims.user_id)
        if not alive:
            raise Unauthenticated("session has ended")
        if roles is None:
            roles = await self._accounts.roles(claims.user_id)
        return principal_of(claims.user_id, claims.session_id, roles)

    async def reauthorize(self, principal: Principal) -> Principal:
        """The principal as it stands now, for a connection that outlives its token check.

        A session must still be alive (one Redis round trip that also reads the cached
        roles, as `authenticate` does) and brings its current roles; an API key must not
        be revoked. UNAUTHENTICATED otherwise. The token itself is not verified again:
        the session, not the token's expiry, is what a long-lived connection rests on.
        """
        if principal.api_key_id is not None:
            return await self._api_keys.current(principal)
        # From Redis itself, never this process's copy: the hub re-resolves through this
        # when it cannot trust events, and an open socket's operations are checked here.
        alive, roles = await self._sessions.touch(
            principal.session_id, principal.user_id, from_store=True
        )
        if not alive:
            raise Unauthenticated("session has ended")
        if roles is None:
            roles = await self._accounts.roles(principal.user_id)
        return principal_of(principal.user_id, principal.session_id, roles)

    async def me(self, principal: Principal) -> UserView | None:
        if principal.api_key_id is not None:
            return None
        async with self._db.read() as session:
            return await self._accounts.user_view(session, principal.user_id)

    def jwks(self) -> dict[str, Any]:
        return self._tokens.jwks()

    # --- the user's data export (exportMyData, `haunted privacy export`) ---------------

    async def export_subject(self, caller: Caller, user_id: str) -> ExportSubject:
        """The user an export is about, with their teams; NOT_FOUND for no such user."""
        return await export.subject(self._accounts, caller, user_id)

    async def export_account(self, caller: Caller, of: ExportSubject) -> export.AccountExport:
        return await export.account(self._accounts, caller, of)

    async def export_sessions(
        self, caller: Caller, of: ExportSubject
    ) -> list[export.SessionExport]:
        return await export.sessions(self._accounts, caller, of)

    async def record_data_export(self, caller: Caller, user_id: str) -> None:
        """Audits that the user's data export was asked for (by them, or by an operator)."""
        require_self(caller, user_id)
        via = "operator" if isinstance(caller, Operator) else "link"
        async with self._db.transaction() as session:
            add_audited_event(session, DataExportRequested(user_id=user_id, via=via))
