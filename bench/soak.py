"""A soak: every service under a steady mixed load, resources sampled every 10 s.

`python -m bench.soak [--seconds S] [--rate R] [--concurrency N]`

`haunted serve` (the gateway) and `haunted worker` (every consumer and the outbox
relay) run as two processes of their own on the embedded broker (Tansu), a
scratch PostgreSQL database and Redis db 14 (in-process Redis would not be
shared by the two processes). A bounded load (at most
`--rate` requests/s over `--concurrency` clients, at most `--seconds`, loopback
only) mixes: register, login, track, callPrompt on the offline model,
notifications read, flag evaluation, and signed Stripe `invoice.paid` webhooks
(each delivered twice, as Stripe redelivers). Every 10 s it samples each
process's RSS and open fds, the outbox's oldest pending age and the consumer
groups' lag, then prints the error rate, p99 per operation and the growth per
hour of memory and fds (least squares over the samples after the first minute,
or after the first sample in runs shorter than two minutes). At the end it checks
that every acknowledged webhook was applied once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import create_async_engine

from bench.common import Stores, embedded_broker, free_port, heading, line, percentile, stores
from bench.llm import unlimited_plans
from events.broker import DLQ_SUFFIX
from events.outbox import OutboxRecord
from services.billing.models import BillingCustomer, BillingInvoice
from tests.services.billing.conftest import deliver_invoice_paid

SAMPLE_EVERY_S = 10.0
WEBHOOK_SECRET = "whsec_soak_local"  # noqa: S105 - this run's own secret
PASSWORD = "soak-password-1234"  # noqa: S105 - this run's own users

REGISTER = """mutation($email: String!, $password: String!) {
  register(email: $email, password: $password) { token user { id } } }"""
LOGIN = """mutation($email: String!, $password: String!) {
  login(email: $email, password: $password) { token } }"""
TRACK = 'mutation($p: JSON) { track(name: "soak.step", properties: $p) }'
PROMPT = """mutation($v: JSON) {
  callPrompt(path: "classify", variables: $v) { text } }"""
NOTIFICATIONS = "{ notifications(first: 20) { id title readAt } }"
FLAG = '{ isFeatureEnabled(name: "soak-flag") }'
# Operation -> weight in the mix.
MIX = {
    "track": 30,
    "notifications": 15,
    "flag": 15,
    "callPrompt": 12,
    "webhook": 10,
    "login": 3,
    "register": 2,
}


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    first_error: dict[str, str] = field(default_factory=dict)
    users: list[dict[str, str]] = field(default_factory=list)  # email, token
    invoices_acknowledged: set[str] = field(default_factory=set)
    deliveries_acknowledged: int = 0


@dataclass
class Sample:
    at: float
    rss_kib: dict[str, int]
    fds: dict[str, int]
    outbox_oldest_s: float
    lag: int


@asynccontextmanager
async def process(name: str, args: Sequence[str], env: dict[str, str]) -> AsyncIterator[int]:
    """A `haunted` command in its own process; yields its pid."""
    haunted = Path(sys.executable).parent / "haunted"
    child = await asyncio.create_subprocess_exec(
        str(haunted),
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        yield child.pid
    finally:
        with contextlib.suppress(ProcessLookupError):  # it may have exited already
            child.terminate()
        try:
            await asyncio.wait_for(child.wait(), 30)
        except TimeoutError:
            child.kill()
            await child.wait()
        if child.returncode not in (0, -15):
            print(f"  ({name} exited with {child.returncode})")


async def ready(url: str) -> None:
    async with httpx.AsyncClient(timeout=2) as client:
        for _ in range(600):
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError("haunted serve did not start")


def rss_kib(pid: int) -> int:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1])
    return 0


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def outbox_oldest_s(engine: Any) -> float:
    async with engine.connect() as connection:
        oldest = await connection.scalar(
            select(func.min(OutboxRecord.created_at)).where(OutboxRecord.sent_at.is_(None))
        )
    if oldest is None:
        return 0.0
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return max(0.0, (datetime.now(UTC) - oldest).total_seconds())


async def consumer_lag(bootstrap: str) -> int:
    """Records behind, summed over every group and every partition it has committed
    on (end offset - committed offset).

    Tansu answers no OffsetFetch for a whole group through the admin client, so
    each group's committed offsets are read partition by partition through a
    consumer of that group that never joins. Tansu's end offsets can run ahead
    after multi-record batches, so this is an upper bound; its trend is what the
    soak watches."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        groups = [group for group, _kind in await admin.list_consumer_groups()]
    finally:
        await admin.close()
    lag = 0
    for group in groups:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            partitions = [
                TopicPartition(topic, partition)
                for topic in sorted(await consumer.topics())
                if not topic.endswith(DLQ_SUFFIX) and not topic.startswith("__")
                for partition in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            committed = {tp: await consumer.committed(tp) for tp in partitions}
            known = {tp: offset for tp, offset in committed.items() if offset is not None}
            if known:
                ends = await consumer.end_offsets(list(known))
                lag += sum(max(0, ends[tp] - offset) for tp, offset in known.items())
        finally:
            await consumer.stop()
    return lag


async def watch_lag(bootstrap: str, latest: list[int], stop: asyncio.Event) -> None:
    """Keeps `latest[0]` at the last lag read (-1 until one succeeds): reading every
    group's offsets can take longer than a sampling interval on a busy machine."""
    while not stop.is_set():
        with contextlib.suppress(Exception):  # the broker busy: the previous value stands
            latest[0] = await consumer_lag(bootstrap)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


async def sampler(
    pids: dict[str, int], engine: Any, bootstrap: str, samples: list[Sample], stop: asyncio.Event
) -> None:
    latest = [-1]
    lag = asyncio.create_task(watch_lag(bootstrap, latest, stop))
    started = time.monotonic()
    while True:
        samples.append(
            Sample(
                at=time.monotonic(),
                rss_kib={name: rss_kib(pid) for name, pid in pids.items()},
                fds={name: open_fds(pid) for name, pid in pids.items()},
                outbox_oldest_s=await outbox_oldest_s(engine),
                lag=latest[0],
            )
        )
        s = samples[-1]
        print(
            f"  t={s.at - started:5.0f} s  rss MiB "
            + " ".join(f"{n}={v / 1024:.0f}" for n, v in s.rss_kib.items())
            + "  fds "
            + " ".join(f"{n}={v}" for n, v in s.fds.items())
            + f"  outbox oldest {s.outbox_oldest_s:.1f} s  lag {s.lag}",
            flush=True,
        )
        next_at = started + SAMPLE_EVERY_S * len(samples)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, next_at - time.monotonic()))
            break
    await lag


