"""Automatic persisted queries (Apollo's APQ protocol) and the optional allow-list.

A client sends `extensions.persistedQuery = {version: 1, sha256Hash}` without
the query; an unknown hash is answered PersistedQueryNotFound (code
PERSISTED_QUERY_NOT_FOUND), and the client sends the hash with the query.
The hash is checked against the query, and once the document has passed
validation and the limits it is stored in Redis (`haunted:apq:<hash>`), so
every gateway process knows it. Each process keeps the documents it has seen
in a small LRU in front of Redis: a hash names one document for ever.

Allow-list mode (production, optional): only the documents of a file of
operations run, whether sent by hash or in full; nothing is registered.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog
from graphql import GraphQLError
from prometheus_client import Counter
from redis.asyncio import Redis

log = structlog.get_logger(__name__)

KEY_PREFIX = "haunted:apq:"
NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
_SHA256 = re.compile(r"[0-9a-f]{64}")

PERSISTED = Counter(
    "haunted_graphql_persisted_queries_total",
    "Persisted query look-ups and registrations",
    ["result"],
)


def sha256_hex(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


class PersistedQueryError(GraphQLError):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message, extensions={"code": code})


def load_allowlist(path: Path) -> dict[str, str]:
    """Reads a file of operations: `{"<sha256>": "<document>", ...}`, or Apollo's
    persisted query manifest (`{"operations": [{"id": "<sha256>", "body": ...}]}`).

    Raises ValueError naming the file and the first bad entry.
    """
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable JSON file of operations ({error})") from None
    if isinstance(raw, dict) and isinstance(raw.get("operations"), list):
        pairs = [
            (op.get("id"), op.get("body")) if isinstance(op, dict) else (None, None)
            for op in raw["operations"]
        ]
    elif isinstance(raw, dict):
        pairs = list(raw.items())
    else:
        raise ValueError(f"{path}: expected a JSON object of sha256 -> document")
    operations: dict[str, str] = {}
    for number, (sha, document) in enumerate(pairs, start=1):
        if not isinstance(sha, str) or not isinstance(document, str):
            raise ValueError(f"{path}: operation {number} needs a sha256 and a document")
        if sha256_hex(document) != sha.lower():
            raise ValueError(f"{path}: operation {sha} does not hash to its sha256")
        operations[sha.lower()] = document
    return operations


class PersistedQueries:
    """Resolves `extensions.persistedQuery` of a request into its query text.

    `redis=None` keeps registered documents in this process only.
    """

    def __init__(
        self,
        redis: Redis | None = None,
        *,
        enabled: bool = True,
        ttl_s: int = 7 * 24 * 3600,
        allowlist: Mapping[str, str] | None = None,
        local_entries: int = 1000,
        max_local_chars: int = 10_000,
    ) -> None:
        self._redis = redis
        self.enabled = enabled
        self._ttl_s = ttl_s
        self.allowlist = dict(allowlist) if allowlist is not None else None
        self._local: OrderedDict[str, str] = OrderedDict()
        self._local_entries = local_entries
        self._max_local_chars = max_local_chars

    def applies_to(self, data: dict[str, Any]) -> bool:
        """Cheap test for the hot path: most requests carry neither a hash nor a list to obey."""
        return self.allowlist is not None or "extensions" in data

    async def resolve(self, data: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """The request's data with its query filled in, and the hash to register once the
        document is known to be valid (None when there is nothing to register).

        Raises PersistedQueryError (an answer for the client).
        """
        extensions = data.get("extensions")
        if extensions is None:
            extensions = {}
        if not isinstance(extensions, dict):
            raise PersistedQueryError("extensions must be an object", "BAD_USER_INPUT")
        persisted = extensions.get("persistedQuery")
        query = data.get("query")
        if persisted is None:
            if self.allowlist is not None and isinstance(query, str):
                self._require_allowed(sha256_hex(query))
            return data, None
        if not self.enabled:
            raise PersistedQueryError("PersistedQueryNotSupported", NOT_SUPPORTED)
        sha = _requested_hash(persisted)
        if query is None or query == "":
            if self.allowlist is not None:
                self._require_allowed(sha)
            known = await self._lookup(sha)
            if known is None:
                PERSISTED.labels("not_found").inc()
                raise PersistedQueryError("PersistedQueryNotFound", NOT_FOUND)
            PERSISTED.labels("hit").inc()
            return {**data, "query": known}, None
        if not isinstance(query, str):
            return data, None  # Ariadne answers a query that is not a string
        if sha256_hex(query) != sha:
            raise PersistedQueryError(
                "persistedQuery.sha256Hash does not match the sha256 of the query",
                "BAD_USER_INPUT",
            )
        if self.allowlist is not None:
            self._require_allowed(sha)
            return data, None
        return data, None if sha in self._local else sha

    def _require_allowed(self, sha: str) -> None:
        assert self.allowlist is not None
        if sha not in self.allowlist:
            PERSISTED.labels("refused").inc()
            raise PersistedQueryError(
                "only the operations of the allow-list run here, and this one is not in it",
                "FORBIDDEN",
            )

    async def _lookup(self, sha: str) -> str | None:
        if self.allowlist is not None:
            return self.allowlist.get(sha)
        known = self._local.get(sha)
        if known is not None:
            self._local.move_to_end(sha)
            return known
        if self._redis is None:
            return None
        raw = await self._redis.get(KEY_PREFIX + sha)
        if raw is None:
            return None
        query = raw.decode() if isinstance(raw, bytes) else str(raw)
        if sha256_hex(query) != sha:  # never trust a store to keep what it was given
            return None
        self._remember(sha, query)
        return query

    async def register(self, sha: str, query: str) -> None:
        """Stores a valid document under its hash; a store that fails only costs a re-send."""
        self._remember(sha, query)
        PERSISTED.labels("registered").inc()
        if self._redis is None:
            return
        try:
            await self._redis.set(KEY_PREFIX + sha, query, ex=self._ttl_s)
        except Exception as error:  # the query still runs; clients send it again
            log.warning("persisted query not stored", sha256=sha, error=repr(error))

    def _remember(self, sha: str, query: str) -> None:
        if len(query) > self._max_local_chars or self._local_entries <= 0:
            return
        self._local[sha] = query
        self._local.move_to_end(sha)
        while len(self._local) > self._local_entries:
            self._local.popitem(last=False)


def _requested_hash(persisted: Any) -> str:
    if not isinstance(persisted, dict):
        raise PersistedQueryError("extensions.persistedQuery must be an object", "BAD_USER_INPUT")
    version = persisted.get("version")
    if type(version) is not int or version != 1:
        raise PersistedQueryError("extensions.persistedQuery.version must be 1", "BAD_USER_INPUT")
    sha = persisted.get("sha256Hash")
    if not isinstance(sha, str) or not _SHA256.fullmatch(sha.lower()):
        raise PersistedQueryError(
            "extensions.persistedQuery.sha256Hash must be a hex sha256", "BAD_USER_INPUT"
        )
    return sha.lower()
