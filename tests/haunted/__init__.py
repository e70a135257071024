"""Tests of the composition root (haunted/), and helpers they share."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import asyncpg
import structlog
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.conftest import PG_HOST, PG_PORT, PG_USER, pg_url


@asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """An empty PostgreSQL database, dropped afterwards; yields its SQLAlchemy URL."""
    name = f"haunted_fresh_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield pg_url(name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def table_names(database_url: str) -> set[str]:
    def names(connection: Connection) -> set[str]:
        return set(inspect(connection).get_table_names())

    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(names)
    finally:
        await engine.dispose()


@contextmanager
def logging_restored() -> Iterator[None]:
    """Puts back the logging and structlog set-up that configure_logging replaces."""
    root = logging.getLogger()
    handlers, levels = root.handlers[:], {"": root.level}
    for name, logger in logging.root.manager.loggerDict.items():
        if isinstance(logger, logging.Logger):
            levels[name] = logger.level
    config = structlog.get_config()
    try:
        yield
    finally:
        root.handlers[:] = handlers
        for name, level in levels.items():
            logging.getLogger(name or None).setLevel(level)
        structlog.configure(**config)