async def graphql(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str | None = None
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    body: dict[str, Any] = response.json()
    if response.status_code != 200 or body.get("errors") or not body.get("data"):
        raise RuntimeError(str(body)[:200])
    return body


async def register(client: httpx.AsyncClient, tally: Tally) -> None:
    email = f"soak-{uuid.uuid4().hex[:12]}@example.com"
    body = await graphql(client, REGISTER, {"email": email, "password": PASSWORD})
    tally.users.append({"email": email, "token": body["data"]["register"]["token"]})


async def operation(
    name: str, client: httpx.AsyncClient, tally: Tally, customer: str, n: int
) -> None:
    user = random.choice(tally.users)
    token = user["token"]
    if name == "register":
        await register(client, tally)
    elif name == "login":
        body = await graphql(client, LOGIN, {"email": user["email"], "password": PASSWORD})
        user["token"] = body["data"]["login"]["token"]
    elif name == "track":
        await graphql(client, TRACK, {"p": {"n": n}}, token)
    elif name == "callPrompt":
        variables = {"text": f"soak {n}", "labels": ["billing", "bug", "other"]}
        await graphql(client, PROMPT, {"v": variables}, token)
    elif name == "notifications":
        await graphql(client, NOTIFICATIONS, {}, token)
    elif name == "flag":
        await graphql(client, FLAG, {}, token)
    elif name == "webhook":
        await pay_invoice(client, tally, customer)


async def pay_invoice(client: httpx.AsyncClient, tally: Tally, customer: str) -> None:
    """A signed `invoice.paid` for a new invoice, delivered twice (Stripe redelivers)."""
    invoice_id, responses = await deliver_invoice_paid(client, customer, WEBHOOK_SECRET)
    failed = None
    for response in responses:
        if response.is_success:
            tally.invoices_acknowledged.add(invoice_id)
            tally.deliveries_acknowledged += 1
        else:
            failed = response.text[:200]
    if failed is not None:
        raise RuntimeError(failed)


async def client_loop(
    url: str, tally: Tally, customer: str, deadline: float, rate: float, concurrency: int
) -> None:
    """One client: a weighted random operation, paced to rate/concurrency per second."""
    names, weights = list(MIX), list(MIX.values())
    interval = concurrency / rate
    n = 0
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        while time.monotonic() < deadline:
            n += 1
            name = random.choices(names, weights)[0]
            started = time.monotonic()
            try:
                await operation(name, client, tally, customer, n)
                tally.latencies[name].append(time.monotonic() - started)
            except Exception as error:
                tally.errors[name] += 1
                tally.first_error.setdefault(name, repr(error)[:200])
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))


