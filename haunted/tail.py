"""`haunted events tail`: CloudEvents on the topics, pretty-printed, as they come."""

from __future__ import annotations

import json

from rich.console import Console
from rich.markup import escape

from events.broker import KafkaSettings, catalog_topics
from events.tail import Tailed, tail


def unknown_topics(topics: list[str]) -> list[str]:
    known = set(catalog_topics())
    return [topic for topic in topics if topic not in known]


async def print_tail(
    out: Console,
    kafka: KafkaSettings,
    topics: list[str],
    types: list[str],
    *,
    from_beginning: bool,
    last: int,
    follow: bool,
) -> int:
    """Prints each record as it is read; returns how many were printed."""
    printed = 0
    async for item in tail(
        kafka, topics, types=types, from_beginning=from_beginning, last=last, follow=follow
    ):
        out.print(render(item), highlight=False, soft_wrap=True)
        printed += 1
    return printed


def render(item: Tailed) -> str:
    where = f"[dim]{item.topic}[{item.partition}]@{item.offset}[/dim]"
    envelope = item.envelope
    if envelope is None:
        return f"{where} [red]not a CloudEvent[/red]: {escape(item.error or '')}"
    data = escape(json.dumps(envelope.data, ensure_ascii=False, sort_keys=True))
    return (
        f"[cyan]{envelope.time.isoformat(timespec='milliseconds')}[/cyan] "
        f"[bold]{escape(envelope.type)}[/bold] {escape(envelope.subject)} "
        f"id={escape(envelope.id)} {where}\n  {data}"
    )
