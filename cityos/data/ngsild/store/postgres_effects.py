"""PostgreSQL: appending a write's effects (history, outbox), documents and outbox claims.

Effects are inserted with one ``unnest`` statement per table, whatever the number of rows, each a
CTE of the write's upsert statement (:func:`add_ctes`): a batch of 1,000 entities costs no round
trip more than a write without history.  Outbox rows carry a lease
(``owner``, ``lease_until``): the process that wrote a row delivers it; another node only takes a
row over (``FOR UPDATE SKIP LOCKED``) after its lease expired, which is what happens when its
writer crashed.  A restarted process with the same node name takes its own rows back at once.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import orjson

from cityos.data.ngsild.store.base import Effects, OutboxRow
from cityos.data.ngsild.store.history_schema import split_records
from cityos.data.ngsild.times import now_micros

if TYPE_CHECKING:
    from cityos.data.ngsild.store.postgres import Conn

LEASE_MICROS = 60_000_000   # how long another node leaves a row alone
_PARAM = re.compile(r"\$(\d+)")

HISTORY_INSERT = (
    "INSERT INTO attr_history (tenant, entity_id, attr, dataset_id, instance_id, observed_at, "
    "created_at, modified_at, deleted, doc) SELECT $1, * FROM unnest($2::text[], $3::text[], "
    "$4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[], $9::boolean[], "
    "$10::jsonb[])")
TEMPORAL_ENTITY_UPSERT = (
    "INSERT INTO temporal_entities (tenant, id, types, scope, created_at, modified_at, deleted_at) "
    "SELECT $1, r.id, ARRAY(SELECT jsonb_array_elements_text(r.types::jsonb)), "
    "CASE WHEN r.scope IS NULL THEN NULL ELSE ARRAY(SELECT jsonb_array_elements_text(r.scope::jsonb)) END, "
    "r.created_at, r.modified_at, r.deleted_at FROM unnest($2::text[], $3::text[], $4::text[], "
    "$5::bigint[], $6::bigint[], $7::bigint[]) AS r(id, types, scope, created_at, modified_at, "
    "deleted_at) ON CONFLICT (tenant, id) DO UPDATE SET types = excluded.types, "
    "scope = excluded.scope, modified_at = excluded.modified_at, deleted_at = excluded.deleted_at")
# a plain attribute update only inserts a missing record (history_schema.TemporalEntityIfMissing)
TEMPORAL_ENTITY_INSERT_MISSING = (
    TEMPORAL_ENTITY_UPSERT[:TEMPORAL_ENTITY_UPSERT.index("DO UPDATE")] + "DO NOTHING")
OUTBOX_INSERT = (
    "INSERT INTO outbox (id, tenant, kind, body, created_at, owner, lease_until) "
    "SELECT *, $6, $7 FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::bigint[])")
# an existing set keeps its body and takes a fresh seq (the sweep's sign of recent use)
DOCUMENTS_INSERT_OR_RESTAMP = (
    "INSERT INTO documents (kind, tenant, id, doc) SELECT r.kind, $1, r.id, r.doc FROM "
    "unnest($2::text[], $3::text[], $4::jsonb[]) AS r(kind, id, doc) "
    "ON CONFLICT (kind, tenant, id) DO UPDATE SET seq = excluded.seq")
# SKIP LOCKED: a set a write is re-stamping right now is kept (its new seq is past the mark), and
# the sweep never waits for a write, so the two cannot deadlock
FANOUT_SWEEP = (
    "DELETE FROM documents d USING (SELECT kind, tenant, id FROM documents s "
    "WHERE s.kind = $1 AND s.seq <= $2 "
    "AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.body->>'fanout' = s.id) "
    "FOR UPDATE SKIP LOCKED) g WHERE d.kind = g.kind AND d.tenant = g.tenant AND d.id = g.id")
FANOUT_MARK_STAMP = (
    "INSERT INTO documents (kind, tenant, id, doc) VALUES ($1, '', 'mark', '{}') "
    "ON CONFLICT (kind, tenant, id) DO UPDATE SET seq = excluded.seq RETURNING seq")
DOCUMENTS_UPSERT = (
    "INSERT INTO documents (kind, tenant, id, doc) SELECT $1, r.tenant, r.id, r.doc FROM "
    "unnest($2::text[], $3::text[], $4::jsonb[]) AS r(tenant, id, doc) "
    "ON CONFLICT (kind, tenant, id) DO UPDATE SET doc = excluded.doc")
OUTBOX_CLAIM = (
    "UPDATE outbox SET owner = $1, lease_until = $2 WHERE id IN (SELECT id FROM outbox "
    "WHERE (lease_until < $3 OR owner = $1) AND NOT (id = ANY($4::text[])) ORDER BY seq "
    "LIMIT $5 FOR UPDATE SKIP LOCKED) RETURNING id, tenant, kind, body, created_at, seq")


def effects_parts(tenant: str, effects: Effects, node: str) -> list[tuple[str, list[Any]]]:
    """The statements (sql, args) inserting the history and outbox rows of one write.

    The caller runs them inside the write's transaction, as CTEs of its upsert statement
    (:func:`add_ctes`) or on their own (:func:`combined`): on a small update the round trips,
    not the rows, are what history would cost.
    """
    parts: list[tuple[str, list[Any]]] = []
    if effects.history:
        h = effects.history
        parts.append((HISTORY_INSERT, [
            tenant, [r.entity_id for r in h], [r.attr for r in h], [r.dataset_id for r in h],
            [r.instance_id for r in h], [r.observed_at for r in h], [r.created_at for r in h],
            [r.modified_at for r in h], [r.deleted for r in h], [r.doc for r in h]]))
    for t, missing_only in split_records(effects.temporal_entities):
        parts.append((TEMPORAL_ENTITY_INSERT_MISSING if missing_only else TEMPORAL_ENTITY_UPSERT, [
            tenant, [e.entity_id for e in t],
            # JSON text, not lists: asyncpg would read a list of lists as a 2-D array
            [orjson.dumps(e.types).decode() for e in t],
            [orjson.dumps(e.scope).decode() if e.scope else None for e in t],
            [e.created_at for e in t], [e.modified_at for e in t], [e.deleted_at for e in t]]))
    if effects.documents:
        d = effects.documents_in_key_order()
        parts.append((DOCUMENTS_INSERT_OR_RESTAMP, [
            tenant, [kind for kind, _, _ in d], [doc_id for _, doc_id, _ in d],
            [doc for _, _, doc in d]]))
    if effects.outbox:
        o = effects.outbox
        parts.append((OUTBOX_INSERT, [
            [r.id for r in o], [r.tenant for r in o], [r.kind for r in o],
            [r.body if r.stored is None else r.stored for r in o],
            [r.created_at for r in o], node, now_micros() + LEASE_MICROS]))
    return parts


async def execute_parts(conn: Conn, parts: list[tuple[str, list[Any]]]) -> None:
    """Run the (sql, args) parts as one statement (inside the caller's transaction)."""
    sql, args = combined(parts)
    await conn.execute(sql, *args)


def _renumber(sql: str, offset: int) -> str:
    return _PARAM.sub(lambda m: f"${int(m[1]) + offset}", sql)


def combined(parts: list[tuple[str, list[Any]]]) -> tuple[str, list[Any]]:
    """One statement running every (sql, args) part, parameters renumbered."""
    if len(parts) == 1:
        return parts[0][0], parts[0][1]
    ctes: list[str] = []
    args: list[Any] = []
    add_ctes(ctes, args, parts)
    return "WITH " + ", ".join(ctes) + " SELECT 1", args


def add_ctes(ctes: list[str], args: list[Any], parts: list[tuple[str, list[Any]]]) -> None:
    """Append each (sql, args) part to a statement's CTEs (named ``p0``, ``p1``, ...) and
    arguments, its parameters renumbered after those already there.  PostgreSQL runs every
    data-modifying CTE to completion whether or not the statement reads it."""
    for n, (sql, part_args) in enumerate(parts):
        ctes.append(f"p{n} AS ({_renumber(sql, len(args))})")
        args.extend(part_args)


async def claim_pending(conn: Conn, node: str, claimed: set[str], limit: int) -> list[OutboxRow]:
    """Renew this node's leases, then claim rows whose lease expired (or that are this node's
    from before a restart), oldest first."""
    now = now_micros()
    mine = list(claimed)
    if mine:
        await conn.execute("UPDATE outbox SET lease_until = $1 WHERE id = ANY($2::text[])",
                           now + LEASE_MICROS, mine)
    rows = await conn.fetch(OUTBOX_CLAIM, node, now + LEASE_MICROS, now, mine, limit)
    rows = sorted(rows, key=lambda r: r["seq"])
    return [OutboxRow(r["id"], r["tenant"], r["kind"], r["body"], r["created_at"]) for r in rows]


def document_record(tenant: str, doc: dict[str, Any]) -> dict[str, Any]:
    """A stored document as list_documents returns it."""
    doc = dict(doc)
    doc["_tenant"] = tenant
    return doc
