"""Where SQLite and PostgreSQL differ, in one place: which one, and the writes that differ.

Every service and the bus write through these instead of branching on the
dialect themselves: insert-or-ignore, upsert, insert-many (one statement for a
whole batch) and truncate. SQLite has `ON CONFLICT` too (3.24+), so the two
differ mostly in which SQLAlchemy construct builds it; insert-many and truncate
differ in what each does fastest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ColumnElement, String, Table, bindparam, delete, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.expression import ColumnCollection

Target = AsyncSession | AsyncConnection
# The row already stored, and the row proposed (`excluded`): the upsert's condition.
UpsertWhen = Callable[[ColumnCollection[str, Any], ColumnCollection[str, Any]], ColumnElement[bool]]


class SqlDialect(StrEnum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


def dialect_of(target: Target | Connection | str) -> SqlDialect:
    """The database behind a session, a connection or a URL."""
    if isinstance(target, str):
        name = make_url(target).get_backend_name()
    elif isinstance(target, AsyncSession):
        name = target.get_bind().dialect.name
    else:
        name = target.dialect.name
    try:
        return SqlDialect(name)
    except ValueError:
        raise ValueError(f"{name}: Haunted runs on SQLite or PostgreSQL only") from None


def insert(target: Target | Connection | str, table: Table) -> Any:
    """The dialect's own INSERT, which has `on_conflict_do_nothing` / `_do_update`."""
    if dialect_of(target) is SqlDialect.POSTGRESQL:
        return postgresql.insert(table)
    return sqlite.insert(table)


async def _connection(target: Target) -> AsyncConnection:
    return await target.connection() if isinstance(target, AsyncSession) else target


async def _execute(target: Target, statement: Any, rows: Sequence[Mapping[str, Any]]) -> int:
    # One multi-row VALUES statement: its row count is exact on both drivers, where an
    # executemany's is not on asyncpg. (A row may not repeat a key within one upsert.)
    if len(rows) == 1:
        # One row as parameters: the statement is compiled once and cached, where a
        # VALUES list is compiled anew on every call (0.3 ms of Python each).
        result = await target.execute(statement, dict(rows[0]))
    else:
        result = await target.execute(statement.values(list(rows)))
    return max(int(getattr(result, "rowcount", 0)), 0)


async def insert_ignore(
    target: Target, table: Table, rows: Sequence[Mapping[str, Any]], conflict: Sequence[str]
) -> int:
    """Inserts the rows whose `conflict` key is not stored yet; returns how many were new.

    On PostgreSQL a row whose key another open transaction is inserting waits for it:
    inserted there and committed, it is ignored here; rolled back, it is inserted here.
    """
    if not rows:
        return 0
    statement = insert(target, table).on_conflict_do_nothing(index_elements=list(conflict))
    return await _execute(target, statement, rows)


async def upsert(
    target: Target,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    conflict: Sequence[str],
    update: Sequence[str],
    when: UpsertWhen | None = None,
) -> int:
    """Inserts each row, or updates the `update` columns of the stored one with the same
    `conflict` key (only where `when(stored, proposed)` holds, if given)."""
    if not rows:
        return 0
    statement = insert(target, table)
    proposed = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=list(conflict),
        set_={name: proposed[name] for name in update},
        where=None if when is None else when(table.c, proposed),
    )
    return await _execute(target, statement, rows)


