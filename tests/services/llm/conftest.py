"""LLM fixtures: the local OpenAI-compatible server, test prompts, and the facade over
a migrated database and Redis of each backend (no broker: events stay in the outbox)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from events.db import Database
from events.outbox import OutboxRecord
from haunted.runtime import build_redis
from haunted.services import build_llm
from haunted.settings import Settings
from services.llm import LlmService
from services.principal import Principal
from tests.conftest import free_port, make_settings
from tests.services.llm.openai_server import FakeOpenAI, serve

HELLO = """---
version: "2.1"
description: greets someone
model: m-primary
fallback_models: [m-backup]
temperature: 0.1
max_tokens: 50
system: You greet people.
variables:
  name: {type: string, required: true, max_length: 40}
  times: {type: integer, required: false, default: 1}
---
Say hello to {{ name }} {{ times }} times.
"""

CACHED = HELLO.replace("fallback_models: [m-backup]", "cache_ttl_s: 60")


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI()
    server, task = await serve(fake, free_port())
    yield fake
    server.should_exit = True
    await task


@pytest.fixture
def prompts_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "prompts"
    directory.mkdir()
    (directory / "hello.md").write_text(HELLO)
    (directory / "cached.md").write_text(CACHED)
    return directory


def llm_settings(database_url: str, redis_url: str, prompts_dir: Path, **values: Any) -> Settings:
    return make_settings(
        database_url=database_url,
        redis_url=redis_url,
        llm_prompts_dir=prompts_dir,
        llm_retry_backoff_s=0.01,
        llm_timeout_s=5.0,
        llm_prices={"m-primary": (1.0, 2.0), "m-backup": (3.0, 4.0)},
        **values,
    )


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


@pytest.fixture
async def llm(
    db: Database, database_url: str, redis_url: str, prompts_dir: Path, fake_openai: FakeOpenAI
) -> AsyncIterator[LlmService]:
    settings = llm_settings(database_url, redis_url, prompts_dir, openai_base_url=fake_openai.url)
    redis = build_redis(redis_url)
    service = build_llm(settings, db, redis)
    yield service
    await service.close()
    await redis.aclose()


def member(user_id: str = "u1", team_id: str = "t1") -> Principal:
    return Principal(user_id=user_id, session_id="s1", teams={team_id: "member"})


async def outbox(db: Database, topic: str | None = None) -> list[dict[str, Any]]:
    """The payloads of the events waiting in the outbox, oldest first."""
    async with db.read() as session:
        query = select(OutboxRecord).order_by(OutboxRecord.seq)
        if topic is not None:
            query = query.where(OutboxRecord.topic == topic)
        rows = (await session.execute(query)).scalars().all()
    return [{"topic": row.topic, **json.loads(row.value)} for row in rows]
