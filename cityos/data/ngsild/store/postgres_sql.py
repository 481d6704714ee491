"""The SQL of the PostgreSQL engine: schema, query pushdown and the batched write statement.

Kept apart from :mod:`cityos.data.ngsild.store.postgres` (which owns connections, transactions and
error handling) so that what is pushed down to SQL can be read, and tested, in one place.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from typing import Any

from cityos.data.ngsild.model import Entity
from cityos.data.ngsild.store.base import QueryPlan
from cityos.data.ngsild.store.geoindex import Box, geo_boxes
from cityos.data.ngsild.store.history_schema import POSTGRES_SCHEMA as HISTORY_SCHEMA
from cityos.data.ngsild.store.qindex import (
    Cond,
    Either,
    IndexRow,
    Pushdown,
    index_rows,
    selective_seqs,
)

# pg_advisory_xact_lock(int, int) key of the schema DDL; the one-bigint key space used for entity
# locks is separate from the two-int one (PostgreSQL documents that they never overlap).
DDL_LOCK = (0x43495459, 0x4F530001)  # "CITY", "OS" 1

SCHEMA = [
    *HISTORY_SCHEMA,
    """CREATE TABLE IF NOT EXISTS entities (
        seq bigserial PRIMARY KEY,
        tenant text NOT NULL,
        id text NOT NULL,
        types text[] NOT NULL,
        doc jsonb NOT NULL,
        UNIQUE (tenant, id)
    )""",
    "CREATE INDEX IF NOT EXISTS entities_types ON entities USING gin (types)",
    # Pages in insertion order: seq first, the tenant checked inside the index.  Not (tenant, seq):
    # when a tenant has grown since the last ANALYZE, the planner believes it nearly empty and
    # would probe ids through (tenant, seq) instead of the (tenant, id) key, scanning the whole
    # tenant once per id.  With seq first, only the key can serve an id lookup.
    "CREATE INDEX IF NOT EXISTS entities_seq_tenant ON entities (seq, tenant)",
    """CREATE TABLE IF NOT EXISTS entity_geo (
        seq bigint NOT NULL REFERENCES entities (seq) ON DELETE CASCADE,
        tenant text NOT NULL,
        attr text NOT NULL,
        minx double precision NOT NULL,
        miny double precision NOT NULL,
        maxx double precision NOT NULL,
        maxy double precision NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS entity_geo_seq ON entity_geo (seq)",
    # The q attribute value index (qindex.py): rows (attr, kind, num, txt) of every entity.  The
    # value indexes carry seq (and kind) so that probes are index-only scans that stop after
    # SELECTIVE + 1 rows; numbers have their own partial index, and the "cannot judge" rows
    # (kind x, which pass every condition) a small one of their own.  The text index is not
    # partial: its (tenant, attr) prefix serves conditions on no value at all (exists).
    """CREATE TABLE IF NOT EXISTS attr_index (
        seq bigint NOT NULL REFERENCES entities (seq) ON DELETE CASCADE,
        tenant text NOT NULL,
        attr text NOT NULL,
        kind text NOT NULL,
        num double precision,
        txt text
    )""",
    "CREATE INDEX IF NOT EXISTS attr_index_num ON attr_index (tenant, attr, num) INCLUDE (seq) "
    "WHERE kind IN ('n', 'b')",
    "CREATE INDEX IF NOT EXISTS attr_index_txt ON attr_index (tenant, attr, txt) INCLUDE (kind, seq)",
    "CREATE INDEX IF NOT EXISTS attr_index_x ON attr_index (tenant, attr) INCLUDE (seq) "
    "WHERE kind = 'x'",
    "CREATE INDEX IF NOT EXISTS attr_index_seq ON attr_index (seq)",
    "CREATE TABLE IF NOT EXISTS tenants (name text PRIMARY KEY)",
    """CREATE TABLE IF NOT EXISTS jsonld_contexts (
        tenant text NOT NULL,
        id text NOT NULL,
        url text NOT NULL,
        kind text NOT NULL,
        document jsonb NOT NULL,
        created_at text NOT NULL,
        PRIMARY KEY (tenant, id)
    )""",
    "CREATE INDEX IF NOT EXISTS jsonld_contexts_url ON jsonld_contexts (url)",
]
RELATIONS = ("entities", "entities_types", "entities_seq_tenant", "entity_geo", "entity_geo_seq",
             "attr_index", "attr_index_num", "attr_index_txt", "attr_index_x", "attr_index_seq",
             "tenants", "jsonld_contexts", "jsonld_contexts_url",
             *re.findall(r"CREATE (?:TABLE|INDEX) IF NOT EXISTS (\w+)", " ".join(HISTORY_SCHEMA)))

