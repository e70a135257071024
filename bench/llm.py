"""LLM gateway overhead: `callPrompt` over GraphQL vs the raw `openai` client.

Both call the same zero-latency local OpenAI-compatible server (the tests' one),
so the difference is what the gateway adds: HTTP + GraphQL + auth, variable
validation and rendering, the plan read, the Redis quota counters and the
outbox row of `prompt.completed`. Callers run in this process too (2 cores:
the figures are upper bounds of the overhead).

    python -m bench.llm [--backend embedded|real] [--requests 600]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import httpx
import openai
import yaml

from bench.common import (
    BACKENDS,
    Backend,
    embedded_broker,
    free_port,
    gateway_settings,
    heading,
    line,
    percentile,
    quiet_logs,
    serving,
    stores,
)
from haunted.runtime import Haunted
from services.billing.plans import DEFAULT_PLANS_FILE
from tests.services.llm.openai_server import FakeOpenAI, serve

CONCURRENCY = (1, 16, 64)
REGISTER = """mutation($email: String!, $password: String!) {
  register(email: $email, password: $password) { token }
}"""
CALL = """mutation($v: JSON) {
  callPrompt(path: "classify", variables: $v) { text promptTokens completionTokens }
}"""
VARIABLES = {"text": "the invoice is wrong", "labels": ["billing", "bug", "other"]}


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


async def measure(
    call: Callable[[], Awaitable[None]], concurrency: int, requests: int
) -> tuple[list[float], float]:
    """Latencies (ms) of `requests` calls made by `concurrency` callers; and calls/s."""
    latencies: list[float] = []
    per_caller = max(1, requests // concurrency)

    async def caller() -> None:
        for _ in range(per_caller):
            started = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return latencies, len(latencies) / (time.perf_counter() - started)


async def run(backend: Backend, requests: int) -> None:
    quiet_logs()
    fake = FakeOpenAI()
    fake_server, fake_task = await serve(fake, free_port())
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        async with stores(backend, root) as found, embedded_broker() as tansu:
            port = free_port()
            settings = gateway_settings(
                found,
                tansu,
                root,
                port,
                openai_base_url=fake.url,
                plans_file=unlimited_plans(root),
            )
            app = Haunted.build(settings, gateway=True, workers=()).asgi_app()
            raw = openai.AsyncOpenAI(api_key="unused", base_url=fake.url, max_retries=0)
            limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
            async with (
                serving(app, port) as url,
                httpx.AsyncClient(limits=limits, timeout=60) as http,
            ):
                email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
                registered = await http.post(
                    f"{url}/graphql",
                    json={
                        "query": REGISTER,
                        "variables": {"email": email, "password": "bench password 123"},
                    },
                )
                token = registered.json()["data"]["register"]["token"]
                body = json.dumps({"query": CALL, "variables": {"v": VARIABLES}})
                headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
                messages = [{"role": "user", "content": "Labels: billing bug other. Text: x"}]

                async def direct() -> None:
                    await raw.chat.completions.create(
                        model="gpt-4o-mini", messages=messages, temperature=0, max_tokens=20
                    )

                async def gateway() -> None:
                    response = await http.post(f"{url}/graphql", content=body, headers=headers)
                    answer = response.json()
                    if "errors" in answer:
                        raise RuntimeError(answer["errors"][0]["message"])

                for warm in (direct, gateway):
                    await measure(warm, 8, 80)
                heading(f"LLM gateway overhead ({backend}), {requests} calls per level")
                for concurrency in CONCURRENCY:
                    base, base_rate = await measure(direct, concurrency, requests)
                    via, via_rate = await measure(gateway, concurrency, requests)
                    line(
                        f"c={concurrency} raw openai p50/p99",
                        f"{percentile(base, 50):.2f} / {percentile(base, 99):.2f} ms"
                        f" ({base_rate:.0f}/s)",
                    )
                    line(
                        f"c={concurrency} callPrompt p50/p99",
                        f"{percentile(via, 50):.2f} / {percentile(via, 99):.2f} ms"
                        f" ({via_rate:.0f}/s)",
                    )
                    line(
                        f"c={concurrency} added p50/p99",
                        f"{percentile(via, 50) - percentile(base, 50):.2f} /"
                        f" {percentile(via, 99) - percentile(base, 99):.2f} ms",
                    )
            await raw.close()
    fake_server.should_exit = True
    await fake_task


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.llm", description=__doc__)
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="embedded")
    parser.add_argument("--requests", type=int, default=600)
    args = parser.parse_args(argv)
    backends: tuple[Backend, ...] = BACKENDS if args.backend == "both" else (args.backend,)
    for backend in backends:
        asyncio.run(run(backend, args.requests))


if __name__ == "__main__":
    main()
