"""The archive: one JSON object written a piece at a time, never whole in memory.

A section is one service's part: a value (a view, a list of views) or an async
iterator of views, which is written item by item as its pages are read.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from pydantic_core import to_json

from services.principal import Caller, ExportSubject

FORMAT = "haunted.export.v1"
# Items joined into one chunk before it is sent: fewer, larger writes.
_CHUNK_ITEMS = 100

Section = Callable[[Caller, ExportSubject], Awaitable[Any] | AsyncIterator[Any]]


async def write_archive(
    sections: Sequence[tuple[str, Section]],
    caller: Caller,
    subject: ExportSubject,
    generated_at: datetime,
) -> AsyncIterator[bytes]:
    """The archive's bytes: {"format", "user_id", "generated_at", "sections": {name: part}}."""
    head = {"format": FORMAT, "user_id": subject.user_id, "generated_at": generated_at}
    yield to_json(head)[:-1] + b',"sections":{'
    for index, (name, read) in enumerate(sections):
        yield (b"," if index else b"") + json.dumps(name).encode() + b":"
        part = read(caller, subject)
        if isinstance(part, AsyncIterator):
            async for chunk in _array(part):
                yield chunk
        else:
            yield to_json(await part)
    yield b"}}"


async def _array(items: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    yield b"["
    batch: list[bytes] = []
    first = True
    async for item in items:
        batch.append(to_json(item))
        if len(batch) >= _CHUNK_ITEMS:
            yield (b"" if first else b",") + b",".join(batch)
            first, batch = False, []
    if batch:
        yield (b"" if first else b",") + b",".join(batch)
    yield b"]"
