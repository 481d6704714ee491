"""Temporal history reads and temporal writes on PostgreSQL (a mixin of PostgresEntityStore).

The same statements as on SQLite (``sqlite_temporal.py``) in PostgreSQL's dialect: per-attribute
reads walk ``attr_history_obs_rid`` / ``attr_history_created_rid`` in (time, rid) order;
aggregation reads one index range per period (a LATERAL subquery per period), reading numbers as
``float8`` so both engines compute in the same arithmetic; retention deletes by ``created_at``,
the column the BRIN index covers.

Queries are written so that the plan stays right without statistics (this deployment's
PostgreSQL may run without autovacuum): ``ORDER BY ... LIMIT 1`` rather than ``min()``, periods
as explicit index ranges rather than a GROUP BY the planner would have to size.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from cityos.data.ngsild.store.base import HistoryRow, TemporalEntityRow
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

if TYPE_CHECKING:
    import asyncpg

    from cityos.data.ngsild.store.postgres import Conn

T = TypeVar("T")
CHUNK = 5000

_ENTITY_COLUMNS = entity_columns("x.doc ->> 'modifiedAt'")
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
# phase 2 (values that are not numbers, see temporal_base): the value as jsonb, whatever the
# attribute type (distinctCount), and the value when it is a string (min / max), compared
# bytewise as SQLite does
_OTHER_VALUE = "coalesce(" + ", ".join(f"h.doc -> '{m}'" for m in VALUE_MEMBERS) + ")"
_TEXT_VALUE = ("(CASE WHEN jsonb_typeof(h.doc -> 'value') = 'string' THEN h.doc ->> 'value' END) "
               'COLLATE "C"')
_OTHER = other_columns(_OTHER_VALUE, _TEXT_VALUE)
# the periods as parallel arrays (number, lo, hi), each one an index range of a LATERAL subquery
_PERIODS = "unnest($4::bigint[], $5::bigint[], $6::bigint[]) AS b(k, lo, hi) CROSS JOIN LATERAL"
# a GROUP BY over a whole attribute sorts narrow rows; 4MB (the default) spills 100k to disk
_GROUP_WORK_MEM = "SET LOCAL work_mem = '32MB'"


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
                                modified_at=live_modified_at(row[4], row[6]), deleted_at=row[5])


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
                                      "e WHERE e.tenant = $1 AND e.id = $2", tenant, entity_id)
            return _record(row) if row else None

        return await self._run(op)

    async def temporal_entity_page(self, tenant: str, ids: tuple[str, ...] | None,
                                   types: tuple[str, ...] | None, after_id: str | None,
                                   limit: int) -> list[TemporalEntityRecord]:
        sql = f"SELECT {_ENTITY_COLUMNS} FROM temporal_entities e WHERE e.tenant = $1"
        args: list[Any] = [tenant]
        if ids is not None:
            args.append(list(ids))
            sql += f" AND e.id = ANY(${len(args)}::text[])"
        if types is not None:
            args.append(list(types))
            sql += f" AND e.types && ${len(args)}::text[]"
        if after_id is not None:
            args.append(after_id)
            sql += f' AND e.id COLLATE "C" > ${len(args)}'
        args.append(limit)
        sql += f' ORDER BY e.id COLLATE "C" LIMIT ${len(args)}'

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
                                 window: Window, newest_first: bool, limit: int,
                                 datasets: frozenset[str] | None = None) -> list[InstanceRow]:
        t = TIME_COLUMN[timeproperty]
        where, args = _window_sql(t, window, 4)
        if datasets is not None:
            where += f" AND dataset_id = ANY(${4 + len(args)}::text[])"
            args = [*args, sorted(datasets)]
        order = "DESC" if newest_first else "ASC"
        sql = (f"SELECT attr, dataset_id, instance_id, observed_at, created_at, modified_at, {t}, "
               f"doc FROM attr_history WHERE tenant = $1 AND entity_id = $2 AND attr = $3 {where} "
               f"AND {_kept(timeproperty)} ORDER BY {t} {order}, rid {order} "
               f"LIMIT ${4 + len(args)}")

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
                f"AND {_kept(timeproperty)}")

        async def op(conn: Conn) -> tuple[int, int] | None:
            # ORDER BY ... LIMIT 1, not min() / max(): without statistics the planner aggregates
            # the whole range (100,000 instances: 50 ms) instead of reading one index entry
            row = await conn.fetchrow(f"SELECT (SELECT {t} {base} ORDER BY {t} LIMIT 1), "
                                      f"(SELECT {t} {base} ORDER BY {t} DESC LIMIT 1)",
                                      tenant, entity_id, attr, *args)
            return None if row is None or row[0] is None else (row[0], row[1])

        return await self._run(op)

    async def temporal_aggregate(self, tenant: str, entity_id: str, attr: str, timeproperty: str,
                                 window: Window, span: tuple[int, int], buckets: Buckets,
                                 methods: frozenset[str]) -> list[BucketRow]:
        t = qualified_time(timeproperty, "h")
        numbers = number_columns(methods)
        base = "FROM attr_history h WHERE h.tenant = $1 AND h.entity_id = $2 AND h.attr = $3"
        ranges = period_ranges(buckets, *span)

        async def lateral(conn: Conn, columns: str, tail: str,
                          chosen: list[tuple[int, int, int]]) -> list[asyncpg.Record]:
            return await conn.fetch(
                f"SELECT b.k, x.* FROM {_PERIODS} (SELECT {columns} {base} AND {t} >= b.lo "
                f"AND {t} < b.hi AND NOT h.deleted {tail}) x", tenant, entity_id, attr,
                [c[0] for c in chosen], [c[1] for c in chosen], [c[2] for c in chosen])

        async def per_period(conn: Conn, ranges: list[tuple[int, int, int]]) -> list[BucketRow]:
            # one index range per period (a nested loop over the periods): no sort or hash of
            # the whole attribute by (datasetId, period)
            by_number = {c[0]: c for c in ranges}
            found: list[BucketRow] = []
            mixed: list[tuple[int, int, int]] = []   # periods of several datasetIds
            for r in await lateral(conn, f"min(h.dataset_id), max(h.dataset_id), {numbers}", "",
                                   ranges):
                if r[3] and r[1] == r[2]:
                    found.append(number_row(r[1], r[0], list(r)[3:]))
                elif r[3]:
                    mixed.append(by_number[r[0]])
            if mixed:
                found += [number_row(r[1], r[0], list(r)[2:]) for r in await lateral(
                    conn, f"h.dataset_id, {numbers}", "GROUP BY h.dataset_id", mixed)]
            other = {row.bucket for row in found if needs_other(methods, row)}
            if other:
                by_key = {(row.dataset_id, row.bucket): row for row in found}
                for r in await lateral(conn, f"h.dataset_id, {_OTHER}",
                                       "AND h.num IS NULL GROUP BY h.dataset_id",
                                       [by_number[k] for k in sorted(other)]):
                    add_other(by_key[r[1], r[0]], list(r)[2:])
            return found

        async def grouped(conn: Conn) -> list[BucketRow]:
            args: list[Any] = [tenant, entity_id, attr, buckets.origin, buckets.period]
            where, window_args = _window_sql(t, window, len(args) + 1)
            args += window_args
            head = f"SELECT ({t} - $4::bigint) / $5::bigint AS bucket, h.dataset_id"
            where = f"{base} {where} AND NOT h.deleted"
            await conn.execute(_GROUP_WORK_MEM)
            found = {(r[1], r[0]): number_row(r[1], r[0], list(r)[2:]) for r in await conn.fetch(
                f"{head}, {numbers} {where} GROUP BY h.dataset_id, 1", *args)}
            if any(needs_other(methods, row) for row in found.values()):
                for r in await conn.fetch(f"{head}, {_OTHER} {where} AND h.num IS NULL "
                                          "GROUP BY h.dataset_id, 1", *args):
                    add_other(found[r[1], r[0]], list(r)[2:])
            return list(found.values())

        async def op(conn: Conn) -> list[BucketRow]:
            # one snapshot for all the statements
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                return await per_period(conn, ranges) if ranges is not None else await grouped(conn)

        return await self._run(op)


def _kept(timeproperty: str) -> str:
    """Live instances, or with ``timeproperty=deletedAt`` the rows deletions appended."""
    return "deleted" if timeproperty == DELETED_AT else "NOT deleted"
