"""LLM gateway overhead: `callPrompt` and `promptStream` vs the raw `openai` client.

The gateway runs as its own process (what `haunted serve` runs), so its figures
are the gateway's alone. This process holds the callers, the raw client and the
local OpenAI-compatible server (the tests' one, zero latency), which both sides
call. Every call has its own text: the answer cache never hits, each call goes
to the model server (the whole path: plan, quota, cache lookup, provider, usage,
cache store, the outbox row of `prompt.completed`).

Raw and gateway take turns in rounds (alternating who goes first), so that the
rest of the machine slows both alike.

    python -m bench.llm [--backend embedded|real|both] [--requests 1200] [--rounds 3]
    python -m bench.llm --profile 16      # cProfile (CPU time) of the gateway at 16 callers
    python -m bench.llm --stream [--streams 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import itertools
import json
import os
import pstats
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import websockets
import yaml

from bench.common import (
    BACKENDS,
    Backend,
    embedded_broker,
    free_port,
    heading,
    line,
    percentile,
    quiet_logs,
    stores,
)
from bench.summary import goal
from services.billing.plans import DEFAULT_PLANS_FILE
from services.llm import PromptLibrary
from tests.services.llm.openai_server import FakeOpenAI, serve

CONCURRENCY = (1, 16, 64)
PROMPT = "classify"
REGISTER = """mutation($email: String!, $password: String!) {
  register(email: $email, password: $password) { token }
}"""
CALL = """mutation($v: JSON) {
  callPrompt(path: "classify", variables: $v) { text promptTokens completionTokens }
}"""
STREAM = """subscription($v: JSON) {
  promptStream(path: "classify", variables: $v) { delta done completionTokens }
}"""
LABELS = ["billing", "bug", "other"]
WAIT_S = 300.0  # a loaded machine is slow, not broken
CONCURRENT_WORDS = 20
IDLE_S = 5.0
_numbers = itertools.count()


def variables() -> dict[str, Any]:
    """A text no call had before: the answer cache misses."""
    return {"text": f"the invoice is wrong, case {next(_numbers)}", "labels": LABELS}


def unlimited_plans(root: Path) -> Path:
    """The plans file with the free plan's LLM limits out of the way: the gateway is measured."""
    plans = yaml.safe_load(DEFAULT_PLANS_FILE.read_text())
    for plan in plans["plans"]:
        plan["entitlements"].update(
            llm_tokens_per_month=10**12, llm_requests_per_minute=10**9, llm_tokens_per_minute=10**12
        )
    path = root / "plans.yaml"
    path.write_text(yaml.safe_dump(plans))
    return path


def rss_kib(pid: int) -> int:
    for entry in Path(f"/proc/{pid}/status").read_text().splitlines():
        if entry.startswith("VmRSS:"):
            return int(entry.split()[1])
    raise RuntimeError(f"no RSS for process {pid}")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process used so far (load on the machine aside)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the gateway process ------------------------------------------------------------------


async def _gateway_main() -> None:
    """What `haunted serve` runs: the gateway alone, settings from HAUNTED_* variables.
    With HAUNTED_BENCH_CPROFILE set, a cProfile of the whole process goes to that file."""
    import uvicorn

    from haunted.logging import configure_logging
    from haunted.runtime import Haunted
    from haunted.settings import load_settings

    settings = load_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    config = uvicorn.Config(
        Haunted.build(settings, gateway=True, workers=()).asgi_app(),
        host=settings.host,
        port=settings.port,
        lifespan="on",
        log_config=None,
        ws="websockets-sansio",
        backlog=4096,
        timeout_keep_alive=300,  # the callers keep their connections between rounds
    )
    server = uvicorn.Server(config)
    output = os.environ.get("HAUNTED_BENCH_CPROFILE")
    # CPU time of this thread: the machine's other load does not count.
    profiler = cProfile.Profile(time.thread_time) if output else None
    loop = asyncio.get_running_loop()
    # SIGUSR1 / SIGUSR2 turn the profiler on and off around the measured rounds; the
    # stats are written at each stop (uvicorn re-raises SIGTERM: no code runs after).
    if profiler is not None and output:

        def stop_profiling() -> None:
            profiler.disable()
            profiler.dump_stats(output)

        loop.add_signal_handler(signal.SIGUSR1, profiler.enable)
        loop.add_signal_handler(signal.SIGUSR2, stop_profiling)
    parent = os.getppid()

    async def orphaned() -> None:  # the benchmark was killed: do not outlive it
        while os.getppid() == parent:
            await asyncio.sleep(1)
        server.should_exit = True

    watch = asyncio.create_task(orphaned())
    await server.serve()
    watch.cancel()


