"""The server engine: PostgreSQL through an asyncpg connection pool.

One row per entity (``entities``: the document as ``jsonb`` plus its type IRIs as ``text[]`` under
a GIN index), one row per GeoProperty box (``entity_geo``, a PostGIS geometry under GiST when the
extension is available, else a GiST index on the built-in ``box`` type), and the rows of the ``q``
attribute value index (``attr_index``, see :mod:`~cityos.data.ngsild.store.qindex`).  Reads push
tenant, ids, types and attributes down to SQL exactly, idPattern and the geo box as prefilters,
and ``q`` as candidate seqs from the value index when they are few (ADR 0005); whatever SQL cannot
decide exactly is decided by ``QueryPlan.python_filter()``, exactly as in the SQLite engine.

Writes follow :meth:`EntityStore.write`: one transaction locks the named rows (``FOR UPDATE``, in id
order), takes advisory locks on the ids that do not exist yet (so two creators of the same new id
run one after the other, and the second sees the first's entity), runs ``fn`` and applies its
WriteSet with one batched statement.  PostgreSQL being unreachable becomes ``ServiceUnavailable``
(503) within the acquire / connect timeout, and the pool reconnects by itself afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg
import orjson
from asyncpg import exceptions as pgerr

from cityos.core.problems import AlreadyExists, BadRequestData, ServiceUnavailable
from cityos.data.ngsild.model import Entity
from cityos.data.ngsild.store import postgres_effects
from cityos.data.ngsild.store.base import (
    FANOUT,
    FANOUT_MARK,
    Change,
    ChangeObserver,
    Effects,
    OutboxRow,
    QueryPlan,
    TypeInfo,
    WriteFn,
    WriteSet,
    final_states,
    write_changes,
)
from cityos.data.ngsild.store.postgres_sql import (
    BOX_SCHEMA,
    DDL_LOCK,
    INDEX_ROWS_INSERT,
    LOCK_SQL,
    PAGE,
    POSTGIS_SCHEMA,
    SCHEMA,
    SCHEMA_STATE,
    SELECT_FOR_UPDATE,
    IndexKeys,
    ProbeKey,
    Where,
    delete_statement,
    index_keys,
    lock_args,
    plan_where,
    selective_probe,
    upsert_statement,
)
from cityos.data.ngsild.store.postgres_temporal import PostgresTemporal
from cityos.data.ngsild.store.postgres_vacuum import SelfVacuum
from cityos.data.ngsild.store.qindex import index_rows, pushdown

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Conn = PoolConnectionProxy[asyncpg.Record]
T = TypeVar("T")

# PostgreSQL (or the way to it) is down, restarting, overloaded or out of connections.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,                                  # refused / reset / unreachable; TimeoutError too
    asyncpg.PostgresConnectionError,
    pgerr.OperatorInterventionError,          # CannotConnectNow, AdminShutdown, QueryCanceled
    pgerr.InsufficientResourcesError,         # TooManyConnections, out of memory, disk full
    asyncpg.InterfaceError,                   # connection closed under us, pool closing
)
# A pooled connection that died (server restart): worth one retry on a fresh connection.
BROKEN: tuple[type[BaseException], ...] = (
    ConnectionResetError, BrokenPipeError, pgerr.ConnectionDoesNotExistError,
    pgerr.AdminShutdownError, pgerr.CrashShutdownError, asyncpg.InterfaceError,
)
BAD_TEXT = (pgerr.UntranslatableCharacterError, pgerr.CharacterNotInRepertoireError)
LOCK_RETRIES = 5
DELETE_CHUNK = 5000
FIRST_PAGE = 50         # rows of the first keyset page when only the first matches are needed


def _encode_jsonb(value: Any) -> bytes:
    return b"\x01" + orjson.dumps(value)      # binary jsonb: version byte 1, then the JSON text


def _decode_jsonb(data: bytes) -> Any:
    return orjson.loads(memoryview(data)[1:])


async def _init_connection(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    await conn.set_type_codec("jsonb", schema="pg_catalog", encoder=_encode_jsonb,
                              decoder=_decode_jsonb, format="binary")


def _dsn(url: str) -> str:
    """asyncpg wants ``postgresql://``; accept ``postgresql+asyncpg://`` and the like too."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+')[0]}{sep}{rest}"


