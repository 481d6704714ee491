"""Temporal aggregation at its edges, on both engines: values of mixed types, several datasetIds
in one period, instances on period and window boundaries, one value, and many fine periods (the
stores switch from one index range per period to a single GROUP BY beyond LOOP_LIMIT periods).

Every expected value is computed here by a plain Python reference, independently of the broker.
"""

from __future__ import annotations

import json
import math
import statistics
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from cityos.data.ngsild.store.temporal_base import LOOP_LIMIT

TEMPORAL = "/ngsi-ld/v1/temporal/entities"
SENSOR = "urn:ngsi-ld:Device:kochi-bridge"
BACKUP = "urn:ngsi-ld:dataset:backup"
START = datetime(2026, 11, 25, 0, 0, tzinfo=UTC)
METHODS = ("totalCount", "distinctCount", "sum", "avg", "min", "max", "stddev", "sumsq")
# (seconds after START, value, datasetId): numbers that are equal as numbers (1, 1.0), a string
# that looks like one ("1"), a boolean, an object; an instance exactly on each period boundary,
# one before the window, one on its (excluded) end; a second datasetId in the first hour only;
# an hour of strings only; a lone number in the backup dataset
READINGS: list[tuple[int, Any, str]] = [
    (-1, 99, ""),
    (0, 1, ""), (10, 1.0, ""), (20, "1", ""), (30, "a", ""), (40, "a", ""), (50, True, ""),
    (60, {"x": 1}, ""), (3599, 2.5, ""),
    (5, 7, BACKUP), (3000, 7.0, BACKUP), (3001, "z", BACKUP),
    (3600, "b", ""), (3700, "c", ""), (7199, "b", ""),
    (3650, 42, BACKUP),
    (7200, 1000, ""),
]
WINDOW = (0, 7200)
# more periods than LOOP_LIMIT between the first and the last instance
FINE_PERIOD = 1
assert (WINDOW[1] - WINDOW[0]) // FINE_PERIOD > LOOP_LIMIT


def z(seconds: int) -> str:
    return (START + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def seed(client: httpx.AsyncClient) -> None:
    instances = []
    for second, value, dataset in READINGS:
        instance: dict[str, Any] = {"type": "Property", "value": value, "observedAt": z(second)}
        if dataset:
            instance["datasetId"] = dataset
        instances.append(instance)
    response = await client.post(TEMPORAL, json={"id": SENSOR, "type": "Device",
                                                 "reading": instances})
    assert response.status_code == 201, response.text


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def method(name: str, values: list[Any]) -> Any:
    numbers = [float(v) for v in values if is_number(v)]
    if name == "totalCount":
        return len(values)
    if name == "distinctCount":   # numbers by value (1 == 1.0), other values by their JSON
        return len({("n", float(v)) if is_number(v) else ("j", json.dumps(v)) for v in values})
    if name in ("min", "max"):
        pool = numbers or [v for v in values if isinstance(v, str)]
        return (min if name == "min" else max)(pool) if pool else None
    if not numbers:
        return None
    if name == "sum":
        return sum(numbers)
    if name == "avg":
        return statistics.fmean(numbers)
    if name == "stddev":
        return statistics.stdev(numbers) if len(numbers) > 1 else 0.0
    return sum(v * v for v in numbers)


def reference(lo: int, hi: int, period: int | None, lo_inclusive: bool = True
              ) -> dict[str, dict[str, list[list[Any]]]]:
    """{datasetId: {method: [[value, start, end], ...]}} for instances in the window."""
    inside = [(s, v, d) for s, v, d in READINGS
              if (s >= lo if lo_inclusive else s > lo) and s < hi]
    periods: dict[tuple[str, int, int], list[Any]] = {}
    for second, value, dataset in inside:
        if period is None:
            span = (lo, max(s for s, _v, _d in inside))
        else:
            k = (second - lo) // period
            span = (lo + k * period, lo + (k + 1) * period)
        periods.setdefault((dataset, *span), []).append(value)
    out: dict[str, dict[str, list[list[Any]]]] = {}
    for (dataset, start, end), values in sorted(periods.items()):
        for name in METHODS:
            out.setdefault(dataset, {}).setdefault(name, []).append(
                [method(name, values), z(start), z(end)])
    return out


def by_dataset(attribute: Any) -> dict[str, dict[str, list[list[Any]]]]:
    groups = attribute if isinstance(attribute, list) else [attribute]
    return {g.get("datasetId", ""): {m: g[m] for m in METHODS} for g in groups}


def same(got: Any, want: Any) -> bool:
    if is_number(got) and is_number(want):
        return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)
    return bool(got == want)


def assert_matches(got: dict[str, dict[str, list[list[Any]]]],
                   want: dict[str, dict[str, list[list[Any]]]]) -> None:
    assert got.keys() == want.keys()
    for dataset, methods in want.items():
        for name, periods in methods.items():
            mine = got[dataset][name]
            assert [p[1:] for p in mine] == [p[1:] for p in periods], (dataset, name)
            assert all(same(g[0], w[0]) for g, w in zip(mine, periods, strict=True)), (
                dataset, name, mine, periods)


async def aggregated(client: httpx.AsyncClient, **params: str) -> Any:
    response = await client.get(f"{TEMPORAL}/{SENSOR}", params={
        "options": "aggregatedValues", "aggrMethods": ",".join(METHODS), **params})
    assert response.status_code == 200, response.text
    return response.json()["reading"]


@pytest.mark.parametrize("period", [3600, 1800, FINE_PERIOD])
async def test_mixed_values_datasets_and_boundaries(client: httpx.AsyncClient,
                                                    period: int) -> None:
    await seed(client)
    got = await aggregated(client, aggrPeriodDuration=f"PT{period}S", timerel="between",
                           timeAt=z(WINDOW[0]), endTimeAt=z(WINDOW[1]))
    assert_matches(by_dataset(got), reference(*WINDOW, period))


async def test_after_excludes_time_at_and_one_period_spans_the_rest(
        client: httpx.AsyncClient) -> None:
    await seed(client)
    got = await aggregated(client, timerel="after", timeAt=z(0))
    want = reference(0, 10**9, None, lo_inclusive=False)
    # one period: from timeAt to the last instance
    for methods in want.values():
        for periods in methods.values():
            periods[0][2] = z(7200)
    assert_matches(by_dataset(got), want)


async def test_calendar_periods_clamped_to_the_window(client: httpx.AsyncClient) -> None:
    await seed(client)
    got = await aggregated(client, aggrPeriodDuration="P1M", timerel="between",
                           timeAt=z(0), endTimeAt=z(3600))
    want = reference(0, 3600, None)
    month = "2026-12-25T00:00:00.000000Z"       # a calendar month after timeAt
    for methods in want.values():
        for periods in methods.values():
            periods[0][2] = month
    assert_matches(by_dataset(got), want)


async def test_created_at_time_axis(client: httpx.AsyncClient) -> None:
    await seed(client)
    got = await aggregated(client, timeproperty="createdAt", aggrPeriodDuration="PT1H")
    counts = by_dataset(got)
    assert sum(p[0] for p in counts[""]["totalCount"]) == sum(1 for r in READINGS if not r[2])
    assert sum(p[0] for p in counts[BACKUP]["totalCount"]) == sum(1 for r in READINGS if r[2])
