"""Device state (AS-DV-1) and durability (never acknowledge what is not stored)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from cityos.core.problems import ServiceUnavailable

LD = {"NGSILD-Tenant": "city"}
H = {"fiware-service": "city"}


async def test_a_silent_device_goes_offline_on_its_entity(client: httpx.AsyncClient,
                                                          app: Any) -> None:
    r = await client.post("/iot/devices", headers=H, json={"devices": [
        {"device_id": "s1", "entity_type": "Sensor", "apikey": "k", "expected_interval": 10}]})
    assert r.status_code == 201
    r = await client.post("/iot/d?k=k&i=s1", content=b"v|1")
    assert r.status_code == 200
    state = app.state.devices.state
    assert await state.check(time.time() + 5) == 0            # within 3 x 10 s: still online
    assert await state.check(time.time() + 31) == 1           # silent too long: offline
    r = await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:s1", headers=LD)
    assert r.json()["deviceState"]["value"] == "offline"
    r = await client.post("/iot/d?k=k&i=s1", content=b"v|2")   # data again: online again
    r = await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:s1", headers=LD)
    assert r.json()["deviceState"]["value"] == "online"


async def test_with_the_database_down_devices_get_503_and_nothing_is_acknowledged(
        client: httpx.AsyncClient, app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    r = await client.post("/iot/devices", headers=H, json={"devices": [
        {"device_id": "s2", "entity_type": "Sensor", "apikey": "k"}]})
    assert r.status_code == 201
    store = app.state.broker.store.inner      # the engine behind the guarded store

    async def down(*args: Any, **kwargs: Any) -> Any:
        raise ServiceUnavailable("the database is down")

    with monkeypatch.context() as patch:
        patch.setattr(store, "write", down)
        r = await client.post("/iot/d?k=k&i=s2", content=b"v|1")
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert r.json()["name"] == "SERVICE_UNAVAILABLE"
    r = await client.post("/iot/d?k=k&i=s2", content=b"v|1")   # the device retries: stored
    assert r.status_code == 200
    r = await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:s2", headers=LD)
    assert r.json()["v"]["value"] == 1
    r = await client.get("/health")
    assert r.json()["iot"]["mqtt"]["status"] == "off"
