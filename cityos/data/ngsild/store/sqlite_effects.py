"""SQLite: appending a write's effects (history, outbox) and the documents table (ADR 0006)."""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

from cityos.data.ngsild.store.base import FANOUT, FANOUT_MARK, Effects, OutboxRow
from cityos.data.ngsild.store.history_schema import (
    SQLITE_OUTBOX_INSERT,
    SQLITE_TEMPORAL_ENTITY_INSERT_MISSING,
    SQLITE_TEMPORAL_ENTITY_UPSERT,
    split_records,
)
from cityos.data.ngsild.store.sql_chunks import placeholders, power_of_two_chunks
from cityos.data.ngsild.store.sqlite_series import SeriesIds, insert_history


class Committed:
    """A write job's result that carries effects to announce once the group has committed."""

    __slots__ = ("effects", "result", "tenant")

    def __init__(self, result: Any, tenant: str, effects: Effects) -> None:
        self.result, self.tenant, self.effects = result, tenant, effects


# a document's seq: one more than the newest (documents_seq keeps this an index lookup)
_NEXT_SEQ = "(SELECT coalesce(max(seq), 0) + 1 FROM documents)"
# a document that exists keeps its body and takes a fresh seq: fanout_sweep.py's sign of use
_INSERT_OR_RESTAMP = (f"INSERT INTO documents VALUES (?, ?, ?, ?, {_NEXT_SEQ}) "
                      "ON CONFLICT (kind, tenant, id) DO UPDATE SET seq = excluded.seq")


def append_effects(conn: sqlite3.Connection, tenant: str, effects: Effects,
                   series: SeriesIds | None = None) -> None:
    """Insert the history and outbox rows of one write (inside its transaction).

    ``series``: the store's cache of history series ids (None: look every series up).
    """
    if effects.history:
        insert_history(conn, tenant, effects.history, series if series is not None else SeriesIds())
    for records, missing_only in split_records(effects.temporal_entities):
        sql = SQLITE_TEMPORAL_ENTITY_INSERT_MISSING if missing_only else SQLITE_TEMPORAL_ENTITY_UPSERT
        conn.executemany(sql, [
            (tenant, e.entity_id, orjson.dumps(e.types).decode(),
             orjson.dumps(e.scope).decode() if e.scope else None, e.created_at, e.modified_at,
             e.deleted_at) for e in records])
    if effects.documents:
        conn.executemany(_INSERT_OR_RESTAMP, [
            (kind, tenant, doc_id, orjson.dumps(doc).decode())
            for kind, doc_id, doc in effects.documents_in_key_order()])
    if effects.outbox:
        conn.executemany(SQLITE_OUTBOX_INSERT, [
            (r.id, r.tenant, r.kind,
             orjson.dumps(r.body if r.stored is None else r.stored).decode(), r.created_at)
            for r in effects.outbox])


def sweep_fanout_sets(conn: sqlite3.Connection, mark: int | None) -> tuple[int, int]:
    """Store.sweep_fanout_sets on the writer's connection (one transaction)."""
    deleted = 0
    if mark is not None:
        deleted = conn.execute(
            "DELETE FROM documents WHERE kind = ? AND seq <= ? AND id NOT IN ("
            "SELECT json_extract(body, '$.fanout') FROM outbox "
            "WHERE json_extract(body, '$.fanout') IS NOT NULL)", (FANOUT, mark)).rowcount
    # a seq here is max(seq) + 1, which falls back when the newest document is deleted (a
    # subscription, say): the mark is a document of its own, so a later set always gets more
    conn.execute(_INSERT_OR_RESTAMP, (FANOUT_MARK, "", "mark", "{}"))
    row = conn.execute("SELECT seq FROM documents WHERE kind = ? AND tenant = '' AND id = 'mark'",
                       (FANOUT_MARK,)).fetchone()
    return deleted, int(row[0])


def delete_outbox_rows(conn: sqlite3.Connection, ids: list[str]) -> None:
    """Delete finished outbox rows, up to 256 ids per statement: executemany took a statement
    step per row, and every step gives the GIL up and waits to take it back."""
    for start, size in power_of_two_chunks(len(ids), 256):
        conn.execute(f"DELETE FROM outbox WHERE id IN {placeholders(size)}",
                     ids[start:start + size])


def pending_rows(conn: sqlite3.Connection, claimed: set[str], limit: int) -> list[OutboxRow]:
    """Outbox rows nobody in this process is working on, oldest first.

    Ids are scanned first and only unclaimed rows' bodies are read: while a dead receiver keeps
    thousands of rows in the outbox, every poll would otherwise read all their bodies.
    """
    wanted: list[int] = []
    last = 0
    while len(wanted) < limit:
        batch = conn.execute("SELECT seq, id FROM outbox WHERE seq > ? ORDER BY seq LIMIT 2000",
                             (last,)).fetchall()
        if not batch:
            break
        last = batch[-1][0]
        wanted += [seq for seq, row_id in batch if row_id not in claimed]
    rows: list[OutboxRow] = []
    for start in range(0, min(len(wanted), limit), 500):
        chunk = wanted[start:min(start + 500, limit)]
        rows += [OutboxRow(row_id, tenant, kind, orjson.loads(body), created)
                 for row_id, tenant, kind, body, created in conn.execute(
                     f"SELECT id, tenant, kind, body, created_at FROM outbox WHERE seq IN "
                     f"({','.join('?' * len(chunk))}) ORDER BY seq", chunk)]
    return rows


def put_document(conn: sqlite3.Connection, kind: str, tenant: str, doc_id: str,
                 doc: dict[str, Any], create: bool) -> bool:
    text = orjson.dumps(doc).decode()
    if create:
        cursor = conn.execute(
            f"INSERT OR IGNORE INTO documents VALUES (?, ?, ?, ?, {_NEXT_SEQ})",
            (kind, tenant, doc_id, text))
        return cursor.rowcount > 0
    conn.execute(f"INSERT INTO documents VALUES (?, ?, ?, ?, {_NEXT_SEQ}) "
                 "ON CONFLICT (kind, tenant, id) DO UPDATE SET doc = excluded.doc",
                 (kind, tenant, doc_id, text))
    return True


def list_documents(conn: sqlite3.Connection, kind: str, tenant: str | None) -> list[dict[str, Any]]:
    if tenant is None:
        rows = conn.execute("SELECT tenant, doc FROM documents WHERE kind = ? ORDER BY seq",
                            (kind,)).fetchall()
    else:
        rows = conn.execute("SELECT tenant, doc FROM documents WHERE kind = ? AND tenant = ? "
                            "ORDER BY seq", (kind, tenant)).fetchall()
    docs = []
    for row_tenant, text in rows:
        doc = orjson.loads(text)
        doc["_tenant"] = row_tenant
        docs.append(doc)
    return docs
