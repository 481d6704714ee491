"""Date-times as the history stores them: integer microseconds since the Unix epoch, UTC.

ISO strings of different precision ("...00.5Z", "...00.500000Z") do not sort as text, and the two
engines would compare them differently; integers sort and compare the same everywhere.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from cityos.core.problems import BadRequestData

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(text: str) -> int:
    """Microseconds since the epoch of an ISO 8601 date-time (any offset; naive means UTC)."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except (ValueError, AttributeError):
        raise BadRequestData(f"not an ISO 8601 date-time: {str(text)[:64]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


# the last whole second formatted: the times of one burst of writes, and the instances of one
# temporal answer, mostly share their second, and strftime cost ~4 µs a call (a few per cent
# of the SQLite writer's time with a subscription matching every update)
_last_second: tuple[int, str] = (0, "1970-01-01T00:00:00")


def from_micros(micros: int) -> str:
    """The broker's own date-time form (UTC, microseconds, ``Z``) of an epoch-microseconds value."""
    global _last_second
    seconds, fraction = divmod(micros, 1_000_000)
    last = _last_second                 # one read: another thread may replace it meanwhile
    if last[0] != seconds:
        last = _last_second = (
            seconds, (EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S"))
    return f"{last[1]}.{fraction:06d}Z"


def now_micros() -> int:
    """The current time in epoch microseconds (the clock ``datetime.now`` reads, truncated)."""
    return time.time_ns() // 1000


def utc_now() -> str:
    """The current time as the broker writes system attributes (UTC, microseconds, ``Z``)."""
    return from_micros(now_micros())
