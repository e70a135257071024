"""A user's data export (issue 20): the streamed archive against a plain read of the rows.

    python -m bench.exports [--events N] [--backend real|embedded|both]

A scratch store (bench.common.stores) gets N analytics events for one user (and as
many for another, who must not slow it down). Then, in turns:
- the facade: `AnalyticsService.export_events` through `write_archive` (pages of
  500 rows, each item serialised as it is read), bytes counted and dropped, as the
  gateway's streaming response does;
- the baseline: one SELECT of the same rows through the same engine, every row
  to a dict, one `json.dumps` of the whole list (what an unstreamed export does).
Each prints events/s and its peak of Python memory (tracemalloc): the archive's
peak must stay flat while the baseline's grows with N.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from bench.common import BACKENDS, Backend, heading, line, quiet_logs, stores
from bench.summary import goal
from events.db import Database
from events.envelope import Envelope
from haunted.runtime import build_redis
from schemas import AnalyticsTracked
from services.analytics import AnalyticsService, record_batch
from services.analytics.models import AnalyticsEvent
from services.exports import write_archive
from services.principal import ExportSubject, Operator

USER, OTHER = "bench-user", "bench-other"


async def fill(db: Database, events: int) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for first in range(0, events, 1000):
        batch = []
        for index in range(first, min(first + 1000, events)):
            for user in (USER, OTHER):
                event = AnalyticsTracked(
                    name="page_viewed",
                    user_id=user,
                    team_id="bench-team",
                    properties={"path": f"/docs/{index % 97}", "n": index},
                )
                envelope = Envelope.wrap(event, time=start + timedelta(seconds=index))
                batch.append((envelope, event))
        async with db.transaction() as session:
            await record_batch(session, batch)


async def measured(run: Callable[[], Awaitable[int]]) -> tuple[float, int, int]:
    """(seconds, bytes written, peak Python memory in bytes)."""
    tracemalloc.start()
    began = time.perf_counter()
    written = await run()
    elapsed = time.perf_counter() - began
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return elapsed, written, peak


async def bench(backend: Backend, events: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        async with stores(backend, Path(directory)) as store:
            db = Database(store.database_url)
            redis = build_redis(store.redis_url)
            try:
                await fill(db, events)
                service = AnalyticsService(db, redis, redis_url=store.redis_url)
                subject = ExportSubject(USER, {})

                async def streamed() -> int:
                    sections = [("tracked_events", service.export_events)]
                    size = 0
                    archive = write_archive(sections, Operator("bench"), subject, datetime.now(UTC))
                    async for chunk in archive:
                        size += len(chunk)
                    return size

                async def whole() -> int:
                    async with db.read() as session:
                        rows = (
                            await session.scalars(
                                select(AnalyticsEvent)
                                .where(AnalyticsEvent.user_id == USER)
                                .order_by(AnalyticsEvent.time, AnalyticsEvent.id)
                            )
                        ).all()
                    items = [
                        {
                            "id": row.id,
                            "type": row.type,
                            "time": row.time.isoformat(),
                            "source": row.source,
                            "team_id": row.team_id,
                            "data": row.properties,
                        }
                        for row in rows
                    ]
                    return len(json.dumps({"tracked_events": items}).encode())

                heading(f"data export of {events:,} events, {backend}")
                results = {}
                for name, run in (("baseline", whole), ("archive", streamed)) * 2:
                    results[name] = await measured(run)  # the second turn of each is kept
                base_s, base_bytes, base_peak = results["baseline"]
                arch_s, arch_bytes, arch_peak = results["archive"]
                base_rate, arch_rate = events / base_s, events / arch_s
                line("baseline: one SELECT + json.dumps", f"{base_rate:,.0f} ev/s")
                line("  its peak Python memory", f"{base_peak / 1e6:.1f} MB ({base_bytes:,} B)")
                line("archive: streamed in pages", f"{arch_rate:,.0f} ev/s")
                line("  its peak Python memory", f"{arch_peak / 1e6:.1f} MB ({arch_bytes:,} B)")
                ratio = arch_rate / base_rate
                line("archive / baseline", f"{ratio:.2f}x the rate")
                goal(
                    f"data export ({backend})",
                    f"{arch_rate:,.0f} ev/s vs one SELECT {base_rate:,.0f} ev/s",
                    ratio,
                    0.5,
                )
                goal(
                    f"data export memory ({backend})",
                    f"peak {arch_peak / 1e6:.1f} MB vs whole {base_peak / 1e6:.1f} MB",
                    arch_peak / base_peak,
                    0.5,
                    at_most=True,
                )
            finally:
                await redis.aclose()
                await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.exports", description=__doc__)
    parser.add_argument("--events", type=int, default=20_000, help="events of the user")
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    args = parser.parse_args()
    quiet_logs()
    backends: tuple[Backend, ...] = BACKENDS if args.backend == "both" else (args.backend,)
    for backend in backends:
        asyncio.run(bench(backend, args.events))


if __name__ == "__main__":
    main()
