"""Temporal aggregation (``options=aggregatedValues``, clause 4.5.19): periods and methods.

The database groups instances into periods and returns raw aggregates (:class:`BucketRow`); the
methods are derived from them here, the same way for both engines:

* ``totalCount``: instances in the period; ``distinctCount``: distinct values among them;
* ``sum``, ``avg``, ``sumsq``: over the values that are JSON numbers (booleans, strings and
  objects are not numbers);
* ``min``, ``max``: over the numbers; for an attribute without numbers in the period, over its
  string values (so date-times and names still have a first and a last);
* ``stddev``: the sample standard deviation of the numbers (n - 1 in the denominator), 0 for one
  number.

Numeric results are always JSON floats on both engines (SQLite would sum integers as integers).

A method without an answer for a period (``avg`` of strings) is ``null`` there.
"""

from __future__ import annotations

import math
from typing import Any

from cityos.core.problems import BadRequestData
from cityos.data.ngsild.store.temporal_base import BucketRow, Buckets
from cityos.data.ngsild.temporal.durations import Duration, DurationError

# more periods than this in one request is refused (400) rather than computed
MAX_CALENDAR_PERIODS = 10_000


def plan_buckets(period: Duration | None, origin: int, end: int) -> Buckets:
    """Buckets from ``origin``; calendar durations get explicit bounds up to ``end``."""
    if period is None:
        return Buckets(origin=origin)
    if period.months == 0:
        return Buckets(origin=origin, period=period.micros)
    bounds: list[tuple[int, int]] = []
    start = origin
    try:
        while start <= end:
            if len(bounds) >= MAX_CALENDAR_PERIODS:
                raise BadRequestData(f"aggrPeriodDuration {period.text} cuts the time range into "
                                     f"more than {MAX_CALENDAR_PERIODS} periods")
            stop = period.add_to(start)
            bounds.append((start, stop))
            start = stop
    except DurationError as exc:
        raise BadRequestData(f"aggrPeriodDuration: {exc}") from None
    return Buckets(origin=origin, bounds=tuple(bounds))


def bucket_span(buckets: Buckets, row: BucketRow, whole_end: int) -> tuple[int, int]:
    """(start, end) of the period a row belongs to."""
    if buckets.bounds is not None:
        return buckets.bounds[row.bucket]
    if buckets.period is not None:
        start = buckets.origin + row.bucket * buckets.period
        return start, start + buckets.period
    return buckets.origin, whole_end


def method_value(method: str, row: BucketRow) -> Any:
    """One aggregation method's value for a period."""
    if method == "totalCount":
        return row.count
    if method == "distinctCount":
        return row.distinct
    numbers = row.numbers
    if method in ("min", "max"):
        if numbers:
            value = row.min_number if method == "min" else row.max_number
            return None if value is None else float(value)
        return row.min_text if method == "min" else row.max_text
    if not numbers:
        return None
    total = float(row.total or 0.0)
    if method == "sum":
        return total
    if method == "avg":
        return total / numbers
    if method == "sumsq":
        return float(row.total_sq or 0.0)
    if method == "stddev":
        if numbers < 2:
            return 0.0
        variance = (float(row.total_sq or 0.0) - total * total / numbers) / (numbers - 1)
        return math.sqrt(max(variance, 0.0))
    raise ValueError(method)  # pragma: no cover - methods are validated by query.py