# With PostGIS the box of every GeoProperty is also a geometry, derived by PostgreSQL itself so the
# write statement is the same with and without PostGIS; without it a GiST index on the built-in
# box type gives the same && prefilter.
POSTGIS_SCHEMA = [
    "ALTER TABLE entity_geo ADD COLUMN IF NOT EXISTS geom geometry(Geometry, 4326) GENERATED ALWAYS "
    "AS (ST_MakeEnvelope(minx, miny, maxx, maxy, 4326)) STORED",
    "CREATE INDEX IF NOT EXISTS entity_geo_geom ON entity_geo USING gist (geom)",
]
BOX_SCHEMA = [
    "CREATE INDEX IF NOT EXISTS entity_geo_box ON entity_geo "
    "USING gist (box(point(minx, miny), point(maxx, maxy)))",
]

# One round trip tells whether the schema is complete, so a restart takes no DDL lock at all.
SCHEMA_STATE = (
    "SELECT " + " AND ".join(f"to_regclass('{r}') IS NOT NULL" for r in RELATIONS) + " AS ready, "
    "EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
    "AND table_name = 'entity_geo' AND column_name = 'geom') AS has_geom, "
    "EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'postgis') AS can_postgis"
)

PAGE = 500              # rows per keyset page while filtering in Python
ID_LOCKS_MAX = 256      # more new ids than this in one write: lock the tenant instead of each id

# Rows (seq, tenant, attr, kind, num, txt) as column arrays: building the index of an old database.
INDEX_ROWS_INSERT = ("INSERT INTO attr_index (seq, tenant, attr, kind, num, txt) SELECT * FROM "
                     "unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::float8[], "
                     "$6::text[])")

# -- locking -------------------------------------------------------------------------------------

LOCK_SQL = ("SELECT CASE WHEN s THEN pg_advisory_xact_lock_shared(k) ELSE pg_advisory_xact_lock(k) "
            "END FROM unnest($1::bigint[], $2::bool[]) AS u(k, s)")
# One probe of the (tenant, id) key per id (a LATERAL subquery cannot be turned into a scan of the
# whole tenant, whatever the table statistics say), locking rows in the order of the ids given,
# which the caller sorts so that writers always lock in the same order.
SELECT_FOR_UPDATE = ("SELECT k.id, e.seq, e.doc FROM unnest($2::text[]) AS k(id), LATERAL "
                     "(SELECT seq, doc FROM entities WHERE tenant = $1 AND id = k.id FOR UPDATE) e")


