"""History retention: the ``history_retention`` parser and the purge, on both engines."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from cityos.data.ngsild.temporal.durations import parse_duration
from cityos.data.ngsild.temporal.retention import parse_retention, purge_history, retention_loop
from cityos.data.ngsild.times import now_micros, to_micros

DAY = 86_400_000_000
TEMPORAL = "/ngsi-ld/v1/temporal/entities"


# -- the parser --------------------------------------------------------------------------------
def test_parse_rules_and_cutoffs() -> None:
    rules = parse_retention(" WeatherObserved=P30D, ParkingSpot=P1Y , *=P5Y ")
    assert set(rules.by_type) == {"WeatherObserved", "ParkingSpot"}
    now = to_micros("2026-03-31T00:00:00Z")
    weather = "https://smartdatamodels.org/dataModel.Weather/WeatherObserved"
    assert rules.cutoff([weather], now) == now - 30 * DAY
    assert rules.cutoff(["https://example.org/Road"], now) == to_micros("2021-03-31T00:00:00Z")
    # several types: the longest retention wins
    assert rules.cutoff([weather, "urn:x#ParkingSpot"], now) == to_micros("2025-03-31T00:00:00Z")
    assert not parse_retention("")
    assert parse_retention("Road=P1D").cutoff(["urn:x:Bridge"], now) is None


@pytest.mark.parametrize("text", ["WeatherObserved", "=P1D", "Road=", "Road=30 days",
                                  "Road=P1D,Road=P2D", "*=P1D,*=P2D", "Road=PT0S", "Road=P"])
def test_bad_settings_name_the_problem(text: str) -> None:
    with pytest.raises(ValueError, match="history_retention"):
        parse_retention(text)


def test_durations() -> None:
    assert parse_duration("PT1H").micros == 3_600_000_000
    assert parse_duration("P1W").micros == 7 * DAY
    assert parse_duration("PT0.5S").micros == 500_000
    month = parse_duration("P1M")
    jan31 = to_micros("2026-01-31T12:00:00Z")
    assert month.add_to(jan31) == to_micros("2026-02-28T12:00:00Z")
    assert parse_duration("P1Y").subtract_from(to_micros("2028-02-29T00:00:00Z")) == \
        to_micros("2027-02-28T00:00:00Z")


# -- the purge, on both engines ----------------------------------------------------------------
def reading(value: float) -> dict[str, Any]:
    return {"type": "Property", "value": value, "observedAt": "2026-11-25T09:00:00+09:00"}


async def test_purge_deletes_old_history_per_type(client: httpx.AsyncClient, app: Any) -> None:
    for entity_id, kind in [("urn:ngsi-ld:WeatherObserved:1", "WeatherObserved"),
                            ("urn:ngsi-ld:ParkingSpot:1", "ParkingSpot")]:
        body = {"id": entity_id, "type": kind, "level": [reading(1), reading(2)]}
        assert (await client.post(TEMPORAL, json=body)).status_code == 201
    # an entity created and deleted through the ordinary API: its record goes with its history
    gone = {"id": "urn:ngsi-ld:WeatherObserved:2", "type": "WeatherObserved", "level": 3}
    assert (await client.post("/ngsi-ld/v1/entities", json=gone)).status_code == 201
    assert (await client.delete(f"/ngsi-ld/v1/entities/{gone['id']}")).status_code == 204
    store = app.state.broker.store
    rules = parse_retention("WeatherObserved=P30D,*=P5Y")
    assert await purge_history(store, rules, now_micros()) == 0       # nothing is old yet
    later = now_micros() + 31 * DAY
    assert await purge_history(store, rules, later) == 4     # 2 + the created and deleted row
    weather = await client.get(f"{TEMPORAL}/urn:ngsi-ld:WeatherObserved:1")
    assert weather.status_code == 200 and "level" not in weather.json()
    assert (await client.get(f"{TEMPORAL}/{gone['id']}")).status_code == 404
    parking = (await client.get(f"{TEMPORAL}/urn:ngsi-ld:ParkingSpot:1")).json()
    assert [i["value"] for i in parking["level"]] == [1, 2]


async def test_retention_loop_purges_then_waits(app: Any, client: httpx.AsyncClient) -> None:
    body = {"id": "urn:ngsi-ld:WeatherObserved:1", "type": "WeatherObserved",
            "level": [reading(1)]}
    assert (await client.post(TEMPORAL, json=body)).status_code == 201
    settings = SimpleNamespace(history_retention="WeatherObserved=PT0.000001S")
    await asyncio.sleep(0.01)
    task = asyncio.create_task(retention_loop(app.state.broker.store, settings, interval=3600))
    for _ in range(100):
        await asyncio.sleep(0.02)
        left = (await client.get(f"{TEMPORAL}/urn:ngsi-ld:WeatherObserved:1")).json()
        if "level" not in left:
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert "level" not in left


async def test_retention_loop_refuses_a_bad_setting(app: Any) -> None:
    with pytest.raises(ValueError, match="history_retention"):
        await retention_loop(app.state.broker.store, SimpleNamespace(history_retention="x=y"))
