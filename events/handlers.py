"""A consumer's handlers, registered by event class: the topics it subscribes to follow.

One registry per consumer group. A handler is registered for the schema classes
it handles (`@handlers.on(UserRegistered, TeamMemberAdded)`); the group's topics
are those classes' topics, and each event goes to the handlers of its class, in
registration order. There is no second list of topics to keep in step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from events.broker import Bus
from events.consumer import BatchHandler, EventConsumers, EventHandler
from events.envelope import Envelope
from events.replay import Rebuild, ReplayTarget
from schemas import Event


class Handlers:
    """Handlers of one consumer group (`haunted.<consumer>`), by event class."""

    def __init__(self, consumer: str) -> None:
        self.consumer = consumer
        self._by_event: dict[type[Event], list[EventHandler]] = {}

    def on(self, *events: type[Event]) -> Callable[[EventHandler], EventHandler]:
        """Registers the decorated handler for these event classes."""
        if not events:
            raise ValueError("a handler is registered for at least one event class")

        def register(handler: EventHandler) -> EventHandler:
            for event in events:
                self._by_event.setdefault(event, []).append(handler)
            return handler

        return register

    @property
    def events(self) -> tuple[type[Event], ...]:
        return tuple(self._by_event)

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(event.topic for event in self._by_event)

    async def handle(self, session: AsyncSession, event: Event, envelope: Envelope) -> None:
        """Every handler registered for the event's class, in registration order."""
        for handler in self._by_event.get(type(event), ()):
            await handler(session, event, envelope)

    def subscribe(self, consumers: EventConsumers, bus: Bus) -> None:
        consumers.subscribe(bus, self.consumer, self.topics, self.handle)

    def replay_target(self, rebuild: Rebuild | None = None) -> ReplayTarget:
        return ReplayTarget(self.consumer, self.topics, handler=self.handle, rebuild=rebuild)


@dataclass(frozen=True)
class BatchHandlers:
    """One handler for every event of a fetched batch, in one transaction (see
    `EventConsumers.subscribe_batch`), over the topics of `events`."""

    consumer: str
    events: tuple[type[Event], ...]
    handler: BatchHandler

    @classmethod
    def over(
        cls, consumer: str, events: Iterable[type[Event]], handler: BatchHandler
    ) -> BatchHandlers:
        return cls(consumer, tuple(events), handler)

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(event.topic for event in self.events)

    def subscribe(self, consumers: EventConsumers, bus: Bus) -> None:
        consumers.subscribe_batch(bus, self.consumer, self.topics, self.handler)

    def replay_target(self, rebuild: Rebuild | None = None) -> ReplayTarget:
        return ReplayTarget(self.consumer, self.topics, batch_handler=self.handler, rebuild=rebuild)


__all__ = ["BatchHandlers", "Handlers"]
