"""GraphQL gateway throughput and latency against a bare FastAPI route and bare Ariadne.

`python -m bench.graphql_gateway [--backend real|embedded] [--duration S] [--connections N]
[--rounds R]`

One process serves, under uvicorn as `haunted serve` does, with JSON logs at
INFO (to /dev/null) and metrics on:

- the Haunted gateway (`Haunted.build(settings, workers=()).asgi_app()`), plus
  a bare FastAPI JSON route mounted on the same FastAPI app: the baseline;
- a bare Ariadne app on FastAPI (`GraphQL(make_executable_schema(...))` over
  the same type definitions), as a new user would write it.

wrk drives each target in turn on loopback (16 connections, one wrk thread:
the server has the other core) after a short warm-up:

- `{ __typename }` through the gateway, the bare route and bare Ariadne;
- `{ __typename }` with a bearer token: what authentication costs (JWT verify
  + session check in Redis);
- `{ me { id } }` with a bearer token: that, plus the `me` resolver;
- a mixed document (me + memberships + isFeatureEnabled + notifications(first:
  20)): p50/p99.

Rounds interleave the targets (3 rounds of 3 s each by default), so that a
neighbour's load on this shared machine spreads over all of them; the rate is
over all rounds, the percentiles the median of the rounds'.

Every target is checked with one request before it is measured, and a run
with non-2xx answers or socket errors is reported as such.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from ariadne import make_executable_schema
from ariadne.asgi import GraphQL
from fastapi import FastAPI
from redis.asyncio import Redis

from bench.common import (
    BACKENDS,
    REDIS_BENCH_URL,
    Backend,
    embedded_broker,
    free_port,
    gateway_settings,
    heading,
    line,
    serving,
    stores,
)
from bench.summary import goal
from gateway.graphql import type_defs
from haunted.logging import configure_logging
from haunted.runtime import Haunted

TYPENAME = "{ __typename }"
ME = "{ me { id } }"
MIXED = """query Mixed {
  me { id email memberships { team { id name } role } permissions }
  isFeatureEnabled(name: "new-dashboard")
  notifications(first: 20) { id type title body createdAt readAt }
}"""
REGISTER = """
mutation($email: String!, $password: String!) {
  register(email: $email, password: $password) { token }
}"""
PASSWORD = "correct horse battery staple"  # noqa: S105 - a bench user
BARE_ROUTE = "/bench/typename"
# A Redis db of its own: bench.common (14), tests (15), tests/gateway/realtime.py (13) flush theirs.
REDIS_URL = REDIS_BENCH_URL.rsplit("/", 1)[0] + "/12"
WARM_UP_S = 2


@dataclass(frozen=True, slots=True)
class Load:
    """One wrk run."""

    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    failures: int  # non-2xx answers and socket errors


@dataclass(frozen=True, slots=True)
class GatewayResult:
    bare_route: Load
    gateway_typename: Load
    bare_ariadne: Load
    gateway_authenticated: Load
    gateway_me: Load
    gateway_mixed: Load
    # From sending a session's DEL to Redis (another process's logout) to this gateway's
    # copy dropping it, ms (p50, max); None when the copy is off (the in-memory store).
    revocation_ms: tuple[float, float] | None = None

    @property
    def typename_ratio(self) -> float:
        return self.gateway_typename.requests_per_s / self.bare_route.requests_per_s

    @property
    def ariadne_ratio(self) -> float:
        return self.bare_ariadne.requests_per_s / self.bare_route.requests_per_s

    @property
    def authenticated_ratio(self) -> float:
        return self.gateway_authenticated.requests_per_s / self.bare_route.requests_per_s

    @property
    def me_ratio(self) -> float:
        return self.gateway_me.requests_per_s / self.bare_route.requests_per_s


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS_MS[unit]


def parse_wrk(output: str) -> Load:
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE)
    if not (rate and total and p50 and p99):
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    failures = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non_2xx:
        failures += int(non_2xx.group(1))
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if sockets:
        failures += sum(int(n) for n in sockets.groups())
    return Load(
        float(rate.group(1)), _ms(p50.group(1)), _ms(p99.group(1)), int(total.group(1)), failures
    )


def _lua(body: str, token: str | None) -> str:
    lines = [
        'wrk.method = "POST"',
        f"wrk.body = [==[{body}]==]",
        'wrk.headers["Content-Type"] = "application/json"',
    ]
    if token:
        lines.append(f'wrk.headers["Authorization"] = "Bearer {token}"')
    return "\n".join(lines) + "\n"


async def wrk(
    url: str, body: str, *, token: str | None, duration_s: int, connections: int, scripts: Path
) -> Load:
    script = scripts / f"{uuid.uuid4().hex}.lua"
    script.write_text(_lua(body, token))
    process = await asyncio.create_subprocess_exec(
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration_s}s",
        "--latency",
        "-s",
        str(script),
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed:\n{output.decode()}")
    return parse_wrk(output.decode())


def _graphql_body(query: str) -> str:
    return json.dumps({"query": query})


async def _check(url: str, body: str, token: str | None) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(url, content=body, headers=headers)
    answer: dict[str, Any] = response.json()
    if response.status_code != 200 or answer.get("errors"):
        raise RuntimeError(f"{url} answered {response.status_code}: {answer}")
    return answer


def production_logs() -> None:
    """JSON lines at INFO, as in production, written to /dev/null."""
    sink = open(os.devnull, "w")
    configure_logging("INFO", json=True, stream=sink)


@asynccontextmanager
async def own_redis(url: str) -> AsyncIterator[str]:
    """The real backend's Redis on a database of this benchmark's own, flushed around it."""
    if url == "memory://":
        yield url
        return
    client = Redis.from_url(REDIS_URL)
    try:
        await client.flushdb()
        yield REDIS_URL
    finally:
        await client.flushdb()
        await client.aclose()


def bare_ariadne_app() -> FastAPI:
    """What a new user writes: FastAPI, Ariadne's GraphQL app, the same type definitions."""
    app = FastAPI()
    app.mount("/graphql", GraphQL(make_executable_schema(type_defs())))
    return app


