"""A fake `EventProducer` for unit tests: it records what would be published.

End-to-end tests keep the real broker; a facade's or a handler's own behaviour
(rows, outbox, dead letters) needs none. Same interface as `KafkaProducer`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from events.envelope import Envelope


@dataclass(frozen=True, slots=True)
class Sent:
    topic: str
    key: bytes
    headers: dict[str, str]
    value: bytes

    def envelope(self) -> Envelope:
        return Envelope.from_record(self.headers, self.value)


@dataclass
class RecordingProducer:
    """Each send is recorded and acknowledged at once; `fail_with` makes every
    send's future fail (a broker that refuses), to test what callers do then."""

    sent: list[Sent] = field(default_factory=list)
    fail_with: Exception | None = None

    async def send(
        self, topic: str, key: bytes, headers: dict[str, str], value: bytes
    ) -> asyncio.Future[object]:
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        if self.fail_with is not None:
            future.set_exception(self.fail_with)
            return future
        self.sent.append(Sent(topic, key, dict(headers), value))
        future.set_result(None)
        return future

    def topics(self) -> list[str]:
        return [sent.topic for sent in self.sent]