def _unavailable(exc: BaseException) -> ServiceUnavailable:
    detail = f"{type(exc).__name__}: {exc}".rstrip(": ")
    if isinstance(exc, TimeoutError):
        detail = "timed out waiting for PostgreSQL"
    return ServiceUnavailable(f"the PostgreSQL database is not available ({detail})",
                              headers={"Retry-After": "5"})


class PostgresEntityStore(PostgresTemporal):
    """:class:`EntityStore` on PostgreSQL (``postgresql://user@host:port/db``)."""

    engine = "postgresql"

    def __init__(self, url: str, *, min_size: int = 2, max_size: int = 10,
                 acquire_timeout: float = 5.0, connect_timeout: float = 5.0,
                 command_timeout: float = 60.0, self_vacuum: str = "auto") -> None:
        self.url = url
        self.min_size = min_size
        self.max_size = max(max_size, min_size, 1)
        self.acquire_timeout = acquire_timeout
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.postgis = False
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._known_tenants: set[str] = set()
        self._unselective = Unselective()
        self.observer: ChangeObserver | None = None
        self.node = socket.gethostname()     # owner of the outbox rows this process writes
        self._claimed: set[str] = set()
        self.self_vacuum = SelfVacuum(self._connection, self._maintenance_connection, self_vacuum)

    # -- lifecycle -----------------------------------------------------------------------------
    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                _dsn(self.url), min_size=self.min_size, max_size=self.max_size,
                init=_init_connection, timeout=self.connect_timeout,
                command_timeout=self.command_timeout, max_inactive_connection_lifetime=300.0,
                server_settings={"application_name": "cityos", "jit": "off"})
        except UNAVAILABLE as exc:
            raise _unavailable(exc) from exc
        try:
            async with self._connection() as conn:
                self.postgis = await _ensure_schema(conn)
            await self.self_vacuum.start()
        except BaseException:
            pool, self._pool = self._pool, None
            if pool is not None:
                pool.terminate()
            raise
        log.info("PostgreSQL store open (PostGIS %s)", "on" if self.postgis else "off")

    async def close(self) -> None:
        await self.self_vacuum.stop()
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), timeout=10)
        except UNAVAILABLE:
            pool.terminate()

    async def _maintenance_connection(self) -> asyncpg.Connection[asyncpg.Record]:
        """A connection outside the pool and without its statement timeout (VACUUM)."""
        conn: asyncpg.Connection[asyncpg.Record] = await asyncpg.connect(
            _dsn(self.url), timeout=self.connect_timeout, command_timeout=None,
            server_settings={"application_name": "cityos-maintenance"})
        return conn

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Conn]:
        pool = self._pool
        if pool is None:
            raise ServiceUnavailable("the PostgreSQL store is not open")
        try:
            async with pool.acquire(timeout=self.acquire_timeout) as conn:
                yield conn
        except UNAVAILABLE as exc:
            raise _unavailable(exc) from exc
        except BAD_TEXT as exc:
            raise BadRequestData(f"PostgreSQL cannot store this text: {exc}") from exc

    async def _run(self, op: Callable[[Conn], Awaitable[T]],
                   retryable: Callable[[], bool] = lambda: True) -> T:
        """Run ``op`` on a pooled connection; once more on a fresh one if the first had died."""
        for attempt in (1, 2):
            try:
                async with self._connection() as conn:
                    return await op(conn)
            except ServiceUnavailable as exc:
                if attempt == 2 or not isinstance(exc.__cause__, BROKEN) or not retryable():
                    raise
                log.info("PostgreSQL connection lost (%s); retrying", exc.__cause__)
        raise AssertionError("unreachable")

    # -- entities ------------------------------------------------------------------------------
    async def get(self, tenant: str, entity_id: str) -> Entity | None:
        async def op(conn: Conn) -> Entity | None:
            doc: Entity | None = await conn.fetchval(
                "SELECT doc FROM entities WHERE tenant = $1 AND id = $2", tenant, entity_id)
            return doc

        return await self._run(op)

    async def write(self, tenant: str, ids: list[str], fn: WriteFn) -> Any:
        ids = list(dict.fromkeys(ids))
        called = False
        observer = self.observer
        effects: Effects | None = None

        async def op(conn: Conn) -> Any:
            nonlocal called, effects
            for attempt in range(1, LOCK_RETRIES + 1):
                try:
                    async with conn.transaction():
                        current, seqs = await _lock(conn, tenant, ids)
                        # fn changes entities in place: remember what the side tables hold
                        indexed = {i: index_keys(e) for i, e in current.items() if e is not None}
                        # a JSON round trip copies a document several times faster than deepcopy
                        before = ({i: orjson.loads(orjson.dumps(e)) for i, e in current.items()
                                   if e is not None} if observer is not None else {})
                        called = True
                        ws: WriteSet = fn(current)
                        # the effects are known before anything is written: they go into the
                        # upsert's statement, one round trip less per write
                        effects = (observer.effects(tenant, write_changes(ws, before)) or None
                                   if observer is not None and (ws.upserts or ws.deletes)
                                   else None)
                        parts = (postgres_effects.effects_parts(tenant, effects, self.node)
                                 if effects else [])
                        await _apply(conn, tenant, ws, seqs, indexed, parts)
                except pgerr.DeadlockDetectedError as exc:
                    if called or attempt == LOCK_RETRIES:
                        raise ServiceUnavailable(f"write conflict, please retry ({exc})",
                                                 headers={"Retry-After": "1"}) from exc
                    continue       # deadlock while locking: fn has not run, so start again
                except pgerr.UniqueViolationError as exc:
                    raise AlreadyExists(f"entity already exists ({exc.detail or exc})") from exc
                if ws.upserts or ws.deletes:
                    self._known_tenants.add(tenant)
                return ws.result
            raise AssertionError("unreachable")

        result = await self._run(op, retryable=lambda: not called)
        if effects:
            self._announce(tenant, effects)
        return result

    async def _append_effects(self, conn: Conn, observer: ChangeObserver, tenant: str,
                              changes: list[Change]) -> Effects | None:
        effects = observer.effects(tenant, changes)
        if not effects:
            return None
        await postgres_effects.execute_parts(
            conn, postgres_effects.effects_parts(tenant, effects, self.node))
        return effects

    def _announce(self, tenant: str, effects: Effects) -> None:
        self._claimed.update(row.id for row in effects.outbox)
        if self.observer is not None:
            self.observer.committed(tenant, effects)

    # -- queries -------------------------------------------------------------------------------
    async def query(self, plan: QueryPlan) -> tuple[list[Entity], int | None]:
        keep = plan.python_filter()

        async def run(conn: Conn, w: Where) -> tuple[list[Entity], int | None]:
            if not w.exact:
                seqs = await _selective_seqs(conn, plan, self._unselective)
                if not plan.count:
                    return await _collect(_scan(conn, w, plan.offset + plan.limit, keep, seqs),
                                          plan)
                async with conn.transaction(readonly=True):        # the cursor needs one
                    return await _collect(_scan(conn, w, None, keep, seqs), plan)
            n = len(w.args)
            page: list[Entity] = []
            if plan.limit > 0:
                rows = await conn.fetch(f"SELECT e.doc FROM entities e WHERE {w.sql} ORDER BY e.seq "
                                        f"OFFSET ${n + 1} LIMIT ${n + 2}", *w.args, plan.offset,
                                        plan.limit)
                page = [r[0] for r in rows]
            total: int | None = None
            if plan.count:
                total = await conn.fetchval(f"SELECT count(*) FROM entities e WHERE {w.sql}", *w.args)
            return page, total

        return await self._run(lambda conn: self._with_regex_fallback(conn, plan, run))

    async def delete_matching(self, plan: QueryPlan) -> int:
        keep = plan.python_filter()
        observer = self.observer
        announce: list[Effects] = []

        async def run(conn: Conn, w: Where) -> int:
            for attempt in range(1, LOCK_RETRIES + 1):
                try:
                    async with conn.transaction():
                        if w.exact and observer is None:
                            status = await conn.execute(f"DELETE FROM entities e WHERE {w.sql}",
                                                        *w.args)
                            return int(status.split()[-1])
                        seqs = await _selective_seqs(conn, plan, self._unselective)
                        doomed = [e async for e in _scan(conn, w, None, keep, seqs)]
                        for start in range(0, len(doomed), DELETE_CHUNK):
                            await conn.execute(delete_statement(False), plan.tenant,
                                               [e["id"] for e in doomed[start:start + DELETE_CHUNK]])
                        if observer is not None and doomed:
                            effects = await self._append_effects(
                                conn, observer, plan.tenant, [Change(e["id"], e, None) for e in doomed])
                            announce[:] = [effects] if effects else []
                        return len(doomed)
                except pgerr.DeadlockDetectedError as exc:
                    if attempt == LOCK_RETRIES:
                        raise ServiceUnavailable(f"write conflict, please retry ({exc})") from exc
            raise AssertionError("unreachable")

        count = await self._run(lambda conn: self._with_regex_fallback(conn, plan, run))
        for effects in announce:
            self._announce(plan.tenant, effects)
        return count

    async def _with_regex_fallback(self, conn: Conn, plan: QueryPlan,
                                   run: Callable[[Conn, Where], Awaitable[T]]) -> T:
        try:
            return await run(conn, plan_where(plan, self.postgis))
        except pgerr.InvalidRegularExpressionError:
            # PostgreSQL rejected the idPattern: leave it to Python alone
            return await run(conn, plan_where(plan, self.postgis, id_regex=False))

    async def type_info(self, tenant: str) -> list[TypeInfo]:
        async def op(conn: Conn) -> list[TypeInfo]:
            infos: dict[str, TypeInfo] = {}
            for type_iri, count in await conn.fetch(
                    "SELECT t, count(*) FROM entities e, unnest(e.types) AS t WHERE e.tenant = $1 "
                    "GROUP BY t ORDER BY t COLLATE \"C\"", tenant):
                infos[type_iri] = TypeInfo(type_iri, count, {})
            for type_iri, attr, attr_type in await conn.fetch(
                    "SELECT DISTINCT t, k, e.doc->'attrs'->k->0->>'type' FROM entities e, "
                    "unnest(e.types) AS t, jsonb_object_keys(e.doc->'attrs') AS k "
                    "WHERE e.tenant = $1", tenant):
                infos[type_iri].attributes.setdefault(attr, set()).add(attr_type or "Property")
            return list(infos.values())

        return await self._run(op)

    async def tenants(self) -> list[str]:
        async def op(conn: Conn) -> list[str]:
            return [r[0] for r in await conn.fetch('SELECT name FROM tenants ORDER BY name COLLATE "C"')]

        return await self._run(op)

    async def tenant_exists(self, tenant: str) -> bool:
        if tenant in self._known_tenants:
            return True

        async def op(conn: Conn) -> bool:
            return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM tenants WHERE name = $1)",
                                            tenant))

        exists = await self._run(op)
        if exists:
            self._known_tenants.add(tenant)
        return exists

    # -- @context store ------------------------------------------------------------------------
    async def put_context(self, tenant: str, ctx_id: str, url: str, kind: str, document: Any,
                          created_at: str) -> None:
        async def op(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO jsonld_contexts (tenant, id, url, kind, document, created_at) "
                "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant, id) DO UPDATE SET "
                "url = EXCLUDED.url, kind = EXCLUDED.kind, document = EXCLUDED.document, "
                "created_at = EXCLUDED.created_at", tenant, ctx_id, url, kind, document, created_at)

        await self._run(op)

    async def get_context(self, tenant: str, ctx_id: str) -> dict[str, Any] | None:
        async def op(conn: Conn) -> dict[str, Any] | None:
            row = await conn.fetchrow(
                "SELECT id, url, kind, document, created_at FROM jsonld_contexts "
                "WHERE tenant = $1 AND id = $2", tenant, ctx_id)
            return _context_record(row) if row else None

        return await self._run(op)

    async def list_contexts(self, tenant: str) -> list[dict[str, Any]]:
        async def op(conn: Conn) -> list[dict[str, Any]]:
            rows = await conn.fetch(
                "SELECT id, url, kind, document, created_at FROM jsonld_contexts WHERE tenant = $1 "
                'ORDER BY created_at COLLATE "C", id COLLATE "C"', tenant)
            return [_context_record(r) for r in rows]

        return await self._run(op)

    async def delete_context(self, tenant: str, ctx_id: str) -> bool:
        async def op(conn: Conn) -> bool:
            status = await conn.execute(
                "DELETE FROM jsonld_contexts WHERE tenant = $1 AND id = $2", tenant, ctx_id)
            return status != "DELETE 0"

        return await self._run(op)

    async def context_by_url(self, url: str) -> Any | None:
        async def op(conn: Conn) -> Any | None:
            return await conn.fetchval(
                "SELECT document FROM jsonld_contexts WHERE url = $1 LIMIT 1", url)

        return await self._run(op)

    # -- documents and the outbox -------------------------------------------------------------------
    async def put_document(self, kind: str, tenant: str, doc_id: str, doc: dict[str, Any],
                           *, create: bool = False) -> bool:
        async def op(conn: Conn) -> bool:
            if create:
                status = await conn.execute(
                    "INSERT INTO documents (kind, tenant, id, doc) VALUES ($1, $2, $3, $4) "
                    "ON CONFLICT DO NOTHING", kind, tenant, doc_id, doc)
                return status.split()[-1] == "1"
            await conn.execute(
                "INSERT INTO documents (kind, tenant, id, doc) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (kind, tenant, id) DO UPDATE SET doc = excluded.doc",
                kind, tenant, doc_id, doc)
            return True

        return await self._run(op)

    async def put_documents(self, kind: str, docs: list[tuple[str, str, dict[str, Any]]]) -> None:
        # one row per id: ON CONFLICT DO UPDATE may not touch a row twice in one statement
        latest = {(tenant, doc_id): doc for tenant, doc_id, doc in docs}
        if not latest:
            return

        async def op(conn: Conn) -> None:
            await conn.execute(postgres_effects.DOCUMENTS_UPSERT, kind,
                               [tenant for tenant, _ in latest], [doc_id for _, doc_id in latest],
                               list(latest.values()))

        await self._run(op)

    async def get_document(self, kind: str, tenant: str, doc_id: str) -> dict[str, Any] | None:
        async def op(conn: Conn) -> dict[str, Any] | None:
            doc: dict[str, Any] | None = await conn.fetchval(
                "SELECT doc FROM documents WHERE kind = $1 AND tenant = $2 AND id = $3",
                kind, tenant, doc_id)
            return doc

        return await self._run(op)

    async def list_documents(self, kind: str, tenant: str | None = None) -> list[dict[str, Any]]:
        async def op(conn: Conn) -> list[dict[str, Any]]:
            rows = await conn.fetch(
                "SELECT tenant, doc FROM documents WHERE kind = $1 AND ($2::text IS NULL OR "
                "tenant = $2) ORDER BY seq", kind, tenant)
            return [postgres_effects.document_record(r[0], r[1]) for r in rows]

        return await self._run(op)

    async def delete_document(self, kind: str, tenant: str, doc_id: str) -> bool:
        async def op(conn: Conn) -> bool:
            status = await conn.execute(
                "DELETE FROM documents WHERE kind = $1 AND tenant = $2 AND id = $3",
                kind, tenant, doc_id)
            return status.split()[-1] != "0"

        return await self._run(op)

    async def outbox_pending(self, limit: int = 1000) -> list[OutboxRow]:
        async def op(conn: Conn) -> list[OutboxRow]:
            async with conn.transaction():
                return await postgres_effects.claim_pending(conn, self.node, self._claimed, limit)

        rows = await self._run(op)
        self._claimed.update(r.id for r in rows)
        return rows

    async def outbox_done(self, ids: list[str]) -> None:
        if not ids:
            return

        async def op(conn: Conn) -> None:
            await conn.execute("DELETE FROM outbox WHERE id = ANY($1::text[])", ids)

        await self._run(op)
        self._claimed.difference_update(ids)

    def add_claims(self, ids: list[str]) -> None:
        self._claimed.update(ids)

    def release_claims(self, ids: list[str]) -> None:
        self._claimed.difference_update(ids)

    async def sweep_fanout_sets(self, mark: int | None) -> tuple[int, int]:
        async def op(conn: Conn) -> tuple[int, int]:
            deleted = 0
            if mark is not None:
                status = await conn.execute(postgres_effects.FANOUT_SWEEP, FANOUT, mark)
                deleted = int(status.split()[-1])
            latest = await conn.fetchval(postgres_effects.FANOUT_MARK_STAMP, FANOUT_MARK)
            return deleted, int(latest)

        return await self._run(op)


