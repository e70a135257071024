"""The consumers' idempotency table at size: insert rate without and with the time
index that lets `processed_events` be purged, and the purge itself.

On this machine's PostgreSQL, in a database created for the run:

1. `--rows` rows (default 1,000,000; `--rows 10000000` for the figure of the
   issue) are generated into `processed_events` as migration 0001 made it:
   six consumers, processed over the last 28 days;
2. baseline: `--inserts` rows are inserted as the consumers do, one per
   transaction with the duplicate check, over 8 connections;
3. the time index of migration 0100 is built, and the same inserts run again;
4. the purge deletes the rows older than 14 days, a chunk at a time, as the
   relay does (`events.consumer.purge_processed`'s statement).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Sequence

import asyncpg

from bench.common import PG_HOST, PG_PORT, PG_USER, heading, line

CONNECTIONS = 8
ROUNDS = 2
CHUNK = 10_000
CREATE = """
CREATE TABLE processed_events (
    consumer varchar(100) NOT NULL,
    event_id varchar(64) NOT NULL,
    processed_at timestamptz NOT NULL,
    CONSTRAINT pk_processed_events PRIMARY KEY (consumer, event_id)
)"""
FILL = """
INSERT INTO processed_events
SELECT 'consumer-' || (g % 6), md5(g::text),
       now() - (g % 28) * interval '1 day' - (g % 86400) * interval '1 second'
FROM generate_series($1::bigint, $2::bigint) AS g"""
CHECK = "SELECT 1 FROM processed_events WHERE consumer = $1 AND event_id = $2"
INSERT = "INSERT INTO processed_events VALUES ($1, $2, now())"
PURGE = """
DELETE FROM processed_events WHERE (consumer, event_id) IN (
    SELECT consumer, event_id FROM processed_events
    WHERE processed_at < now() - interval '14 days' LIMIT $1)"""


async def _inserts(pool: asyncpg.Pool, count: int) -> float:
    """Rows/s inserted one per transaction, each after its duplicate check."""
    ids = [uuid.uuid4().hex for _ in range(count)]

    async def worker(share: list[str]) -> None:
        async with pool.acquire() as connection:
            for index, event_id in enumerate(share):
                async with connection.transaction():
                    consumer = f"consumer-{index % 6}"
                    if await connection.fetchval(CHECK, consumer, event_id) is None:
                        await connection.execute(INSERT, consumer, event_id)

    started = time.perf_counter()
    await asyncio.gather(*(worker(ids[n::CONNECTIONS]) for n in range(CONNECTIONS)))
    return count / (time.perf_counter() - started)


async def run(rows: int, inserts: int) -> None:
    name = f"haunted_bench_processed_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        pool = await asyncpg.create_pool(
            host=PG_HOST,
            port=PG_PORT,
            user=PG_USER,
            database=name,
            min_size=1,
            max_size=CONNECTIONS,
        )
        try:
            async with pool.acquire() as connection:
                await connection.execute(CREATE)
                started = time.perf_counter()
                for start in range(1, rows + 1, 1_000_000):
                    await connection.execute(FILL, start, min(start + 999_999, rows))
                await connection.execute("VACUUM ANALYZE processed_events")
                fill_s = time.perf_counter() - started
                size = await connection.fetchval(
                    "SELECT pg_total_relation_size('processed_events')"
                )
            await _inserts(pool, 1_000)  # warm-up: connections, plans, cache
            # Rounds alternate (without, with, without, with) so that what else the
            # machine does slows both alike; each figure is over its rounds.
            seconds = {"without": 0.0, "with": 0.0}
            index_s = 0.0
            for _ in range(ROUNDS):
                seconds["without"] += inserts / await _inserts(pool, inserts)
                async with pool.acquire() as connection:
                    started = time.perf_counter()
                    await connection.execute(
                        "CREATE INDEX ix_processed_events_processed_at"
                        " ON processed_events (processed_at)"
                    )
                    index_s = time.perf_counter() - started
                seconds["with"] += inserts / await _inserts(pool, inserts)
                async with pool.acquire() as connection:
                    indexed_size = await connection.fetchval(
                        "SELECT pg_total_relation_size('processed_events')"
                    )
                    await connection.execute("DROP INDEX ix_processed_events_processed_at")
            without = ROUNDS * inserts / seconds["without"]
            with_index = ROUNDS * inserts / seconds["with"]
            async with pool.acquire() as connection:
                await connection.execute(
                    "CREATE INDEX ix_processed_events_processed_at"
                    " ON processed_events (processed_at)"
                )
            async with pool.acquire() as connection:
                old = await connection.fetchval(
                    "SELECT count(*) FROM processed_events"
                    " WHERE processed_at < now() - interval '14 days'"
                )
                started = time.perf_counter()
                purged = 0
                while True:
                    status = await connection.execute(PURGE, CHUNK)
                    deleted = int(status.split()[-1])
                    purged += deleted
                    if deleted < CHUNK:
                        break
                purge_s = time.perf_counter() - started
        finally:
            await pool.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

    heading(f"processed_events at {rows:,} rows (PostgreSQL, {CONNECTIONS} connections)")
    line("generated", f"{fill_s:>10.1f} s, {size / 1e6:,.0f} MB")
    line("inserts, no time index (baseline)", f"{without:>10,.0f} rows/s")
    line("inserts, with the time index", f"{with_index:>10,.0f} rows/s")
    line("ratio with/without", f"{with_index / without:>10.2f}")
    line("index build", f"{index_s:>10.1f} s, table + indexes {indexed_size / 1e6:,.0f} MB")
    line("purge older than 14 days", f"{purged:,} of {old:,} rows in {purge_s:.1f} s")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.processed_events")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the table first")
    parser.add_argument("--inserts", type=int, default=20_000, help="rows inserted per phase")
    args = parser.parse_args(argv)
    asyncio.run(run(args.rows, args.inserts))


if __name__ == "__main__":
    main()
