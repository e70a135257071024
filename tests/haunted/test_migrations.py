"""haunted/migrations.py and infra/migrations: the Alembic history builds exactly the
models' schema on both backends (a model changed without a migration fails here)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

import events
import services
from events.db import Base
from haunted import migrations
from tests.haunted import fresh_postgres_database, table_names


def every_model() -> MetaData:
    """Base.metadata once every module that could declare a table is imported, so a
    model that infra/migrations/env.py (or any migration) forgot still shows up."""
    for package in (events, services):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            importlib.import_module(module.name)
    return Base.metadata


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh' / 'haunted.db'}"
        return
    async with fresh_postgres_database() as url:
        yield url


async def schema_differences(database_url: str, metadata: MetaData) -> list[Any]:
    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(compare)
    finally:
        await engine.dispose()


async def applied_revisions(database_url: str) -> set[str]:
    def current(connection: Connection) -> set[str]:
        return set(MigrationContext.configure(connection).get_current_heads())

    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(current)
    finally:
        await engine.dispose()


def test_the_history_has_one_root_and_every_head_builds_on_it() -> None:
    script = ScriptDirectory.from_config(migrations.alembic_config("sqlite://"))
    assert len(script.get_bases()) == 1
    for head in script.get_heads():
        chain = list(script.iterate_revisions(head, "base"))
        assert chain[-1].revision == script.get_bases()[0]


async def test_upgrade_creates_every_table(empty_database: str) -> None:
    metadata = every_model()
    await migrations.upgrade(empty_database)
    assert await table_names(empty_database) == set(metadata.tables) | {"alembic_version"}
    script = ScriptDirectory.from_config(migrations.alembic_config(empty_database))
    assert await applied_revisions(empty_database) == set(script.get_heads())


async def test_the_migrated_schema_is_the_models_schema(empty_database: str) -> None:
    metadata = every_model()
    await migrations.upgrade(empty_database)
    differences = await schema_differences(empty_database, metadata)
    assert differences == [], "a model differs from its migrations; autogenerate one"


async def test_upgrade_again_changes_nothing(empty_database: str) -> None:
    await migrations.upgrade(empty_database)
    before = await table_names(empty_database), await applied_revisions(empty_database)
    await migrations.upgrade(empty_database)
    after = await table_names(empty_database), await applied_revisions(empty_database)
    assert after == before
