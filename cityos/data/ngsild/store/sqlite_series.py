"""SQLite's history series: (tenant, entity, attribute) → the small integer ``sid`` of its rows.

The history rows and both their indexes are keyed by ``sid`` (why: ``history_schema.py``).  The
writer finds a series' sid in :class:`SeriesIds`, a cache that only the writer thread touches;
readers look it up in SQL through the UNIQUE index of ``history_series``.

A sid is valid only once the transaction that inserted its series committed: a series inserted by a
write that rolls back is gone, and because ``sid`` is a rowid the next new series may be handed the
same number.  Had the cache kept it, later rows of the first series would land in the second.
Hence ids learnt during a group commit stay pending until the group committed, and any rollback
(one write's savepoint or the whole group) drops every pending id.

New rows go to ``history_pending`` first and move to the indexed ``attr_history`` a series at a
time, once ``MOVE_AT`` of them are waiting (why: ``history_schema.py``).  The writer counts each
series' waiting rows in memory.  The count is only a trigger: a move takes every waiting row of the
series, so a count left wrong by a rollback or a restart only moves a series a little early or late.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterable

import orjson

from cityos.data.ngsild.store.base import HistoryRow
from cityos.data.ngsild.store.history_schema import (
    SQLITE_HISTORY_INDEXES,
    SQLITE_HISTORY_INSERT,
    SQLITE_HISTORY_MOVE,
    SQLITE_HISTORY_TABLES,
    SQLITE_PENDING_DROP,
)
from cityos.data.ngsild.store.sql_chunks import placeholders, power_of_two_chunks

# entities whose series ids are kept (each a handful of attributes: ~10 MB at the limit); past it
# the oldest entity is dropped and its next write looks its sids up again (one index seek each)
CACHED_ENTITIES = 20_000
# rows a series collects in history_pending before they move together; 8, 16 and 32 cost 12-16 µs
# per row with the checkpoint (2,000 series, at 300k-450k rows), one at a time cost 140 µs
MOVE_AT = 16
# series whose waiting rows are counted; past it the counts start over (moves come later, once)
COUNTED_SERIES = 200_000

SID_OF = "(SELECT sid FROM history_series WHERE tenant = ? AND entity_id = ? AND attr = ?)"
SIDS_OF_ENTITY = "(SELECT sid FROM history_series WHERE tenant = ? AND entity_id = ?)"


class SeriesIds:
    """The writer thread's cache of series ids, filled only with committed series."""

    def __init__(self, limit: int = CACHED_ENTITIES) -> None:
        self._limit = limit
        self._committed: dict[tuple[str, str], dict[str, int]] = {}
        self._pending: dict[tuple[str, str, str], int] = {}    # learnt by the running group
        self._waiting: dict[int, int] = {}     # sid -> its rows in history_pending (a trigger)

    def sid(self, conn: sqlite3.Connection, tenant: str, entity_id: str, attr: str) -> int:
        """The series' id, its row inserted when missing (inside the caller's transaction)."""
        attrs = self._committed.get((tenant, entity_id))
        if attrs is not None and attr in attrs:
            return attrs[attr]
        key = (tenant, entity_id, attr)
        sid = self._pending.get(key)
        if sid is None:
            row = conn.execute("SELECT sid FROM history_series WHERE tenant = ? AND entity_id = ? "
                               "AND attr = ?", key).fetchone()
            if row is None:     # the writer holds the write lock: nobody inserts it meanwhile
                row = conn.execute("INSERT INTO history_series (tenant, entity_id, attr) "
                                   "VALUES (?, ?, ?) RETURNING sid", key).fetchone()
            sid = self._pending[key] = row[0]
        return sid

    def due(self, sids: Iterable[int]) -> list[int]:
        """Count new pending rows; the series that now have ``MOVE_AT`` rows waiting."""
        waiting, due = self._waiting, []
        if len(waiting) > COUNTED_SERIES:
            waiting.clear()
        for sid in sids:
            n = waiting.get(sid, 0) + 1
            if n >= MOVE_AT:
                due.append(sid)
                n = 0
            waiting[sid] = n
        return due

    def committed(self) -> None:
        """The group committed: its series ids are now safe to reuse."""
        for (tenant, entity_id, attr), sid in self._pending.items():
            self._committed.setdefault((tenant, entity_id), {})[attr] = sid
        self._pending.clear()
        while len(self._committed) > self._limit:
            del self._committed[next(iter(self._committed))]    # the oldest entity first

    def rolled_back(self) -> None:
        """A savepoint or the group rolled back: series it inserted may be gone."""
        self._pending.clear()

    def forget(self, tenant: str, entity_id: str) -> None:
        """The entity's series rows are being deleted."""
        self._committed.pop((tenant, entity_id), None)
        for key in [k for k in self._pending if k[0] == tenant and k[1] == entity_id]:
            del self._pending[key]


