"""The embedded engine: one SQLite file in WAL mode, one writer thread with group commit.

Why one writer: SQLite allows one writer at a time anyway; funnelling every write through a single
thread removes lock contention and lets it commit many queued writes with one fsync (group commit),
which is what makes durable writes fast.  Each write runs inside its own SAVEPOINT, so a write that
fails (``AlreadyExists``, a bad batch entry) rolls back alone while its neighbours commit.
Reads use separate connections from a small thread pool; WAL lets them run beside the writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import queue
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from cityos.core.problems import ServiceUnavailable
from cityos.data.ngsild.model import Entity
from cityos.data.ngsild.store import sqlite_effects
from cityos.data.ngsild.store.base import (
    Change,
    ChangeObserver,
    OutboxRow,
    QueryPlan,
    TypeInfo,
    WriteFn,
    WriteSet,
    final_states,
    write_changes,
)
from cityos.data.ngsild.store.geoindex import geo_boxes
from cityos.data.ngsild.store.history_schema import SQLITE_SCHEMA
from cityos.data.ngsild.store.qindex import (
    Cond,
    IndexRow,
    index_rows,
    leaf_sql,
    pushdown,
    selective_seqs,
)
from cityos.data.ngsild.store.sqlite_series import SeriesIds, migrate_to_series
from cityos.data.ngsild.store.sqlite_temporal import SQLiteTemporal

SCHEMA = """
CREATE TABLE IF NOT EXISTS entities (
    seq INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    doc TEXT NOT NULL,
    UNIQUE (tenant, id)
);
CREATE TABLE IF NOT EXISTS entity_types (
    tenant TEXT NOT NULL, type TEXT NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (tenant, type, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entity_types_seq ON entity_types (seq);
CREATE TABLE IF NOT EXISTS geo_attrs (
    gid INTEGER PRIMARY KEY, seq INTEGER NOT NULL, tenant TEXT NOT NULL, attr TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS geo_attrs_seq ON geo_attrs (seq);
CREATE INDEX IF NOT EXISTS entities_tenant_seq ON entities (tenant, seq);
CREATE VIRTUAL TABLE IF NOT EXISTS geo_rtree USING rtree(gid, minx, maxx, miny, maxy);
CREATE TABLE IF NOT EXISTS attr_index (
    seq INTEGER NOT NULL, tenant TEXT NOT NULL, attr TEXT NOT NULL, kind TEXT NOT NULL,
    num REAL, txt TEXT
);
CREATE INDEX IF NOT EXISTS attr_index_num ON attr_index (tenant, attr, num);
CREATE INDEX IF NOT EXISTS attr_index_txt ON attr_index (tenant, attr, txt);
CREATE INDEX IF NOT EXISTS attr_index_seq ON attr_index (seq);
CREATE INDEX IF NOT EXISTS attr_index_x ON attr_index (tenant, attr) WHERE kind = 'x';
CREATE TABLE IF NOT EXISTS tenants (name TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS jsonld_contexts (
    tenant TEXT NOT NULL, id TEXT NOT NULL, url TEXT NOT NULL, kind TEXT NOT NULL,
    document TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (tenant, id)
);
CREATE INDEX IF NOT EXISTS jsonld_contexts_url ON jsonld_contexts (url);
"""

_STOP = object()
PAGE = 500  # rows fetched per round trip while filtering in Python
CHECKPOINT_INTERVAL = 0.25      # seconds between background WAL checkpoints
# WAL frames (pages) past which the checkpointer restarts the WAL (see _checkpoint_loop), and
# the size the WAL file is cut back to when it starts over
RESTART_FRAMES = 8192
WAL_SIZE_LIMIT = 64 * 1024 * 1024
RESTART_WAIT_MS = 200           # longest a RESTART checkpoint holds writers back, then retried
BUSY_TIMEOUT_S = 30             # how long a connection waits for a lock held by another process
log = logging.getLogger("cityos.store")
SELECTIVE = 500  # an index condition matching fewer rows than this drives the scan


class _Job:
    __slots__ = ("fn", "future", "loop")

    def __init__(self, fn: Callable[[sqlite3.Connection], Any], future: asyncio.Future[Any],
                 loop: asyncio.AbstractEventLoop) -> None:
        self.fn, self.future, self.loop = fn, future, loop


class SQLiteEntityStore(SQLiteTemporal):
    """:class:`EntityStore` on one SQLite file (``sqlite:///path.db``, or ``sqlite://`` in memory)."""

    engine = "sqlite"

    def __init__(self, path: str, *, synchronous: str = "FULL", group_max: int = 256,
                 readers: int = 2) -> None:
        # "In memory" (sqlite://) is a throw-away file in a temporary directory, removed on close:
        # SQLite's shared-cache memory mode has table locks instead of WAL, so readers would fail
        # while the writer commits; a temporary file behaves exactly like the durable engine.
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        if path in ("", ":memory:"):
            self._tempdir = tempfile.TemporaryDirectory(prefix="cityos-")
            path = str(Path(self._tempdir.name) / "memory.db")
            synchronous = "OFF"  # it is thrown away anyway; no fsync needed
        self.path = path
        self._uri = f"file:{path}"
        self.synchronous = synchronous
        self.group_max = group_max
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._readers = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="cityos-sqlite-read")
        self._local = threading.local()
        self._keepalive: sqlite3.Connection | None = None
        self._loop_reader: sqlite3.Connection | None = None
        self._reader_conns: list[sqlite3.Connection] = []
        self._known_tenants: set[str] = set()
        self._series = SeriesIds()             # the writer's history series ids
        self.observer: ChangeObserver | None = None
        self._claimed: set[str] = set()        # outbox rows this process is working on
        self._checkpoint_stop = threading.Event()
        self._checkpointer: threading.Thread | None = None
        self._restart_due = False              # set by the checkpointer, done by the writer

    # -- connections -------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._uri, uri=True, check_same_thread=False, isolation_level=None,
                               timeout=BUSY_TIMEOUT_S)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("PRAGMA cache_size=-65536")
        conn.execute("PRAGMA mmap_size=268435456")
        conn.execute("PRAGMA temp_store=MEMORY")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only=1")
            self._local.conn = conn
            self._reader_conns.append(conn)
        return conn

    async def open(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._keepalive = self._connect()
        self._keepalive.executescript(SCHEMA)
        if migrate_to_series(self._keepalive):
            log.info("moved the temporal history to series ids (history_series)")
        self._keepalive.executescript(SQLITE_SCHEMA)
        self._series = SeriesIds()     # the file may have changed while the store was closed
        self._known_tenants = {r[0] for r in self._keepalive.execute("SELECT name FROM tenants")}
        self._checkpoint_stop = threading.Event()     # a store may be opened again after close
        self._writer = threading.Thread(target=self._write_loop, name="cityos-sqlite-writer",
                                        daemon=True)
        self._writer.start()

    async def close(self) -> None:
        if self._writer is not None:
            self._queue.put(_STOP)
            await asyncio.to_thread(self._writer.join)
            self._writer = None
        self._checkpoint_stop.set()
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.join)
            self._checkpointer = None
        self._readers.shutdown(wait=True)
        for conn in self._reader_conns:
            conn.close()
        self._reader_conns.clear()
        if self._loop_reader is not None:
            self._loop_reader.close()
            self._loop_reader = None
        if self._keepalive is not None:
            self._keepalive.close()
            self._keepalive = None
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    # -- the single writer ---------------------------------------------------------------------
    def _checkpoint_loop(self) -> None:
        """Copy the WAL back into the database a few times a second (PASSIVE: never waits for
        readers or the writer), so the WAL stays small without the writer doing it.

        SQLite starts the WAL over only when a checkpoint has copied every frame, and under a
        steady stream of writes a PASSIVE one never catches up with the writer: the WAL grew
        without end (616 MB after four 6-second rounds of updates with history, 3.5 GB after
        ten) and every read and write slowed down with it.  Past ``RESTART_FRAMES`` this thread
        asks the writer for a RESTART checkpoint between two group commits
        (:meth:`_restart_wal`).  Taken here, it would have to win the write lock from a writer
        that takes it again microseconds after every commit, and it lost that race for seconds.
        """
        conn = self._connect()
        try:
            while not self._checkpoint_stop.wait(CHECKPOINT_INTERVAL):
                try:
                    _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if frames >= RESTART_FRAMES:
                        self._restart_due = True
                except sqlite3.Error:
                    log.warning("WAL checkpoint failed; retrying", exc_info=True)
        finally:
            conn.close()

    def _restart_wal(self, conn: sqlite3.Connection) -> None:
        """On the writer, between groups: copy the frames the PASSIVE checkpoints left (a few
        milliseconds' worth) so that the next write starts the WAL from its beginning.  Readers
        still on the WAL are waited for at most ``RESTART_WAIT_MS``; then the next group goes
        ahead and the checkpointer asks again."""
        self._restart_due = False
        try:
            conn.execute(f"PRAGMA busy_timeout={RESTART_WAIT_MS}")
            conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        except sqlite3.Error:
            log.warning("WAL restart checkpoint failed; retrying later", exc_info=True)
        finally:
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")

    def _write_loop(self) -> None:
        conn = self._connect()
        conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")   # cut back when restarted
        # WAL checkpoints run on their own thread (the C code releases the GIL), not inside the
        # commit that happens to cross the threshold: the single writer only appends to the WAL
        conn.execute("PRAGMA wal_autocheckpoint=0")
        self._checkpointer = threading.Thread(target=self._checkpoint_loop,
                                              name="cityos-sqlite-checkpoint", daemon=True)
        self._checkpointer.start()
        while True:
            first = self._queue.get()
            if first is _STOP:
                break
            jobs = [first]
            stop = False
            while len(jobs) < self.group_max:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                jobs.append(nxt)
            self._run_group(conn, jobs)
            if self._restart_due:
                self._restart_wal(conn)
            if stop:
                break
        conn.close()

    def _run_group(self, conn: sqlite3.Connection, jobs: list[_Job]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job in jobs:
                conn.execute("SAVEPOINT job")
                try:
                    outcomes.append((True, job.fn(conn)))
                    conn.execute("RELEASE job")
                except BaseException as exc:  # the job's own failure; others still commit
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    self._series.rolled_back()
                    outcomes.append((False, exc))
            conn.execute("COMMIT")
            self._series.committed()
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            self._series.rolled_back()
            failure = ServiceUnavailable(f"the SQLite database could not commit: {exc}")
            outcomes = [(False, failure)] * len(jobs)
        # One wake-up per event loop for the whole group: each call_soon_threadsafe writes to
        # the loop's self-pipe (a system call), which cost more than the SQL of a small update.
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, bool, Any]]] = {}
        for job, (ok, value) in zip(jobs, outcomes, strict=True):
            by_loop.setdefault(job.loop, []).append((job, ok, value))
        for loop, settled in by_loop.items():
            loop.call_soon_threadsafe(self._settle_group, settled)

    def _settle_group(self, settled: list[tuple[_Job, bool, Any]]) -> None:
        for job, ok, value in settled:
            if ok and isinstance(value, sqlite_effects.Committed):
                # announce the effects before the writer's future resolves, so a client that
                # hears "done" can count on its notifications being under way
                self._announce(value.tenant, value.effects)
                value = value.result
            _settle(job.future, ok, value)

    def _announce(self, tenant: str, effects: Any) -> None:
        self._claimed.update(row.id for row in effects.outbox)
        if self.observer is not None:
            self.observer.committed(tenant, effects)

    async def _submit(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        if self._writer is None:
            raise ServiceUnavailable("the SQLite store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.put(_Job(fn, future, loop))
        return await future

    async def _read(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, lambda: fn(self._reader()))

    # -- entities ------------------------------------------------------------------------------
    async def get(self, tenant: str, entity_id: str) -> Entity | None:
        # A primary-key lookup takes microseconds: it runs on the event loop's own read-only
        # connection, because a hop to a reader thread would cost more than the query (WAL lets
        # it read beside the writer without waiting).
        if self._loop_reader is None:
            self._loop_reader = self._connect()
            self._loop_reader.execute("PRAGMA query_only=1")
        row = self._loop_reader.execute("SELECT doc FROM entities WHERE tenant=? AND id=?",
                                        (tenant, entity_id)).fetchone()
        return orjson.loads(row[0]) if row else None

    async def write(self, tenant: str, ids: list[str], fn: WriteFn) -> Any:
        observer = self.observer

        def run(conn: sqlite3.Connection) -> Any:
            current: dict[str, Entity | None] = dict.fromkeys(ids)
            before: dict[str, Entity] = {}
            for start in range(0, len(ids), PAGE):
                chunk = ids[start:start + PAGE]
                for entity_id, doc in conn.execute(
                        f"SELECT id, doc FROM entities WHERE tenant = ? AND id IN "
                        f"({','.join('?' * len(chunk))})", (tenant, *chunk)):
                    current[entity_id] = orjson.loads(doc)
                    if observer is not None:   # fn changes entities in place: keep a copy
                        before[entity_id] = orjson.loads(doc)
            # fn changes entities in place: remember what the indexes hold before it runs
            indexed = {i: _index_keys(e) for i, e in current.items() if e is not None}
            ws: WriteSet = fn(current)
            for entity in final_states(ws.upserts):
                self._upsert(conn, tenant, entity, indexed.get(entity["id"]))
            for entity_id in ws.deletes:
                self._delete(conn, tenant, entity_id)
            if (ws.upserts or ws.deletes) and tenant not in self._known_tenants:
                conn.execute("INSERT OR IGNORE INTO tenants VALUES (?)", (tenant,))
                self._known_tenants.add(tenant)
            if observer is not None and (ws.upserts or ws.deletes):
                return self._with_effects(conn, observer, tenant, write_changes(ws, before),
                                          ws.result)
            return ws.result

        return await self._submit(run)

    def _upsert(self, conn: sqlite3.Connection, tenant: str, entity: Entity,
                before: IndexKeys | None) -> None:
        doc = orjson.dumps(entity).decode()
        after = _index_keys(entity)
        if before is not None:
            seq = conn.execute("UPDATE entities SET doc=? WHERE tenant=? AND id=? RETURNING seq",
                               (doc, tenant, entity["id"])).fetchone()[0]
            if before[0] != after[0]:
                conn.execute("DELETE FROM entity_types WHERE seq=?", (seq,))
            if before[1] != after[1]:
                self._drop_geo(conn, seq)
            if before[2] != after[2]:
                self._reindex_changed(conn, tenant, seq, before[2], after[2])
        else:
            seq = conn.execute("INSERT INTO entities (tenant, id, doc) VALUES (?, ?, ?)",
                               (tenant, entity["id"], doc)).lastrowid
        if before is None or before[0] != after[0]:
            conn.executemany("INSERT OR IGNORE INTO entity_types VALUES (?, ?, ?)",
                             [(tenant, t, seq) for t in after[0]])
        if before is None:
            conn.executemany("INSERT INTO attr_index VALUES (?, ?, ?, ?, ?, ?)",
                             [(seq, tenant, *row) for row in after[2]])
        if before is None or before[1] != after[1]:
            for attr, box in after[1]:
                gid = conn.execute("INSERT INTO geo_attrs (seq, tenant, attr) VALUES (?, ?, ?)",
                                   (seq, tenant, attr)).lastrowid
                conn.execute("INSERT INTO geo_rtree VALUES (?, ?, ?, ?, ?)",
                             (gid, box[0], box[2], box[1], box[3]))

    @staticmethod
    def _reindex_changed(conn: sqlite3.Connection, tenant: str, seq: int,
                         before: tuple[IndexRow, ...], after: tuple[IndexRow, ...]) -> None:
        """Rewrite the value-index rows of the attributes whose rows changed, and only those:
        an attribute update touches one or two attributes of an entity, not all of them."""
        old: dict[str, list[IndexRow]] = {}
        new: dict[str, list[IndexRow]] = {}
        for row in before:
            old.setdefault(row[0], []).append(row)
        for row in after:
            new.setdefault(row[0], []).append(row)
        for attr in old.keys() | new.keys():
            if old.get(attr) == new.get(attr):
                continue
            if attr in old:
                conn.execute("DELETE FROM attr_index WHERE seq=? AND attr=?", (seq, attr))
            conn.executemany("INSERT INTO attr_index VALUES (?, ?, ?, ?, ?, ?)",
                             [(seq, tenant, *row) for row in new.get(attr, [])])

    def _drop_geo(self, conn: sqlite3.Connection, seq: int) -> None:
        gids = [r[0] for r in conn.execute("SELECT gid FROM geo_attrs WHERE seq=?", (seq,))]
        if gids:
            conn.executemany("DELETE FROM geo_rtree WHERE gid=?", [(g,) for g in gids])
            conn.execute("DELETE FROM geo_attrs WHERE seq=?", (seq,))

    def _delete(self, conn: sqlite3.Connection, tenant: str, entity_id: str) -> None:
        row = conn.execute("DELETE FROM entities WHERE tenant=? AND id=? RETURNING seq",
                           (tenant, entity_id)).fetchone()
        if row:
            conn.execute("DELETE FROM entity_types WHERE seq=?", (row[0],))
            conn.execute("DELETE FROM attr_index WHERE seq=?", (row[0],))
            self._drop_geo(conn, row[0])

    def _with_effects(self, conn: sqlite3.Connection, observer: ChangeObserver, tenant: str,
                      changes: list[Change], result: Any) -> Any:
        effects = observer.effects(tenant, changes)
        if not effects:
            return result
        sqlite_effects.append_effects(conn, tenant, effects, self._series)
        return sqlite_effects.Committed(result, tenant, effects)

    # -- queries -------------------------------------------------------------------------------
    def _candidates(self, conn: sqlite3.Connection, plan: QueryPlan) -> Iterator[tuple[int, str]]:
        """(seq, doc) of candidate rows in seq order, driven by the most selective index.

        Each source is read from its own index (ids, the R*Tree, the type index) rather than
        joined into one statement: SQLite would otherwise walk the whole entity table in rowid
        order and probe each row, which is a full scan on a large city.
        """
        if plan.ids:
            marks = ",".join("?" * len(plan.ids))
            yield from conn.execute(f"SELECT seq, doc FROM entities WHERE tenant = ? AND id IN ({marks}) "
                                    "ORDER BY seq", (plan.tenant, *plan.ids))
            return
        selective = self._selective_seqs(conn, plan)
        if selective is not None:
            ordered = sorted(selective)
            for start in range(0, len(ordered), PAGE):
                chunk = ordered[start:start + PAGE]
                yield from conn.execute(f"SELECT seq, doc FROM entities WHERE seq IN "
                                        f"({','.join('?' * len(chunk))}) ORDER BY seq", chunk)
            return
        if plan.types is not None:
            streams = [self._paged(conn, "SELECT t.seq, e.doc FROM entity_types t JOIN entities e "
                                         "ON e.seq = t.seq WHERE t.tenant = ? AND t.type = ? "
                                         "AND t.seq > ? ORDER BY t.seq LIMIT ?", (plan.tenant, t))
                       for t in sorted(plan.types.candidate_types())]
            previous = -1
            for seq, doc in heapq.merge(*streams):  # a multi-typed entity appears once per type
                if seq != previous:
                    previous = seq
                    yield seq, doc
            return
        yield from self._paged(conn, "SELECT seq, doc FROM entities WHERE tenant = ? AND seq > ? "
                                     "ORDER BY seq LIMIT ?", (plan.tenant,))

    def _selective_seqs(self, conn: sqlite3.Connection, plan: QueryPlan) -> set[int] | None:
        """Candidate seqs from the R*Tree and the attribute value index, when they are selective.

        A ``q`` condition that matches more than SELECTIVE rows is not used: walking the type
        index in order and stopping at the page's end is then cheaper than collecting them all.
        """
        found: set[int] | None = None
        box = plan.geo.bbox() if plan.geo is not None else None
        if box is not None:
            found = {row[0] for row in conn.execute(
                "SELECT g.seq FROM geo_rtree r JOIN geo_attrs g ON g.gid = r.gid "
                "WHERE r.maxx >= ? AND r.minx <= ? AND r.maxy >= ? AND r.miny <= ? "
                "AND g.attr = ? AND g.tenant = ?",
                (box[0], box[2], box[1], box[3], plan.geo.geoproperty, plan.tenant))}
        push = pushdown(plan.q) if plan.q is not None else None
        if push is not None:

            def run(cond: Cond) -> list[int] | None:
                sql, args = leaf_sql(cond, plan.tenant)
                rows = conn.execute(f"{sql} LIMIT {SELECTIVE + 1}", args).fetchall()
                return None if len(rows) > SELECTIVE else [row[0] for row in rows]

            matching = selective_seqs(push, run)
            if matching is not None:
                found = matching if found is None else found & matching
        return found

    @staticmethod
    def _paged(conn: sqlite3.Connection, sql: str, args: tuple[Any, ...]) -> Iterator[tuple[int, str]]:
        last = 0
        while True:
            rows = conn.execute(sql, (*args, last, PAGE)).fetchall()
            yield from rows
            if len(rows) < PAGE:
                return
            last = rows[-1][0]

    async def query(self, plan: QueryPlan) -> tuple[list[Entity], int | None]:
        keep = plan.python_filter()

        def run(conn: sqlite3.Connection) -> tuple[list[Entity], int | None]:
            page: list[Entity] = []
            matched = 0
            wanted = plan.offset + plan.limit
            for _seq, doc in self._candidates(conn, plan):
                entity = orjson.loads(doc)
                if not keep(entity):
                    continue
                if plan.offset <= matched < wanted:
                    page.append(entity)
                matched += 1
                if not plan.count and matched >= wanted:
                    break
            return page, (matched if plan.count else None)

        result: tuple[list[Entity], int | None] = await self._read(run)
        return result

    async def delete_matching(self, plan: QueryPlan) -> int:
        keep = plan.python_filter()
        observer = self.observer

        def run(conn: sqlite3.Connection) -> Any:
            doomed = [entity for _seq, doc in self._candidates(conn, plan)
                      if keep(entity := orjson.loads(doc))]
            for entity in doomed:
                self._delete(conn, plan.tenant, entity["id"])
            if observer is not None and doomed:
                changes = [Change(e["id"], e, None) for e in doomed]
                return self._with_effects(conn, observer, plan.tenant, changes, len(doomed))
            return len(doomed)

        count: int = await self._submit(run)
        return count

    async def type_info(self, tenant: str) -> list[TypeInfo]:
        def run(conn: sqlite3.Connection) -> list[TypeInfo]:
            infos: dict[str, TypeInfo] = {}
            for type_iri, count in conn.execute(
                    "SELECT type, count(*) FROM entity_types WHERE tenant=? GROUP BY type", (tenant,)):
                infos[type_iri] = TypeInfo(type_iri, count, {})
            rows = conn.execute(
                "SELECT DISTINCT t.type, a.key, json_extract(a.value, '$[0].type') "
                "FROM entity_types t JOIN entities e ON e.seq = t.seq, "
                "json_each(e.doc, '$.attrs') a WHERE t.tenant = ?", (tenant,))
            for type_iri, attr, attr_type in rows:
                infos[type_iri].attributes.setdefault(attr, set()).add(attr_type or "Property")
            return list(infos.values())

        result: list[TypeInfo] = await self._read(run)
        return result

    async def tenants(self) -> list[str]:
        rows = await self._read(lambda c: c.execute("SELECT name FROM tenants").fetchall())
        return [r[0] for r in rows]

    async def tenant_exists(self, tenant: str) -> bool:
        if tenant in self._known_tenants:
            return True
        return tenant in await self.tenants()

    # -- @context store ------------------------------------------------------------------------
    async def put_context(self, tenant: str, ctx_id: str, url: str, kind: str, document: Any,
                          created_at: str) -> None:
        text = orjson.dumps(document).decode()
        await self._submit(lambda c: c.execute(
            "INSERT OR REPLACE INTO jsonld_contexts VALUES (?, ?, ?, ?, ?, ?)",
            (tenant, ctx_id, url, kind, text, created_at)))

    async def get_context(self, tenant: str, ctx_id: str) -> dict[str, Any] | None:
        row = await self._read(lambda c: c.execute(
            "SELECT id, url, kind, document, created_at FROM jsonld_contexts WHERE tenant=? AND id=?",
            (tenant, ctx_id)).fetchone())
        return _context_record(row) if row else None

    async def list_contexts(self, tenant: str) -> list[dict[str, Any]]:
        rows = await self._read(lambda c: c.execute(
            "SELECT id, url, kind, document, created_at FROM jsonld_contexts WHERE tenant=? "
            "ORDER BY created_at", (tenant,)).fetchall())
        return [_context_record(r) for r in rows]

    async def delete_context(self, tenant: str, ctx_id: str) -> bool:
        count: int = await self._submit(lambda c: c.execute(
            "DELETE FROM jsonld_contexts WHERE tenant=? AND id=?", (tenant, ctx_id)).rowcount)
        return count > 0

    async def context_by_url(self, url: str) -> Any | None:
        row = await self._read(lambda c: c.execute(
            "SELECT document FROM jsonld_contexts WHERE url=? LIMIT 1", (url,)).fetchone())
        return orjson.loads(row[0]) if row else None

    # -- documents and the outbox -------------------------------------------------------------------
    async def put_document(self, kind: str, tenant: str, doc_id: str, doc: dict[str, Any],
                           *, create: bool = False) -> bool:
        done: bool = await self._submit(
            lambda c: sqlite_effects.put_document(c, kind, tenant, doc_id, doc, create))
        return done

    async def put_documents(self, kind: str, docs: list[tuple[str, str, dict[str, Any]]]) -> None:
        def job(conn: sqlite3.Connection) -> None:
            for tenant, doc_id, doc in docs:
                sqlite_effects.put_document(conn, kind, tenant, doc_id, doc, False)

        await self._submit(job)

    async def get_document(self, kind: str, tenant: str, doc_id: str) -> dict[str, Any] | None:
        row = await self._read(lambda c: c.execute(
            "SELECT doc FROM documents WHERE kind=? AND tenant=? AND id=?",
            (kind, tenant, doc_id)).fetchone())
        return orjson.loads(row[0]) if row else None

    async def list_documents(self, kind: str, tenant: str | None = None) -> list[dict[str, Any]]:
        docs: list[dict[str, Any]] = await self._read(
            lambda c: sqlite_effects.list_documents(c, kind, tenant))
        return docs

    async def delete_document(self, kind: str, tenant: str, doc_id: str) -> bool:
        count: int = await self._submit(lambda c: c.execute(
            "DELETE FROM documents WHERE kind=? AND tenant=? AND id=?",
            (kind, tenant, doc_id)).rowcount)
        return count > 0

    async def outbox_pending(self, limit: int = 1000) -> list[OutboxRow]:
        claimed = set(self._claimed)
        rows: list[OutboxRow] = await self._read(
            lambda c: sqlite_effects.pending_rows(c, claimed, limit))
        self._claimed.update(r.id for r in rows)
        return rows

    async def outbox_done(self, ids: list[str]) -> None:
        if not ids:
            return
        await self._submit(lambda c: sqlite_effects.delete_outbox_rows(c, ids))
        self._claimed.difference_update(ids)

    def add_claims(self, ids: list[str]) -> None:
        self._claimed.update(ids)

    def release_claims(self, ids: list[str]) -> None:
        self._claimed.difference_update(ids)

    async def sweep_fanout_sets(self, mark: int | None) -> tuple[int, int]:
        swept: tuple[int, int] = await self._submit(
            lambda c: sqlite_effects.sweep_fanout_sets(c, mark))
        return swept


IndexKeys = tuple[tuple[str, ...], tuple[tuple[str, tuple[float, float, float, float]], ...],
                  tuple[IndexRow, ...]]


def _index_keys(entity: Entity) -> IndexKeys:
    """What the side indexes hold for an entity: types, geo bounding boxes, attribute values."""
    return tuple(entity["type"]), tuple(geo_boxes(entity)), tuple(index_rows(entity))


def _context_record(row: tuple[Any, ...]) -> dict[str, Any]:
    return {"id": row[0], "url": row[1], "kind": row[2], "document": orjson.loads(row[3]),
            "createdAt": row[4]}


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.cancelled():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
