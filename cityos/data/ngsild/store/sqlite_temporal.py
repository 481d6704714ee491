"""Temporal history reads and temporal writes on SQLite (a mixin of SQLiteEntityStore).

Reads run on the reader threads, writes through the single writer (``_submit``), exactly like the
entity methods.  Per-attribute reads walk the index ``(tenant, entity_id, attr, t)`` in time order
(``attr_history_obs_time`` for observedAt), so ``lastN`` and time windows never sort a whole
attribute; aggregation groups the same index range in SQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from cityos.data.ngsild.store.base import HistoryRow, TemporalEntityRow
from cityos.data.ngsild.store.history_schema import SQLITE_HISTORY_INSERT
from cityos.data.ngsild.store.temporal_base import (
    TIME_COLUMN,
    VALUE_MEMBERS,
    BucketRow,
    Buckets,
    InstanceRow,
    TemporalEntityRecord,
    Window,
    aggregate_columns,
    qualified_time,
)

CHUNK = 500   # ids per IN (...) list: SQLite's default limit of host parameters is 32766

_ENTITY_COLUMNS = "id, types, scope, created_at, modified_at, deleted_at"
_TEMPORAL_ENTITY_UPSERT = (
    "INSERT INTO temporal_entities VALUES (?, ?, ?, ?, ?, ?, NULL) ON CONFLICT (tenant, id) "
    "DO UPDATE SET types = excluded.types, scope = coalesce(excluded.scope, scope), "
    "modified_at = excluded.modified_at")
# the value of an instance whatever its attribute type (distinctCount): the number when it is one
# (so 1 and 1.0 are the same value, as in PostgreSQL's jsonb), else its JSON text
_ANY_VALUE = ("CASE WHEN h.num IS NOT NULL THEN h.num ELSE coalesce("
              + ", ".join(f"h.doc -> '$.{m}'" for m in VALUE_MEMBERS) + ") END")
# a string value (min / max of non-numeric attributes); numbers never decode the document
_TEXT_VALUE = ("CASE WHEN h.num IS NULL AND json_type(h.doc, '$.value') = 'text' "
               "THEN h.doc ->> '$.value' END")


def _window_sql(t: str, window: Window) -> tuple[str, list[Any]]:
    sql, args = "", list[Any]()
    if window.start is not None:
        sql += f" AND {t} {'>=' if window.start_inclusive else '>'} ?"
        args.append(window.start)
    if window.end is not None:
        sql += f" AND {t} < ?"
        args.append(window.end)
    return sql, args


def _record(row: tuple[Any, ...]) -> TemporalEntityRecord:
    return TemporalEntityRecord(id=row[0], types=orjson.loads(row[1]),
                                scope=orjson.loads(row[2]) if row[2] else None,
                                created_at=row[3], modified_at=row[4], deleted_at=row[5])


class SQLiteTemporal:
    """Temporal API storage methods; uses the host store's ``_submit`` (writer) and ``_read``."""

    if TYPE_CHECKING:
        _known_tenants: set[str]

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
            conn.executemany(SQLITE_HISTORY_INSERT, [
                (tenant, r.entity_id, r.attr, r.dataset_id, r.instance_id, r.observed_at,
                 r.created_at, r.modified_at, int(r.deleted), orjson.dumps(r.doc).decode())
                for r in rows])
            if tenant not in self._known_tenants:
                conn.execute("INSERT OR IGNORE INTO tenants VALUES (?)", (tenant,))
                self._known_tenants.add(tenant)
            return old is None

        created: bool = await self._submit(run)
        return created

    async def temporal_delete(self, tenant: str, entity_id: str) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            conn.execute("DELETE FROM attr_history WHERE tenant = ? AND entity_id = ?",
                         (tenant, entity_id))
            return conn.execute("DELETE FROM temporal_entities WHERE tenant = ? AND id = ?",
                                (tenant, entity_id)).rowcount > 0

        found: bool = await self._submit(run)
        return found

    async def temporal_delete_attribute(self, tenant: str, entity_id: str, attr: str,
                                        dataset_id: str | None) -> int:
        sql = "DELETE FROM attr_history WHERE tenant = ? AND entity_id = ? AND attr = ?"
        args: tuple[Any, ...] = (tenant, entity_id, attr)
        if dataset_id is not None:
            sql, args = sql + " AND dataset_id = ?", (*args, dataset_id)
        count: int = await self._submit(lambda conn: conn.execute(sql, args).rowcount)
        return count

    async def temporal_patch_instance(self, tenant: str, entity_id: str, attr: str,
                                      instance_id: str, doc: dict[str, Any],
                                      observed_at: int | None, modified_at: int) -> bool:
        text = orjson.dumps(doc).decode()
        count: int = await self._submit(lambda conn: conn.execute(
            "UPDATE attr_history SET doc = ?, observed_at = ?, modified_at = ? WHERE "
            "instance_id = ? AND tenant = ? AND entity_id = ? AND attr = ? AND deleted = 0",
            (text, observed_at, modified_at, instance_id, tenant, entity_id, attr)).rowcount)
        return count > 0

    async def temporal_delete_instance(self, tenant: str, entity_id: str, attr: str,
                                       instance_id: str) -> bool:
        count: int = await self._submit(lambda conn: conn.execute(
            "DELETE FROM attr_history WHERE instance_id = ? AND tenant = ? AND entity_id = ? "
            "AND attr = ? AND deleted = 0", (instance_id, tenant, entity_id, attr)).rowcount)
        return count > 0

    async def purge_history_before(self, tenant: str, entity_ids: list[str], cutoff: int) -> int:
        def run(conn: sqlite3.Connection) -> int:
            removed = 0
            for start in range(0, len(entity_ids), CHUNK):
                chunk = entity_ids[start:start + CHUNK]
                marks = ",".join("?" * len(chunk))
                removed += conn.execute(
                    f"DELETE FROM attr_history WHERE tenant = ? AND entity_id IN ({marks}) "
                    "AND created_at < ?", (tenant, *chunk, cutoff)).rowcount
                # an entity deleted before the cut-off whose history is now empty is gone for good
                conn.execute(
                    f"DELETE FROM temporal_entities WHERE tenant = ? AND id IN ({marks}) "
                    "AND deleted_at < ? AND NOT EXISTS (SELECT 1 FROM attr_history h WHERE "
                    "h.tenant = temporal_entities.tenant AND h.entity_id = temporal_entities.id)",
                    (tenant, *chunk, cutoff))
            return removed

        count: int = await self._submit(run)
        return count

    # -- reads ---------------------------------------------------------------------------------
    async def temporal_entity(self, tenant: str, entity_id: str) -> TemporalEntityRecord | None:
        row = await self._read(lambda conn: conn.execute(
            f"SELECT {_ENTITY_COLUMNS} FROM temporal_entities WHERE tenant = ? AND id = ?",
            (tenant, entity_id)).fetchone())
        return _record(row) if row else None

    async def temporal_entity_page(self, tenant: str, ids: tuple[str, ...] | None,
                                   types: tuple[str, ...] | None, after_id: str | None,
                                   limit: int) -> list[TemporalEntityRecord]:
        sql = f"SELECT {_ENTITY_COLUMNS} FROM temporal_entities WHERE tenant = ?"
        args: list[Any] = [tenant]
        if ids is not None:
            sql += f" AND id IN ({','.join('?' * len(ids))})"
            args.extend(ids)
        if types is not None:
            sql += (" AND EXISTS (SELECT 1 FROM json_each(types) WHERE value IN "
                    f"({','.join('?' * len(types))}))")
            args.extend(types)
        if after_id is not None:
            sql += " AND id > ?"
            args.append(after_id)
        sql += " ORDER BY id LIMIT ?"
        args.append(limit)
        rows = await self._read(lambda conn: conn.execute(sql, args).fetchall())
        return [_record(r) for r in rows]

    async def temporal_types(self) -> list[tuple[str, str, list[str]]]:
        rows = await self._read(lambda conn: conn.execute(
            "SELECT tenant, id, types FROM temporal_entities").fetchall())
        return [(r[0], r[1], orjson.loads(r[2])) for r in rows]

    async def temporal_attributes(self, tenant: str, entity_id: str) -> list[str]:
        def run(conn: sqlite3.Connection) -> list[str]:
            # a loose index scan: one index seek per attribute, not a walk over every instance
            names: list[str] = []
            row = conn.execute("SELECT min(attr) FROM attr_history WHERE tenant = ? AND "
                               "entity_id = ?", (tenant, entity_id)).fetchone()
            while row is not None and row[0] is not None:
                names.append(row[0])
                row = conn.execute("SELECT min(attr) FROM attr_history WHERE tenant = ? AND "
                                   "entity_id = ? AND attr > ?",
                                   (tenant, entity_id, row[0])).fetchone()
            return names

        names: list[str] = await self._read(run)
        return names

    async def temporal_instances(self, tenant: str, entity_id: str, attr: str, timeproperty: str,
                                 window: Window, newest_first: bool,
                                 limit: int) -> list[InstanceRow]:
        t = TIME_COLUMN[timeproperty]
        where, args = _window_sql(t, window)
        order = "DESC" if newest_first else "ASC"
        sql = (f"SELECT attr, dataset_id, instance_id, observed_at, created_at, modified_at, {t}, "
               f"doc FROM attr_history WHERE tenant = ? AND entity_id = ? AND attr = ? {where} "
               f"AND deleted = 0 ORDER BY {t} {order}, rid {order} LIMIT ?")
        rows = await self._read(lambda conn: conn.execute(
            sql, (tenant, entity_id, attr, *args, limit)).fetchall())
        return [InstanceRow(attr=r[0], dataset_id=r[1], instance_id=r[2], observed_at=r[3],
                            created_at=r[4], modified_at=r[5], t=r[6], doc=orjson.loads(r[7]))
                for r in rows]

    async def temporal_instance(self, tenant: str, entity_id: str, attr: str,
                                instance_id: str) -> InstanceRow | None:
        sql = ("SELECT attr, dataset_id, instance_id, observed_at, created_at, modified_at, "
               f"{TIME_COLUMN['observedAt']}, doc FROM attr_history WHERE instance_id = ? AND "
               "tenant = ? AND entity_id = ? AND attr = ? AND deleted = 0")
        r = await self._read(lambda conn: conn.execute(
            sql, (instance_id, tenant, entity_id, attr)).fetchone())
        if r is None:
            return None
        return InstanceRow(attr=r[0], dataset_id=r[1], instance_id=r[2], observed_at=r[3],
                           created_at=r[4], modified_at=r[5], t=r[6], doc=orjson.loads(r[7]))

    async def temporal_bounds(self, tenant: str, entity_id: str, attr: str, timeproperty: str,
                              window: Window) -> tuple[int, int] | None:
        t = TIME_COLUMN[timeproperty]
        where, args = _window_sql(t, window)
        base = (f"FROM attr_history WHERE tenant = ? AND entity_id = ? AND attr = ? {where} "
                "AND deleted = 0")
        # two sub-selects: SQLite answers a lone min() or max() from the index in one seek
        sql = f"SELECT (SELECT min({t}) {base}), (SELECT max({t}) {base})"
        full = (tenant, entity_id, attr, *args)
        row = await self._read(lambda conn: conn.execute(sql, full + full).fetchone())
        return None if row is None or row[0] is None else (row[0], row[1])

    async def temporal_aggregate(self, tenant: str, entity_id: str, attr: str, timeproperty: str,
                                 window: Window, buckets: Buckets,
                                 methods: frozenset[str]) -> list[BucketRow]:
        t = qualified_time(timeproperty, "h")
        where, args = _window_sql(t, window)
        source = "attr_history h"
        head: list[Any] = []
        if buckets.bounds is not None:
            # calendar periods: drive the join from the periods, each one an index range
            source = ("json_each(?) b CROSS JOIN attr_history h ON "
                      f"{t} >= b.value ->> '$[0]' AND {t} < b.value ->> '$[1]'")
            head = [orjson.dumps(buckets.bounds).decode()]
            bucket = "b.key"
        elif buckets.period is not None:
            bucket = f"({t} - ?) / ?"
            head = [buckets.origin, buckets.period]
        else:
            bucket = "0"
        columns = aggregate_columns(methods, _ANY_VALUE, _TEXT_VALUE)
        # the bucket expression comes first so that its parameters are bound first
        sql = (f"SELECT {bucket} AS bucket, h.dataset_id, {columns} FROM {source} "
               f"WHERE h.tenant = ? AND h.entity_id = ? AND h.attr = ? {where} "
               "AND h.deleted = 0 GROUP BY h.dataset_id, bucket ORDER BY h.dataset_id, bucket")
        params = [*head, tenant, entity_id, attr, *args]
        rows = await self._read(lambda conn: conn.execute(sql, params).fetchall())
        return [BucketRow(dataset_id=r[1], bucket=int(r[0]), count=r[2], distinct=r[3],
                          numbers=r[4], total=r[5], total_sq=r[6], min_number=r[7],
                          max_number=r[8], min_text=r[9], max_text=r[10]) for r in rows]
