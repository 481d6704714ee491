"""Tables for what writes cause: temporal history, the outbox and small documents (ADR 0006).

Times are integer epoch microseconds on both engines (see ``times.py``).  On PostgreSQL the
history is append-mostly and ordered by insertion time, which is what BRIN indexes are made for:
a BRIN index on ``created_at`` costs a few pages for years of data and lets time-range scans and
retention deletes skip everything outside the range; the B-tree on (tenant, entity, attribute,
time) serves per-entity reads.  SQLite keys its history by a small integer series id instead of
those three texts (``history_series``, see the comment above ``SQLITE_HISTORY_TABLES``): its
indexes were most of what a history insert cost.

``attr_history.num`` is a stored generated column: the instance's value when it is a JSON number
(else NULL).  Temporal aggregation sums and compares it directly; decoding 100,000 JSON documents
per request would cost more than the whole aggregation budget.
"""

from __future__ import annotations

from dataclasses import dataclass

from cityos.data.ngsild.store.base import TemporalEntityRow


@dataclass
class TemporalEntityIfMissing(TemporalEntityRow):
    """A temporal entity record to insert only when the entity has none (never an update).

    A plain attribute update does not change the record (types, scope, createdAt, deletedAt;
    the temporal API reads a live entity's modifiedAt from the entity itself), so rewriting it on
    every update only cost throughput: as much database time as the history rows themselves.
    The record is still inserted when it is missing, for an entity written before history was
    switched on, whose history would otherwise be invisible.
    """


def split_records(records: list[TemporalEntityRow]) -> list[tuple[list[TemporalEntityRow], bool]]:
    """(records, insert only when missing): the records to upsert, then the others (if any)."""
    missing: list[TemporalEntityRow] = [e for e in records
                                        if isinstance(e, TemporalEntityIfMissing)]
    upsert = [e for e in records if not isinstance(e, TemporalEntityIfMissing)]
    return [(part, flag) for part, flag in ((upsert, False), (missing, True)) if part]

# SQLite's history is keyed by a series: one row of ``history_series`` per (tenant, entity,
# attribute), and ``attr_history`` rows carry its small integer ``sid`` instead of the three texts.
# Both history indexes are led by ``sid``: every read, instance edit (the API names entity and
# attribute with the instance id) and retention purge starts at one series.  With the texts as
# the key each index entry repeated the full entity id and attribute IRI: a history insert cost
# 88 µs per update against 39 µs with ``sid`` keys (20 updates per commit, 120k rows).  An index
# on instance_id or on time alone cost 3-8 % of update throughput and served no query.  Writers
# find the sid through the store's cache (``sqlite_series.py``), readers through the UNIQUE
# index of ``history_series``.  ``num`` stays a generated column: computing it in Python at insert
# time measured no cheaper (within the noise of ~17 µs per row) and could be forgotten by a writer.
#
# New rows go to ``history_pending`` (no index but ``sid``) and move to ``attr_history`` a series
# at a time, once it has ``MOVE_AT`` rows waiting, inside the write that completes the batch
# (``sqlite_series.py``).  Once every series owns whole index pages, a row inserted straight into
# attr_history lands on its series' last page in the middle of each sid-led B-tree: every row
# dirtied its own pages in both indexes, page splits there rewrote their neighbours too, and each
# group commit wrote all of them to the WAL and the checkpoint again.  Measured (2,000 series, 60
# rows per commit, 300k-450k rows): 6.4 WAL frames and 140 µs of insert plus checkpoint per row,
# growing with the table; with the rows moved 16 at a time 0.43 frames and 12 µs, flat.  Readers
# ask both tables (``sqlite_temporal._both``); ``num`` is VIRTUAL there, computed when read.
# one definition for both history tables: reads join them with UNION ALL column by column
_HISTORY_TABLE = """CREATE TABLE IF NOT EXISTS {name} (
    rid INTEGER PRIMARY KEY, sid INTEGER NOT NULL,
    dataset_id TEXT NOT NULL, instance_id TEXT NOT NULL, observed_at INTEGER,
    created_at INTEGER NOT NULL, modified_at INTEGER NOT NULL, deleted INTEGER NOT NULL,
    doc TEXT NOT NULL,
    num REAL GENERATED ALWAYS AS (CASE WHEN json_type(doc, '$.value') IN ('integer', 'real')
        THEN json_extract(doc, '$.value') END) {num}
);"""
SQLITE_HISTORY_TABLES = f"""
CREATE TABLE IF NOT EXISTS temporal_entities (
    tenant TEXT NOT NULL, id TEXT NOT NULL, types TEXT NOT NULL, scope TEXT,
    created_at INTEGER NOT NULL, modified_at INTEGER NOT NULL, deleted_at INTEGER,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history_series (
    sid INTEGER PRIMARY KEY, tenant TEXT NOT NULL, entity_id TEXT NOT NULL, attr TEXT NOT NULL,
    UNIQUE (tenant, entity_id, attr)
);
{_HISTORY_TABLE.format(name="attr_history", num="STORED")}
{_HISTORY_TABLE.format(name="history_pending", num="VIRTUAL")}
CREATE INDEX IF NOT EXISTS history_pending_sid ON history_pending (sid);
"""
# attr_history_obs_cover carries what aggregation reads (deleted, dataset_id, num), so numbers are
# aggregated without visiting the table
SQLITE_HISTORY_INDEXES = """
CREATE INDEX IF NOT EXISTS attr_history_created ON attr_history (sid, created_at);
CREATE INDEX IF NOT EXISTS attr_history_obs_cover ON attr_history
    (sid, coalesce(observed_at, created_at), deleted, dataset_id, num);
"""
SQLITE_SCHEMA = SQLITE_HISTORY_TABLES + SQLITE_HISTORY_INDEXES + """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, tenant TEXT NOT NULL, kind TEXT NOT NULL,
    body TEXT NOT NULL, created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS documents (
    kind TEXT NOT NULL, tenant TEXT NOT NULL, id TEXT NOT NULL, doc TEXT NOT NULL,
    seq INTEGER NOT NULL, PRIMARY KEY (kind, tenant, id)
);
-- every insert takes max(seq) + 1: without this index that read the whole table (946 µs per
-- document among 20,000 fan-out sets and counters, 3.4 µs with it), inside update transactions
CREATE INDEX IF NOT EXISTS documents_seq ON documents (seq);
"""