@dataclass
class Gateway:
    process: asyncio.subprocess.Process
    url: str
    profile: Path | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 20)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


async def start_gateway(
    stack: AsyncExitStack, backend: Backend, root: Path, fake: FakeOpenAI, *, profile: bool = False
) -> Gateway:
    """The gateway process on a migrated scratch store of `backend` (kept open by
    `stack`), ready to serve."""
    found = await stack.enter_async_context(stores(backend, root))
    tansu = await stack.enter_async_context(embedded_broker())
    port = free_port()
    env = {
        "HAUNTED_ENV": "test",
        "HAUNTED_PORT": str(port),
        "HAUNTED_DATA_DIR": str(root / ".haunted"),
        "HAUNTED_DATABASE_URL": found.database_url,
        "HAUNTED_REDIS_URL": found.redis_url,
        "HAUNTED_KAFKA_BOOTSTRAP": tansu.bootstrap_servers,
        "HAUNTED_LOG_LEVEL": "WARNING",
        "HAUNTED_LOG_JSON": "false",
        "HAUNTED_BCRYPT_ROUNDS": "4",
        "HAUNTED_OPENAI_BASE_URL": fake.url,
        "HAUNTED_PLANS_FILE": str(unlimited_plans(root)),
        "HAUNTED_SUBSCRIPTION_MAX_QUEUED_EVENTS": "1000",
        "HAUNTED_GRAPHQL_TIMEOUT_S": "300",  # a loaded machine must not abort the run
    }
    output = root / "gateway.prof" if profile else None
    if output is not None:
        env["HAUNTED_BENCH_CPROFILE"] = str(output)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.llm", "gateway", env={**os.environ, **env}
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + WAIT_S
    async with httpx.AsyncClient(base_url=url, timeout=2) as client:
        while True:
            if process.returncode is not None:
                raise RuntimeError("the gateway process exited while starting")
            try:
                if (await client.get("/healthz")).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not start")
            await asyncio.sleep(0.1)
    return Gateway(process, url, output)


async def register(http: httpx.AsyncClient, url: str) -> str:
    email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
    registered = await http.post(
        f"{url}/graphql",
        json={"query": REGISTER, "variables": {"email": email, "password": "bench password 123"}},
    )
    return str(registered.json()["data"]["register"]["token"])


# -- callPrompt -----------------------------------------------------------------------------


@dataclass
class Side:
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    gateway_cpu_s: float = 0.0  # the gateway process's
    own_cpu_s: float = 0.0  # this process's: callers, raw client, model server

    def cpu_ms(self, gateway: bool) -> float:
        return (self.gateway_cpu_s if gateway else self.own_cpu_s) / len(self.latencies) * 1000

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def p(self, q: int) -> float:
        return percentile(self.latencies, q)


