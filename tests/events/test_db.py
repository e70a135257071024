"""events/db.py's pool on PostgreSQL: no pre-ping, yet connections the server closed
never reach a caller; reads without a transaction, that cannot write."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from events.consumer import ProcessedEvent
from events.db import Database, ReadOnlySession
from tests.conftest import _pg_admin, eventually, pg_url


async def _pooled(db: Database, count: int) -> dict[int, asyncpg.Connection]:
    """`count` pooled connections by backend pid, each held by its own transaction at once."""
    entered = asyncio.Barrier(count)

    async def one() -> tuple[int, asyncpg.Connection]:
        async with db.transaction() as session:
            pid = int(await session.scalar(text("SELECT pg_backend_pid()")) or 0)
            raw = await (await session.connection()).get_raw_connection()
            await entered.wait()  # all checked out together: `count` distinct connections
            return pid, raw.driver_connection

    return dict(await asyncio.gather(*(one() for _ in range(count))))


async def test_connections_the_server_closed_are_replaced_at_checkout() -> None:
    name = f"haunted_pool_{uuid.uuid4().hex[:12]}"
    admin = await _pg_admin()
    await admin.execute(f'CREATE DATABASE "{name}"')
    db = Database(pg_url(name), pool_size=3)
    observer = await asyncpg.connect(pg_url(name, "postgresql"))
    try:
        pooled = await _pooled(db, 3)
        assert len(pooled) == 3
        # A restart, a failover or an operator: every pooled connection is cut.
        await observer.execute(
            "SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) pid", list(pooled)
        )

        async def seen_closed() -> bool:
            # The client has read each socket's close (a moment after the server's exit).
            return all(connection.is_closed() for connection in pooled.values())

        await eventually(seen_closed)
        # Each is replaced when it is next checked out: no caller sees the cut.
        fresh = await _pooled(db, 3)
        assert len(fresh) == 3
        assert not fresh.keys() & pooled.keys()
    finally:
        await observer.close()
        await db.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _scratch(name: str) -> asyncpg.Connection:
    admin = await _pg_admin()
    await admin.execute(f'CREATE DATABASE "{name}"')
    return admin


async def _drop(admin: asyncpg.Connection, name: str) -> None:
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


async def test_a_read_runs_without_a_transaction_and_a_unit_of_work_within_one() -> None:
    name = f"haunted_pool_{uuid.uuid4().hex[:12]}"
    admin = await _scratch(name)
    db = Database(pg_url(name))
    observer = await asyncpg.connect(pg_url(name, "postgresql"))

    async def state_between_statements(session: AsyncSession) -> str:
        pid = await session.scalar(text("SELECT pg_backend_pid()"))
        state = "SELECT state FROM pg_stat_activity WHERE pid = $1"
        return str(await observer.fetchval(state, pid))

    try:
        # No BEGIN, no ROLLBACK: two round trips fewer for every read.
        async with db.read() as session:
            assert await state_between_statements(session) == "idle"
        async with db.transaction() as session:
            assert await state_between_statements(session) == "idle in transaction"
    finally:
        await observer.close()
        await db.dispose()
        await _drop(admin, name)


async def test_the_pool_keeps_every_connection_it_opens() -> None:
    name = f"haunted_pool_{uuid.uuid4().hex[:12]}"
    admin = await _scratch(name)
    db = Database(pg_url(name), pool_size=2)

    async def pid() -> int:
        async with db.read() as session:
            return int(await session.scalar(text("SELECT pg_backend_pid()")) or 0)

    try:
        # More readers at once than the pool's size wait for a connection instead of
        # opening (and, at checkin, closing) one more each time.
        first = set(await asyncio.gather(*(pid() for _ in range(6))))
        again = set(await asyncio.gather(*(pid() for _ in range(6))))
        assert len(first) <= 2
        assert again <= first
    finally:
        await db.dispose()
        await _drop(admin, name)


@pytest.mark.parametrize("backend", ["embedded", "real"])
async def test_a_read_session_refuses_to_write(backend: str, tmp_path: Path) -> None:
    name = f"haunted_pool_{uuid.uuid4().hex[:12]}"
    admin = await _scratch(name) if backend == "real" else None
    url = pg_url(name) if backend == "real" else f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    db = Database(url)
    try:
        await db.create_all()
        # Without a transaction a flushed row would stay: a read never writes.
        async with db.read() as session:
            session.add(ProcessedEvent(consumer="c", event_id="e", processed_at=datetime.now(UTC)))
            with pytest.raises(ReadOnlySession):
                await session.flush()
        async with db.read() as session:
            with pytest.raises(ReadOnlySession):
                await session.execute(delete(ProcessedEvent))
            assert await session.scalar(select(func.count()).select_from(ProcessedEvent)) == 0
    finally:
        await db.dispose()
        if admin is not None:
            await _drop(admin, name)