def combine(runs: Sequence[Load]) -> Load:
    """Rounds of one target: the rate over all of them, the median of their percentiles."""
    seconds = sum(run.requests / run.requests_per_s for run in runs if run.requests_per_s)
    requests = sum(run.requests for run in runs)
    return Load(
        requests / seconds if seconds else 0.0,
        statistics.median(run.p50_ms for run in runs),
        statistics.median(run.p99_ms for run in runs),
        requests,
        sum(run.failures for run in runs),
    )


async def run(
    backend: Backend, duration_s: int, connections: int, rounds: int = 3
) -> GatewayResult:
    production_logs()
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        async with (
            stores(backend, root) as found,
            embedded_broker() as tansu,
            own_redis(found.redis_url) as redis_url,
        ):
            port = free_port()
            settings = gateway_settings(
                found, tansu, root, port, log_level="INFO", log_json=True, redis_url=redis_url
            )
            haunted = Haunted.build(settings, gateway=True, workers=())
            gateway = haunted.asgi_app()

            async def bare_route() -> dict[str, Any]:
                return {"data": {"__typename": "Query"}}

            gateway.other_asgi_app.add_api_route(BARE_ROUTE, bare_route, methods=["POST"])
            ariadne_port = free_port()
            async with (
                serving(gateway, port) as url,
                serving(bare_ariadne_app(), ariadne_port) as ariadne_url,
            ):
                email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
                registered = await _check(
                    f"{url}/graphql",
                    json.dumps(
                        {"query": REGISTER, "variables": {"email": email, "password": PASSWORD}}
                    ),
                    None,
                )
                token = registered["data"]["register"]["token"]
                targets = {
                    "bare_route": (f"{url}{BARE_ROUTE}", TYPENAME, None),
                    "gateway_typename": (f"{url}/graphql", TYPENAME, None),
                    "bare_ariadne": (f"{ariadne_url}/graphql/", TYPENAME, None),
                    "gateway_authenticated": (f"{url}/graphql", TYPENAME, token),
                    "gateway_me": (f"{url}/graphql", ME, token),
                    "gateway_mixed": (f"{url}/graphql", MIXED, token),
                }
                # Rounds interleave the targets: a neighbour's load spreads over all of them.
                runs: dict[str, list[Load]] = {name: [] for name in targets}
                for target, query, bearer in targets.values():
                    await _check(target, _graphql_body(query), bearer)
                    await wrk(
                        target,
                        _graphql_body(query),
                        token=bearer,
                        duration_s=WARM_UP_S,
                        connections=connections,
                        scripts=root,
                    )
                for _ in range(rounds):
                    for name, (target, query, bearer) in targets.items():
                        runs[name].append(
                            await wrk(
                                target,
                                _graphql_body(query),
                                token=bearer,
                                duration_s=max(1, duration_s // rounds),
                                connections=connections,
                                scripts=root,
                            )
                        )
                loads: dict[str, Any] = {
                    name: combine(found_runs) for name, found_runs in runs.items()
                }
                loads["revocation_ms"] = await revocation_delay(haunted)
                for name, (target, query, bearer) in targets.items():
                    if loads[name].failures:  # say why, from one more request
                        try:
                            await _check(target, _graphql_body(query), bearer)
                        except RuntimeError as error:
                            print(f"  {name}: {error}")
    return GatewayResult(**loads)


async def revocation_delay(haunted: Haunted, rounds: int = 50) -> tuple[float, float] | None:
    """How long a session deleted in Redis by another process stays in this gateway's
    copy: from sending the DEL to the copy's entry gone (p50, max, in ms). The DEL's
    round trip is included: the copy has usually dropped the key before the deleter
    hears the DEL's reply."""
    store = haunted.services.auth.session_store
    local = store.local
    if local is None or not local.supported or not local.trusted:
        return None
    other = Redis.from_url(REDIS_URL)  # the process that logs out
    delays = []
    try:
        for n in range(rounds):
            session_id, user_id = f"bench-revoke-{n}", "bench-user"
            await other.set(f"haunted:session:{session_id}", user_id)
            await other.set(f"haunted:roles:{user_id}", "{}")
            while local.lookup(session_id, user_id) is None:  # a slide, then a kept read
                await store.touch(session_id, user_id)
            deleted = time.perf_counter()  # the DEL's own round trip included
            await other.delete(f"haunted:session:{session_id}")
            while local.lookup(session_id, user_id) is not None:
                await asyncio.sleep(0)
            delays.append((time.perf_counter() - deleted) * 1000)
    finally:
        await other.aclose()
    return statistics.median(delays), max(delays)


def report(
    result: GatewayResult, backend: Backend, duration_s: int, connections: int, rounds: int
) -> None:
    heading(
        f"GraphQL gateway vs bare FastAPI route and bare Ariadne (backend {backend}, wrk, "
        f"{connections} connections, {rounds} rounds of {max(1, duration_s // rounds)} s each)"
    )

    def figures(load: Load) -> str:
        failed = f", {load.failures} FAILED" if load.failures else ""
        return (
            f"{load.requests_per_s:8,.0f} req/s  p50 {load.p50_ms:6.2f} ms  "
            f"p99 {load.p99_ms:6.2f} ms{failed}"
        )

    line("bare FastAPI route (baseline)", figures(result.bare_route))
    line("gateway { __typename }", figures(result.gateway_typename))
    line("bare Ariadne { __typename }", figures(result.bare_ariadne))
    line("gateway { __typename } + bearer", figures(result.gateway_authenticated))
    line("gateway { me { id } } + bearer", figures(result.gateway_me))
    line("gateway mixed document", figures(result.gateway_mixed))
    line("ratio gateway / bare route", f"{result.typename_ratio:.2f}  (aim 1.0, floor 0.6)")
    line("ratio bare Ariadne / bare route", f"{result.ariadne_ratio:.2f}")
    line(
        "ratio gateway / bare Ariadne",
        f"{result.gateway_typename.requests_per_s / result.bare_ariadne.requests_per_s:.1f}x",
    )
    line("ratio bearer __typename / bare route", f"{result.authenticated_ratio:.2f}")
    line("ratio me { id } / bare route", f"{result.me_ratio:.2f}  (aim 0.6)")
    if result.revocation_ms is None:
        line("revocation to the session copy", "copy off (no client tracking)")
    else:
        p50, worst = result.revocation_ms
        line("revocation to the session copy", f"p50 {p50:.2f} ms  max {worst:.2f} ms")
    bare = f"bare route {result.bare_route.requests_per_s:,.0f}/s"
    goal(
        "{ __typename }",
        f"{result.gateway_typename.requests_per_s:,.0f}/s vs {bare}",
        result.typename_ratio,
        1.0,
    )
    goal(
        "{ __typename } with a bearer",
        f"{result.gateway_authenticated.requests_per_s:,.0f}/s vs {bare}",
        result.authenticated_ratio,
        0.7,
    )
    goal(
        "{ me { id } } with a bearer",
        f"{result.gateway_me.requests_per_s:,.0f}/s vs {bare}",
        result.me_ratio,
        0.6,
    )
    goal(
        "mixed document",
        f"p50 {result.gateway_mixed.p50_ms:.0f} ms",
        result.gateway_mixed.requests_per_s,
        1000,
        unit=" req/s",
    )


def main(
    backend: Backend = "real",
    duration_s: int = 9,
    connections: int = 16,
    rounds: int = 3,
    *,
    use_uvloop: bool = False,
) -> GatewayResult | None:
    if shutil.which("wrk") is None:
        heading("GraphQL gateway: skipped, it needs wrk (apt-get install -y wrk)")
        return None
    # asyncio's own loop by default: `haunted serve` runs under asyncio.run.
    loop_factory = None
    if use_uvloop:
        import uvloop

        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        result = runner.run(run(backend, duration_s, connections, rounds))
    report(result, backend, duration_s, connections, rounds)
    if use_uvloop:
        print("  (served on uvloop)")
    return result


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.graphql_gateway", description=__doc__)
    parser.add_argument("--backend", choices=BACKENDS, default="real")
    parser.add_argument("--duration", type=int, default=9, help="seconds per target, in all")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of targets")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--uvloop", action="store_true", help="serve on uvloop (haunted serve uses asyncio's loop)"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse(sys.argv[1:])
    if shutil.which("wrk") is None:
        sys.exit("bench.graphql_gateway needs wrk: apt-get install -y wrk")
    main(
        arguments.backend,
        arguments.duration,
        arguments.connections,
        arguments.rounds,
        use_uvloop=arguments.uvloop,
    )
