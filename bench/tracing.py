"""What tracing costs the gateway: `{ __typename }` q/s with 10% sampling vs tracing off.

`python -m bench.tracing [--duration S] [--rounds R] [--connections N] [--ratio R]`

Two `haunted serve` processes on the same stores and broker, identical but for
tracing: one without `HAUNTED_OTLP_ENDPOINT` (off: no provider, no
instrumentation), one exporting OTLP/HTTP to a local sink that answers 200
(`HAUNTED_TRACE_SAMPLE_RATIO`, 0.1 by default). Both log JSON at INFO to
/dev/null, as in production. wrk (one thread, 16 connections) drives them in
interleaved rounds, so a neighbour's load on this shared machine spreads over
both; the rate is over all rounds. Goal: traced/off >= 0.9.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.common import embedded_broker, free_port, heading, line, serving, stores
from bench.graphql_gateway import TYPENAME, WARM_UP_S, Load, _check, _graphql_body, combine, wrk
from bench.summary import goal

GOAL = 0.9


async def _sink(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An OTLP/HTTP endpoint that takes every export and keeps nothing."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


@asynccontextmanager
async def gateway(env: dict[str, str], port: int) -> AsyncIterator[str]:
    """`haunted serve` in its own process with these settings; yields its URL once ready."""
    haunted = Path(sys.executable).parent / "haunted"
    process = await asyncio.create_subprocess_exec(
        str(haunted),
        "serve",
        env={**os.environ, **env, "HAUNTED_PORT": str(port)},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            for _ in range(600):
                if process.returncode is not None:
                    raise RuntimeError(f"haunted serve exited with {process.returncode}")
                try:
                    if (await client.get(f"{url}/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("haunted serve did not start")
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):  # it may have exited already
            process.terminate()
        await process.wait()


async def run(duration_s: int, rounds: int, connections: int, ratio: float) -> tuple[Load, Load]:
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        scripts = directory / "wrk"
        scripts.mkdir()
        async with (
            stores("embedded", directory) as found,
            embedded_broker() as broker,
            serving(_sink, free_port()) as sink,
        ):
            common = {
                "HAUNTED_ENV": "test",
                "HAUNTED_DATA_DIR": str(directory / ".haunted"),
                "HAUNTED_LOG_LEVEL": "INFO",
                "HAUNTED_LOG_JSON": "true",
                "HAUNTED_DATABASE_URL": found.database_url,
                "HAUNTED_REDIS_URL": found.redis_url,
                "HAUNTED_KAFKA_BOOTSTRAP": broker.bootstrap_servers,
            }
            traced_env = {
                **common,
                "HAUNTED_OTLP_ENDPOINT": sink,
                "HAUNTED_TRACE_SAMPLE_RATIO": str(ratio),
            }
            async with (
                gateway(common, free_port()) as off_url,
                gateway(traced_env, free_port()) as traced_url,
            ):
                body = _graphql_body(TYPENAME)
                targets = {"off": f"{off_url}/graphql", "traced": f"{traced_url}/graphql"}
                for url in targets.values():
                    await _check(url, body, None)
                    await wrk(
                        url,
                        body,
                        token=None,
                        duration_s=WARM_UP_S,
                        connections=connections,
                        scripts=scripts,
                    )
                runs: dict[str, list[Load]] = {name: [] for name in targets}
                for round_ in range(rounds):
                    order = list(targets) if round_ % 2 == 0 else list(reversed(targets))
                    for name in order:
                        runs[name].append(
                            await wrk(
                                targets[name],
                                body,
                                token=None,
                                duration_s=duration_s,
                                connections=connections,
                                scripts=scripts,
                            )
                        )
                return combine(runs["off"]), combine(runs["traced"])


def report(off: Load, traced: Load, ratio: float) -> None:
    heading(f"Tracing overhead: gateway {{ __typename }}, {ratio:.0%} sampling vs off (wrk)")
    for label, load in (("tracing off (baseline)", off), (f"{ratio:.0%} sampled", traced)):
        line(
            label,
            f"{load.requests_per_s:,.0f} q/s  p50 {load.p50_ms:.2f} ms  p99 {load.p99_ms:.2f} ms"
            + (f"  ({load.failures} failures)" if load.failures else ""),
        )
    share = traced.requests_per_s / off.requests_per_s
    line("traced / off", f"{share:.2f}x (goal >= {GOAL}x)")
    goal(
        f"tracing at {ratio:.0%} sampling, {{ __typename }}",
        f"{traced.requests_per_s:,.0f} q/s vs off {off.requests_per_s:,.0f} q/s",
        share,
        GOAL,
    )


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.tracing", description=__doc__)
    parser.add_argument("--duration", type=int, default=5, help="seconds per round (default 5)")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per target (default 6)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--ratio", type=float, default=0.1, help="sampling ratio (default 0.1)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(sys.argv[1:] if argv is None else argv)
    if shutil.which("wrk") is None:
        heading("Tracing overhead: skipped, it needs wrk (apt-get install -y wrk)")
        return
    off, traced = asyncio.run(run(args.duration, args.rounds, args.connections, args.ratio))
    report(off, traced, args.ratio)


if __name__ == "__main__":
    main()
