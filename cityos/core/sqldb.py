"""A small async SQL handle over both engines, for the blocks that keep relational state.

The entity store has its own tuned engines (``data/ngsild/store``).  Accounts, clients, sessions,
consents and the audit log need ordinary tables with unique keys and compare-and-set updates;
they use this handle (ADR 0013).  Statements are written once with ``?`` placeholders and portable
SQL (``TEXT``, ``BIGINT``, ``ON CONFLICT``, ``RETURNING``); PostgreSQL gets ``$1, $2, ...``.

SQLite: the relational state lives in its own file beside the entity database
(``cityos.db`` -> ``cityos.auth.db``), so auth writes never wait for the entity writer's group
commits; one connection on one thread serialises everything, which is plenty for logins.
PostgreSQL: the same database as the entities, a small asyncpg pool of its own.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

from cityos.core.storage import engine_of, sqlite_path

T = TypeVar("T")
Row = dict[str, Any]
_PLACEHOLDER = re.compile(r"\?")


class Sql(Protocol):
    """What a statement runner offers: the handle itself and an open transaction alike."""

    engine: str

    async def execute(self, sql: str, *args: Any) -> int:
        """Run a statement; the number of rows it changed."""

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        """All rows of a query, as dicts."""

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        """The first row of a query, or None."""


def pg_sql(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2, ...``."""
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _m: f"${next(counter)}", sql)


class SqlDb:
    """One relational handle per process and database URL."""

    def __init__(self, url: str, *, sqlite_suffix: str = ".auth") -> None:
        self.url = url
        self.engine = engine_of(url)
        self._suffix = sqlite_suffix
        self._pool: Any = None
        self._conn: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._tx_lock = asyncio.Lock()
        self._opened = 0

    # -- life cycle ------------------------------------------------------------------------------
    async def open(self) -> None:
        """Connect (idempotent: each block that shares the handle may call it)."""
        self._opened += 1
        if self._opened > 1:
            return
        if self.engine == "postgresql":
            import asyncpg

            self._pool = await asyncpg.create_pool(self.url, min_size=1, max_size=4)
            return
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cityos-sqldb")
        self._conn = await self._on_thread(self._connect)

    async def close(self) -> None:
        self._opened = max(0, self._opened - 1)
        if self._opened:
            return
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await self._on_thread(conn.close)
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._thread = None

    def _connect(self) -> sqlite3.Connection:
        path = sqlite_path(self.url)
        if path:
            base = Path(path)
            target = base.with_name(base.stem + self._suffix + (base.suffix or ".db"))
            target.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(target), isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            if not os.access(target, os.W_OK):
                raise PermissionError(f"cannot write {target}")
        else:
            conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.row_factory = sqlite3.Row
        return conn

    async def _on_thread(self, fn: Callable[[], T]) -> T:
        assert self._thread is not None, "SqlDb.open() was not awaited"
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn)

    # -- statements ------------------------------------------------------------------------------
    async def script(self, ddl: str) -> None:
        """Run several ``;``-separated DDL statements (schema creation)."""
        if self._pool is not None:
            async with self._pool.acquire() as conn:
                await conn.execute(ddl)
            return
        conn = self._sqlite()
        async with self._tx_lock:      # executescript commits: never inside another's transaction
            await self._on_thread(lambda: conn.executescript(ddl))

    async def execute(self, sql: str, *args: Any) -> int:
        if self._pool is not None:
            async with self._pool.acquire() as conn:
                return _pg_count(await conn.execute(pg_sql(sql), *args))
        async with self._tx_lock:
            return await self._sqlite_execute(sql, args)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        if self._pool is not None:
            async with self._pool.acquire() as conn:
                return [dict(r) for r in await conn.fetch(pg_sql(sql), *args)]
        async with self._tx_lock:
            return await self._sqlite_fetch(sql, args)

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Sql]:
        """A transaction: committed when the block ends, rolled back when it raises."""
        if self._pool is not None:
            async with self._pool.acquire() as conn, conn.transaction():
                yield _PgTx(conn)
            return
        async with self._tx_lock:
            conn = self._sqlite()
            await self._on_thread(lambda: conn.execute("BEGIN IMMEDIATE"))
            try:
                yield _SqliteTx(self)
            except BaseException:
                await self._on_thread(lambda: conn.execute("ROLLBACK"))
                raise
            await self._on_thread(lambda: conn.execute("COMMIT"))

    # -- SQLite internals ------------------------------------------------------------------------
    def _sqlite(self) -> sqlite3.Connection:
        assert self._conn is not None, "SqlDb.open() was not awaited"
        return self._conn

    async def _sqlite_execute(self, sql: str, args: Sequence[Any]) -> int:
        conn = self._sqlite()
        return await self._on_thread(lambda: conn.execute(sql, tuple(args)).rowcount)

    async def _sqlite_fetch(self, sql: str, args: Sequence[Any]) -> list[Row]:
        conn = self._sqlite()
        return await self._on_thread(
            lambda: [dict(r) for r in conn.execute(sql, tuple(args)).fetchall()])


class _SqliteTx:
    """Statements inside an open SQLite transaction (the handle's lock is already held)."""

    engine = "sqlite"

    def __init__(self, db: SqlDb) -> None:
        self._db = db

    async def execute(self, sql: str, *args: Any) -> int:
        return await self._db._sqlite_execute(sql, args)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return await self._db._sqlite_fetch(sql, args)

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self._db._sqlite_fetch(sql, args)
        return rows[0] if rows else None


class _PgTx:
    """Statements on one asyncpg connection inside its transaction."""

    engine = "postgresql"

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def execute(self, sql: str, *args: Any) -> int:
        return _pg_count(await self._conn.execute(pg_sql(sql), *args))

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return [dict(r) for r in await self._conn.fetch(pg_sql(sql), *args)]

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        row = await self._conn.fetchrow(pg_sql(sql), *args)
        return None if row is None else dict(row)


def _pg_count(status: str) -> int:
    """Rows changed, from asyncpg's status string (``UPDATE 3``, ``INSERT 0 1``)."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0
