"""Temporal history reads and temporal writes on PostgreSQL (a mixin of PostgresEntityStore).

The same statements as on SQLite (``sqlite_temporal.py``) in PostgreSQL's dialect: per-attribute
reads walk ``attr_history_obs_time`` / ``attr_history_created`` in time order; aggregation groups
that index range in SQL, reading numbers as ``float8`` so both engines compute in the same
arithmetic; retention deletes by ``created_at``, the column the BRIN index covers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from cityos.data.ngsild.store.base import HistoryRow, TemporalEntityRow
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

if TYPE_CHECKING:
    import asyncpg

    from cityos.data.ngsild.store.postgres import Conn

T = TypeVar("T")
CHUNK = 5000

_ENTITY_COLUMNS = "id, types, scope, created_at, modified_at, deleted_at"
_HISTORY_INSERT = (
    "INSERT INTO attr_history (tenant, entity_id, attr, dataset_id, instance_id, observed_at, "
    "created_at, modified_at, deleted, doc) SELECT $1, * FROM unnest($2::text[], $3::text[], "
    "$4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[], $9::boolean[], "
    "$10::jsonb[])")
_TEMPORAL_ENTITY_UPSERT = (
    "INSERT INTO temporal_entities AS e (tenant, id, types, scope, created_at, modified_at) "
    "VALUES ($1, $2, $3::text[], $4::text[], $5, $6) ON CONFLICT (tenant, id) DO UPDATE SET "
    "types = ARRAY(SELECT DISTINCT unnest(e.types || excluded.types)), "
    "scope = coalesce(excluded.scope, e.scope), modified_at = excluded.modified_at "
    "RETURNING (xmax = 0) AS created")
# the value of an instance whatever its attribute type (distinctCount), as jsonb
_ANY_VALUE = ("CASE WHEN h.num IS NOT NULL THEN to_jsonb(h.num) ELSE coalesce("
              + ", ".join(f"h.doc -> '{m}'" for m in VALUE_MEMBERS) + ") END")
# a string value (min / max of non-numeric attributes), compared bytewise as SQLite does
_TEXT_VALUE = ("(CASE WHEN h.num IS NULL AND jsonb_typeof(h.doc -> 'value') = 'string' "
               "THEN h.doc ->> 'value' END) COLLATE \"C\"")


def _window_sql(t: str, window: Window, first: int) -> tuple[str, list[Any]]:
    """SQL conditions of the window, numbering parameters from ``$first``."""
    sql, args = "", list[Any]()
    if window.start is not None:
        sql += f" AND {t} {'>=' if window.start_inclusive else '>'} ${first + len(args)}"
        args.append(window.start)
    if window.end is not None:
        sql += f" AND {t} < ${first + len(args)}"
        args.append(window.end)
    return sql, args


def _record(row: asyncpg.Record) -> TemporalEntityRecord:
    return TemporalEntityRecord(id=row[0], types=list(row[1]),
                                scope=list(row[2]) if row[2] else None, created_at=row[3],
                                modified_at=row[4], deleted_at=row[5])


def _count(status: str) -> int:
    return int(status.split()[-1])


class PostgresTemporal:
    """Temporal API storage methods; uses the host store's ``_run`` (pooled connection)."""

    if TYPE_CHECKING:
        _known_tenants: set[str]

        async def _run(self, op: Callable[[Conn], Awaitable[T]],
                       retryable: Callable[[], bool] = ...) -> T: ...

    # -- writes --------------------------------------------------------------------------------
    async def temporal_write(self, tenant: str, entity: TemporalEntityRow,
                             rows: list[HistoryRow]) -> bool:
        async def op(conn: Conn) -> bool:
            async with conn.transaction():
                created = bool(await conn.fetchval(
                    _TEMPORAL_ENTITY_UPSERT, tenant, entity.entity_id, entity.types, entity.scope,
                    entity.created_at, entity.modified_at))
                if rows:
                    await conn.execute(
                        _HISTORY_INSERT, tenant, [r.entity_id for r in rows],
                        [r.attr for r in rows], [r.dataset_id for r in rows],
                        [r.instance_id for r in rows], [r.observed_at for r in rows],
                        [r.created_at for r in rows], [r.modified_at for r in rows],
                        [r.deleted for r in rows], [r.doc for r in rows])
                if tenant not in self._known_tenants:
                    await conn.execute("INSERT INTO tenants (name) VALUES ($1) "
                                       "ON CONFLICT DO NOTHING", tenant)
            self._known_tenants.add(tenant)
            return created

        # a retry after a lost connection could add the instances twice: run once
        return await self._run(op, retryable=lambda: False)

    async def temporal_delete(self, tenant: str, entity_id: str) -> bool:
        async def op(conn: Conn) -> bool:
            async with conn.transaction():
                await conn.execute("DELETE FROM attr_history WHERE tenant = $1 AND entity_id = $2",
                                   tenant, entity_id)
                return _count(await conn.execute(
                    "DELETE FROM temporal_entities WHERE tenant = $1 AND id = $2",
                    tenant, entity_id)) > 0

        return await self._run(op)

    async def temporal_delete_attribute(self, tenant: str, entity_id: str, attr: str,
                                        dataset_id: str | None) -> int:
        sql = "DELETE FROM attr_history WHERE tenant = $1 AND entity_id = $2 AND attr = $3"
        args: list[Any] = [tenant, entity_id, attr]
        if dataset_id is not None:
            sql += " AND dataset_id = $4"
            args.append(dataset_id)

        async def op(conn: Conn) -> int:
            return _count(await conn.execute(sql, *args))

        return await self._run(op)

    async def temporal_patch_instance(self, tenant: str, entity_id: str, attr: str,
                                      instance_id: str, doc: dict[str, Any],
                                      observed_at: int | None, modified_at: int) -> bool:
        async def op(conn: Conn) -> bool:
            return _count(await conn.execute(
                "UPDATE attr_history SET doc = $1, observed_at = $2, modified_at = $3 WHERE "
                "instance_id = $4 AND tenant = $5 AND entity_id = $6 AND attr = $7 "
                "AND NOT deleted", doc, observed_at, modified_at, instance_id, tenant, entity_id,
                attr)) > 0

        return await self._run(op)

    async def temporal_delete_instance(self, tenant: str, entity_id: str, attr: str,
                                       instance_id: str) -> bool:
        async def op(conn: Conn) -> bool:
            return _count(await conn.execute(
                "DELETE FROM attr_history WHERE instance_id = $1 AND tenant = $2 AND "
                "entity_id = $3 AND attr = $4 AND NOT deleted", instance_id, tenant, entity_id,
                attr)) > 0

        return await self._run(op)

    async def purge_history_before(self, tenant: str, entity_ids: list[str], cutoff: int) -> int:
        async def op(conn: Conn) -> int:
            removed = 0
            for start in range(0, len(entity_ids), CHUNK):
                chunk = entity_ids[start:start + CHUNK]
                async with conn.transaction():
                    removed += _count(await conn.execute(
                        "DELETE FROM attr_history WHERE tenant = $1 AND entity_id = ANY($2::text[]) "
                        "AND created_at < $3", tenant, chunk, cutoff))
                    await conn.execute(
                        "DELETE FROM temporal_entities e WHERE tenant = $1 AND id = ANY($2::text[]) "
                        "AND deleted_at < $3 AND NOT EXISTS (SELECT 1 FROM attr_history h "
                        "WHERE h.tenant = e.tenant AND h.entity_id = e.id)", tenant, chunk, cutoff)
            return removed

        return await self._run(op)

    # -- reads ---------------------------------------------------------------------------------
    async def temporal_entity(self, tenant: str, entity_id: str) -> TemporalEntityRecord | None:
        async def op(conn: Conn) -> TemporalEntityRecord | None:
            row = await conn.fetchrow(f"SELECT {_ENTITY_COLUMNS} FROM temporal_entities "
                                      "WHERE tenant = $1 AND id = $2", tenant, entity_id)
            return _record(row) if row else None

        return await self._run(op)

    async def temporal_entity_page(self, tenant: str, ids: tuple[str, ...] | None,
                                   types: tuple[str, ...] | None, after_id: str | None,
                                   limit: int) -> list[TemporalEntityRecord]:
        sql = f"SELECT {_ENTITY_COLUMNS} FROM temporal_entities WHERE tenant = $1"
        args: list[Any] = [tenant]
        if ids is not None:
            args.append(list(ids))
            sql += f" AND id = ANY(${len(args)}::text[])"
        if types is not None:
            args.append(list(types))
            sql += f" AND types && ${len(args)}::text[]"
        if after_id is not None:
            args.append(after_id)
            sql += f' AND id COLLATE "C" > ${len(args)}'
        args.append(limit)
        sql += f' ORDER BY id COLLATE "C" LIMIT ${len(args)}'

        async def op(conn: Conn) -> list[TemporalEntityRecord]:
            return [_record(r) for r in await conn.fetch(sql, *args)]

        return await self._run(op)

    async def temporal_types(self) -> list[tuple[str, str, list[str]]]:
        async def op(conn: Conn) -> list[tuple[str, str, list[str]]]:
            rows = await conn.fetch("SELECT tenant, id, types FROM temporal_entities")
            return [(r[0], r[1], list(r[2])) for r in rows]

        return await self._run(op)

    async def temporal_attributes(self, tenant: str, entity_id: str) -> list[str]:
        async def op(conn: Conn) -> list[str]:
            # a loose index scan (recursive CTE): one index seek per attribute
            rows = await conn.fetch(
                "WITH RECURSIVE a(attr) AS ((SELECT attr FROM attr_history WHERE tenant = $1 AND "
                "entity_id = $2 ORDER BY attr LIMIT 1) UNION ALL SELECT (SELECT h.attr FROM "
                "attr_history h WHERE h.tenant = $1 AND h.entity_id = $2 AND h.attr > a.attr "
                "ORDER BY h.attr LIMIT 1) FROM a WHERE a.attr IS NOT NULL) "
                "SELECT attr FROM a WHERE attr IS NOT NULL", tenant, entity_id)
            return sorted(r[0] for r in rows)

        return await self._run(op)

    async def temporal_instances(self, tenant: str, entity_id: str, attr: str, timeproperty: str,
                                 window: Window, newest_first: bool,
                                 limit: int) -> list[InstanceRow]:
        t = TIME_COLUMN[timeproperty]
        where, args = _window_sql(t, window, 4)
        order = "DESC" if newest_first else "ASC"
        sql = (f"SELECT attr, dataset_id, instance_id, observed_at, created_at, modified_at, {t}, "
               f"doc FROM attr_history WHERE tenant = $1 AND entity_id = $2 AND attr = $3 {where} "
               f"AND NOT deleted ORDER BY {t} {order}, rid {order} LIMIT ${4 + len(args)}")

        async def op(conn: Conn) -> list[InstanceRow]:
            rows = await conn.fetch(sql, tenant, entity_id, attr, *args, limit)
            return [InstanceRow(attr=r[0], dataset_id=r[1], instance_id=r[2], observed_at=r[3],
                                created_at=r[4], modified_at=r[5], t=r[6], doc=r[7])
                    for r in rows]

        return await self._run(op)

    async def temporal_instance(self, tenant: str, entity_id: str, attr: str,
                                instance_id: str) -> InstanceRow | None:
        sql = ("SELECT attr, dataset_id, instance_id, observed_at, created_at, modified_at, "
               f"{TIME_COLUMN['observedAt']}, doc FROM attr_history WHERE instance_id = $1 AND "
               "tenant = $2 AND entity_id = $3 AND attr = $4 AND NOT deleted")

        async def op(conn: Conn) -> InstanceRow | None:
            r = await conn.fetchrow(sql, instance_id, tenant, entity_id, attr)
            if r is None:
                return None
            return InstanceRow(attr=r[0], dataset_id=r[1], instance_id=r[2], observed_at=r[3],
                               created_at=r[4], modified_at=r[5], t=r[6], doc=r[7])

        return await self._run(op)

    async def temporal_bounds(self, tenant: str, entity_id: str, attr: str, timeproperty: str,
                              window: Window) -> tuple[int, int] | None:
        t = TIME_COLUMN[timeproperty]
        where, args = _window_sql(t, window, 4)
        base = (f"FROM attr_history WHERE tenant = $1 AND entity_id = $2 AND attr = $3 {where} "
                "AND NOT deleted")

        async def op(conn: Conn) -> tuple[int, int] | None:
            row = await conn.fetchrow(f"SELECT (SELECT min({t}) {base}), (SELECT max({t}) {base})",
                                      tenant, entity_id, attr, *args)
            return None if row is None or row[0] is None else (row[0], row[1])

        return await self._run(op)

    async def temporal_aggregate(self, tenant: str, entity_id: str, attr: str, timeproperty: str,
                                 window: Window, buckets: Buckets,
                                 methods: frozenset[str]) -> list[BucketRow]:
        t = qualified_time(timeproperty, "h")
        args: list[Any] = [tenant, entity_id, attr]
        source = "attr_history h"
        if buckets.bounds is not None:
            # calendar periods: drive the join from the periods, each one an index range
            args += [[b[0] for b in buckets.bounds], [b[1] for b in buckets.bounds]]
            source = ("unnest($4::bigint[], $5::bigint[]) WITH ORDINALITY AS b(lo, hi, i) "
                      f"JOIN attr_history h ON {t} >= b.lo AND {t} < b.hi")
            bucket = "b.i - 1"
        elif buckets.period is not None:
            args += [buckets.origin, buckets.period]
            bucket = f"({t} - $4::bigint) / $5::bigint"
        else:
            bucket = "0"
        where, window_args = _window_sql(t, window, len(args) + 1)
        args += window_args
        columns = aggregate_columns(methods, _ANY_VALUE, _TEXT_VALUE)
        sql = (f"SELECT {bucket} AS bucket, h.dataset_id, {columns} FROM {source} "
               f"WHERE h.tenant = $1 AND h.entity_id = $2 AND h.attr = $3 {where} "
               "AND NOT h.deleted GROUP BY h.dataset_id, 1 ORDER BY h.dataset_id, 1")

        async def op(conn: Conn) -> list[BucketRow]:
            rows = await conn.fetch(sql, *args)
            return [BucketRow(dataset_id=r[1], bucket=int(r[0]), count=r[2], distinct=r[3],
                              numbers=r[4], total=r[5], total_sq=r[6], min_number=r[7],
                              max_number=r[8], min_text=r[9], max_text=r[10]) for r in rows]

        return await self._run(op)
