"""Notification ids: ULIDs (26 Crockford base32 characters) that only grow, per user.

Each id is a 48-bit millisecond time and 80 random bits, so ids sort by time
as plain strings. Each user's next id is also above their previous one (see
`next_id`), so a user's ids sort in the order their notifications committed:
"everything after id X" is exact, which recovery with `since` relies on.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_VALUES = {char: index for index, char in enumerate(_ALPHABET)}
_PATTERN = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")
LENGTH = 26
_MAX = (1 << 128) - 1


def encode(value: int) -> str:
    return "".join(_ALPHABET[(value >> shift) & 31] for shift in range(125, -1, -5))


def decode(text: str) -> int:
    value = 0
    for char in text:
        value = (value << 5) | _VALUES[char]
    return value


def is_notification_id(text: object) -> bool:
    return isinstance(text, str) and _PATTERN.match(text) is not None


def next_id(now: datetime, previous: str | None = None) -> str:
    """A fresh id for `now`, above `previous` (the user's last id) even if the clock
    went back or two came in one millisecond."""
    fresh = (int(now.timestamp() * 1000) << 80) | secrets.randbits(80)
    if previous is not None:
        fresh = max(fresh, decode(previous) + 1)
    return encode(min(fresh, _MAX))
