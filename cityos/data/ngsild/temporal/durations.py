"""ISO 8601 durations (``PT1H``, ``P1D``, ``P1M``, ``P1Y2M3DT4H5M6.5S``, ``P2W``) for
``aggrPeriodDuration`` and the history retention setting.

A duration has a calendar part (years and months, whose length depends on where they start) and an
exact part (weeks, days, hours, minutes, seconds, in microseconds).  Days are taken as exactly 24 h:
the broker keeps every time in UTC, where a day has no daylight-saving jumps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cityos.data.ngsild.times import EPOCH

_DURATION = re.compile(
    r"^P(?!$)(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:[.,]\d{1,6})?)S)?)?$")
_SECOND = 1_000_000
MAX_YEARS = 10_000


@dataclass(frozen=True)
class Duration:
    """A parsed ISO 8601 duration: calendar months plus exact microseconds."""

    text: str
    months: int
    micros: int

    @property
    def is_zero(self) -> bool:
        """``P0D`` and the like: the spec's "the whole time range" for aggregation."""
        return self.months == 0 and self.micros == 0

    def add_to(self, moment: int) -> int:
        """``moment`` (epoch microseconds) plus this duration, months first (calendar arithmetic)."""
        if self.months:
            moment = add_months(moment, self.months)
        return moment + self.micros

    def subtract_from(self, moment: int) -> int:
        """``moment`` minus this duration (used for retention cut-offs)."""
        if self.months:
            moment = add_months(moment, -self.months)
        return moment - self.micros


class DurationError(ValueError):
    """Not an ISO 8601 duration this broker understands."""


def parse_duration(text: str) -> Duration:
    """``PnYnMnWnDTnHnMnS`` -> :class:`Duration`; :class:`DurationError` when malformed."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if match is None or text.strip().endswith("T"):
        raise DurationError(f"{str(text)[:40]!r} is not an ISO 8601 duration such as PT1H, P1D "
                            "or P1M")
    part = {k: v for k, v in match.groupdict().items() if v is not None}
    years, months = int(part.get("years", 0)), int(part.get("months", 0))
    if years > MAX_YEARS:
        raise DurationError(f"{text[:40]!r} is longer than {MAX_YEARS} years")
    days = int(part.get("weeks", 0)) * 7 + int(part.get("days", 0))
    seconds = float(part.get("seconds", "0").replace(",", "."))
    micros = (((days * 24 + int(part.get("hours", 0))) * 60 + int(part.get("minutes", 0))) * 60
              ) * _SECOND + round(seconds * _SECOND)
    return Duration(text.strip(), years * 12 + months, micros)


def add_months(moment: int, months: int) -> int:
    """``moment`` plus calendar months; the day is clipped to the month's end (Jan 31 + 1M = Feb 28)."""
    when = EPOCH + timedelta(microseconds=moment)
    index = when.year * 12 + (when.month - 1) + months
    year, month = divmod(index, 12)
    if not 1 <= year <= 9999:
        raise DurationError("the duration leads outside the years 1-9999")
    day = min(when.day, _days_in_month(year, month + 1))
    moved = when.replace(year=year, month=month + 1, day=day)
    delta = moved.astimezone(UTC) - EPOCH
    return (delta.days * 86_400 + delta.seconds) * _SECOND + delta.microseconds


def _days_in_month(year: int, month: int) -> int:
    following = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    return (following - timedelta(days=1)).day
