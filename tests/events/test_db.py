"""events/db.py's pool on PostgreSQL: no pre-ping, yet connections the server closed
never reach a caller."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
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