def growth_per_hour(samples: Sequence[Sample], value: Any) -> float:
    """Least-squares slope of value(sample) over time, per hour."""
    if len(samples) < 2:
        return float("nan")
    xs = [s.at for s in samples]
    ys = [float(value(s)) for s in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var * 3600


async def applied_invoices(engine: Any, team: str) -> list[str]:
    async with engine.connect() as connection:
        rows = await connection.scalars(
            select(BillingInvoice.id).where(BillingInvoice.team_id == team)
        )
        return list(rows)


async def run(args: argparse.Namespace) -> None:
    heading(f"soak: {args.seconds} s, at most {args.rate} req/s")
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        async with stores("real", directory) as found, embedded_broker() as broker:
            await soak(args, directory, found, broker.bootstrap_servers)


async def soak(args: argparse.Namespace, directory: Path, found: Stores, bootstrap: str) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "HAUNTED_ENV": "test",
        "HAUNTED_HOST": "127.0.0.1",
        "HAUNTED_PORT": str(port),
        "HAUNTED_DATA_DIR": str(directory / ".haunted"),
        "HAUNTED_LOG_LEVEL": "WARNING",
        "HAUNTED_DATABASE_URL": found.database_url,
        "HAUNTED_REDIS_URL": found.redis_url,
        "HAUNTED_KAFKA_BOOTSTRAP": bootstrap,
        "HAUNTED_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "HAUNTED_PLANS_FILE": str(unlimited_plans(directory)),
        "HAUNTED_AUTH_RATE_LIMIT_PER_IP": "1000000/minute",
        "HAUNTED_AUTH_RATE_LIMIT_PER_ACCOUNT": "1000000/minute",
        "HAUNTED_ANALYTICS__TRACK_RATE_LIMIT": "1000000/minute",
    }
    engine = create_async_engine(found.database_url)
    team, customer = f"team_soak_{uuid.uuid4().hex[:8]}", f"cus_soak_{uuid.uuid4().hex[:8]}"
    async with engine.begin() as connection:
        await connection.execute(
            insert(BillingCustomer).values(
                team_id=team, stripe_customer_id=customer, created_at=datetime.now(UTC)
            )
        )
    tally = Tally()
    samples: list[Sample] = []
    applied: list[str] = []
    try:
        async with (
            process("serve", ["serve"], env) as serve_pid,
            process("worker", ["worker"], env) as worker_pid,
        ):
            await ready(url)
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                for _ in range(args.concurrency):
                    await register(client, tally)
            stop = asyncio.Event()
            sampling = asyncio.create_task(
                sampler(
                    {"serve": serve_pid, "worker": worker_pid}, engine, bootstrap, samples, stop
                )
            )
            deadline = time.monotonic() + args.seconds
            await asyncio.gather(
                *(
                    client_loop(url, tally, customer, deadline, args.rate, args.concurrency)
                    for _ in range(args.concurrency)
                )
            )
            stop.set()
            await sampling
            # Every acknowledged webhook applied once: wait (bounded) for the rows.
            for _ in range(100):
                applied = await applied_invoices(engine, team)
                if tally.invoices_acknowledged <= set(applied):
                    break
                await asyncio.sleep(0.1)
    finally:
        await engine.dispose()
    report(args, tally, samples, applied)


def report(
    args: argparse.Namespace, tally: Tally, samples: Sequence[Sample], applied: Sequence[str]
) -> None:
    done = sum(len(v) for v in tally.latencies.values())
    failed = sum(tally.errors.values())
    total = done + failed
    heading("soak results")
    line("run length", f"{args.seconds} s, {len(samples)} samples")
    line("requests", f"{total} ({total / max(args.seconds, 1):.1f}/s), {failed} failed")
    line("error rate", f"{failed / max(total, 1):.4%}")
    every = [x for v in tally.latencies.values() for x in v]
    if every:
        line("p99 all operations", f"{percentile(every, 99) * 1000:.1f} ms")
    for name in MIX:
        values = tally.latencies.get(name, [])
        if values:
            line(
                f"  {name}",
                f"n={len(values)} p50 {percentile(values, 50) * 1000:.1f} ms"
                f" p99 {percentile(values, 99) * 1000:.1f} ms errors {tally.errors.get(name, 0)}",
            )
    steady = [s for s in samples if s.at - samples[0].at >= 60] if samples else []
    if len(steady) < 3:
        steady = list(samples[1:])
    for name in samples[0].rss_kib if samples else ():
        rss = growth_per_hour(steady, lambda s, n=name: s.rss_kib[n] / 1024)
        fds = growth_per_hour(steady, lambda s, n=name: s.fds[n])
        first, last = samples[0], samples[-1]
        line(
            f"{name} RSS",
            f"{first.rss_kib[name] / 1024:.0f} -> {last.rss_kib[name] / 1024:.0f} MiB,"
            f" growth {rss:+.0f} MiB/h",
        )
        line(f"{name} open fds", f"{first.fds[name]} -> {last.fds[name]}, growth {fds:+.0f}/h")
    if samples:
        line("outbox oldest pending (max)", f"{max(s.outbox_oldest_s for s in samples):.1f} s")
        line("consumer lag (max, last)", f"{max(s.lag for s in samples)}, {samples[-1].lag}")
    for name, error in tally.first_error.items():
        line(f"first {name} error", error)
    unique = set(applied)
    line(
        "webhooks",
        f"{tally.deliveries_acknowledged} deliveries acknowledged, "
        f"{len(tally.invoices_acknowledged)} invoices; {len(applied)} rows applied"
        f" ({'each once' if len(unique) == len(applied) else 'DUPLICATES'},"
        f" {'all acknowledged applied' if tally.invoices_acknowledged <= unique else 'MISSING'})",
    )


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--rate", type=float, default=40.0, help="requests/s, at most")
    parser.add_argument("--concurrency", type=int, default=8)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    asyncio.run(run(parse(argv)))


if __name__ == "__main__":
    main()
