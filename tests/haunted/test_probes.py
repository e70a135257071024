"""A worker's /metrics, /healthz and /readyz (haunted/probes.py, HAUNTED_WORKER_PORT)."""

from __future__ import annotations

import re

import httpx

from events.envelope import Envelope
from haunted.settings import Settings
from schemas import UserLoggedIn
from tests.conftest import eventually, serve_worker


def _value(metrics: str, name: str, **labels: str) -> float | None:
    for line in metrics.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_a_worker_serves_its_lag_and_handled_counts(settings: Settings) -> None:
    async with serve_worker(settings, workers=("analytics",)) as worker:
        haunted = worker.haunted
        async with httpx.AsyncClient(base_url=worker.url, timeout=5) as client:
            before = (await client.get("/metrics")).text
            # Exported at 0 before the first event: increase() sees the first one.
            assert (
                _value(
                    before,
                    "haunted_events_handled_total",
                    consumer="analytics",
                    type="user.logged_in",
                    outcome="dead_lettered",
                )
                is not None
            )
            assert "_created" not in before
            # Counters are per process: earlier tests in this one may have counted.
            handled_before = _value(
                before,
                "haunted_events_handled_total",
                consumer="analytics",
                type="user.logged_in",
                outcome="handled",
            )
            assert handled_before is not None
            assert _value(before, "haunted_build_info", role="worker") == 1

            for number in range(3):
                await haunted.producer.publish(
                    Envelope.wrap(UserLoggedIn(user_id="u1", session_id=f"s{number}"))
                )

            async def counted() -> str | None:
                text = (await client.get("/metrics")).text
                handled = _value(
                    text,
                    "haunted_events_handled_total",
                    consumer="analytics",
                    type="user.logged_in",
                    outcome="handled",
                )
                lag = _value(
                    text,
                    "haunted_consumer_lag_records",
                    group="haunted.analytics",
                    topic="user.logged_in",
                )
                done = handled is not None and handled - handled_before == 3
                return text if done and lag is not None else None

            metrics = await eventually(counted, timeout_s=30)
            assert "haunted_consumer_lag_records" in metrics
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