async def insert_many(
    target: Target,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    conflict: Sequence[str],
    *,
    json_text: Sequence[str] = (),
) -> int:
    """Inserts a batch of rows (tuples in `columns` order), ignoring stored keys; returns
    how many were new. `json_text` names JSON columns whose values are already JSON text.

    PostgreSQL gets the batch as one array per column in one statement, encoded by
    asyncpg in C, instead of a row of bound parameters per row; SQLite, one
    executemany of its ON CONFLICT insert.
    """
    if not rows:
        return 0
    connection = await _connection(target)
    if dialect_of(connection) is SqlDialect.POSTGRESQL:
        dialect = connection.dialect
        quote = dialect.identifier_preparer.quote
        into = dialect.identifier_preparer.format_table(table)
        names = ", ".join(map(quote, columns))
        ignore = f"ON CONFLICT ({', '.join(map(quote, conflict))}) DO NOTHING"
        if len(rows) >= COPY_MIN_ROWS and all(
            name in json_text or not isinstance(table.c[name].type, JSON) for name in columns
        ):
            return await _insert_by_copy(connection, table, columns, rows, names, ignore)
        arrays = ", ".join(
            f"${n}::{table.c[name].type.compile(dialect=dialect)}[]"
            for n, name in enumerate(columns, 1)
        )
        # Names from the table's metadata, quoted; the values are bound parameters.
        sql = f"INSERT INTO {into} ({names}) SELECT * FROM unnest({arrays}) {ignore}"  # noqa: S608
        inserted = await connection.exec_driver_sql(sql, tuple(map(list, zip(*rows, strict=True))))
        return max(inserted.rowcount, 0)
    statement = sqlite.insert(table).on_conflict_do_nothing(index_elements=list(conflict))
    if json_text:
        # SQLite keeps JSON as text: the column's own type would encode it again.
        statement = statement.values({name: bindparam(name, type_=String()) for name in json_text})
    # executemany: SQLite's row count sums every row, and its bound-variable limit
    # would cap a single VALUES list.
    inserted = await connection.execute(
        statement, [dict(zip(columns, row, strict=True)) for row in rows]
    )
    return max(inserted.rowcount, 0)


# From this many rows on, a PostgreSQL batch goes by COPY (see _insert_by_copy); below,
# the three statements cost more than the arrays' encoding saves.
COPY_MIN_ROWS = 1_000


async def _insert_by_copy(
    connection: AsyncConnection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    names: str,
    ignore: str,
) -> int:
    """A large batch by binary COPY into a temporary table, then one INSERT ... SELECT.

    asyncpg encodes COPY rows straight through each column's codec; the `unnest`
    arrays instead check every element against collections.abc's Iterable and
    Sized (two ABC instance checks per string): for 10,000 analytics rows, 10 µs
    of this process's CPU a row by arrays, 2 to 3 µs by COPY, and less
    PostgreSQL time too (bench/README.md, issue 19). The temporary table lives
    as long as the pooled connection, is emptied by the INSERT's own DELETE (a
    second batch in the same transaction sees only its rows) and at each commit.
    Its columns are the table's when the connection first made it: after a
    migration that changes them, a process not restarted fails the COPY, and
    the batch consumer then stores the batch record by record (by arrays):
    slower until the restart, nothing lost.
    """
    preparer = connection.dialect.identifier_preparer
    staging_name = f"haunted_staging_{table.name}"
    staging = preparer.quote(staging_name)
    # Names from the table's metadata, quoted; the values go by COPY.
    # (Its first statement also opens the transaction the COPY runs in.)
    await connection.exec_driver_sql(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} "
        f"(LIKE {preparer.format_table(table)} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    raw = await connection.get_raw_connection()
    await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
        staging_name, records=rows, columns=list(columns)
    )
    inserted = await connection.exec_driver_sql(
        f"WITH batch AS (DELETE FROM {staging} RETURNING {names}) "  # noqa: S608
        f"INSERT INTO {preparer.format_table(table)} ({names}) SELECT {names} FROM batch {ignore}"
    )
    return max(inserted.rowcount, 0)


async def truncate(target: Target, *tables: Table) -> None:
    """Empties the tables, within the caller's transaction.

    PostgreSQL's TRUNCATE drops the files where DELETE would mark every row dead for
    vacuum to find (millions of rows, for a rebuild by replay); SQLite has no TRUNCATE.
    """
    if dialect_of(target) is SqlDialect.POSTGRESQL:
        preparer = (await _connection(target)).dialect.identifier_preparer
        names = ", ".join(preparer.format_table(table) for table in tables)
        await target.execute(text(f"TRUNCATE {names}"))
        return
    for table in tables:
        await target.execute(delete(table))