def insert_history(conn: sqlite3.Connection, tenant: str, rows: Iterable[HistoryRow],
                   series: SeriesIds) -> None:
    """Append history rows, each to its series (created when new), and move the series that
    have collected ``MOVE_AT`` pending rows to the indexed table (all in the caller's
    transaction)."""
    values = [
        (series.sid(conn, tenant, r.entity_id, r.attr), r.dataset_id, r.instance_id,
         r.observed_at, r.created_at, r.modified_at, int(r.deleted), orjson.dumps(r.doc).decode())
        for r in rows]
    # One multi-row INSERT, not executemany's step per row: each step releases and re-takes the
    # GIL, and under load about half of this insert's time was the wait for the event loop's
    # thread to hand it back (py-spy --native).
    for start, size in power_of_two_chunks(len(values), MAX_CHUNK):
        conn.execute(_insert_sql(size), [v for row in values[start:start + size] for v in row])
    due = series.due(v[0] for v in values)
    if due:
        move_pending(conn, due)


MAX_CHUNK = 256     # rows per INSERT: 2,048 parameters, far below SQLite's limit of 32,766


@functools.cache
def _insert_sql(rows: int) -> str:
    return SQLITE_HISTORY_INSERT + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * rows)


def move_pending(conn: sqlite3.Connection, sids: list[int]) -> None:
    """Every pending row of the series into ``attr_history``, in the order they were written."""
    for start, size in power_of_two_chunks(len(sids), MAX_CHUNK):
        chunk = sids[start:start + size]
        conn.execute(SQLITE_HISTORY_MOVE.format(placeholders(size)), chunk)
        conn.execute(SQLITE_PENDING_DROP.format(placeholders(size)), chunk)


# The layout before series ids keyed attr_history by (tenant, entity_id, attr) texts.  The old
# table is renamed (its indexes go with it and are dropped with it), the new one filled in rid
# order and indexed once at the end: cheaper than maintaining the indexes row by row.
_MIGRATION = f"""
ALTER TABLE attr_history RENAME TO attr_history_by_text;
{SQLITE_HISTORY_TABLES}
INSERT INTO history_series (tenant, entity_id, attr)
    SELECT DISTINCT tenant, entity_id, attr FROM attr_history_by_text;
INSERT INTO attr_history (rid, sid, dataset_id, instance_id, observed_at, created_at, modified_at,
                          deleted, doc)
    SELECT h.rid, s.sid, h.dataset_id, h.instance_id, h.observed_at, h.created_at, h.modified_at,
           h.deleted, h.doc
    FROM attr_history_by_text h JOIN history_series s
        ON s.tenant = h.tenant AND s.entity_id = h.entity_id AND s.attr = h.attr
    ORDER BY h.rid;
DROP TABLE attr_history_by_text;
{SQLITE_HISTORY_INDEXES}
"""


def _old_layout(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM pragma_table_info('attr_history') "
                        "WHERE name = 'entity_id'").fetchone() is not None


def migrate_to_series(conn: sqlite3.Connection) -> bool:
    """Move a history of the old text-keyed layout to series ids, in one transaction.

    Run at store open (``conn`` in autocommit mode), before the schema script; True when there
    was something to migrate.
    """
    if not _old_layout(conn):
        return False
    conn.execute("BEGIN IMMEDIATE")
    try:
        if not _old_layout(conn):       # another process migrated it while we waited
            conn.execute("ROLLBACK")
            return False
        # statement by statement: executescript() would commit the open transaction first.
        # The script is our own DDL, with no ';' inside a literal.
        for statement in _MIGRATION.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return True
