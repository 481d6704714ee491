"""Temporal pagination (clause 6.3.10): 206 Partial Content with ``Content-Range: date-time``
when the server's per-attribute instance limit truncates, on both engines.  The limit is lowered
to 3 here so that a few instances exercise it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from cityos.data.ngsild.temporal import pagination

TEMPORAL = "/ngsi-ld/v1/temporal/entities"
CAR = "urn:ngsi-ld:Vehicle:kobe-bus-7"
LIMIT = 3


@pytest.fixture
async def client(app: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    """The test client with the instance limit lowered to LIMIT."""
    monkeypatch.setattr(pagination, "INSTANCE_LIMIT", LIMIT)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://cityos.test") as client:
        yield client


def at(minute: int) -> str:
    return f"2026-11-25T09:{minute:02d}:00+09:00"


def utc(minute: int) -> str:
    return f"2026-11-25T00:{minute:02d}:00.000000Z"


async def seed(client: httpx.AsyncClient) -> None:
    """speed every minute 0..5, fuelLevel at minutes 1 and 4 (unsynchronised attributes)."""
    body = {"id": CAR, "type": "Vehicle",
            "speed": [{"type": "Property", "value": 30 + m, "observedAt": at(m)} for m in range(6)],
            "fuelLevel": [{"type": "Property", "value": 0.9 - m / 10, "observedAt": at(m)}
                          for m in (1, 4)]}
    response = await client.post(TEMPORAL, json=body)
    assert response.status_code == 201, response.text


def minutes(body: dict[str, Any], attr: str) -> list[int]:
    return [int(i["observedAt"][14:16]) for i in body[attr]]


async def test_forward_pages_cut_every_attribute_at_the_same_time(
        client: httpx.AsyncClient) -> None:
    await seed(client)
    first = await client.get(f"{TEMPORAL}/{CAR}")
    assert first.status_code == 206, first.text
    assert first.headers["content-range"] == f"date-time {utc(0)}-{utc(2)}/*"
    body = first.json()
    assert minutes(body, "speed") == [0, 1, 2]
    assert minutes(body, "fuelLevel") == [1]        # minute 4 waits for the next page
    second = await client.get(f"{TEMPORAL}/{CAR}",
                               params={"timerel": "after", "timeAt": utc(2)})
    # the rest fits in one page: complete, so 200 without Content-Range
    assert second.status_code == 200 and "content-range" not in second.headers
    assert minutes(second.json(), "speed") == [3, 4, 5]
    assert minutes(second.json(), "fuelLevel") == [4]


async def test_backward_pages_with_last_n(client: httpx.AsyncClient) -> None:
    await seed(client)
    response = await client.get(f"{TEMPORAL}/{CAR}", params={"lastN": "10"})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"date-time {utc(5)}-{utc(3)}/10"
    assert minutes(response.json(), "speed") == [3, 4, 5]
    assert minutes(response.json(), "fuelLevel") == [4]
    before = await client.get(f"{TEMPORAL}/{CAR}", params={
        "lastN": "10", "timerel": "before", "timeAt": utc(4)})
    assert before.headers["content-range"] == f"date-time {utc(4)}-{utc(1)}/10"
    assert minutes(before.json(), "speed") == [1, 2, 3]
    assert minutes(before.json(), "fuelLevel") == [1]


async def test_last_n_within_the_limit_is_complete(client: httpx.AsyncClient) -> None:
    await seed(client)
    response = await client.get(f"{TEMPORAL}/{CAR}", params={"lastN": "2"})
    assert response.status_code == 200 and "content-range" not in response.headers
    assert minutes(response.json(), "speed") == [4, 5]


async def test_between_starts_the_range_at_time_at(client: httpx.AsyncClient) -> None:
    await seed(client)
    response = await client.get(f"{TEMPORAL}/{CAR}", params={
        "timerel": "between", "timeAt": at(1), "endTimeAt": at(50), "attrs": "speed"})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"date-time {utc(1)}-{utc(3)}/*"


async def test_temporal_values_are_cut_the_same_way(client: httpx.AsyncClient) -> None:
    await seed(client)
    response = await client.get(f"{TEMPORAL}/{CAR}", params={"options": "temporalValues"})
    assert response.status_code == 206
    assert [v[1] for v in response.json()["speed"]["values"]] == [utc(0), utc(1), utc(2)]


async def test_query_pages_share_one_range(client: httpx.AsyncClient) -> None:
    await seed(client)
    other = {"id": "urn:ngsi-ld:Vehicle:kobe-bus-8", "type": "Vehicle",
             "speed": [{"type": "Property", "value": 1, "observedAt": at(m)} for m in (1, 2)]}
    assert (await client.post(TEMPORAL, json=other)).status_code == 201
    response = await client.get(TEMPORAL, params={"type": "Vehicle", "attrs": "speed"})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"date-time {utc(0)}-{utc(2)}/*"
    assert [minutes(e, "speed") for e in response.json()] == [[0, 1, 2], [1, 2]]


async def test_aggregation_periods_count_against_the_limit(client: httpx.AsyncClient) -> None:
    await seed(client)
    response = await client.get(f"{TEMPORAL}/{CAR}", params={
        "options": "aggregatedValues", "aggrMethods": "totalCount", "aggrPeriodDuration": "PT1M",
        "attrs": "speed"})
    assert response.status_code == 206
    assert [p[0] for p in response.json()["speed"]["totalCount"]] == [1, 1, 1]
    assert response.headers["content-range"] == f"date-time {utc(0)}-{utc(2)}/*"
