"""Temporal history reads and temporal writes on SQLite (a mixin of SQLiteEntityStore).

Reads run on the reader threads, writes through the single writer (``_submit``), exactly like the
entity methods.  History rows belong to a series, one per (tenant, entity, attribute) in
``history_series``, and carry its integer ``sid`` instead of those three texts: both history
indexes are then small and cheap to extend on every update (``history_schema.py``).  Writers get
the sid from the store's cache (``sqlite_series.SeriesIds``); reads look it up through the
series' UNIQUE index (``SID_OF``) and walk ``(sid, t)`` in time order (``attr_history_obs_cover``
for observedAt), so ``lastN`` and time windows never sort a whole attribute.  Aggregation reads
one index range per period; ``attr_history_obs_cover`` also carries ``deleted``, ``dataset_id``
and ``num``, so numbers are aggregated without visiting the table.  Series rows are deleted with
their entity's history (temporal ``DELETE``, retention of a deleted entity), never while a row
still points at them.

The newest rows of each series wait in ``history_pending`` until they move to ``attr_history``
together (``history_schema.py``): every read asks both tables (in one statement, ``_both``, or
in one read transaction), every edit and deletion changes both.  Within a series all of
``attr_history`` is older than all of ``history_pending``, so ``(src, rid)`` orders instances
with the same time by when they were written.
"""

from __future__ import annotations

import contextlib
import operator
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from cityos.data.ngsild.store.base import HistoryRow, TemporalEntityRow
from cityos.data.ngsild.store.sqlite_series import (
    SID_OF,
    SIDS_OF_ENTITY,
    SeriesIds,
    insert_history,
)
from cityos.data.ngsild.store.temporal_base import (
    DELETED_AT,
    TIME_COLUMN,
    VALUE_MEMBERS,
    BucketRow,
    Buckets,
    InstanceRow,
    TemporalEntityRecord,
    Window,
    add_other,
    entity_columns,
    live_modified_at,
    needs_other,
    number_columns,
    number_row,
    other_columns,
    period_ranges,
    qualified_time,
)

CHUNK = 500   # ids per IN (...) list: SQLite's default limit of host parameters is 32766

_ENTITY_COLUMNS = entity_columns("x.doc ->> '$.modifiedAt'")
_TEMPORAL_ENTITY_UPSERT = (
    "INSERT INTO temporal_entities VALUES (?, ?, ?, ?, ?, ?, NULL) ON CONFLICT (tenant, id) "
    "DO UPDATE SET types = excluded.types, scope = coalesce(excluded.scope, scope), "
    "modified_at = excluded.modified_at")
# phase 2 (values that are not numbers, see temporal_base): the value as JSON text, whatever the
# attribute type (distinctCount), and the value when it is a string (min / max)
_OTHER_VALUE = "coalesce(" + ", ".join(f"h.doc -> '$.{m}'" for m in VALUE_MEMBERS) + ")"
_TEXT_VALUE = "CASE WHEN json_type(h.doc, '$.value') = 'text' THEN h.doc ->> '$.value' END"
_OTHER = other_columns(_OTHER_VALUE, _TEXT_VALUE)


def _window_sql(t: str, window: Window) -> tuple[str, list[Any]]:
    sql, args = "", list[Any]()
    if window.start is not None:
        sql += f" AND {t} {'>=' if window.start_inclusive else '>'} ?"
        args.append(window.start)
    if window.end is not None:
        sql += f" AND {t} < ?"
        args.append(window.end)
    return sql, args


def _both(columns: str, where: str) -> str:
    """One SELECT over the indexed history and the pending rows; ``src`` tells which (0, 1).

    Its arguments are the ``where`` arguments twice.  Written out rather than as a view: SQLite
    then walks each table's index in order and merges the two for ``ORDER BY ... LIMIT``.
    """
    return (f"SELECT {columns}, 0 AS src FROM attr_history WHERE {where} UNION ALL "
            f"SELECT {columns}, 1 AS src FROM history_pending WHERE {where}")


def _record(row: tuple[Any, ...]) -> TemporalEntityRecord:
    return TemporalEntityRecord(id=row[0], types=orjson.loads(row[1]),
                                scope=orjson.loads(row[2]) if row[2] else None,
                                created_at=row[3],
                                modified_at=live_modified_at(row[4], row[6]), deleted_at=row[5])


