"""The temporal part of a request (``timerel``, ``timeAt``, ``lastN``, ``aggrMethods`` ...) as one
validated :class:`TemporalQuery`, from URL parameters or a ``temporalQ`` body member.

Time windows are half-open and use integer epoch microseconds (``times.py``):

* ``before``  -> ``t < timeAt``
* ``after``   -> ``t > timeAt``  (so ``after`` + the end of a ``Content-Range`` continues a page)
* ``between`` -> ``timeAt <= t < endTimeAt`` (adjacent windows neither overlap nor leave gaps)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cityos.core.problems import BadRequestData
from cityos.data.ngsild.queryparams import split_list
from cityos.data.ngsild.store.temporal_base import Window
from cityos.data.ngsild.temporal.durations import Duration, DurationError, parse_duration
from cityos.data.ngsild.times import to_micros

TIMERELS = ("before", "after", "between")
# the instance time each timeproperty means; observedAt falls back to the recording time (docs)
TIME_PROPERTIES = ("observedAt", "createdAt", "modifiedAt", "deletedAt")
AGGR_METHODS = ("totalCount", "distinctCount", "sum", "avg", "min", "max", "stddev", "sumsq")
NORMALIZED, TEMPORAL_VALUES, AGGREGATED = "normalized", "temporalValues", "aggregatedValues"
_OPTIONS = {"temporalValues", "aggregatedValues", "sysAttrs", "normalized", "simplified",
            "keyValues", "concise"}
_FORMATS = {"normalized": NORMALIZED, "temporalValues": TEMPORAL_VALUES,
            "simplified": TEMPORAL_VALUES, "keyValues": TEMPORAL_VALUES,
            "aggregatedValues": AGGREGATED}
MAX_LAST_N = 1_000_000


@dataclass(frozen=True)
class TemporalQuery:
    """What a temporal read asks for, validated."""

    timerel: str | None = None
    time_at: int | None = None
    end_time_at: int | None = None
    timeproperty: str = "observedAt"
    last_n: int | None = None
    representation: str = NORMALIZED
    sys_attrs: bool = False
    aggr_methods: tuple[str, ...] = ()
    aggr_period: Duration | None = None

    @property
    def window(self) -> Window:
        """The time window ``timerel`` describes."""
        if self.timerel == "before":
            return Window(end=self.time_at)
        if self.timerel == "after":
            return Window(start=self.time_at, start_inclusive=False)
        if self.timerel == "between":
            return Window(start=self.time_at, end=self.end_time_at)
        return Window()


def parse_temporal_query(params: Mapping[str, Any], *, temporal_q: Mapping[str, Any] | None = None
                         ) -> TemporalQuery:
    """URL parameters (and, for POST query, the body's ``temporalQ``) -> :class:`TemporalQuery`.

    ``temporal_q`` members win over URL parameters of the same name.
    """
    source: dict[str, Any] = dict(params)
    if temporal_q is not None:
        if not isinstance(temporal_q, Mapping):
            raise BadRequestData("temporalQ must be a JSON object")
        unknown = set(temporal_q) - {"timerel", "timeAt", "endTimeAt", "timeproperty", "lastN"}
        if unknown:
            raise BadRequestData(f"temporalQ has unknown members {sorted(unknown)}")
        source.update({k: str(v) if k == "lastN" else v for k, v in temporal_q.items()})
    timerel, time_at, end_time_at = _time_relation(source)
    timeproperty = source.get("timeproperty", "observedAt")
    if timeproperty not in TIME_PROPERTIES:
        raise BadRequestData(f"timeproperty must be one of {', '.join(TIME_PROPERTIES)}, "
                             f"got {str(timeproperty)[:40]!r}")
    last_n = _last_n(source.get("lastN"))
    representation, sys_attrs = _representation(source)
    methods, period = _aggregation(source, representation)
    if timeproperty == "deletedAt" and representation == AGGREGATED:
        raise BadRequestData("timeproperty=deletedAt selects deletions, which have no values to "
                             "aggregate")
    return TemporalQuery(timerel=timerel, time_at=time_at, end_time_at=end_time_at,
                         timeproperty=timeproperty, last_n=last_n, representation=representation,
                         sys_attrs=sys_attrs, aggr_methods=methods, aggr_period=period)


def _time(value: Any, name: str) -> int:
    if not isinstance(value, str) or not value.strip():
        raise BadRequestData(f"{name} must be an ISO 8601 date-time such as 2026-11-25T09:00:00+09:00")
    if "T" not in value.upper():
        raise BadRequestData(f"{name} must be a date-time with a time part, got {value[:40]!r}")
    try:
        return to_micros(value.strip())
    except BadRequestData:
        raise BadRequestData(f"{name} is not an ISO 8601 date-time: {value[:40]!r}") from None


def _time_relation(source: Mapping[str, Any]) -> tuple[str | None, int | None, int | None]:
    timerel = source.get("timerel")
    if timerel is None:
        if "timeAt" in source or "endTimeAt" in source:
            raise BadRequestData("timeAt and endTimeAt need timerel (before, after or between)")
        return None, None, None
    if timerel not in TIMERELS:
        raise BadRequestData(f"timerel must be before, after or between, got {str(timerel)[:40]!r}")
    if "timeAt" not in source:
        raise BadRequestData(f"timerel={timerel} needs timeAt")
    time_at = _time(source["timeAt"], "timeAt")
    if timerel != "between":
        if "endTimeAt" in source:
            raise BadRequestData("endTimeAt is only allowed with timerel=between")
        return timerel, time_at, None
    if "endTimeAt" not in source:
        raise BadRequestData("timerel=between needs endTimeAt")
    end_time_at = _time(source["endTimeAt"], "endTimeAt")
    if end_time_at <= time_at:
        raise BadRequestData("endTimeAt must be later than timeAt")
    return timerel, time_at, end_time_at


def _last_n(raw: Any) -> int | None:
    if raw is None:
        return None
    text = str(raw)
    if not text.isdigit() or int(text) < 1:
        raise BadRequestData(f"lastN must be a positive integer, got {text[:20]!r}")
    return min(int(text), MAX_LAST_N)


def _representation(source: Mapping[str, Any]) -> tuple[str, bool]:
    options = split_list(source.get("options"))
    for option in options:
        if option not in _OPTIONS:
            raise BadRequestData(f"unknown option {option[:40]!r}; use temporalValues, "
                                 "aggregatedValues or sysAttrs")
    chosen = {_FORMATS[o] for o in options if o in _FORMATS}
    fmt = source.get("format")
    if fmt is not None:
        if fmt not in _FORMATS:
            raise BadRequestData(f"unknown format {str(fmt)[:40]!r}; use normalized, "
                                 "temporalValues or aggregatedValues")
        chosen = {_FORMATS[fmt]}
    if len(chosen) > 1:
        raise BadRequestData("options name more than one temporal representation")
    return (chosen.pop() if chosen else NORMALIZED), "sysAttrs" in options


def _aggregation(source: Mapping[str, Any], representation: str
                 ) -> tuple[tuple[str, ...], Duration | None]:
    raw_methods = source.get("aggrMethods")
    raw_period = source.get("aggrPeriodDuration")
    if representation != AGGREGATED:
        # format wins over options (clause 6.3.12): aggregation parameters that came with an
        # options=aggregatedValues the format overrode are moot, not an error (ETSI 021_19_02)
        overridden = AGGREGATED in split_list(source.get("options"))
        if (raw_methods is not None or raw_period is not None) and not overridden:
            raise BadRequestData("aggrMethods and aggrPeriodDuration need "
                                 "options=aggregatedValues")
        return (), None
    methods = split_list(raw_methods)
    if not methods:
        raise BadRequestData("options=aggregatedValues needs aggrMethods, e.g. "
                             "aggrMethods=avg,max")
    for method in methods:
        if method not in AGGR_METHODS:
            raise BadRequestData(f"unknown aggrMethod {method[:40]!r}; use "
                                 f"{', '.join(AGGR_METHODS)}")
    period = None
    if raw_period is not None:
        try:
            period = parse_duration(str(raw_period))
        except DurationError as exc:
            raise BadRequestData(f"aggrPeriodDuration: {exc}") from None
        if period.is_zero:
            period = None  # P0D: one period over the whole time range (clause 4.5.19)
    return tuple(dict.fromkeys(methods)), period
