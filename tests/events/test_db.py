"""events/db.py's pool on PostgreSQL: no pre-ping, yet connections the server closed
never reach a caller; reads without a transaction, that cannot write. On SQLite: a read
takes no write lock, and this process's writers take turns in the order they came."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import delete, event, func, select, text
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


async def test_a_sqlite_read_goes_ahead_while_a_writer_holds_the_lock(tmp_path: Path) -> None:
    """A read must not queue behind a writer (SQLite's busy handler sleeps up to
    100 ms a try): it reads the last committed state while the writer's transaction is
    open. With BEGIN IMMEDIATE it would wait for the lock, here forever (the writer
    waits for it), until busy_timeout fails it with "database is locked"."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'snapshot.db'}")
    begins: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.startswith("BEGIN"):
            begins.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with db.transaction() as session:
            await session.execute(text("CREATE TABLE plans (id INTEGER PRIMARY KEY, name TEXT)"))
            await session.execute(text("INSERT INTO plans VALUES (1, 'free')"))
        async with db.transaction() as writer:
            await writer.execute(text("UPDATE plans SET name = 'pro' WHERE id = 1"))
            async with db.read() as reader:
                name = await reader.scalar(text("SELECT name FROM plans WHERE id = 1"))
        assert name == "free"  # the committed state, not the open transaction's
        async with db.read() as reader:
            assert await reader.scalar(text("SELECT name FROM plans WHERE id = 1")) == "pro"
        # The option stays with the read's checkout: the next unit of work on the
        # same pooled connection takes the write lock up front again.
        async with db.transaction() as session:
            await session.execute(text("UPDATE plans SET name = 'team' WHERE id = 1"))
        assert begins == [
            "BEGIN IMMEDIATE",
            "BEGIN IMMEDIATE",
            "BEGIN",
            "BEGIN",
            "BEGIN IMMEDIATE",
        ]
    finally:
        await db.dispose()


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'locks.db'}")
    async with db.transaction() as session:
        await session.execute(text("CREATE TABLE item (id INTEGER PRIMARY KEY, writer TEXT)"))
    yield db
    await db.dispose()


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
