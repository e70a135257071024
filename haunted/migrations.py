"""`haunted migrate`: the Alembic history in infra/migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from events.dialect import SqlDialect, dialect_of

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "infra" / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def ensure_sqlite_directory(database_url: str) -> None:
    url = make_url(database_url)
    sqlite = dialect_of(database_url) is SqlDialect.SQLITE
    if sqlite and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


async def upgrade(database_url: str, revision: str = "heads") -> None:
    """Creates or upgrades the schema; safe to run on every start.

    Each service keeps its own Alembic branch off the foundation revision, so
    "heads" (every branch) is the target.
    """
    ensure_sqlite_directory(database_url)
    # Alembic's env.py runs its own event loop: give it a thread.
    await asyncio.to_thread(command.upgrade, alembic_config(database_url), revision)
