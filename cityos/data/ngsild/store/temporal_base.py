"""The storage contract of the temporal API (``/temporal/entities``), both engines.

The history itself (``attr_history``, ``temporal_entities``, see ``history_schema.py``) is appended
by every entity write; these methods read it, add instances through the temporal API, edit or
delete them, aggregate them in SQL and purge old ones (retention).

Instance time ``t`` depends on ``timeproperty``: ``createdAt`` and ``modifiedAt`` are the history
columns of the same name; ``observedAt`` is the instance's ``observedAt`` or, when it has none, the
time it was recorded (:data:`OBSERVED_TIME`).  Both engines index exactly that expression.
``deletedAt`` reads the other rows: those a deletion appended (``deleted``), whose ``created_at``
is the time of the deletion.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cityos.data.ngsild.store.base import HistoryRow, TemporalEntityRow
from cityos.data.ngsild.times import to_micros

# the SQL expression of each timeproperty, identical on both engines (an index matches it verbatim)
OBSERVED_TIME = "coalesce(observed_at, created_at)"
TIME_COLUMN = {"observedAt": OBSERVED_TIME, "createdAt": "created_at", "modifiedAt": "modified_at",
               "deletedAt": "created_at"}
DELETED_AT = "deletedAt"     # the timeproperty that selects deletion rows instead of live ones


def qualified_time(timeproperty: str, alias: str) -> str:
    """The time expression with its columns qualified by a table alias (for joins)."""
    return {"observedAt": f"coalesce({alias}.observed_at, {alias}.created_at)",
            "createdAt": f"{alias}.created_at", "modifiedAt": f"{alias}.modified_at",
            "deletedAt": f"{alias}.created_at"}[timeproperty]


# the member of an instance that carries its value, whatever its attribute type (model.VALUE_KEY)
VALUE_MEMBERS = ("value", "object", "languageMap", "vocab", "valueList", "objectList", "json")


@dataclass(frozen=True)
class Window:
    """A half-open time window in epoch microseconds (``None`` = unbounded on that side)."""

    start: int | None = None
    start_inclusive: bool = True
    end: int | None = None

    def contains(self, t: int) -> bool:
        """Whether an instance at ``t`` lies in the window (the engines' SQL says the same)."""
        if self.start is not None and (t < self.start or
                                       (t == self.start and not self.start_inclusive)):
            return False
        return self.end is None or t < self.end


@dataclass
class TemporalEntityRecord:
    """One row of ``temporal_entities``."""

    id: str
    types: list[str]
    scope: list[str] | None
    created_at: int
    modified_at: int
    deleted_at: int | None


def entity_columns(modified_at_of_doc: str) -> str:
    """The columns a :class:`TemporalEntityRecord` is read from (``temporal_entities e``).

    The last one is the live entity's ``modifiedAt`` (ISO text, ``modified_at_of_doc`` reads it
    from ``x.doc``): entity writes rewrite the record only when what it holds changes (creation,
    types, scope, deletion), so a live entity's modifiedAt is the entity's own, one index lookup
    in ``entities`` per record read instead of an upsert per update.
    """
    return ("e.id, e.types, e.scope, e.created_at, e.modified_at, e.deleted_at, "
            f"(SELECT {modified_at_of_doc} FROM entities x WHERE e.deleted_at IS NULL AND "
            "x.tenant = e.tenant AND x.id = e.id)")


def live_modified_at(recorded: int, live: str | None) -> int:
    """The temporal entity's modifiedAt: the later of the record's and the live entity's."""
    return max(recorded, to_micros(live)) if live else recorded


@dataclass
class InstanceRow:
    """One attribute instance of the history, with its time ``t`` for the requested timeproperty."""

    attr: str
    dataset_id: str
    instance_id: str
    observed_at: int | None
    created_at: int
    modified_at: int
    t: int
    doc: dict[str, Any]


@dataclass(frozen=True)
class Buckets:
    """How aggregation periods are cut.

    ``period`` (microseconds): bucket ``i`` is ``[origin + i*period, origin + (i+1)*period)``;
    ``bounds``: explicit ``(start, end)`` pairs for calendar durations (months, years);
    neither: one bucket over the whole window.
    """

    origin: int
    period: int | None = None
    bounds: tuple[tuple[int, int], ...] | None = None


@dataclass
class BucketRow:
    """SQL's raw aggregates of one (datasetId, period); the API derives the methods from them."""

    dataset_id: str
    bucket: int
    count: int
    distinct: int | None          # None: not asked for
    numbers: int | None           # how many values were JSON numbers
    total: float | None           # sum of the numbers
    total_sq: float | None        # sum of their squares
    min_number: float | None
    max_number: float | None
    min_text: str | None          # over string values, for min / max of non-numeric attributes
    max_text: str | None


# Aggregation runs in two phases, both over the time index and never over the JSON document
# unless an attribute has values that are not numbers:
#   1. numbers: counts, sums, min / max and distinct numbers from the ``num`` column, which the
#      time index carries, so the range scan never visits the table (SQLite; PostgreSQL once
#      vacuum marked the pages all-visible);
#   2. other values (strings, booleans, objects): distinct values and string min / max, only for
#      the periods phase 1 found to hold such values (``needs_other``).
# A period is aggregated as one index range (``period_ranges``): no sort of the whole attribute
# by (datasetId, period), which cost more than the scan itself.  Beyond LOOP_LIMIT periods
# (fine periods over long ranges) one GROUP BY over the computed period number is cheaper.
LOOP_LIMIT = 2000


def number_columns(methods: frozenset[str]) -> str:
    """Phase 1 aggregates, in :class:`BucketRow` order from ``count``; NULL when not needed."""
    return ", ".join([
        "count(*)",
        "count(DISTINCT h.num)" if "distinctCount" in methods else "NULL",
        "count(h.num)",
        "sum(h.num)" if methods & {"sum", "avg", "stddev"} else "NULL",
        "sum(h.num * h.num)" if methods & {"sumsq", "stddev"} else "NULL",
        "min(h.num)" if "min" in methods else "NULL",
        "max(h.num)" if "max" in methods else "NULL",
    ])


def other_columns(any_value: str, text_value: str) -> str:
    """Phase 2 aggregates over the instances whose value is not a number (``num IS NULL``)."""
    return f"count(DISTINCT {any_value}), min({text_value}), max({text_value})"


def needs_other(methods: frozenset[str], row: BucketRow) -> bool:
    """Whether a period needs phase 2: distinct non-numbers, or string min / max."""
    if "distinctCount" in methods and (row.numbers or 0) < row.count:
        return True
    return bool(methods & {"min", "max"}) and not row.numbers


def period_ranges(buckets: Buckets, first: int, last: int) -> list[tuple[int, int, int]] | None:
    """(period number, lo, hi) of the periods between instance times ``first`` and ``last``.

    Each range is clamped to ``[first, last]``: every instance of the window lies there, so the
    per-period queries need no other time condition.  None: more than LOOP_LIMIT fixed periods.
    """
    if buckets.bounds is not None:
        starts = [b[0] for b in buckets.bounds]
        k0, k1 = bisect_right(starts, first) - 1, bisect_right(starts, last) - 1
        spans = [(k, *buckets.bounds[k]) for k in range(max(k0, 0), k1 + 1)]
    elif buckets.period is not None:
        p, origin = buckets.period, buckets.origin
        k0, k1 = (first - origin) // p, (last - origin) // p
        if k1 - k0 >= LOOP_LIMIT:
            return None
        spans = [(k, origin + k * p, origin + (k + 1) * p) for k in range(k0, k1 + 1)]
    else:
        spans = [(0, first, last + 1)]
    return [(k, max(lo, first), min(hi, last + 1)) for k, lo, hi in spans]


def number_row(dataset_id: str, bucket: int, r: Sequence[Any]) -> BucketRow:
    """A phase 1 result ``r`` (the :func:`number_columns`, from ``count``) as a BucketRow."""
    return BucketRow(dataset_id=dataset_id, bucket=bucket, count=r[0], distinct=r[1],
                     numbers=r[2], total=r[3], total_sq=r[4], min_number=r[5], max_number=r[6],
                     min_text=None, max_text=None)


def add_other(row: BucketRow, r: Sequence[Any]) -> None:
    """Merge a phase 2 result (the :func:`other_columns`) into its period's row."""
    if row.distinct is not None:
        row.distinct += r[0]
    row.min_text, row.max_text = r[1], r[2]


class TemporalStore(Protocol):
    """What the temporal API needs from an entity store (mixed into both engines)."""

    async def temporal_write(self, tenant: str, entity: TemporalEntityRow,
                             rows: list[HistoryRow]) -> bool:
        """Upsert the temporal entity (types merged) and append ``rows``; True if it was new."""

    async def temporal_entity(self, tenant: str, entity_id: str) -> TemporalEntityRecord | None:
        """The temporal entity record, or ``None``."""

    async def temporal_entity_page(self, tenant: str, ids: tuple[str, ...] | None,
                                   types: tuple[str, ...] | None, after_id: str | None,
                                   limit: int) -> list[TemporalEntityRecord]:
        """Temporal entities in id order after ``after_id``, with one of ``ids`` / ``types``."""

    async def temporal_attributes(self, tenant: str, entity_id: str) -> list[str]:
        """The expanded names of every attribute with history, sorted."""

    async def temporal_instances(self, tenant: str, entity_id: str, attr: str, timeproperty: str,
                                 window: Window, newest_first: bool, limit: int,
                                 datasets: frozenset[str] | None = None) -> list[InstanceRow]:
        """Up to ``limit`` live (not deleted) instances in the window, ordered by ``t``.

        ``datasets``: only instances of these datasetIds (``""`` = the default instance).
        """

    async def temporal_instance(self, tenant: str, entity_id: str, attr: str,
                                instance_id: str) -> InstanceRow | None:
        """One live instance by its id (``t`` is its observedAt-or-recording time)."""

    async def temporal_bounds(self, tenant: str, entity_id: str, attr: str, timeproperty: str,
                              window: Window) -> tuple[int, int] | None:
        """The first and last ``t`` of the attribute's instances in the window."""

    async def temporal_aggregate(self, tenant: str, entity_id: str, attr: str, timeproperty: str,
                                 window: Window, span: tuple[int, int], buckets: Buckets,
                                 methods: frozenset[str]) -> list[BucketRow]:
        """Aggregates per (datasetId, period) for ``methods``, computed by the database.

        ``span`` is (first, last) instance time in the window (:meth:`temporal_bounds`).
        """

    async def temporal_delete(self, tenant: str, entity_id: str) -> bool:
        """Forget the temporal entity and all its history; False when there was none."""

    async def temporal_delete_attribute(self, tenant: str, entity_id: str, attr: str,
                                        dataset_id: str | None) -> int:
        """Delete the attribute's instances (of one datasetId, '' = default; None = all)."""

    async def temporal_patch_instance(self, tenant: str, entity_id: str, attr: str,
                                      instance_id: str, doc: dict[str, Any],
                                      observed_at: int | None, modified_at: int) -> bool:
        """Replace one instance's content; False when it does not exist."""

    async def temporal_delete_instance(self, tenant: str, entity_id: str, attr: str,
                                       instance_id: str) -> bool:
        """Delete one instance; False when it does not exist."""

    async def temporal_types(self) -> list[tuple[str, str, list[str]]]:
        """(tenant, entity id, types) of every temporal entity (retention decides per type)."""

    async def purge_history_before(self, tenant: str, entity_ids: list[str], cutoff: int) -> int:
        """Delete the history of ``entity_ids`` recorded before ``cutoff``; how many rows."""
