"""events/db.py's pool on PostgreSQL: no pre-ping, yet connections the server closed
never reach a caller. On SQLite: reads take no write lock, and this process's writers
take turns in the order they came."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text

from events.db import Database
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


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'locks.db'}")
    async with db.transaction() as session:
        await session.execute(text("CREATE TABLE item (id INTEGER PRIMARY KEY, writer TEXT)"))
    yield db
    await db.dispose()


async def test_a_sqlite_read_goes_ahead_while_a_writer_holds_the_lock(
    sqlite_db: Database,
) -> None:
    writing = asyncio.Event()
    read_done = asyncio.Event()

    async def writer() -> None:
        async with sqlite_db.transaction() as session:
            await session.execute(text("INSERT INTO item (writer) VALUES ('w')"))
            writing.set()
            # Still holding the write lock: commits only once the read has finished.
            await read_done.wait()

    task = asyncio.create_task(writer())
    await writing.wait()
    # A read that took the write lock would wait here for the writer, which waits for
    # it: "database is locked" after SQLite's busy timeout.
    async with sqlite_db.read() as session:
        seen = await session.scalar(text("SELECT count(*) FROM item"))
    read_done.set()
    await task
    assert seen == 0  # the snapshot before the uncommitted insert
    async with sqlite_db.read() as session:
        assert await session.scalar(text("SELECT count(*) FROM item")) == 1


async def test_sqlite_writers_of_one_process_take_turns_in_arrival_order(
    sqlite_db: Database,
) -> None:
    release = asyncio.Event()
    holding = asyncio.Event()
    order: list[str] = []

    async def first() -> None:
        async with sqlite_db.transaction() as session:
            await session.execute(text("INSERT INTO item (writer) VALUES ('first')"))
            holding.set()
            await release.wait()

    async def queued(name: str) -> None:
        async with sqlite_db.transaction() as session:
            order.append(name)
            await session.execute(text("INSERT INTO item (writer) VALUES (:w)"), {"w": name})

    holder = asyncio.create_task(first())
    await holding.wait()
    names = [f"w{index}" for index in range(6)]
    # Tasks start in creation order, so each queues behind the ones created before it.
    waiting = [asyncio.create_task(queued(name)) for name in names]
    release.set()
    await asyncio.gather(holder, *waiting)
    assert order == names
    async with sqlite_db.read() as session:
        rows = (await session.scalars(text("SELECT writer FROM item ORDER BY id"))).all()
    assert rows == ["first", *names]
