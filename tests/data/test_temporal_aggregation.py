"""Temporal aggregation (``options=aggregatedValues``) on both engines; every expected value is
computed here from the inputs, independently of the broker."""

from __future__ import annotations

import math
import statistics
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

TEMPORAL = "/ngsi-ld/v1/temporal/entities"
COUNTER = "urn:ngsi-ld:PeopleCounter:takamatsu-station"
START = datetime(2026, 11, 25, 0, 0, tzinfo=UTC)
# (minutes after START, waiting people): three hours of an AI camera's counts (RS-5)
COUNTS = [(0, 12), (10, 15), (25, 15), (59, 30), (60, 8), (61, 9.5), (119, 40), (150, 22),
          (175, 1), (179, 7)]
METHODS = ("totalCount", "distinctCount", "sum", "avg", "min", "max", "stddev", "sumsq")


def iso(moment: datetime, offset_hours: int = 0) -> str:
    """``moment`` written with a local offset (``+09:00`` for Japan)."""
    return moment.astimezone(timezone(timedelta(hours=offset_hours))).isoformat()


def z(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def seed(client: httpx.AsyncClient) -> None:
    waiting = [{"type": "Property", "value": v,
                "observedAt": iso(START + timedelta(minutes=m), 9)} for m, v in COUNTS]
    status = [{"type": "Property", "value": s,
               "observedAt": iso(START + timedelta(minutes=m), 9)}
              for m, s in [(5, "混雑"), (70, "空き"), (80, "混雑"), (130, "普通")]]
    body = {"id": COUNTER, "type": "PeopleCounter", "waiting": waiting, "status": status}
    response = await client.post(TEMPORAL, json=body)
    assert response.status_code == 201, response.text


def expected(method: str, values: list[float]) -> Any:
    if method == "totalCount":
        return len(values)
    if method == "distinctCount":
        return len(set(values))
    if method == "sum":
        return sum(values)
    if method == "avg":
        return statistics.fmean(values)
    if method == "min":
        return min(values)
    if method == "max":
        return max(values)
    if method == "stddev":
        return statistics.stdev(values) if len(values) > 1 else 0.0
    return sum(v * v for v in values)


def close(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


async def aggregate(client: httpx.AsyncClient, **params: str) -> dict[str, Any]:
    response = await client.get(f"{TEMPORAL}/{COUNTER}",
                                params={"options": "aggregatedValues", **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_every_method_per_hour(client: httpx.AsyncClient) -> None:
    await seed(client)
    body = await aggregate(client, aggrMethods=",".join(METHODS), aggrPeriodDuration="PT1H",
                           timerel="between", timeAt=iso(START, 9),
                           endTimeAt=iso(START + timedelta(hours=3), 9), attrs="waiting")
    waiting = body["waiting"]
    assert waiting["type"] == "Property"
    for method in METHODS:
        want = []
        for hour in range(3):
            values = [float(v) for m, v in COUNTS if hour * 60 <= m < (hour + 1) * 60]
            want.append([expected(method, values), z(START + timedelta(hours=hour)),
                         z(START + timedelta(hours=hour + 1))])
        got = waiting[method]
        assert [g[1:] for g in got] == [w[1:] for w in want], method
        assert all(close(g[0], w[0]) for g, w in zip(got, want, strict=True)), (method, got, want)


async def test_one_period_over_the_whole_range(client: httpx.AsyncClient) -> None:
    await seed(client)
    body = await aggregate(client, aggrMethods="avg,max,totalCount", attrs="waiting")
    values = [float(v) for _m, v in COUNTS]
    first, last = START, START + timedelta(minutes=COUNTS[-1][0])
    assert body["waiting"]["avg"] == [[pytest.approx(statistics.fmean(values)), z(first), z(last)]]
    assert body["waiting"]["max"] == [[max(values), z(first), z(last)]]
    assert body["waiting"]["totalCount"] == [[len(values), z(first), z(last)]]
    zero = await aggregate(client, aggrMethods="avg", attrs="waiting", aggrPeriodDuration="P0D")
    assert zero["waiting"]["avg"] == body["waiting"]["avg"]


async def test_periods_start_at_the_first_instance_without_time_at(
        client: httpx.AsyncClient) -> None:
    await seed(client)
    body = await aggregate(client, aggrMethods="totalCount", aggrPeriodDuration="PT90M",
                           attrs="waiting")
    counts = [sum(1 for m, _v in COUNTS if k * 90 <= m < (k + 1) * 90) for k in range(2)]
    assert [p[0] for p in body["waiting"]["totalCount"]] == counts
    assert body["waiting"]["totalCount"][1][1] == z(START + timedelta(minutes=90))


async def test_strings_have_counts_and_min_max_but_no_average(client: httpx.AsyncClient) -> None:
    await seed(client)
    body = await aggregate(client, aggrMethods="totalCount,distinctCount,min,max,avg,sum",
                           attrs="status", aggrPeriodDuration="PT2H", timerel="after",
                           timeAt=iso(START - timedelta(minutes=1), 9))
    words = {0: ["混雑", "空き", "混雑"], 1: ["普通"]}
    status = body["status"]
    assert [p[0] for p in status["totalCount"]] == [len(words[0]), len(words[1])]
    assert [p[0] for p in status["distinctCount"]] == [len(set(words[0])), 1]
    assert [p[0] for p in status["min"]] == [min(words[0]), "普通"]
    assert [p[0] for p in status["max"]] == [max(words[0]), "普通"]
    assert [p[0] for p in status["avg"]] == [None, None]
    assert [p[0] for p in status["sum"]] == [None, None]


async def test_calendar_month_periods(client: httpx.AsyncClient) -> None:
    days = [datetime(2026, 1, 31, tzinfo=UTC), datetime(2026, 2, 27, tzinfo=UTC),
            datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 30, tzinfo=UTC)]
    body = {"id": COUNTER, "type": "PeopleCounter",
            "waiting": [{"type": "Property", "value": i, "observedAt": z(d)}
                        for i, d in enumerate(days)]}
    assert (await client.post(TEMPORAL, json=body)).status_code == 201
    got = await aggregate(client, aggrMethods="sum", aggrPeriodDuration="P1M", timerel="after",
                          timeAt="2026-01-01T00:00:00Z")
    # January, February, March: calendar months of 31, 28 and 31 days
    assert got["waiting"]["sum"] == [
        [0.0, "2026-01-01T00:00:00.000000Z", "2026-02-01T00:00:00.000000Z"],
        [1.0, "2026-02-01T00:00:00.000000Z", "2026-03-01T00:00:00.000000Z"],
        [5.0, "2026-03-01T00:00:00.000000Z", "2026-04-01T00:00:00.000000Z"]]


async def test_aggregated_query_over_entities(client: httpx.AsyncClient) -> None:
    await seed(client)
    response = await client.get(TEMPORAL, params={
        "type": "PeopleCounter", "options": "aggregatedValues", "aggrMethods": "max",
        "aggrPeriodDuration": "P1D", "attrs": "waiting"})
    assert response.status_code == 200, response.text
    [entity] = response.json()
    assert entity["waiting"]["max"][0][0] == max(v for _m, v in COUNTS)