def _context_record(row: asyncpg.Record) -> dict[str, Any]:
    return {"id": row[0], "url": row[1], "kind": row[2], "document": row[3], "createdAt": row[4]}


async def _ensure_schema(conn: Conn) -> bool:
    """Create what is missing (idempotent, serialised between processes); True with PostGIS."""
    state = await conn.fetchrow(SCHEMA_STATE)
    assert state is not None
    if state["ready"] and (state["has_geom"] or not state["can_postgis"]):
        return bool(state["has_geom"])
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", *DDL_LOCK)
        # a database from before the attribute value index: fill it once, under the DDL lock
        backfill = await conn.fetchval("SELECT to_regclass('entities') IS NOT NULL "
                                       "AND to_regclass('attr_index') IS NULL")
        for ddl in SCHEMA:
            await conn.execute(ddl)
        if backfill:
            await _fill_attr_index(conn)
        postgis = False
        if state["can_postgis"]:
            try:
                async with conn.transaction():          # a savepoint: failure is not fatal
                    await conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
                    for ddl in POSTGIS_SCHEMA:
                        await conn.execute(ddl)
                postgis = True
            except asyncpg.PostgresError as exc:
                log.info("PostGIS not usable (%s); using the built-in box index", exc)
        if not postgis:
            for ddl in BOX_SCHEMA:
                await conn.execute(ddl)
    return postgis


