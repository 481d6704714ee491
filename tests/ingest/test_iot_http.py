"""IoT agent over HTTP: FIWARE-style provisioning replayed unchanged, then JSON and UltraLight
measures become NGSI-LD attributes (ED-IF-1, ED-DP-1, ED-DT-1) — on both engines."""

from __future__ import annotations

from typing import Any

import httpx

SERVICE = {"fiware-service": "openiot", "fiware-servicepath": "/"}
LD = {"NGSILD-Tenant": "openiot"}


async def provision(client: httpx.AsyncClient) -> None:
    """The FIWARE tutorial's provisioning requests, as curl sends them."""
    r = await client.post("/iot/services", headers=SERVICE, json={"services": [{
        "apikey": "4jggokgpepnvsb2uv4s40d59ov", "cbroker": "http://orion:1026",
        "entity_type": "Thing", "resource": "/iot/d"}]})
    assert r.status_code == 201, r.text
    r = await client.post("/iot/devices", headers=SERVICE, json={"devices": [{
        "device_id": "temperature001", "entity_name": "urn:ngsi-ld:TemperatureSensor:001",
        "entity_type": "TemperatureSensor", "timezone": "Asia/Tokyo",
        "attributes": [{"object_id": "t", "name": "temperature", "type": "Number",
                        "unitCode": "CEL"},
                       {"object_id": "f", "name": "temperature_c", "type": "Number",
                        "sourceUnit": "FAH", "unitCode": "CEL"},
                       {"object_id": "h", "name": "humidity", "type": "Number",
                        "expression": "h * 100"}],
        "static_attributes": [{"name": "category", "type": "Text", "value": "sensor"}]}]})
    assert r.status_code == 201, r.text


async def entity(client: httpx.AsyncClient, entity_id: str) -> dict[str, Any]:
    r = await client.get(f"/ngsi-ld/v1/entities/{entity_id}", headers=LD)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_provisioning_creates_the_entity_and_ultralight_updates_it(
        client: httpx.AsyncClient) -> None:
    await provision(client)
    body = await entity(client, "urn:ngsi-ld:TemperatureSensor:001")
    assert body["category"]["value"] == "sensor"
    r = await client.post("/iot/d?k=4jggokgpepnvsb2uv4s40d59ov&i=temperature001",
                          content=b"2026-11-26T09:00:00+09:00|t|21.5|f|212|h|0.4",
                          headers={"content-type": "text/plain"})
    assert r.status_code == 200, r.text
    body = await entity(client, "urn:ngsi-ld:TemperatureSensor:001")
    assert body["temperature"]["value"] == 21.5
    assert body["temperature"]["unitCode"] == "CEL"
    assert body["temperature"]["observedAt"] == "2026-11-26T00:00:00.000Z"
    assert body["temperature_c"]["value"] == 100
    assert abs(body["humidity"]["value"] - 40) < 1e-9
    assert body["deviceState"]["value"] == "online"


async def test_ultralight_measure_groups_each_become_history(client: httpx.AsyncClient) -> None:
    await provision(client)
    r = await client.post("/iot/d?k=4jggokgpepnvsb2uv4s40d59ov&i=temperature001",
                          content=b"2026-11-26T01:00:00Z|t|1#t|2|TimeInstant|2026-11-26T02:00:00Z")
    assert r.status_code == 200, r.text
    r = await client.get("/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:TemperatureSensor:001",
                         params={"attrs": "temperature"}, headers=LD)
    assert r.status_code == 200, r.text
    values = sorted(i["value"] for i in r.json()["temperature"])
    assert values == [1, 2]


async def test_json_measures_autoprovision_a_device_from_its_group(
        client: httpx.AsyncClient) -> None:
    r = await client.post("/iot/services", headers=SERVICE, json={"services": [{
        "apikey": "jsonkey", "entity_type": "AirQuality", "resource": "/iot/json",
        "attributes": [{"object_id": "no2", "name": "NO2", "type": "Number"}]}]})
    assert r.status_code == 201
    r = await client.post("/iot/json?k=jsonkey&i=aq1", json={
        "no2": "12.5", "note": "良好", "lat": 34.69, "lon": 135.19,
        "TimeInstant": "2026-11-26T18:30:00+09:00"})
    assert r.status_code == 200, r.text
    body = await entity(client, "urn:ngsi-ld:AirQuality:aq1")
    assert body["NO2"]["value"] == 12.5
    assert body["note"]["value"] == "良好"
    assert body["location"]["value"] == {"type": "Point", "coordinates": [135.19, 34.69]}
    assert body["NO2"]["observedAt"] == "2026-11-26T09:30:00.000Z"
    r = await client.get("/iot/devices/aq1", headers=SERVICE)
    assert r.status_code == 200 and r.json()["entity_type"] == "AirQuality"


async def test_southbound_errors_are_precise(client: httpx.AsyncClient) -> None:
    await provision(client)
    r = await client.post("/iot/d?k=nokey&i=x", content=b"t|1")
    assert r.status_code == 404 and r.json()["name"] == "DEVICE_GROUP_NOT_FOUND"
    r = await client.post("/iot/d?i=x", content=b"t|1")
    assert r.status_code == 400
    r = await client.post("/iot/d?k=4jggokgpepnvsb2uv4s40d59ov&i=temperature001", content=b"t|1|h")
    assert r.status_code == 400 and r.json()["name"] == "WRONG_SYNTAX"
    r = await client.post("/iot/json?k=4jggokgpepnvsb2uv4s40d59ov&i=temperature001",
                          content=b"{not json")
    assert r.status_code == 400
    r = await client.post("/iot/d?k=4jggokgpepnvsb2uv4s40d59ov&i=temperature001",
                          content=b"t|1|TimeInstant|yesterday")
    assert r.status_code == 400
    body = await entity(client, "urn:ngsi-ld:TemperatureSensor:001")
    assert "temperature" not in body      # nothing of a rejected message was written


async def test_a_burst_in_one_request_is_one_write_with_every_measure_in_history(
        app: Any, client: httpx.AsyncClient) -> None:
    """A device that buffered ten measures sends them as one JSON array: one entity write (one
    group), ten history rows in the order measured, the entity showing the last."""
    r = await client.post("/iot/services", headers=SERVICE, json={"services": [{
        "apikey": "burstkey", "entity_type": "WaterLevel", "resource": "/iot/json"}]})
    assert r.status_code == 201
    writer = app.state.iot.writer
    groups = writer.groups
    burst = [{"level": n / 10, "TimeInstant": f"2026-11-26T18:{n:02d}:00+09:00"}
             for n in range(10)]
    r = await client.post("/iot/json?k=burstkey&i=gauge1", json=burst)
    assert r.status_code == 200, r.text
    assert writer.groups - groups == 1
    r = await client.get("/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:WaterLevel:gauge1",
                         params={"attrs": "level", "lastN": 100}, headers=LD)
    assert r.status_code == 200, r.text
    items = r.json()["level"]
    assert [i["value"] for i in items] == [n / 10 for n in range(10)]
    assert [i["observedAt"] for i in items] == [
        f"2026-11-26T09:{n:02d}:00.000Z" for n in range(10)]
    assert (await entity(client, "urn:ngsi-ld:WaterLevel:gauge1"))["level"]["value"] == 0.9
