"""Device tenants and service paths as the NGSIv2 face sees them, foreign command results, and
registry reloads picking up devices provisioned through another node (ADR 0010)."""

from __future__ import annotations

from typing import Any

import httpx

from cityos.assets.devices import DeviceRegistry


async def test_fiware_service_is_lower_cased_like_the_v2_face(client: httpx.AsyncClient) -> None:
    h = {"fiware-service": "OpenIoT"}
    r = await client.post("/iot/devices", headers=h, json={"devices": [
        {"device_id": "m1", "entity_type": "Meter", "apikey": "mkey"}]})
    assert r.status_code == 201, r.text
    r = await client.post("/iot/json?k=mkey&i=m1", json={"kwh": 3})
    assert r.status_code == 200, r.text
    r = await client.get("/v2/entities/urn:ngsi-ld:Meter:m1", headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["kwh"]["value"] == 3
    r = await client.get("/iot/devices/m1", headers={"fiware-service": "openiot"})
    assert r.status_code == 200
    r = await client.post("/iot/devices", headers={"fiware-service": "open-iot"},
                          json={"devices": [{"device_id": "m2"}]})
    assert r.status_code == 400            # the v2 rule: letters, digits and _ only


async def test_service_paths_become_the_entity_scope(client: httpx.AsyncClient) -> None:
    h = {"fiware-service": "kobe", "fiware-servicepath": "/lights"}
    r = await client.post("/iot/services", headers=h, json={"services": [
        {"apikey": "lk", "entity_type": "Streetlight", "resource": "/iot/json"}]})
    assert r.status_code == 201
    r = await client.post("/iot/devices", headers=h, json={"devices": [
        {"device_id": "l1", "apikey": "lk"}]})
    assert r.status_code == 201
    r = await client.post("/iot/json?k=lk&i=l2", json={"lux": 40})      # autoprovisioned
    assert r.status_code == 200, r.text
    for device_id in ("l1", "l2"):
        r = await client.get(f"/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:{device_id}",
                             headers={"NGSILD-Tenant": "kobe"})
        assert r.json()["scope"] == "/lights", r.json()
    r = await client.get("/v2/entities", headers=h, params={"type": "Streetlight"})
    assert sorted(e["id"] for e in r.json()) == ["urn:ngsi-ld:Streetlight:l1",
                                                 "urn:ngsi-ld:Streetlight:l2"]
    r = await client.get("/v2/entities", headers={**h, "fiware-servicepath": "/other"})
    assert r.json() == []
    r = await client.post("/iot/devices", headers={"fiware-service": "kobe"},
                          json={"devices": [{"device_id": "root1"}]})
    r = await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Thing:root1",
                         headers={"NGSILD-Tenant": "kobe"})
    assert "scope" not in r.json()


async def test_results_for_commands_the_device_lacks_are_ignored(
        client: httpx.AsyncClient, app: Any) -> None:
    r = await client.post("/iot/devices", headers={"fiware-service": "city"}, json={"devices": [
        {"device_id": "v1", "entity_type": "Valve", "transport": "MQTT",
         "commands": [{"name": "open", "type": "command"}]}]})
    assert r.status_code == 201
    watcher = app.state.iot_runtime.commands
    await watcher.result("city", "v1", {"v1@open": "done", "v1@evil": "x", "location": "y"})
    r = await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Valve:v1",
                         headers={"NGSILD-Tenant": "city"})
    body = r.json()
    assert body["open_status"]["value"] == "OK" and body["open_info"]["value"] == "done"
    assert not {"evil_status", "evil_info", "location_status"} & set(body)
    assert watcher.unknown_results == 2


async def test_devices_provisioned_on_another_node_are_picked_up(
        client: httpx.AsyncClient, app: Any) -> None:
    runtime = app.state.iot_runtime
    assert runtime.reload_interval == 5.0
    assert runtime._reloader is not None and not runtime._reloader.done()
    other_node = DeviceRegistry(runtime.devices.broker.store)
    await other_node.add_group("city", {"apikey": "nk", "resource": "/iot/json",
                                        "entity_type": "Thing", "service": "city",
                                        "subservice": "/"})
    await other_node.add_device("city", {
        "device_id": "far", "entity_type": "Pump", "entity_name": "urn:ngsi-ld:Pump:far",
        "apikey": "nk", "protocol": "PDI-IoTA-JSON", "transport": "HTTP", "service": "city",
        "service_path": "/", "commands": [{"name": "start", "type": "Text"}],
        "attributes": [], "lazy": [], "static_attributes": []})
    assert ("city", "far") not in runtime.devices.registry.devices
    await runtime.reload()
    assert ("city", "far") in runtime.devices.registry.devices
    assert ("city", "urn:ngsi-ld:Pump:far") in runtime.commands._by_entity
    assert runtime.devices.registry.tenant_of_key("nk") == "city"
