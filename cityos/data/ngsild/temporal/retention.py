"""History retention (DM-DY-1 keeps history; the personal-information rules of REQUIREMENTS §4 ask
that data no longer needed is deleted): ``CITYOS_HISTORY_RETENTION``.

The setting is a comma-separated list of ``type=duration`` rules, e.g.
``WeatherObserved=P30D,ParkingSpot=P1Y,*=P5Y``; ``*`` covers every other type, and without it
types that no rule names are kept forever.  A rule's type is an expanded IRI or a short name
that matches the last segment of the IRI (``WeatherObserved`` matches
``https://smartdatamodels.org/dataModel.Weather/WeatherObserved``).  An entity with several types
keeps its history as long as the longest of its rules says.  Instances are purged by the time they
were recorded (``created_at``), which is what the PostgreSQL BRIN index covers.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from cityos.data.ngsild.temporal.durations import Duration, DurationError, parse_duration
from cityos.data.ngsild.times import now_micros

log = logging.getLogger(__name__)
ANY_TYPE = "*"


@dataclass(frozen=True)
class RetentionRules:
    """Parsed ``history_retention``: how long each type's history is kept."""

    by_type: dict[str, Duration] = field(default_factory=dict)
    default: Duration | None = None

    def __bool__(self) -> bool:
        return bool(self.by_type) or self.default is not None

    def cutoff(self, types: list[str], now: int) -> int | None:
        """The time before which an entity with ``types`` loses its history (None: never)."""
        cutoffs = [d.subtract_from(now) for name, d in self.by_type.items()
                   if any(_type_matches(name, t) for t in types)]
        if not cutoffs and self.default is not None:
            cutoffs = [self.default.subtract_from(now)]
        return min(cutoffs) if cutoffs else None


def _type_matches(rule: str, type_iri: str) -> bool:
    return type_iri == rule or type_iri.endswith(("/" + rule, "#" + rule))


def parse_retention(text: str) -> RetentionRules:
    """``'WeatherObserved=P30D,*=P5Y'`` -> :class:`RetentionRules`; ValueError naming the bad part."""
    by_type: dict[str, Duration] = {}
    default: Duration | None = None
    for part in (p.strip() for p in (text or "").split(",")):
        if not part:
            continue
        name, sep, raw = (s.strip() for s in part.partition("="))
        if not sep or not name or not raw:
            raise ValueError(f"history_retention: {part!r} is not 'Type=duration' "
                             "(e.g. 'WeatherObserved=P30D,*=P5Y')")
        try:
            duration = parse_duration(raw)
        except DurationError as exc:
            raise ValueError(f"history_retention: {name}: {exc}") from None
        if duration.is_zero:
            raise ValueError(f"history_retention: {name}: a retention of {raw} would keep nothing")
        if name == ANY_TYPE:
            if default is not None:
                raise ValueError("history_retention: '*' is given twice")
            default = duration
        else:
            if name in by_type:
                raise ValueError(f"history_retention: {name} is given twice")
            by_type[name] = duration
    return RetentionRules(by_type, default)


async def purge_history(store: Any, rules: RetentionRules, now: int) -> int:
    """Delete every history instance older than its entity's retention; how many were deleted.

    ``store`` is an entity store with the temporal methods (``TemporalStore``).
    """
    if not rules:
        return 0
    groups: dict[tuple[str, int], list[str]] = defaultdict(list)
    for tenant, entity_id, types in await store.temporal_types():
        cutoff = rules.cutoff(types, now)
        if cutoff is not None:
            groups[(tenant, cutoff)].append(entity_id)
    removed = 0
    for (tenant, cutoff), ids in groups.items():
        removed += int(await store.purge_history_before(tenant, ids, cutoff))
    return removed


async def retention_loop(store: Any, settings: Any, interval: float = 3600) -> None:
    """Purge now and then every ``interval`` seconds, until cancelled (run from the app lifespan).

    A bad setting raises ValueError at once, so the app refuses to start rather than keep data
    it was told to delete.
    """
    rules = parse_retention(settings.history_retention)
    if not rules:
        return
    while True:
        try:
            removed = await purge_history(store, rules, now_micros())
            if removed:
                log.info("history retention: %d instances purged", removed)
        except asyncio.CancelledError:
            raise
        except Exception:          # a failing purge must not stop the next one
            log.exception("history retention: purge failed")
        await asyncio.sleep(interval)