async def _fill_attr_index(conn: Conn) -> None:
    """Index rows of every stored entity (inside the caller's transaction)."""
    rows: list[tuple[Any, ...]] = []
    total = 0
    async for seq, tenant, doc in conn.cursor("SELECT seq, tenant, doc FROM entities ORDER BY seq",
                                             prefetch=PAGE):
        rows.extend((seq, tenant, *row) for row in index_rows(doc))
        if len(rows) >= 20 * PAGE:
            total += await _insert_index_rows(conn, rows)
            rows = []
    total += await _insert_index_rows(conn, rows)
    log.info("attribute value index built: %d rows", total)


async def _insert_index_rows(conn: Conn, rows: list[tuple[Any, ...]]) -> int:
    if rows:
        await conn.execute(INDEX_ROWS_INSERT, *([r[k] for r in rows] for k in range(6)))
    return len(rows)


async def _lock(conn: Conn, tenant: str,
                ids: list[str]) -> tuple[dict[str, Entity | None], dict[str, int]]:
    """The current state of ``ids`` (and the seq of those that exist), locked until the end of
    the transaction."""
    current: dict[str, Entity | None] = dict.fromkeys(ids)
    seqs: dict[str, int] = {}
    if not ids:
        return current, seqs
    for entity_id, seq, doc in await conn.fetch(SELECT_FOR_UPDATE, tenant, sorted(current)):
        current[entity_id], seqs[entity_id] = doc, seq
    missing = sorted(i for i, e in current.items() if e is None)
    if missing:
        # Absent rows cannot be locked: lock their ids instead, then look again, since another
        # writer may have created some of them while we waited.
        await conn.execute(LOCK_SQL, *lock_args(tenant, missing))
        for entity_id, seq, doc in await conn.fetch(SELECT_FOR_UPDATE, tenant, missing):
            current[entity_id], seqs[entity_id] = doc, seq
    return current, seqs


