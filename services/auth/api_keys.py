"""API keys for server-to-server callers: one team, chosen permissions, shown once."""

from __future__ import annotations

import builtins
import hmac
import json
import secrets
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import select, update

from schemas import ApiKeyRevoked
from services.auth import export
from services.auth.accounts import Accounts
from services.auth.audit import add_audited_event
from services.auth.crypto import token_hash
from services.auth.models import ApiKey
from services.auth.sessions import TOMBSTONE, TOMBSTONE_TTL_S
from services.auth.views import ApiKeyView
from services.errors import BadUserInput, Forbidden, NotFound, Unauthenticated
from services.principal import ALL_PERMISSIONS, Caller, ExportSubject, Principal, requires

API_KEY_PREFIX = "hk_"
_CACHE = "haunted:apikey:"
_USED = "haunted:apikey-used:"
_CACHE_TTL_S = 300
_LAST_USED_EVERY_S = 60


class ApiKeyService:
    def __init__(self, accounts: Accounts, redis: Redis) -> None:
        self._accounts = accounts
        self._db = accounts.db
        self._redis = redis

    @requires("team:manage")
    async def create(
        self,
        principal: Principal,
        name: str,
        permissions: list[str],
        *,
        team_id: str | None = None,
    ) -> tuple[str, ApiKeyView]:
        """Returns the key itself (shown this once) and its record."""
        assert team_id is not None  # set by the guard
        if principal.api_key_id is not None:
            raise Forbidden("an API key cannot create API keys")
        name = name.strip()
        if not name or len(name) > 200:
            raise BadUserInput("name must have 1 to 200 characters", field="name")
        wanted = set(permissions)
        unknown = wanted - ALL_PERMISSIONS
        if unknown:
            raise BadUserInput(f"unknown permissions: {', '.join(sorted(unknown))}")
        beyond = wanted - principal.permissions(team_id)
        if beyond:
            raise Forbidden(f"cannot grant what you do not have: {', '.join(sorted(beyond))}")
        key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        row = ApiKey(
            id=key_id,
            team_id=team_id,
            name=name,
            secret_hash=token_hash(secret),
            permissions=sorted(wanted),
            created_by=principal.user_id,
            created_at=datetime.now(UTC),
        )
        async with self._db.transaction() as session:
            session.add(row)
        return f"{API_KEY_PREFIX}{key_id}_{secret}", ApiKeyView.of(row)

    @requires("team:manage")
    async def list(self, principal: Principal, *, team_id: str | None = None) -> list[ApiKeyView]:
        async with self._db.read() as session:
            rows = await session.scalars(
                select(ApiKey).where(ApiKey.team_id == team_id).order_by(ApiKey.created_at)
            )
            return [ApiKeyView.of(row) for row in rows.all()]

    async def revoke(self, principal: Principal, key_id: str) -> bool:
        async with self._db.read() as session:
            key = await session.get(ApiKey, key_id)
        if key is None or key.team_id not in principal.teams:
            raise NotFound("no such API key")
        return await self._revoke(principal, key_id, team_id=key.team_id)

    @requires("team:manage")
    async def _revoke(self, principal: Principal, key_id: str, *, team_id: str | None) -> bool:
        assert team_id is not None  # set by the guard
        async with self._db.transaction() as session:
            result = await session.execute(
                update(ApiKey)
                .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
            revoked = bool(result.rowcount)  # type: ignore[attr-defined]
            if revoked:  # gateways end the key's open streams when they read it
                add_audited_event(
                    session,
                    ApiKeyRevoked(team_id=team_id, api_key_id=key_id, actor_id=principal.user_id),
                )
        await self._redis.set(_CACHE + key_id, TOMBSTONE, ex=TOMBSTONE_TTL_S)
        return revoked

    async def authenticate(self, token: str) -> Principal:
        """`hk_<id>_<secret>`: checked against its hash (cached in Redis for 5 minutes)."""
        key_id, sep, secret = token.removeprefix(API_KEY_PREFIX).partition("_")
        if not sep or not key_id or not secret or len(token) > 200:
            raise Unauthenticated("invalid API key")
        record = await self._record(key_id)
        if (
            record is None
            or record["revoked"]
            or not hmac.compare_digest(record["secret_hash"], token_hash(secret))
        ):
            raise Unauthenticated("invalid API key")
        if await self._redis.set(_USED + key_id, 1, nx=True, ex=_LAST_USED_EVERY_S):
            async with self._db.transaction() as session:
                await session.execute(
                    update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=datetime.now(UTC))
                )
        return Principal(
            user_id=f"apikey:{key_id}",
            session_id=f"apikey:{key_id}",
            teams={record["team_id"]: "api"},
            granted=frozenset(record["permissions"]),
            api_key_id=key_id,
        )

    async def current(self, principal: Principal) -> Principal:
        """An API key principal as it stands now: UNAUTHENTICATED once the key is revoked.

        What a long-lived connection calls per operation, instead of keeping the view it
        had when it opened (the record comes from the same Redis cache as authenticate)."""
        assert principal.api_key_id is not None
        record = await self._record(principal.api_key_id)
        if record is None or record["revoked"]:
            raise Unauthenticated("the API key was revoked")
        return Principal(
            user_id=principal.user_id,
            session_id=principal.session_id,
            teams={record["team_id"]: "api"},
            granted=frozenset(record["permissions"]),
            api_key_id=principal.api_key_id,
        )

    async def export_api_keys(self, caller: Caller, of: ExportSubject) -> builtins.list[ApiKeyView]:
        """The keys the user created (names, permissions, times), for their data export."""
        return await export.api_keys(self._accounts, caller, of)

    async def _record(self, key_id: str) -> dict[str, Any] | None:
        cached = await self._redis.get(_CACHE + key_id)
        if cached is not None and cached != TOMBSTONE:
            record: dict[str, Any] | None = json.loads(cached)
            return record
        async with self._db.read() as session:
            key = await session.get(ApiKey, key_id)
        if key is None:
            return None
        record = {
            "team_id": key.team_id,
            "secret_hash": key.secret_hash,
            "permissions": list(key.permissions),
            "revoked": key.revoked_at is not None,
        }
        await self._redis.set(_CACHE + key_id, json.dumps(record), ex=_CACHE_TTL_S, nx=True)
        return record
