"""events/dialect.py: each write on both backends (the `db` fixture runs on each)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import JSON, Column, Integer, MetaData, String, Table, func, select

from events.db import Database
from events.dialect import (
    COPY_MIN_ROWS,
    SqlDialect,
    dialect_of,
    insert_ignore,
    insert_many,
    truncate,
    upsert,
)

METADATA = MetaData()
THINGS = Table(
    "dialect_test_things",
    METADATA,
    Column("id", String(32), primary_key=True),
    Column("size", Integer, nullable=False),
    Column("doc", JSON),
)
MARKS = Table(
    "dialect_test_marks",
    METADATA,
    Column("owner", String(32), primary_key=True),
    Column("name", String(32), primary_key=True),
)


@pytest.fixture
async def tables(db: Database) -> AsyncIterator[Database]:
    async with db.engine.begin() as connection:
        await connection.run_sync(METADATA.create_all)
    yield db
    async with db.engine.begin() as connection:
        await connection.run_sync(METADATA.drop_all)


async def rows(db: Database, table: Table = THINGS) -> list[tuple[object, ...]]:
    async with db.read() as session:
        return [
            tuple(row)
            for row in await session.execute(select(table).order_by(*table.primary_key.columns))
        ]


async def test_the_dialect_of_each_kind_of_target(db: Database) -> None:
    expected = SqlDialect.SQLITE if db.url.startswith("sqlite") else SqlDialect.POSTGRESQL
    assert dialect_of(db.url) is expected
    assert db.dialect is expected
    async with db.read() as session:
        assert dialect_of(session) is expected
        assert dialect_of(await session.connection()) is expected


def test_an_unsupported_database_is_named() -> None:
    with pytest.raises(ValueError, match="mysql: Haunted runs on SQLite or PostgreSQL only"):
        dialect_of("mysql+aiomysql://db/haunted")


async def test_insert_ignore_counts_only_new_keys(tables: Database) -> None:
    async with tables.transaction() as session:
        assert await insert_ignore(session, THINGS, [{"id": "a", "size": 1}], ["id"]) == 1
    async with tables.transaction() as session:
        new = await insert_ignore(
            session, THINGS, [{"id": "a", "size": 9}, {"id": "b", "size": 2}], ["id"]
        )
    assert new == 1
    assert await rows(tables) == [("a", 1, None), ("b", 2, None)]  # "a" kept its size
    async with tables.transaction() as session:
        assert await insert_ignore(session, THINGS, [], ["id"]) == 0


async def test_insert_ignore_of_a_key_being_inserted_waits_then_ignores(tables: Database) -> None:
    """Two transactions insert one key at once: one row, one of them counts it."""

    async def insert() -> int:
        async with tables.transaction() as session:
            return await insert_ignore(session, THINGS, [{"id": "twin", "size": 1}], ["id"])

    assert sorted(await asyncio.gather(insert(), insert())) == [0, 1]
    assert await rows(tables) == [("twin", 1, None)]


async def test_upsert_inserts_updates_and_keeps_a_row_its_condition_refuses(
    tables: Database,
) -> None:
    def larger(stored, proposed):  # type: ignore[no-untyped-def]
        return stored.size < proposed.size

    async with tables.transaction() as session:
        await upsert(session, THINGS, [{"id": "a", "size": 5}], ["id"], ["size"], larger)
    async with tables.transaction() as session:
        await upsert(
            session,
            THINGS,
            [{"id": "a", "size": 3}, {"id": "b", "size": 1}],  # "a" would shrink: kept
            ["id"],
            ["size"],
            larger,
        )
    assert await rows(tables) == [("a", 5, None), ("b", 1, None)]
    async with tables.transaction() as session:
        await upsert(session, THINGS, [{"id": "b", "size": 0}], ["id"], ["size"])
    assert await rows(tables) == [("a", 5, None), ("b", 0, None)]


async def test_insert_many_stores_a_batch_once_with_json_text(tables: Database) -> None:
    batch = [("a", 1, json.dumps({"k": 1})), ("b", 2, json.dumps({"k": [2]}))]
    async with tables.transaction() as session:
        stored = await insert_many(
            session, THINGS, ("id", "size", "doc"), batch, ["id"], json_text=["doc"]
        )
    assert stored == 2
    async with tables.transaction() as session:
        again = await insert_many(
            session,
            THINGS,
            ("id", "size", "doc"),
            [("a", 7, "{}"), ("c", 3, json.dumps("text"))],
            ["id"],
            json_text=["doc"],
        )
    assert again == 1
    # JSON text is stored as JSON (not encoded a second time): it reads back decoded.
    assert await rows(tables) == [("a", 1, {"k": 1}), ("b", 2, {"k": [2]}), ("c", 3, "text")]
    async with tables.transaction() as session:
        assert await insert_many(session, THINGS, ("id", "size", "doc"), [], ["id"]) == 0


async def test_a_large_batch_is_stored_once_and_counted_even_twice_in_one_transaction(
    tables: Database,
) -> None:
    """From COPY_MIN_ROWS rows on, PostgreSQL's batch goes by COPY through a
    temporary table: each call must store and count only its own rows."""
    size = COPY_MIN_ROWS + 5
    first = [(f"a{n}", n, json.dumps({"n": n})) for n in range(size)]
    # Half of it again, and as many new: in the same transaction as the first.
    second = [(f"a{n}", -1, "{}") for n in range(size // 2)] + [
        (f"b{n}", n, json.dumps([n])) for n in range(size)
    ]
    columns = ("id", "size", "doc")
    async with tables.transaction() as session:
        stored = await insert_many(session, THINGS, columns, first, ["id"], json_text=["doc"])
        again = await insert_many(session, THINGS, columns, second, ["id"], json_text=["doc"])
    async with tables.transaction() as session:
        third = await insert_many(session, THINGS, columns, first, ["id"], json_text=["doc"])
    assert (stored, again, third) == (size, size, 0)
    stored_rows = {row[0]: row[1:] for row in await rows(tables)}
    assert len(stored_rows) == 2 * size
    assert stored_rows["a7"] == (7, {"n": 7})  # the first batch's, not the repeat's
    assert stored_rows["b7"] == (7, [7])


async def test_insert_many_on_a_composite_key(tables: Database) -> None:
    async with tables.transaction() as session:
        stored = await insert_many(
            session,
            MARKS,
            ("owner", "name"),
            [("u1", "x"), ("u1", "y"), ("u2", "x")],
            ["owner", "name"],
        )
    async with tables.transaction() as session:
        again = await insert_many(
            session, MARKS, ("owner", "name"), [("u1", "x"), ("u2", "y")], ["owner", "name"]
        )
    assert (stored, again) == (3, 1)
    assert len(await rows(tables, MARKS)) == 4


async def test_truncate_empties_the_tables_only_when_its_transaction_commits(
    tables: Database,
) -> None:
    async with tables.transaction() as session:
        await insert_ignore(session, THINGS, [{"id": "a", "size": 1}], ["id"])
        await insert_ignore(session, MARKS, [{"owner": "u", "name": "n"}], ["owner", "name"])

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        async with tables.transaction() as session:
            await truncate(session, THINGS, MARKS)
            raise Abort
    assert await rows(tables) == [("a", 1, None)]  # rolled back with its transaction

    async with tables.transaction() as session:
        await truncate(session, THINGS, MARKS)
    async with tables.read() as session:
        counts = [
            await session.scalar(select(func.count()).select_from(t)) for t in (THINGS, MARKS)
        ]
    assert counts == [0, 0]