async def _apply(conn: Conn, tenant: str, ws: WriteSet, seqs: dict[str, int],
                 indexed: dict[str, IndexKeys], effects: list[tuple[str, list[Any]]]) -> None:
    """Write ``ws`` and the ``effects`` statements (history, outbox: postgres_effects)."""
    register = bool(ws.upserts or ws.deletes)
    if ws.upserts:
        statement = upsert_statement(tenant, final_states(ws.upserts), seqs, register, indexed)
        postgres_effects.add_ctes(statement.ctes, statement.args, effects)
        effects = []                    # sent: they are part of the upsert statement now
        await conn.execute(statement.sql, *statement.args)
        register = False
    if ws.deletes:
        await conn.execute(delete_statement(register), tenant, list(ws.deletes))
    if effects:
        await postgres_effects.execute_parts(conn, effects)


async def _collect(matches: AsyncIterator[Entity],
                   plan: QueryPlan) -> tuple[list[Entity], int | None]:
    page: list[Entity] = []
    matched = 0
    async for entity in matches:
        if plan.offset <= matched < plan.offset + plan.limit:
            page.append(entity)
        matched += 1
    return page, (matched if plan.count else None)


class Unselective:
    """Index reads (:data:`ProbeKey`) found not selective in the last ``ttl`` seconds.

    Probing a condition that matches more than SELECTIVE rows reads SELECTIVE + 1 index entries
    for nothing (a few milliseconds); a popular query such as ``status=="free"`` would pay that
    every time.  Such a read is skipped for a while instead, which can only cost the speed-up
    should the condition become selective meanwhile: skipping a read never changes an answer.
    """

    def __init__(self, ttl: float = 30.0, size: int = 4096) -> None:
        self.ttl, self.size = ttl, size
        self._until: dict[ProbeKey, float] = {}

    def __contains__(self, key: object) -> bool:
        until = self._until.get(key)  # type: ignore[call-overload]
        return until is not None and until > time.monotonic()

    def add(self, key: ProbeKey) -> None:
        if len(self._until) >= self.size:
            self._until.clear()
        self._until[key] = time.monotonic() + self.ttl