def _key(*parts: str) -> int:
    digest = hashlib.blake2b("\x00".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_args(tenant: str, new_ids: list[str]) -> tuple[list[int], list[bool]]:
    """Advisory locks serialising writers that may create ``new_ids`` (absent rows cannot be
    locked with FOR UPDATE).  A shared lock on the tenant, then an exclusive lock per id in key
    order; a very large batch takes the tenant lock exclusively instead, which bounds how many
    locks one transaction holds."""
    tenant_key = _key("tenant", tenant)
    if len(new_ids) > ID_LOCKS_MAX:
        return [tenant_key], [False]
    keys = sorted({_key("entity", tenant, i) for i in new_ids})
    return [tenant_key, *keys], [True] + [False] * len(keys)


# -- writes --------------------------------------------------------------------------------------

_TYPES_OF = "ARRAY(SELECT DISTINCT jsonb_array_elements_text(u.d->'type'))"


# What the side tables hold for an entity: attribute index rows and GeoProperty boxes.  Sets:
# jsonb does not keep the order of attributes, and a duplicate row never changes what a probe finds.
IndexKeys = tuple[frozenset[IndexRow], frozenset[tuple[str, Box]]]


def index_keys(entity: Entity) -> IndexKeys:
    """The side-table contents of ``entity``, to tell whether an update changes them."""
    return frozenset(index_rows(entity)), frozenset(geo_boxes(entity))


@dataclass
class Upsert:
    """One statement applying a write set's upserts: inserts, updates, geo rows, the tenant."""

    ctes: list[str]
    args: list[Any]

    @property
    def sql(self) -> str:
        return f"WITH {', '.join(self.ctes)} SELECT 1"


def upsert_statement(tenant: str, upserts: list[Entity], seqs: dict[str, int],
                     register_tenant: bool,
                     indexed: dict[str, IndexKeys] | None = None) -> Upsert:
    """One statement for a write set's upserts: INSERT the entities ``fn`` saw as new (so that a
    concurrent create of the same id fails on the unique key), UPDATE by ``seq`` the ones it saw
    (``seqs``: id -> seq of the locked rows), write their geo and attribute index rows and
    register the tenant.

    ``indexed`` holds :func:`index_keys` of the updated entities as they were before ``fn`` ran:
    an updated entity's geo rows are replaced only when they changed (a new ``status`` leaves
    them alone), and of its attribute index rows only those that changed are deleted and
    inserted (a new ``observedAt`` touches none, a new ``status`` one).  All parts of the
    statement see the same snapshot, so a DELETE of old rows never sees the rows the same
    statement inserts.
    """
    latest: dict[str, Entity] = {}
    for entity in upserts:           # the same id twice: the last version wins, as in SQLite
        latest[entity["id"]] = entity
    new = [e for i, e in latest.items() if i not in seqs]
    old = [e for i, e in latest.items() if i in seqs]
    old_seqs = [seqs[e["id"]] for e in old]
    before = indexed or {}
    geo_seqs: list[int] = []            # updated entities whose geo rows change
    old_geo: list[tuple[int, str, Box]] = []
    attr_seqs: list[int] = []           # updated entities of unknown attribute index rows
    gone_rows: list[tuple[Any, ...]] = []   # attribute index rows of updated entities to delete
    old_rows: list[tuple[Any, ...]] = []    # ... and to insert
    for entity, seq in zip(old, old_seqs, strict=True):
        rows, boxes = index_keys(entity)
        was = before.get(entity["id"])
        if was is None or was[1] != boxes:
            geo_seqs.append(seq)
            old_geo.extend((seq, attr, box) for attr, box in boxes)
        if was is None:
            attr_seqs.append(seq)
            old_rows.extend((seq, *row) for row in rows)
        elif was[0] != rows:            # only the rows that changed (a PATCH of one attribute)
            gone_rows.extend((seq, *row) for row in was[0] - rows)
            old_rows.extend((seq, *row) for row in rows - was[0])
    args: list[Any] = [tenant]
    ctes: list[str] = []
    if register_tenant:
        ctes.append("t AS (INSERT INTO tenants (name) VALUES ($1) ON CONFLICT DO NOTHING)")
    if new:
        args.append(new)
        ctes.append(
            "ins AS (INSERT INTO entities (tenant, id, types, doc) "
            f"SELECT $1, u.d->>'id', {_TYPES_OF}, u.d "
            f"FROM unnest(${len(args)}::jsonb[]) WITH ORDINALITY AS u(d, n) ORDER BY u.n "
            "RETURNING seq, id)")
    if old:
        args.extend([old_seqs, old])
        s, d = len(args) - 1, len(args)
        ctes.append(
            f"upd AS (UPDATE entities e SET doc = u.d, types = {_TYPES_OF} "
            f"FROM unnest(${s}::bigint[], ${d}::jsonb[]) AS u(seq, d) "
            f"WHERE e.seq = ANY(${s}::bigint[]) AND e.seq = u.seq)")
    if geo_seqs:
        args.append(geo_seqs)
        ctes.append(f"gdel AS (DELETE FROM entity_geo WHERE seq = ANY(${len(args)}::bigint[]))")
    if old_geo:
        args.extend(_columns(old_geo))
        cols = _unnest_columns(len(args) - 5, "bigint")
        ctes.append(
            "gold AS (INSERT INTO entity_geo (seq, tenant, attr, minx, miny, maxx, maxy) "
            f"SELECT g.seq, $1, g.attr, g.minx, g.miny, g.maxx, g.maxy FROM unnest({cols}) "
            "AS g(seq, attr, minx, miny, maxx, maxy))")
    new_geo = [(e["id"], attr, box) for e in new for attr, box in geo_boxes(e)]
    if new_geo:
        args.extend(_columns(new_geo))
        cols = _unnest_columns(len(args) - 5, "text")
        ctes.append(
            "gnew AS (INSERT INTO entity_geo (seq, tenant, attr, minx, miny, maxx, maxy) "
            "SELECT ins.seq, $1, g.attr, g.minx, g.miny, g.maxx, g.maxy "
            f"FROM unnest({cols}) AS g(id, attr, minx, miny, maxx, maxy) JOIN ins ON ins.id = g.id)")
    if attr_seqs:
        args.append(attr_seqs)
        ctes.append(f"adel AS (DELETE FROM attr_index WHERE seq = ANY(${len(args)}::bigint[]))")
    if gone_rows:
        args.extend(_row_columns(gone_rows))
        ctes.append(
            "agone AS (DELETE FROM attr_index a USING unnest("
            f"{_index_columns(len(args) - 4, 'bigint')}) AS d(seq, attr, kind, num, txt) "
            "WHERE a.seq = d.seq AND a.attr = d.attr AND a.kind = d.kind "
            "AND a.num IS NOT DISTINCT FROM d.num AND a.txt IS NOT DISTINCT FROM d.txt)")
    if old_rows:
        args.extend(_row_columns(old_rows))
        ctes.append(
            "aold AS (INSERT INTO attr_index (seq, tenant, attr, kind, num, txt) "
            f"SELECT a.seq, $1, a.attr, a.kind, a.num, a.txt FROM unnest("
            f"{_index_columns(len(args) - 4, 'bigint')}) AS a(seq, attr, kind, num, txt))")
    new_rows = [(e["id"], *row) for e in new for row in index_rows(e)]
    if new_rows:
        args.extend(_row_columns(new_rows))
        ctes.append(
            "anew AS (INSERT INTO attr_index (seq, tenant, attr, kind, num, txt) "
            f"SELECT ins.seq, $1, a.attr, a.kind, a.num, a.txt FROM unnest("
            f"{_index_columns(len(args) - 4, 'text')}) AS a(id, attr, kind, num, txt) "
            "JOIN ins ON ins.id = a.id)")
    return Upsert(ctes, args)


def _row_columns(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    """Rows (key, attr, kind, num, txt) as five column arrays for ``unnest``."""
    return [[r[k] for r in rows] for k in range(5)]


def _index_columns(first: int, key_type: str) -> str:
    types = (key_type, "text", "text", "float8", "text")
    return ", ".join(f"${first + k}::{t}[]" for k, t in enumerate(types))


def _columns(rows: list[tuple[Any, str, Box]]) -> list[list[Any]]:
    return [[r[0] for r in rows], [r[1] for r in rows], *([r[2][k] for r in rows] for k in range(4))]


def _unnest_columns(first: int, key_type: str) -> str:
    types = (key_type, "text", "float8", "float8", "float8", "float8")
    return ", ".join(f"${first + k}::{t}[]" for k, t in enumerate(types))


def delete_statement(register_tenant: bool) -> str:
    """DELETE of ids ($2) of one tenant ($1); geo rows follow by ON DELETE CASCADE."""
    prefix = "WITH t AS (INSERT INTO tenants (name) VALUES ($1) ON CONFLICT DO NOTHING) " \
        if register_tenant else ""
    return f"{prefix}DELETE FROM entities WHERE tenant = $1 AND id = ANY($2::text[])"


# -- queries -------------------------------------------------------------------------------------

@dataclass
class Where:
    """The SQL part of a query plan: a WHERE clause over ``entities e`` and its arguments.

    ``exact`` is True when SQL alone decides which entities match, so OFFSET/LIMIT and count(*) can
    run in PostgreSQL; otherwise the rows are candidates and ``plan.python_filter()`` decides.
    """

    clauses: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)
    exact: bool = True

    def arg(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    @property
    def sql(self) -> str:
        return " AND ".join(self.clauses)


def plan_where(plan: QueryPlan, postgis: bool, *, id_regex: bool = True) -> Where:
    """Push down tenant, ids, types and attrs exactly; idPattern and the geo box as prefilters."""
    w = Where()
    w.clauses.append(f"e.tenant = {w.arg(plan.tenant)}")
    if plan.ids:
        w.clauses.append(f"e.id = ANY({w.arg(list(plan.ids))}::text[])")
    if plan.types is not None:
        groups = [f"e.types @> {w.arg(sorted(group))}::text[]" for group in plan.types.alternatives]
        w.clauses.append(f"({' OR '.join(groups)})" if groups else "FALSE")
    if plan.attrs is not None:
        w.clauses.append(f"(e.doc->'attrs') ?| {w.arg(sorted(plan.attrs))}::text[]")
    if plan.id_pattern is not None:
        w.exact = False
        if id_regex and pg_safe_regex(plan.id_pattern):
            w.clauses.append(f"e.id ~ {w.arg(plan.id_pattern)}")
    if plan.geo is not None:
        w.exact = False
        box = plan.geo.bbox()
        if box is not None:
            attr = w.arg(plan.geo.geoproperty)
            x1, y1, x2, y2 = (w.arg(float(v)) for v in box)
            overlap = f"g.geom && ST_MakeEnvelope({x1}, {y1}, {x2}, {y2}, 4326)" if postgis else \
                f"box(point(g.minx, g.miny), point(g.maxx, g.maxy)) && box(point({x1}, {y1}), " \
                f"point({x2}, {y2}))"
            w.clauses.append(f"e.seq IN (SELECT g.seq FROM entity_geo g WHERE g.tenant = $1 "
                             f"AND g.attr = {attr} AND {overlap})")
    if plan.q is not None or plan.scope is not None or plan.selectors is not None or \
            plan.access is not None:   # the caller's access filter (data/ngsild/guarded.py)
        w.exact = False  # the Python filter decides these (selectors: types/ids are a union)
    return w


SELECTIVE = 5000        # a q prefilter matching at most this many entities drives the scan


ProbeKey = tuple[str, str, str, tuple[Any, ...]]    # tenant, attr, condition, its values
X_ROWS = "kind = 'x'"
EXISTS = "1 = 1"        # qindex's condition of ``q=attr``: every row of the attribute passes


def _keys(cond: Cond, tenant: str) -> list[ProbeKey]:
    """The index reads of a condition: its rows, and the ``x`` rows that pass any condition
    (:func:`~cityos.data.ngsild.store.qindex.leaf_sql`, split so that each read has an index)."""
    rows = (tenant, cond.attr, cond.sql, cond.args)
    return [rows] if cond.sql == EXISTS else [rows, (tenant, cond.attr, X_ROWS, ())]


@dataclass
class Probe:
    """One round trip to the attribute value index for a ``q`` pushdown.

    ``sql`` reads each key of ``asked`` with an index (-only) scan that stops at SELECTIVE + 1
    rows, and returns per key an array of at most SELECTIVE seqs, or NULL when there are more.
    (:func:`~cityos.data.ngsild.store.qindex.render_sql` in one statement would compute every
    branch of an INTERSECT in full, and the ``OR kind = 'x'`` of a leaf makes a bitmap scan,
    which reads every match before the LIMIT.)  :meth:`seqs` combines the arrays with
    :func:`~cityos.data.ngsild.store.qindex.selective_seqs`, as the SQLite engine does.
    """

    sql: str
    args: list[Any]
    push: Pushdown
    tenant: str
    asked: list[ProbeKey]

    def seqs(self, arrays: Sequence[list[int] | None]) -> set[int] | None:
        """The candidate seqs, or ``None`` when not selective (``arrays``: one per asked key)."""
        found = dict(zip(self.asked, arrays, strict=True))

        def run(cond: Cond) -> list[int] | None:
            parts = [found.get(key) for key in _keys(cond, self.tenant)]
            return None if None in parts else [seq for part in parts for seq in part or ()]

        return selective_seqs(self.push, run)


def selective_probe(push: Pushdown, tenant: str, skip: Container[ProbeKey] = ()) -> Probe:
    """The :class:`Probe` of a pushdown.  Keys in ``skip`` (known not to be selective) are not
    read, nor those that could only serve a part that cannot be selective without them (the
    other branches of an OR).  Placeholders are numbered from ``$1``, the tenant."""

    def needed(part: Pushdown) -> list[ProbeKey] | None:
        if isinstance(part, Cond):
            keys = _keys(part, tenant)
            return None if any(key in skip for key in keys) else keys
        below = [needed(p) for p in part.parts]
        if isinstance(part, Either) and None in below:
            return None             # an OR with a branch that is not selective is not either
        known = [keys for keys in below if keys is not None]
        return [key for keys in known for key in keys] if known else None

    asked = list(dict.fromkeys(needed(push) or ()))
    args: list[Any] = [tenant]
    columns: list[str] = []
    for _tenant, attr, condition, values in asked:
        args.append(attr)
        slot = len(args)
        args.extend(values)
        # NULL (not selective) rather than SELECTIVE + 1 seqs nobody would use
        columns.append(
            f"(SELECT CASE WHEN count(*) <= {SELECTIVE} THEN coalesce(array_agg(seq), '{{}}') END "
            f"FROM (SELECT seq FROM attr_index WHERE tenant = $1 AND attr = ${slot} "
            f"AND ({numbered(condition, slot + 1)}) LIMIT {SELECTIVE + 1}) AS p)")
    return Probe(f"SELECT {', '.join(columns)}", args, push, tenant, asked)


def numbered(sql: str, first: int = 1) -> str:
    """``?`` placeholders (outside quoted literals) as PostgreSQL's ``$first``, ``$first+1``, ..."""
    out: list[str] = []
    count = first - 1
    quoted = False
    for char in sql:
        if char == "'":
            quoted = not quoted
        elif char == "?" and not quoted:
            count += 1
            out.append(f"${count}")
            continue
        out.append(char)
    return "".join(out)


_QUANTIFIER = re.compile(r"\{\d+(,\d*)?\}")


def pg_safe_regex(pattern: str) -> bool:
    """Whether ``pattern`` means the same to PostgreSQL's ``~`` as to the RE2 search in Python.

    Only a conservative subset qualifies: literals, ``. ^ $ * + ? | ( )``, counted repetition,
    simple bracket sets and the escapes ``\\d \\s \\w`` (and their negations) or an escaped
    punctuation character.  Anything else (``(?...)`` extensions, ``\\b``, back references, POSIX
    classes) stays in Python only, so pushing the pattern down can never drop a match.
    """
    if not pattern or pattern[0] in "*+?{":
        return False
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= n:
                return False
            nxt = pattern[i + 1]
            if not (nxt in "dDsSwW" or (not nxt.isalnum() and nxt.isascii() and nxt != "\n")):
                return False
            i += 2
            continue
        if (c == "(" and pattern.startswith("(?", i)) or c in "}]":
            return False
        if c == "{":
            m = _QUANTIFIER.match(pattern, i)
            if m is None:
                return False
            i = m.end()
            continue
        if c == "[":
            j = i + 1
            if j < n and pattern[j] == "^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                if pattern[j] in "[\\":
                    return False
                j += 1
            if j >= n:
                return False
            i = j + 1
            continue
        i += 1
    return True