_HISTORY_COLUMNS = "sid, dataset_id, instance_id, observed_at, created_at, modified_at, deleted, doc"
# followed by one "(?, ?, ?, ?, ?, ?, ?, ?)" per row (sqlite_series.insert_history)
SQLITE_HISTORY_INSERT = f"INSERT INTO history_pending ({_HISTORY_COLUMNS}) VALUES "
# series' pending rows, oldest first, into the indexed table (fresh rids, in the same order);
# both followed by the "(?, ...)" list of sids
SQLITE_HISTORY_MOVE = (
    f"INSERT INTO attr_history ({_HISTORY_COLUMNS}) SELECT {_HISTORY_COLUMNS} "
    "FROM history_pending WHERE sid IN {} ORDER BY rid")
SQLITE_PENDING_DROP = "DELETE FROM history_pending WHERE sid IN {}"
SQLITE_TEMPORAL_ENTITY_UPSERT = (
    "INSERT INTO temporal_entities VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, id) DO UPDATE "
    "SET types = excluded.types, scope = excluded.scope, modified_at = excluded.modified_at, "
    "deleted_at = excluded.deleted_at")
SQLITE_TEMPORAL_ENTITY_INSERT_MISSING = (
    "INSERT INTO temporal_entities VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, id) DO NOTHING")
SQLITE_OUTBOX_INSERT = "INSERT INTO outbox (id, tenant, kind, body, created_at) VALUES (?, ?, ?, ?, ?)"

POSTGRES_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS temporal_entities (
        tenant text NOT NULL, id text NOT NULL, types text[] NOT NULL, scope text[],
        created_at bigint NOT NULL, modified_at bigint NOT NULL, deleted_at bigint,
        PRIMARY KEY (tenant, id))""",
    """CREATE TABLE IF NOT EXISTS attr_history (
        rid bigserial PRIMARY KEY, tenant text NOT NULL, entity_id text NOT NULL,
        attr text NOT NULL, dataset_id text NOT NULL, instance_id text NOT NULL,
        observed_at bigint, created_at bigint NOT NULL, modified_at bigint NOT NULL,
        deleted boolean NOT NULL, doc jsonb NOT NULL)""",
    # the numeric value of a Property instance, computed once on insert: temporal aggregation
    # reads it instead of decoding every document (store/temporal_base.number_columns)
    "ALTER TABLE attr_history ADD COLUMN IF NOT EXISTS num float8 GENERATED ALWAYS AS "
    "(CASE WHEN jsonb_typeof(doc -> 'value') = 'number' THEN (doc ->> 'value')::float8 END) STORED",
    # reads order by (time, rid): rid ends the time indexes so that lastN (and the latest
    # instance) is read from the index, not sorted from the whole attribute; SQLite's indexes
    # end with the rowid anyway
    "DROP INDEX IF EXISTS attr_history_created",
    "CREATE INDEX IF NOT EXISTS attr_history_created_rid ON attr_history "
    "(tenant, entity_id, attr, created_at, rid)",
    # every instance lookup also names tenant, entity and attribute, so the index above finds
    # it; a B-tree on random instance ids cost every history row an extra random page write
    # (PostgreSQL's history-on loss was 17 %)
    "DROP INDEX IF EXISTS attr_history_instance",
    "CREATE INDEX IF NOT EXISTS attr_history_brin ON attr_history USING brin (created_at)",
    # the temporal API's default time axis (observedAt, else the recording time): temporal reads,
    # lastN and aggregation walk this index in time order (store/temporal_base.OBSERVED_TIME)
    "DROP INDEX IF EXISTS attr_history_obs_time",
    "CREATE INDEX IF NOT EXISTS attr_history_obs_rid ON attr_history "
    "(tenant, entity_id, attr, coalesce(observed_at, created_at), rid)",
    # nothing reads observed_at alone (observedAt means the coalesce above): one index less to
    # maintain on every write
    "DROP INDEX IF EXISTS attr_history_observed",
    """CREATE TABLE IF NOT EXISTS outbox (
        seq bigserial, id text PRIMARY KEY, tenant text NOT NULL, kind text NOT NULL,
        body jsonb NOT NULL, created_at bigint NOT NULL, owner text NOT NULL,
        lease_until bigint NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS outbox_lease ON outbox (lease_until)",
    """CREATE TABLE IF NOT EXISTS documents (
        kind text NOT NULL, tenant text NOT NULL, id text NOT NULL, doc jsonb NOT NULL,
        seq bigserial, PRIMARY KEY (kind, tenant, id))""",
]