async def _selective_seqs(conn: Conn, plan: QueryPlan, unselective: Unselective) -> list[int] | None:
    """The seqs (ascending) of every entity that may pass ``plan.q``, from the attribute value
    index, when there are at most SELECTIVE of them; else ``None``.

    The pushdown is a superset of the exact answer (qindex.py), so these seqs only narrow the
    candidates; ``plan.python_filter()`` still decides.
    """
    if plan.q is None or plan.ids:
        return None
    push = pushdown(plan.q)
    if push is None:
        return None
    probe = selective_probe(push, plan.tenant, unselective)
    if not probe.asked:
        return None
    arrays = await conn.fetchrow(probe.sql, *probe.args)
    assert arrays is not None
    for key, seqs in zip(probe.asked, arrays, strict=True):
        if seqs is None:
            unselective.add(key)
    found = probe.seqs(list(arrays))
    return None if found is None else sorted(found)


async def _scan(conn: Conn, w: Where, stop_after: int | None, keep: Callable[[Entity], bool],
                seqs: list[int] | None = None) -> AsyncIterator[Entity]:
    """Candidates of ``w`` that ``keep`` accepts, in seq order.

    Reading every candidate (counting, purging) streams one query through a cursor; looking for
    the first ``stop_after`` matches reads seq-keyset pages instead, small at first and doubling
    up to PAGE rows, so a page of 20 does not decode 500 documents.  A cursor needs a
    transaction: the caller of a full scan holds one.  ``seqs`` (ascending), when given, are the
    only rows that can match: they are read by primary key, a slice at a time.
    """
    n = len(w.args)
    if seqs is not None:
        size = PAGE if stop_after is None else min(PAGE, max(FIRST_PAGE, 2 * stop_after))
        sql = (f"SELECT e.doc FROM entities e WHERE {w.sql} AND e.seq = ANY(${n + 1}::bigint[]) "
               "ORDER BY e.seq")
        kept = start = 0
        while start < len(seqs):
            for row in await conn.fetch(sql, *w.args, seqs[start:start + size]):
                if keep(row[0]):
                    yield row[0]
                    kept += 1
            if stop_after is not None and kept >= stop_after:
                return
            start += size
            size = min(PAGE, size * 2)
        return
    if stop_after is None:
        sql = f"SELECT e.doc FROM entities e WHERE {w.sql} ORDER BY e.seq"
        async for row in conn.cursor(sql, *w.args, prefetch=PAGE):
            if keep(row[0]):
                yield row[0]
        return
    size = min(PAGE, max(FIRST_PAGE, 2 * stop_after))
    last = 0
    kept = 0
    while True:
        sql = (f"SELECT e.seq, e.doc FROM entities e WHERE {w.sql} AND e.seq > ${n + 1} "
               f"ORDER BY e.seq LIMIT {size}")
        rows = await conn.fetch(sql, *w.args, last)
        for seq, entity in rows:
            last = seq
            if keep(entity):
                yield entity
                kept += 1
        if len(rows) < size or kept >= stop_after:
            return
        size = min(PAGE, size * 2)
