"""The database every service writes through: one engine, one unit of work.

Each service owns its tables (declared on `Base` so that one Alembic history
covers them all); the outbox and processed-event tables live here because
every service's transactions include them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import DateTime, MetaData, event, text
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, ORMExecuteState, Session
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

from events.dialect import SqlDialect, dialect_of
from events.metrics import QUERY_ERRORS, QUERY_SECONDS

log = structlog.get_logger(__name__)
_OPERATIONS = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "BEGIN", "COMMIT", "WITH"})

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always an aware UTC datetime in Python.

    SQLite keeps no zone and hands back naive values; comparing those with
    aware ones fails, so every value is normalized on the way in and out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored: give a time zone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_READ_ONLY = "haunted.read_only"


class ReadOnlySession(RuntimeError):
    """A write (a flush, or an INSERT, UPDATE or DELETE) in a `Database.read()` session."""


@event.listens_for(Session, "before_flush")
def _refuse_flush(session: Session, *_: Any) -> None:
    if session.info.get(_READ_ONLY):
        raise ReadOnlySession("a read() session cannot write: use Database.transaction()")


@event.listens_for(Session, "do_orm_execute")
def _refuse_dml(state: ORMExecuteState) -> None:
    if state.session.info.get(_READ_ONLY) and (
        state.is_insert or state.is_update or state.is_delete
    ):
        raise ReadOnlySession("a read() session cannot write: use Database.transaction()")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime()}


# SQLite's own wait for its write lock (another process, or the in-process queue given up).
_SQLITE_BUSY_TIMEOUT_S = 10.0
# An execution option that marks `Database.read()`'s SQLite connections: a deferred BEGIN.
_DEFERRED = "haunted_deferred_begin"


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # Let SQLAlchemy, not the driver, open transactions, so that _sqlite_begin can
    # take the write lock up front: a deferred transaction that later writes fails
    # with "database is locked" instead of waiting.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={int(_SQLITE_BUSY_TIMEOUT_S * 1000)}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    # A read (Database.read) takes no write lock: in WAL mode it reads its snapshot
    # while a writer commits, instead of queueing behind it in SQLite's busy handler
    # (whose sleeps grow to 100 ms under contention).
    if connection.get_execution_options().get(_DEFERRED):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _time_statements(engine: Engine, slow_s: float) -> None:
    """Every statement's duration in `haunted_db_query_seconds{operation}`; one slower
    than `slow_s` is logged with its SQL text (placeholders only, never the values)."""

    def before(conn: Connection, *_: Any) -> None:
        conn.info.setdefault("haunted.started", []).append(time.perf_counter())

    def after(conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        started = conn.info.get("haunted.started")
        if not started:
            return
        elapsed = time.perf_counter() - started.pop()
        operation = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
        if operation not in _OPERATIONS:
            operation = "OTHER"
        QUERY_SECONDS.labels(operation).observe(elapsed)
        if elapsed > slow_s:
            log.warning(
                "slow query",
                operation=operation,
                duration_ms=round(elapsed * 1000, 1),
                statement=" ".join(statement.split())[:300],
            )

    def failed(context: Any) -> None:
        started = context.connection.info.get("haunted.started") if context.connection else None
        if started:
            started.pop()
        QUERY_ERRORS.inc()

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    event.listen(engine, "handle_error", failed)


def _drop_closed(_dbapi: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
    """A pooled connection the server closed (restart, failover, pg_terminate_backend)
    is replaced at checkout, without a round trip: asyncpg saw the socket close.

    A connection that died silently (no FIN) fails its first statement instead;
    SQLAlchemy then invalidates every pooled connection older than the failure, and the
    caller's own retry (a consumer's redelivery, Stripe's) runs on a fresh one."""
    driver = record.driver_connection
    if driver is not None and driver.is_closed():
        raise DisconnectionError("the server closed this connection")


class Database:
    """The engine and its unit of work, built once per process."""

    def __init__(
        self, url: str, *, echo: bool = False, pool_size: int = 20, slow_query_ms: float = 200.0
    ) -> None:
        self.url = url
        self.dialect = dialect_of(url)
        options: dict[str, Any] = {"echo": echo}
        if self.dialect is SqlDialect.POSTGRESQL:
            # No pre-ping: on asyncpg it costs three round trips per checkout (BEGIN,
            # `;`, ROLLBACK), a third of a short transaction's. `_drop_closed` below
            # catches what it caught after a restart or a terminated backend, locally.
            # Up to `pool_size` connections, all kept: an overflow connection is closed at
            # its checkin whenever the kept ones are idle, so under a steady load of more
            # concurrent reads than those (16 requests of two fields each) every few
            # checkins paid a new connection (a PostgreSQL backend started, TLS, auth).
            options.update(pool_size=pool_size, max_overflow=0)
        self.engine: AsyncEngine = create_async_engine(url, **options)
        if self.dialect is SqlDialect.POSTGRESQL:
            event.listen(self.engine.sync_engine, "checkout", _drop_closed)
        if self.dialect is SqlDialect.SQLITE:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)
        _time_statements(self.engine.sync_engine, slow_query_ms / 1000)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # Reads on PostgreSQL run without BEGIN and ROLLBACK, each statement on its own
        # (two round trips fewer per read). At READ COMMITTED, PostgreSQL's default and
        # ours, every statement takes its own snapshot inside a transaction too, so a
        # read sees the same rows either way. SQLite keeps its transaction (there it is
        # what makes a read's statements see one snapshot), deferred: no write lock.
        reader = (
            self.engine.execution_options(isolation_level="AUTOCOMMIT")
            if self.dialect is SqlDialect.POSTGRESQL
            else self.engine.execution_options(**{_DEFERRED: True})
        )
        self._readers = async_sessionmaker(reader, expire_on_commit=False)
        self._after_commit: list[Callable[[], None]] = []
        # SQLite: this process's writers queue here, first come first served. SQLite's
        # busy handler alone retries in sleeps that grow to 100 ms, so a writer that
        # waited once waited hundreds of ms for a lock held a few ms at a time.
        # One lock per event loop (an asyncio.Lock belongs to one).
        self._write_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Calls `callback` after each transaction that wrote outbox events commits."""
        self._after_commit.append(callback)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: rows and outbox events commit together or not at all."""
        async with self._write_turn(), self.sessions.begin() as session:
            yield session
            wrote_events = session.info.get("outbox", False)
        if wrote_events:
            for callback in self._after_commit:
                callback()

    @asynccontextmanager
    async def _write_turn(self) -> AsyncIterator[None]:
        """On SQLite, this process's turn to write. Only a queue in front of SQLite's
        own lock: past SQLite's busy timeout the transaction goes ahead without its
        turn and SQLite's lock decides, as it would without the queue."""
        if self.dialect is not SqlDialect.SQLITE:
            yield
            return
        loop = asyncio.get_running_loop()
        lock = self._write_locks.setdefault(loop, asyncio.Lock())
        turn = False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_SQLITE_BUSY_TIMEOUT_S):
                turn = await lock.acquire()
        try:
            yield
        finally:
            if turn:
                lock.release()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session that only reads: it never commits, and a write in it raises
        `ReadOnlySession` (without a transaction, a flushed row would stay). On SQLite
        it takes no write lock, so it neither waits for nor holds up the writers."""
        async with self._readers() as session:
            session.info[_READ_ONLY] = True
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def create_all(self) -> None:
        """Creates missing tables without migrations (tests and throwaway databases)."""
        async with self.engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)

    async def dispose(self) -> None:
        await self.engine.dispose()