async def measure(
    call: Callable[[], Awaitable[None]], concurrency: int, requests: int, side: Side
) -> None:
    """`requests` calls made by `concurrency` callers: latencies (ms) and the wall time."""
    per_caller = max(1, requests // concurrency)

    async def caller() -> None:
        for _ in range(per_caller):
            started = time.perf_counter()
            await call()
            side.latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    side.seconds += time.perf_counter() - started


def raw_messages(values: dict[str, Any]) -> list[dict[str, str]]:
    """The messages the gateway sends for these values: the same request on both sides."""
    return PromptLibrary().get(PROMPT).render(values)


async def run_calls(
    backend: Backend, requests: int, rounds: int, levels: Sequence[int], profile: int | None
) -> None:
    fake = FakeOpenAI(keep_requests=False)
    fake_server, fake_task = await serve(fake, free_port())
    prompt = PromptLibrary().get(PROMPT)
    try:
        with tempfile.TemporaryDirectory(prefix="haunted-bench-llm-") as directory:
            async with AsyncExitStack() as stack:
                gateway = await start_gateway(
                    stack, backend, Path(directory), fake, profile=profile is not None
                )
                try:
                    await _calls(backend, gateway, fake, prompt, requests, rounds, levels, profile)
                finally:
                    await gateway.stop()
                if gateway.profile is not None and gateway.profile.exists():
                    _print_profile(gateway.profile)
    finally:
        fake_server.should_exit = True
        await fake_task


async def _calls(
    backend: Backend,
    gateway: Gateway,
    fake: FakeOpenAI,
    prompt: Any,
    requests: int,
    rounds: int,
    levels: Sequence[int],
    profile: int | None,
) -> None:
    raw = openai.AsyncOpenAI(api_key="unused", base_url=fake.url, max_retries=0)
    limits = httpx.Limits(max_connections=500, max_keepalive_connections=500)
    async with httpx.AsyncClient(limits=limits, timeout=60) as http:
        token = await register(http, gateway.url)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        spec = prompt.spec

        async def direct() -> None:
            await raw.chat.completions.create(
                model=spec.model,
                messages=prompt.render(variables()),
                temperature=spec.temperature,
                max_tokens=spec.max_tokens,
            )

        floor_body = json.dumps({"query": "{ __typename }"})

        async def floor() -> None:
            response = await http.post(
                f"{gateway.url}/graphql", content=floor_body, headers=headers
            )
            if response.status_code != 200:
                raise RuntimeError(response.text)

        async def via_gateway() -> None:
            body = json.dumps({"query": CALL, "variables": {"v": variables()}})
            response = await http.post(f"{gateway.url}/graphql", content=body, headers=headers)
            answer = response.json()
            if "errors" in answer:
                raise RuntimeError(answer["errors"][0]["message"])

        for warm in (direct, via_gateway):
            await measure(warm, 8, 160, Side())
        heading(
            f"LLM callPrompt ({backend}): gateway process vs raw openai client,"
            f" {requests} calls per level in {rounds} rounds, cache misses"
        )
        # The gateway's own background (fan-out consumer, relay, heartbeats) costs CPU
        # with no call at all: measured idle, it is taken off each side's figure.
        idle_cpu = cpu_s(gateway.pid)
        await asyncio.sleep(IDLE_S)
        idle_per_s = (cpu_s(gateway.pid) - idle_cpu) / IDLE_S
        line("gateway process CPU when idle", f"{idle_per_s * 1000:.1f} ms/s")
        for concurrency in levels:
            base, via, least = Side(), Side(), Side()
            for turn in range(rounds):
                order = ((direct, base), (via_gateway, via), (floor, least))
                for call, side in order if turn % 2 == 0 else order[::-1]:
                    profiling = side is via and profile == concurrency
                    if profiling and gateway.profile is not None:
                        gateway.process.send_signal(signal.SIGUSR1)
                    gateway_cpu, own_cpu = cpu_s(gateway.pid), cpu_s(os.getpid())
                    began = time.perf_counter()
                    await measure(call, concurrency, requests // rounds, side)
                    side.gateway_cpu_s += cpu_s(gateway.pid) - gateway_cpu
                    side.gateway_cpu_s -= idle_per_s * (time.perf_counter() - began)
                    side.own_cpu_s += cpu_s(os.getpid()) - own_cpu
                    if profiling and gateway.profile is not None:
                        gateway.process.send_signal(signal.SIGUSR2)
            report_calls(concurrency, base, via, least)
    await raw.close()


def report_calls(concurrency: int, base: Side, via: Side, least: Side) -> None:
    ratio = via.rate / base.rate
    added50 = via.p(50) - base.p(50)
    added99 = via.p(99) - base.p(99)
    line(
        f"c={concurrency} raw openai p50/p99",
        f"{base.p(50):.2f} / {base.p(99):.2f} ms ({base.rate:.0f}/s)",
    )
    line(
        f"c={concurrency} callPrompt p50/p99",
        f"{via.p(50):.2f} / {via.p(99):.2f} ms ({via.rate:.0f}/s)",
    )
    line(f"c={concurrency} added p50/p99", f"{added50:.2f} / {added99:.2f} ms")
    line(f"c={concurrency} throughput callPrompt/raw", f"{ratio:.2f}x")
    line(
        f"c={concurrency} {{ __typename }} with the token",
        f"{least.p(50):.2f} / {least.p(99):.2f} ms ({least.rate:.0f}/s)",
    )
    # CPU per call, from /proc: what the rest of the machine does hardly shows in it.
    # The model server's share is what the callers' process spends on callPrompt
    # beyond what it spends on { __typename }; the raw client's is the rest of raw.
    server = max(0.0, via.cpu_ms(False) - least.cpu_ms(False))
    client = max(0.0, base.cpu_ms(False) - server)
    facade = via.cpu_ms(True) - least.cpu_ms(True) - client
    line(
        f"c={concurrency} CPU/call, gateway process",
        f"callPrompt {via.cpu_ms(True):.2f} ms = authenticated GraphQL request"
        f" {least.cpu_ms(True):.2f} + openai client ~{client:.2f} + LLM facade ~{facade:.2f}",
    )
    line(
        f"c={concurrency} CPU/call, raw side",
        f"raw openai client ~{client:.2f} ms (+ model server ~{server:.2f} ms)",
    )
    line(
        f"c={concurrency} bound on this design",
        f"raw client CPU / gateway CPU = {client / via.cpu_ms(True):.2f}x",
    )
    figure = f"{via.rate:.0f}/s vs raw {base.rate:.0f}/s"
    if concurrency == 1:
        goal(
            "LLM added latency, one at a time: p50",
            f"{via.p(50):.2f} ms vs raw {base.p(50):.2f} ms",
            added50,
            2,
            at_most=True,
            unit=" ms",
        )
        goal(
            "LLM added latency, one at a time: p99",
            f"{via.p(99):.2f} ms vs raw {base.p(99):.2f} ms",
            added99,
            5,
            at_most=True,
            unit=" ms",
        )
    elif concurrency == 16:
        goal("LLM callPrompt, 16 concurrent: throughput", figure, ratio, 0.8)
        goal(
            "LLM callPrompt, 16 concurrent: added p99",
            f"{via.p(99):.1f} ms vs raw {base.p(99):.1f} ms",
            added99,
            20,
            at_most=True,
            unit=" ms",
        )
    elif concurrency == 64:
        goal("LLM callPrompt, 64 concurrent: throughput", figure, ratio, 0.8)
        goal(
            "LLM callPrompt, 64 concurrent: p99 / raw's",
            f"{via.p(99):.0f} ms vs raw {base.p(99):.0f} ms",
            via.p(99) / base.p(99),
            3,
            at_most=True,
        )


def _print_profile(path: Path) -> None:
    print("\n  cProfile of the gateway process during the profiled level (top 30, own time)")
    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime").print_stats(30)


# -- promptStream ---------------------------------------------------------------------------


class StreamClient:
    """One graphql-transport-ws connection with one promptStream subscription at a time."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket

    @classmethod
    async def connect(cls, url: str, token: str) -> StreamClient:
        socket = await websockets.connect(
            url.replace("http", "ws") + "/graphql",
            subprotocols=[websockets.Subprotocol("graphql-transport-ws")],
            max_queue=None,
            # A thousand sockets in one busy process answer pings late; the gateway's
            # own pings still run.
            ping_interval=None,
        )
        payload = {"authorization": f"Bearer {token}"}
        await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
        ack = json.loads(await asyncio.wait_for(socket.recv(), WAIT_S))
        if ack.get("type") != "connection_ack":
            raise RuntimeError(f"no connection_ack: {ack}")
        return cls(socket)

    async def subscribe(self) -> str:
        op = uuid.uuid4().hex
        message = {
            "id": op,
            "type": "subscribe",
            "payload": {"query": STREAM, "variables": {"v": variables()}},
        }
        await self.socket.send(json.dumps(message))
        return op

    async def next_item(self) -> dict[str, Any] | None:
        """The next item of the subscription; None when it completed."""
        while True:
            message = json.loads(await asyncio.wait_for(self.socket.recv(), WAIT_S))
            kind = message.get("type")
            if kind == "next":
                if message["payload"].get("errors"):
                    raise RuntimeError(message["payload"]["errors"][0]["message"])
                return dict(message["payload"]["data"]["promptStream"])
            if kind == "complete":
                return None
            if kind == "error":
                raise RuntimeError(str(message.get("payload")))
            if kind == "ping":
                await self.socket.send(json.dumps({"type": "pong"}))

    async def close(self) -> None:
        await self.socket.close()


@dataclass
class StreamFigures:
    first_token_ms: list[float] = field(default_factory=list)
    tokens_per_s: list[float] = field(default_factory=list)


async def one_stream(client: StreamClient, figures: StreamFigures) -> None:
    started = time.perf_counter()
    await client.subscribe()
    first: float | None = None
    tokens = 0
    while (item := await client.next_item()) is not None:
        if item.get("delta") and first is None:
            first = time.perf_counter()
        if item.get("done"):
            tokens = int(item["completionTokens"])
    ended = time.perf_counter()
    if first is None or not tokens:
        raise RuntimeError("a stream ended without text or usage")
    figures.first_token_ms.append((first - started) * 1000)
    figures.tokens_per_s.append(tokens / (ended - started))


async def raw_stream(raw: openai.AsyncOpenAI, prompt: Any, figures: StreamFigures) -> None:
    spec = prompt.spec
    started = time.perf_counter()
    first: float | None = None
    tokens = 0
    stream = await raw.chat.completions.create(
        model=spec.model,
        messages=prompt.render(variables()),
        temperature=spec.temperature,
        max_tokens=spec.max_tokens,
        stream=True,
        stream_options={"include_usage": True},
    )
    async for chunk in stream:
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
        if first is None and any(choice.delta.content for choice in chunk.choices):
            first = time.perf_counter()
    ended = time.perf_counter()
    if first is None or not tokens:
        raise RuntimeError("a raw stream ended without text or usage")
    figures.first_token_ms.append((first - started) * 1000)
    figures.tokens_per_s.append(tokens / (ended - started))


async def run_streams(backend: Backend, sequential: int, concurrent: int, words: int) -> None:
    fake = FakeOpenAI(keep_requests=False, words=words)
    fake_server, fake_task = await serve(fake, free_port())
    prompt = PromptLibrary().get(PROMPT)
    try:
        with tempfile.TemporaryDirectory(prefix="haunted-bench-llm-") as directory:
            async with AsyncExitStack() as stack:
                gateway = await start_gateway(stack, backend, Path(directory), fake)
                try:
                    await _streams(backend, gateway, fake, prompt, sequential, concurrent, words)
                finally:
                    await gateway.stop()
    finally:
        fake_server.should_exit = True
        await fake_task


async def _streams(
    backend: Backend,
    gateway: Gateway,
    fake: FakeOpenAI,
    prompt: Any,
    sequential: int,
    concurrent: int,
    words: int,
) -> None:
    raw = openai.AsyncOpenAI(api_key="unused", base_url=fake.url, max_retries=0)
    async with httpx.AsyncClient(timeout=60) as http:
        token = await register(http, gateway.url)
    client = await StreamClient.connect(gateway.url, token)
    for _ in range(20 if sequential else 0):  # warm-up
        await one_stream(client, StreamFigures())
        await raw_stream(raw, prompt, StreamFigures())
    heading(
        f"LLM promptStream ({backend}): {sequential} streams one at a time, {words} tokens each"
    )
    base, via = StreamFigures(), StreamFigures()
    for turn in range(sequential):
        if turn % 2:
            await one_stream(client, via)
            await raw_stream(raw, prompt, base)
        else:
            await raw_stream(raw, prompt, base)
            await one_stream(client, via)
    await client.close()
    if not sequential:
        await raw.close()
        await concurrent_streams(backend, gateway, fake, token, concurrent)
        return
    for name, figures in (("raw openai stream", base), ("promptStream", via)):
        line(
            f"{name} first token p50/p99",
            f"{percentile(figures.first_token_ms, 50):.2f} /"
            f" {percentile(figures.first_token_ms, 99):.2f} ms",
        )
        line(f"{name} tokens/s p50", f"{percentile(figures.tokens_per_s, 50):.0f}")
    added = percentile(via.first_token_ms, 50) - percentile(base.first_token_ms, 50)
    line("first token added p50", f"{added:.2f} ms")
    line(
        "tokens/s promptStream/raw p50",
        f"{percentile(via.tokens_per_s, 50) / percentile(base.tokens_per_s, 50):.2f}x",
    )
    await raw.close()
    await concurrent_streams(backend, gateway, fake, token, concurrent)


async def concurrent_streams(
    backend: Backend, gateway: Gateway, fake: FakeOpenAI, token: str, count: int
) -> None:
    """`count` streams open at once on the gateway: each has had its first token and
    none has finished (the model server holds them) when the memory is read."""
    heading(f"LLM promptStream ({backend}): {count} concurrent streams on one gateway process")
    before = rss_kib(gateway.pid)
    started = time.perf_counter()
    clients: list[StreamClient] = []
    for batch in range(0, count, 100):
        clients += await asyncio.gather(
            *(StreamClient.connect(gateway.url, token) for _ in range(min(100, count - batch)))
        )
    connected = rss_kib(gateway.pid)
    fake.hold = asyncio.Event()
    fake.words, words = CONCURRENT_WORDS, fake.words  # 1,000 x 200 tokens would take minutes

    async def first_delta(client: StreamClient) -> None:
        await client.subscribe()
        item = await client.next_item()
        if item is None or not item.get("delta"):
            raise RuntimeError("a stream's first item was not text")

    # Started 100 at a time (a ramp, not one burst of 1,000 admissions); the model
    # server holds every one after its first chunk, so they all stay open.
    for batch in range(0, count, 100):
        await asyncio.gather(*(first_delta(client) for client in clients[batch : batch + 100]))
    opened = time.perf_counter() - started
    await asyncio.sleep(1.0)  # let the allocator settle before reading
    held = rss_kib(gateway.pid)
    per_connection = (connected - before) / count
    per_stream = (held - connected) / count
    line("streams open at once", f"{len(clients)}, each past its first token")
    line("time to open them all", f"{opened:.1f} s")
    line(
        "gateway RSS before / connected / held",
        f"{before / 1024:.1f} / {connected / 1024:.1f} / {held / 1024:.1f} MiB",
    )
    line("memory per WebSocket connection", f"{per_connection:.1f} KiB")
    line("memory per stream (on top)", f"{per_stream:.1f} KiB")
    fake.hold.set()

    async def rest(client: StreamClient) -> int:
        tokens = 0
        while (item := await client.next_item()) is not None:
            if item.get("done"):
                tokens = int(item["completionTokens"])
        return tokens

    finished_started = time.perf_counter()
    tokens = await asyncio.gather(*(rest(client) for client in clients))
    finished = time.perf_counter() - finished_started
    done = sum(1 for t in tokens if t)
    await asyncio.gather(*(client.close() for client in clients))
    fake.hold, fake.words = None, words
    line("streams completed with their usage", f"{done} of {count}")
    line("finishing them all", f"{finished:.1f} s ({sum(tokens) / finished:.0f} tokens/s)")
    goal(
        f"LLM promptStream: {count} concurrent streams on one process",
        f"{done} completed; {per_connection + per_stream:.0f} KiB each (socket + stream)",
        done / count,
        1,
    )
    if done != count:
        raise RuntimeError(f"only {done} of {count} streams completed with their usage")


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["gateway"]:
        asyncio.run(_gateway_main())
        return
    parser = argparse.ArgumentParser(prog="python -m bench.llm", description=__doc__)
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="embedded")
    parser.add_argument("--requests", type=int, default=1200, help="calls per level and side")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="*", default=list(CONCURRENCY))
    parser.add_argument(
        "--profile", type=int, default=None, metavar="C", help="cProfile the gateway at level C"
    )
    parser.add_argument("--stream", action="store_true", help="promptStream instead")
    parser.add_argument("--streams", type=int, default=1000, help="concurrent streams")
    parser.add_argument("--sequential", type=int, default=200, help="streams one at a time")
    parser.add_argument("--words", type=int, default=200, help="tokens per streamed answer")
    args = parser.parse_args(argv)
    quiet_logs()
    backends: tuple[Backend, ...] = BACKENDS if args.backend == "both" else (args.backend,)
    for backend in backends:
        if args.stream:
            asyncio.run(run_streams(backend, args.sequential, args.streams, args.words))
        else:
            asyncio.run(
                run_calls(backend, args.requests, args.rounds, args.concurrency, args.profile)
            )


if __name__ == "__main__":
    main()
