"""Temporal pagination (ETSI GS CIM 009 v1.8, clause 6.3.10): at most :data:`INSTANCE_LIMIT`
instances (or aggregation periods) per attribute, then ``206 Partial Content`` with
``Content-Range: date-time <range-start>-<range-end>/<size>``.

Without ``lastN`` pages go forward in time: the response is complete from range-start (``timeAt``
for ``after`` / ``between``, else the first instance returned) up to range-end, the last instance
of the attribute that hit the limit first; later instances of the other attributes are left out so
that no attribute has a gap, and the next page is ``timerel=after&timeAt=<range-end>``.  With
``lastN`` pages go backward: range-start is the latest time (``timeAt`` for ``before``,
``endTimeAt`` for ``between``, else the newest instance), range-end the oldest instance kept, and
``size`` is ``lastN`` (``*`` otherwise).  ``lastN`` itself is the caller's limit, not a truncation
by the server: a response that returns all of the ``lastN`` instances is a 200.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cityos.data.ngsild.temporal.query import TemporalQuery
from cityos.data.ngsild.times import from_micros

# The most instances (or aggregation periods) of one attribute in one response.  A documented
# limit (docs/temporal.md); tests lower it through this module attribute.
INSTANCE_LIMIT = 1000


@dataclass
class Item:
    """One instance (or aggregation period) of an attribute at time ``t``."""

    t: int
    payload: Any


@dataclass
class Series:
    """The items of one attribute in ascending time order; ``truncated`` when the server's limit
    left some out."""

    attr: str
    items: list[Item] = field(default_factory=list)
    truncated: bool = False


def instance_cap(tq: TemporalQuery) -> tuple[int, int]:
    """(rows to keep, rows to fetch): fetching one more than the server's limit reveals a cut."""
    limit = INSTANCE_LIMIT
    if tq.last_n is not None and tq.last_n <= limit:
        return tq.last_n, tq.last_n
    return limit, limit + 1


def content_range(entities: list[list[Series]], tq: TemporalQuery) -> str | None:
    """Cut every series to the common complete range and return the ``Content-Range`` value, or
    ``None`` when nothing was truncated."""
    truncated = [s for series in entities for s in series if s.truncated and s.items]
    if not truncated:
        return None
    everything = [s for series in entities for s in series]
    if tq.last_n is None:
        end = min(s.items[-1].t for s in truncated)
        for s in everything:
            s.items = [i for i in s.items if i.t <= end]
        if tq.timerel in ("after", "between") and tq.time_at is not None:
            start = tq.time_at
        else:
            start = min((s.items[0].t for s in everything if s.items), default=end)
        size = "*"
    else:
        end = max(s.items[0].t for s in truncated)
        for s in everything:
            s.items = [i for i in s.items if i.t >= end]
        if tq.timerel == "before" and tq.time_at is not None:
            start = tq.time_at
        elif tq.timerel == "between" and tq.end_time_at is not None:
            start = tq.end_time_at
        else:
            start = max((s.items[-1].t for s in everything if s.items), default=end)
        size = str(tq.last_n)
    return f"date-time {from_micros(start)}-{from_micros(end)}/{size}"
