"""Signed, expiring download links: `/exports/<id>?exp=<unix time>&sig=<HMAC-SHA256>`.

The signature covers the export's id and its expiry, so neither can be changed; the
id names the one user it was made for (kept in Redis until it expires).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

from services.errors import DomainError


class LinkRefused(DomainError):
    """A link whose signature does not match, or one used by another user: 403."""

    code = "FORBIDDEN"
    status = 403


class LinkExpired(DomainError):
    """A genuine link past its expiry (or whose export is gone): 410."""

    code = "NOT_FOUND"
    status = 410


class ExportLinks:
    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the export link key must be at least 32 bytes")
        self._key = key

    def signature(self, export_id: str, expires: int) -> str:
        digest = hmac.new(self._key, f"{export_id}.{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def query(self, export_id: str, expires: int) -> str:
        return f"exp={expires}&sig={self.signature(export_id, expires)}"

    def check(self, export_id: str, expires: str, signature: str, now: datetime) -> int:
        """The expiry (unix seconds) of a genuine, unexpired link; LinkRefused for a
        changed or made-up one, LinkExpired for a genuine one too late."""
        if not expires.isdigit() or len(expires) > 12:
            raise LinkRefused("this export link is not valid")
        expected = self.signature(export_id, int(expires))
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            raise LinkRefused("this export link is not valid")
        if now.timestamp() >= int(expires):
            raise LinkExpired("this export link has expired: ask for a new export")
        return int(expires)
