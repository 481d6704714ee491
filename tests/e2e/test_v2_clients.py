"""Orion applications against a real ``cityos serve``: issue #6's "works against CityOS unchanged".

1. ``tests/e2e/v2client/orion_app.js`` — an application on Wirecloud's unmodified ``ngsijs``
   (npm, a JavaScript NGSI v2 client written for Orion) — creates, queries, pages, reads, updates,
   batches, lists types and subscribes; we assert on what the *library* reported, check that its
   subscription's notification reached a real HTTP receiver with Orion's headers, and cross-check
   the same data through the NGSI-LD API.
2. FIWARE's "Getting Started" (steps 1-9) and "CRUD Operations" (steps 1-23) tutorials for
   Orion (NGSI-v2 branch), replayed as the raw HTTP requests their curl commands send, compared
   with the responses the tutorials document (``v2_tutorial.py``, ``v2_tutorial_crud.py``).

Both run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import _empty_postgres
from tests.e2e.server import running_server
from tests.e2e.v2_support import HeaderReceiver, header_receiver, run_orion_app
from tests.e2e.v2_tutorial import GETTING_STARTED, Step
from tests.e2e.v2_tutorial_crud import CRUD


@pytest.fixture
def receiver() -> Iterator[HeaderReceiver]:
    with header_receiver() as r:
        yield r


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[str]:
    if database_url == "sqlite://":
        url = f"sqlite:///{tmp_path / 'e2e.db'}"
    else:  # the tutorial uses the default tenant: start from an empty shared database
        asyncio.run(_empty_postgres(database_url))
        url = database_url
    with running_server(url, env={"CITYOS_NOTIFICATION_ALLOW": "127.0.0.1"}) as base:
        yield base


def _room(n: int, name: str, temperature: float, lat: float, accuracy: float,
          ref: bool = True) -> dict[str, Any]:
    """Room ``n`` as NGSI v2 returns it in normalized form (Orion writes ``metadata: {}``)."""
    room: dict[str, Any] = {
        "id": f"Room{n}", "type": "Room",
        "name": {"type": "Text", "value": name, "metadata": {}},
        "temperature": {"type": "Number", "value": temperature, "metadata": {
            "accuracy": {"type": "Number", "value": accuracy},
            "unitCode": {"type": "Text", "value": "CEL"}}},
        "location": {"type": "geo:point", "value": f"{lat}, 135.195", "metadata": {}},
    }
    if ref:
        room["refBuilding"] = {"type": "Relationship", "value": "Building7", "metadata": {}}
    return room


def test_ngsijs_orion_application(server: str, receiver: HeaderReceiver) -> None:
    service = f"orionapp_{uuid.uuid4().hex[:8]}"
    out = run_orion_app("run", server, receiver.url, service)

    assert out["version"]["orion"]["version"].startswith("3.")
    assert out["createdKeyValues"] == "/v2/entities/Sensor1?type=Sensor"
    assert out["duplicateCreate"] == "AlreadyExists"       # 422 Unprocessable, as Orion
    assert out["missing"] == "NotFound"
    # ngsijs 1.4.1 predates Orion's 422 for append-strict conflicts: any error class proves refusal
    assert out["appendExisting"] == "InvalidResponse"

    rooms = [f"Room{n}" for n in range(1, 12)]
    assert out["paged"] == {"ids": sorted(rooms), "count": 11}   # 3 pages of 4, Fiware-Total-Count
    assert out["warm"] == [{"id": f"Room{n}", "type": "Room", "temperature": t}
                           for n, t in [(11, 26), (10, 25), (9, 24), (1, 23.5), (8, 23)]]
    assert out["accurate"] == 5                        # mq: the even rooms have accuracy 0.2
    assert out["near"] == ["Room1", "Room2", "Room3", "Room4"]    # nearest first, within 5 km
    assert (out["otherPath"], out["subtree"]) == (0, 11)          # Fiware-ServicePath scoping

    assert out["room1"] == _room(1, "神戸 会議室 1", 23.5, 34.69, 0.8)
    assert out["room1KeyValues"] == {"id": "Room1", "type": "Room", "name": "神戸 会議室 1",
                                     "temperature": 23.5, "location": "34.69, 135.195",
                                     "refBuilding": "Building7"}
    assert {k: v["type"] for k, v in out["sensorAttrs"].items()} == {
        "battery": "Number", "label": "Text", "enabled": "Boolean", "address": "StructuredValue"}
    assert out["temperature"] == out["room1"]["temperature"]
    assert out["address"] == {"city": "Kobe", "ward": "Chuo"}

    assert out["room1Changed"] == {"id": "Room1", "type": "Room", "name": "大会議室",
                                   "temperature": 30.5, "location": "34.69, 135.195",
                                   "occupancy": 12}
    assert out["sensorReplaced"] == {"id": "Sensor1", "type": "Sensor", "battery": 50,
                                     "label": "地下"}
    assert out["batchHot"] == {"count": 3, "results": [
        {"id": "Room1", "type": "Room", "temperature": 30.5},
        {"id": "Room2", "type": "Room", "temperature": 40},
        {"id": "Room3", "type": "Room", "temperature": 41}]}
    assert out["types"] == {"count": 2, "names": ["Room", "Sensor"]}
    assert out["roomType"]["count"] == 10
    assert out["roomType"]["attrs"]["occupancy"] == {"types": ["Integer"]}
    assert out["subscriptions"] == 1
    assert out["afterDelete"] == 9

    _check_notification(server, receiver, service, out["subscriptionId"])
    _check_through_ngsild(server, service)


def _check_notification(server: str, receiver: HeaderReceiver, service: str, sub_id: str) -> None:
    """Room5 (38.5) matched ``temperature>35``; Room4 (20) did not: one notification, Orion-shaped."""
    seen = receiver.wait_for(lambda notes: len(notes) >= 1)
    assert len(seen) >= 1, "the subscription's notification never arrived"
    first = seen[0]
    assert first.method == "POST"
    assert first.body == {"subscriptionId": sub_id, "data": [
        {"id": "Room5", "type": "Room", "temperature": 38.5, "name": "神戸 会議室 5"}]}
    assert first.headers["fiware-service"] == service
    assert first.headers["fiware-servicepath"] == "/Hyogo/Kobe"
    assert first.headers["ngsiv2-attrsformat"] == "keyValues"

    # the counters are written after the receiver answered: wait for them, then let ngsijs read
    headers, deadline = {"Fiware-Service": service}, time.monotonic() + 15
    while time.monotonic() < deadline:
        sub = httpx.get(f"{server}/v2/subscriptions/{sub_id}", headers=headers).json()
        if sub["notification"].get("lastSuccessCode") == 204:
            break
        time.sleep(0.05)   # nothing to await: the server updates its counters on its own
    status = run_orion_app("subscription", server, sub_id, service)
    subscription = status["subscription"]
    assert subscription["status"] == "active"
    assert subscription["description"] == "暑い部屋 / hot rooms"
    assert subscription["subject"]["condition"]["attrs"] == ["temperature"]
    assert subscription["notification"]["timesSent"] == 1
    assert subscription["notification"]["lastSuccessCode"] == 204
    assert subscription["notification"]["attrsFormat"] == "keyValues"
    assert status["afterDelete"] == "NotFound"
    assert len(receiver.received) == 1


def _check_through_ngsild(server: str, service: str) -> None:
    """The same data, read through the NGSI-LD face of the same tenant."""
    with httpx.Client(base_url=f"{server}/ngsi-ld/v1", headers={"NGSILD-Tenant": service}) as ld:
        room = ld.get("/entities/urn:ngsi-v2:Room1").json()
        assert room["scope"] == "/Hyogo/Kobe"
        assert room["name"]["value"] == "大会議室"
        assert room["temperature"]["value"] == 30.5
        assert room["temperature"]["unitCode"] == "CEL"           # metadata kept, as Orion does
        assert room["location"]["value"] == {"type": "Point", "coordinates": [135.195, 34.69]}
        assert room["occupancy"]["value"] == 12
        assert "refBuilding" not in room
        sensor = ld.get("/entities/urn:ngsi-v2:Sensor1", params={"options": "keyValues"}).json()
        assert (sensor["battery"], sensor["label"]) == (50, "地下")
        assert "address" not in sensor
        counted = ld.get("/entities", params={"type": "Room", "count": "true", "limit": "0"})
        assert counted.headers["NGSILD-Results-Count"] == "9"
        assert ld.get("/entities/urn:ngsi-v2:Room10").status_code == 404
        assert ld.get("/entities/urn:ngsi-v2:Room11").status_code == 404
        assert ld.get("/entities/urn:ngsi-v2:Room5").json()["temperature"]["value"] == 38.5


def test_fiware_getting_started_tutorial_replayed(server: str) -> None:
    _replay(server, GETTING_STARTED)


def test_fiware_crud_operations_tutorial_replayed(server: str) -> None:
    _replay(server, CRUD)


def _replay(server: str, steps: list[Step]) -> None:
    """Send each step's request unchanged; compare status, named headers and the documented body."""
    for step in steps:
        answer = httpx.request(step.method, server + step.target, headers=step.headers,
                               content=step.body.encode() if step.body else None)
        assert answer.status_code == step.status, (step.name, answer.text)
        for name, value in step.response_headers.items():
            assert answer.headers.get(name) == value, (step.name, name, answer.headers)
        if step.response is not None:
            assert answer.json() == step.response, step.name
        if step.check is not None:
            step.check(answer.json())