class SQLiteTemporal:
    """Temporal API storage methods; uses the host store's ``_submit`` (writer) and ``_read``."""

    if TYPE_CHECKING:
        _known_tenants: set[str]
        _series: SeriesIds

        async def _submit(self, fn: Callable[[sqlite3.Connection], Any]) -> Any: ...

        async def _read(self, fn: Callable[[sqlite3.Connection], Any]) -> Any: ...

    # -- writes --------------------------------------------------------------------------------
    async def temporal_write(self, tenant: str, entity: TemporalEntityRow,
                             rows: list[HistoryRow]) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            old = conn.execute("SELECT types FROM temporal_entities WHERE tenant = ? AND id = ?",
                               (tenant, entity.entity_id)).fetchone()
            types = list(dict.fromkeys([*(orjson.loads(old[0]) if old else []), *entity.types]))
            conn.execute(_TEMPORAL_ENTITY_UPSERT, (
                tenant, entity.entity_id, orjson.dumps(types).decode(),
                orjson.dumps(entity.scope).decode() if entity.scope else None,
                entity.created_at, entity.modified_at))
            insert_history(conn, tenant, rows, self._series)
            if tenant not in self._known_tenants:
                conn.execute("INSERT OR IGNORE INTO tenants VALUES (?)", (tenant,))
                self._known_tenants.add(tenant)
            return old is None

        created: bool = await self._submit(run)
        return created

    async def temporal_delete(self, tenant: str, entity_id: str) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            self._drop_series(conn, tenant, [entity_id])
            return conn.execute("DELETE FROM temporal_entities WHERE tenant = ? AND id = ?",
                                (tenant, entity_id)).rowcount > 0

        found: bool = await self._submit(run)
        return found

    async def temporal_delete_attribute(self, tenant: str, entity_id: str, attr: str,
                                        dataset_id: str | None) -> int:
        where = f"sid = {SID_OF}"
        args: tuple[Any, ...] = (tenant, entity_id, attr)
        if dataset_id is not None:
            where, args = where + " AND dataset_id = ?", (*args, dataset_id)
        count: int = await self._submit(lambda conn: _delete_both(conn, where, args))
        return count

    async def temporal_patch_instance(self, tenant: str, entity_id: str, attr: str,
                                      instance_id: str, doc: dict[str, Any],
                                      observed_at: int | None, modified_at: int) -> bool:
        text = orjson.dumps(doc).decode()
        args = (text, observed_at, modified_at, instance_id, tenant, entity_id, attr)
        count: int = await self._submit(lambda conn: sum(conn.execute(
            f"UPDATE {table} SET doc = ?, observed_at = ?, modified_at = ? WHERE "
            f"instance_id = ? AND sid = {SID_OF} AND deleted = 0", args).rowcount
            for table in _HISTORY_TABLES))
        return count > 0

    async def temporal_delete_instance(self, tenant: str, entity_id: str, attr: str,
                                       instance_id: str) -> bool:
        count: int = await self._submit(lambda conn: _delete_both(
            conn, f"instance_id = ? AND sid = {SID_OF} AND deleted = 0",
            (instance_id, tenant, entity_id, attr)))
        return count > 0

    async def purge_history_before(self, tenant: str, entity_ids: list[str], cutoff: int) -> int:
        def run(conn: sqlite3.Connection) -> int:
            removed = 0
            for start in range(0, len(entity_ids), CHUNK):
                chunk = entity_ids[start:start + CHUNK]
                marks = ",".join("?" * len(chunk))
                removed += _delete_both(
                    conn, "sid IN (SELECT sid FROM history_series WHERE "
                    f"tenant = ? AND entity_id IN ({marks})) AND created_at < ?",
                    (tenant, *chunk, cutoff))
                # an entity deleted before the cut-off whose history is now empty is gone for good
                gone = [row[0] for row in conn.execute(
                    f"DELETE FROM temporal_entities WHERE tenant = ? AND id IN ({marks}) "
                    "AND deleted_at < ? AND NOT EXISTS (SELECT 1 FROM history_series s WHERE "
                    "s.tenant = temporal_entities.tenant AND s.entity_id = temporal_entities.id "
                    f"AND {_HAS_ROWS}) RETURNING id",
                    (tenant, *chunk, cutoff)).fetchall()]
                self._drop_series(conn, tenant, gone)
            return removed

        count: int = await self._submit(run)
        return count

    def _drop_series(self, conn: sqlite3.Connection, tenant: str, entity_ids: list[str]) -> None:
        """Delete the entities' history rows and series (on the writer thread)."""
        for entity_id in entity_ids:
            self._series.forget(tenant, entity_id)
            _delete_both(conn, f"sid IN {SIDS_OF_ENTITY}", (tenant, entity_id))
            conn.execute("DELETE FROM history_series WHERE tenant = ? AND entity_id = ?",
                         (tenant, entity_id))

    # -- reads ---------------------------------------------------------------------------------
    async def temporal_entity(self, tenant: str, entity_id: str) -> TemporalEntityRecord | None:
        row = await self._read(lambda conn: conn.execute(
            f"SELECT {_ENTITY_COLUMNS} FROM temporal_entities e WHERE e.tenant = ? AND e.id = ?",
            (tenant, entity_id)).fetchone())
        return _record(row) if row else None

    async def temporal_entity_page(self, tenant: str, ids: tuple[str, ...] | None,
                                   types: tuple[str, ...] | None, after_id: str | None,
                                   limit: int) -> list[TemporalEntityRecord]:
        sql = f"SELECT {_ENTITY_COLUMNS} FROM temporal_entities e WHERE e.tenant = ?"
        args: list[Any] = [tenant]
        if ids is not None:
            sql += f" AND e.id IN ({','.join('?' * len(ids))})"
            args.extend(ids)
        if types is not None:
            sql += (" AND EXISTS (SELECT 1 FROM json_each(e.types) WHERE value IN "
                    f"({','.join('?' * len(types))}))")
            args.extend(types)
        if after_id is not None:
            sql += " AND e.id > ?"
            args.append(after_id)
        sql += " ORDER BY e.id LIMIT ?"
        args.append(limit)
        rows = await self._read(lambda conn: conn.execute(sql, args).fetchall())
        return [_record(r) for r in rows]

    async def temporal_types(self) -> list[tuple[str, str, list[str]]]:
        rows = await self._read(lambda conn: conn.execute(
            "SELECT tenant, id, types FROM temporal_entities").fetchall())
        return [(r[0], r[1], orjson.loads(r[2])) for r in rows]

    async def temporal_attributes(self, tenant: str, entity_id: str) -> list[str]:
        # a series may be empty (its attribute's instances deleted): one index seek each tells
        rows = await self._read(lambda conn: conn.execute(
            "SELECT s.attr FROM history_series s WHERE s.tenant = ? AND s.entity_id = ? AND "
            f"{_HAS_ROWS} ORDER BY s.attr",
            (tenant, entity_id)).fetchall())
        return [r[0] for r in rows]

    async def temporal_instances(self, tenant: str, entity_id: str, attr: str, timeproperty: str,
                                 window: Window, newest_first: bool, limit: int,
                                 datasets: frozenset[str] | None = None) -> list[InstanceRow]:
        t = TIME_COLUMN[timeproperty]
        where, args = _window_sql(t, window)
        if datasets is not None:
            where += f" AND dataset_id IN ({', '.join('?' * len(datasets))})"
            args = [*args, *sorted(datasets)]
        order = "DESC" if newest_first else "ASC"
        select = (f"SELECT dataset_id, instance_id, observed_at, created_at, modified_at, {t}, doc, "
                  f"rid FROM {{}} WHERE sid = {SID_OF} {where} AND {_kept(timeproperty)} "
                  f"ORDER BY {t} {order}, rid {order} LIMIT ?")
        full = (tenant, entity_id, attr, *args, limit)

        def run(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            # Each table on its own and the few pending rows merged here: through one UNION ALL
            # every row passed SQLite's merge co-routine, 29 -> 47 ms for 10,000 instances.
            with _snapshot(conn):       # a move between the two would show rows twice
                moved = conn.execute(select.format("attr_history"), full).fetchall()
                waiting = conn.execute(select.format("history_pending"), full).fetchall()
            if not waiting:
                return moved
            # Within a series every moved row was written before every pending one, so among
            # equal times the moved ones come first (last, newest first).  Each list is in
            # (time, rid) order already, and a stable sort by time alone keeps that order.
            both = moved + waiting if not newest_first else waiting + moved
            both.sort(key=_TIME_OF_ROW, reverse=newest_first)
            return both[:limit]

        rows = await self._read(run)
        return [InstanceRow(attr=attr, dataset_id=r[0], instance_id=r[1], observed_at=r[2],
                            created_at=r[3], modified_at=r[4], t=r[5], doc=orjson.loads(r[6]))
                for r in rows]

    async def temporal_instance(self, tenant: str, entity_id: str, attr: str,
                                instance_id: str) -> InstanceRow | None:
        sql = _both("dataset_id, instance_id, observed_at, created_at, modified_at, "
                    f"{TIME_COLUMN['observedAt']}, doc",
                    f"instance_id = ? AND sid = {SID_OF} AND deleted = 0")
        r = await self._read(lambda conn: conn.execute(
            sql, (instance_id, tenant, entity_id, attr) * 2).fetchone())
        if r is None:
            return None
        return InstanceRow(attr=attr, dataset_id=r[0], instance_id=r[1], observed_at=r[2],
                           created_at=r[3], modified_at=r[4], t=r[5], doc=orjson.loads(r[6]))

    async def temporal_bounds(self, tenant: str, entity_id: str, attr: str, timeproperty: str,
                              window: Window) -> tuple[int, int] | None:
        t = TIME_COLUMN[timeproperty]
        where, args = _window_sql(t, window)
        cond = f"WHERE sid = {SID_OF} {where} AND {_kept(timeproperty)}"
        # a sub-select each: SQLite answers a lone min() or max() from the index in one seek
        sql = "SELECT " + ", ".join(f"(SELECT {f}({t}) FROM {table} {cond})"
                                    for table in _HISTORY_TABLES for f in ("min", "max"))
        full = (tenant, entity_id, attr, *args)
        row = await self._read(lambda conn: conn.execute(sql, full * 4).fetchone())
        lows, highs = [v for v in row[::2] if v is not None], [v for v in row[1::2] if v is not None]
        return (min(lows), max(highs)) if lows else None

    async def temporal_aggregate(self, tenant: str, entity_id: str, attr: str, timeproperty: str,
                                 window: Window, span: tuple[int, int], buckets: Buckets,
                                 methods: frozenset[str]) -> list[BucketRow]:
        numbers = number_columns(methods)
        ranges = period_ranges(buckets, *span)
        # Periods without pending rows (all but the newest, as a rule) read attr_history alone;
        # through _both, each row also passed a UNION ALL co-routine: 37 -> 53 ms for 70 days
        # of 100k instances.  ``t`` is the time column, ``n`` how often the sid is bound.
        alone = _Source(t=qualified_time(timeproperty, "h"), n=1,
                        base="FROM attr_history h WHERE h.sid = ?")
        # the time as a column of each arm, so the time range reaches attr_history_obs_cover
        arm = f"{TIME_COLUMN[timeproperty]} AS t, dataset_id, deleted, num"
        both = _Source(t="h.t", n=2, base=f"FROM ({_both(arm, 'sid = ?')}) h WHERE 1",
                       base_doc=f"FROM ({_both(arm + ', doc', 'sid = ?')}) h WHERE 1")

        def per_period(conn: sqlite3.Connection, sid: int,
                       pending: tuple[int, int] | None) -> list[BucketRow]:
            # one index range per period, in a loop: SQLite has no hash aggregation, and sorting
            # the whole attribute for a GROUP BY costs more than all these statements together
            statements = {src: src.per_period(numbers) for src in (alone, both)[:2 if pending else 1]}
            rows: list[BucketRow] = []
            for k, lo, hi in ranges or ():
                src = both if pending and lo <= pending[1] and pending[0] < hi else alone
                whole, split, other = statements[src]
                args = (*(sid,) * src.n, lo, hi)
                r = conn.execute(whole, args).fetchone()
                if not r[2]:
                    continue
                found = ([number_row(r[0], k, r[2:])] if r[0] == r[1] else
                         [number_row(g[0], k, g[1:]) for g in conn.execute(split, args)])
                if any(needs_other(methods, row) for row in found):
                    by_dataset = {row.dataset_id: row for row in found}
                    for g in conn.execute(other, args):
                        add_other(by_dataset[g[0]], g[1:])
                rows += found
            return rows

        def grouped(conn: sqlite3.Connection, sid: int, src: _Source) -> list[BucketRow]:
            t = src.t
            cond, args = _window_sql(t, window)
            cond += " AND h.deleted = 0"
            head = [buckets.origin, buckets.period]
            tail = "GROUP BY h.dataset_id, bucket"
            key = (sid,) * src.n
            found = {(r[1], r[0]): number_row(r[1], r[0], r[2:]) for r in conn.execute(
                f"SELECT ({t} - ?) / ? AS bucket, h.dataset_id, {numbers} {src.base} {cond} {tail}",
                (*head, *key, *args))}
            if any(needs_other(methods, row) for row in found.values()):
                for r in conn.execute(f"SELECT ({t} - ?) / ? AS bucket, h.dataset_id, {_OTHER} "
                                      f"{src.base_doc or src.base} {cond} AND h.num IS NULL "
                                      f"{tail}", (*head, *key, *args)):
                    add_other(found[r[1], r[0]], r[2:])
            return list(found.values())

        def run(conn: sqlite3.Connection) -> list[BucketRow]:
            with _snapshot(conn):       # one snapshot for all the statements
                # the series is looked up once, not by each of up to LOOP_LIMIT statements
                sid = conn.execute(f"SELECT {SID_OF}", (tenant, entity_id, attr)).fetchone()[0]
                if sid is None:
                    return []
                t = TIME_COLUMN[timeproperty]
                low, high = conn.execute(f"SELECT min({t}), max({t}) FROM history_pending "
                                         "WHERE sid = ? AND deleted = 0", (sid,)).fetchone()
                pending = None if low is None else (low, high)
                if ranges is not None:
                    return per_period(conn, sid, pending)
                return grouped(conn, sid, alone if pending is None else both)

        rows: list[BucketRow] = await self._read(run)
        return rows


@dataclass(frozen=True)
class _Source:
    """Where aggregation reads: ``base`` (FROM ... WHERE, rows aliased ``h``) with the time
    expression ``t`` and the sid bound ``n`` times; ``base_doc`` also carries ``h.doc``."""

    t: str
    n: int
    base: str
    base_doc: str | None = None

    def per_period(self, numbers: str) -> tuple[str, str, str]:
        """The three statements of one period: all datasets, by dataset, other values."""
        cond = f"AND {self.t} >= ? AND {self.t} < ? AND h.deleted = 0"
        return (f"SELECT min(h.dataset_id), max(h.dataset_id), {numbers} {self.base} {cond}",
                f"SELECT h.dataset_id, {numbers} {self.base} {cond} GROUP BY h.dataset_id",
                f"SELECT h.dataset_id, {_OTHER} {self.base_doc or self.base} {cond} "
                "AND h.num IS NULL GROUP BY h.dataset_id")


_HISTORY_TABLES = ("attr_history", "history_pending")
_TIME_OF_ROW = operator.itemgetter(5)
# the series has instances in either table (``s`` is its history_series row)
_HAS_ROWS = ("(EXISTS (SELECT 1 FROM attr_history h WHERE h.sid = s.sid) OR "
             "EXISTS (SELECT 1 FROM history_pending p WHERE p.sid = s.sid))")


@contextlib.contextmanager
def _snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """One read transaction on a reader connection: every statement inside sees the same
    database state."""
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


def _delete_both(conn: sqlite3.Connection, where: str, args: tuple[Any, ...]) -> int:
    """Delete the matching history rows from both tables (on the writer); how many."""
    return sum(conn.execute(f"DELETE FROM {table} WHERE {where}", args).rowcount
               for table in _HISTORY_TABLES)


def _kept(timeproperty: str) -> str:
    """Live instances, or with ``timeproperty=deletedAt`` the rows deletions appended."""
    return "deleted = 1" if timeproperty == DELETED_AT else "deleted = 0"
