"""The FIWARE IoT Agent provisioning API (/iot/services, /iot/devices) and the native device
API (/assets/v1/devices), on both engines (AS-DV-1, ED-IF-1)."""

from __future__ import annotations

import httpx

H = {"fiware-service": "kobe", "fiware-servicepath": "/lights"}
GROUP = {"apikey": "lightkey", "entity_type": "Streetlight", "resource": "/iot/d",
         "attributes": [{"object_id": "l", "name": "illuminanceLevel", "type": "Number"}],
         "commands": [{"name": "switch", "type": "command"}]}
DEVICE = {"device_id": "lamp001", "entity_name": "urn:ngsi-ld:Streetlight:kobe-001",
          "entity_type": "Streetlight", "protocol": "PDI-IoTA-UltraLight", "transport": "HTTP",
          "expected_interval": 60, "location": {"lat": 34.69, "lon": 135.19},
          "static_attributes": [{"name": "district", "type": "Text", "value": "中央区"}]}


async def test_service_groups_crud(client: httpx.AsyncClient) -> None:
    r = await client.post("/iot/services", headers=H, json={"services": [GROUP]})
    assert r.status_code == 201 and r.content == b""
    r = await client.post("/iot/services", headers=H, json={"services": [GROUP]})
    assert r.status_code == 409 and r.json()["name"] == "DUPLICATE_GROUP"
    r = await client.get("/iot/services", headers=H)
    assert r.json()["count"] == 1 and r.json()["services"][0]["apikey"] == "lightkey"
    r = await client.put("/iot/services?resource=/iot/d&apikey=lightkey", headers=H,
                         json={"entity_type": "Lamp"})
    assert r.status_code == 204
    r = await client.get("/iot/services", headers=H)
    assert r.json()["services"][0]["entity_type"] == "Lamp"
    r = await client.put("/iot/services?resource=/iot/d&apikey=nope", headers=H, json={})
    assert r.status_code == 404 and r.json()["name"] == "DEVICE_GROUP_NOT_FOUND"
    r = await client.delete("/iot/services?resource=/iot/d&apikey=lightkey", headers=H)
    assert r.status_code == 204
    r = await client.get("/iot/services", headers=H)
    assert r.json() == {"count": 0, "services": []}


async def test_devices_crud_and_their_entities(client: httpx.AsyncClient) -> None:
    await client.post("/iot/services", headers=H, json={"services": [GROUP]})
    r = await client.post("/iot/devices", headers=H, json={"devices": [DEVICE]})
    assert r.status_code == 201, r.text
    r = await client.post("/iot/devices", headers=H, json={"devices": [DEVICE]})
    assert r.status_code == 409 and r.json()["name"] == "DUPLICATE_DEVICE_ID"
    r = await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:kobe-001",
                         headers={"NGSILD-Tenant": "kobe"})
    assert r.status_code == 200
    body = r.json()
    assert body["district"]["value"] == "中央区"
    assert body["location"]["value"]["coordinates"] == [135.19, 34.69]
    assert body["switch_status"]["value"] == "UNKNOWN"          # the group's command
    r = await client.get("/iot/devices", headers=H)
    assert r.json()["count"] == 1
    r = await client.put("/iot/devices/lamp001", headers=H, json={"static_attributes": [
        {"name": "district", "type": "Text", "value": "灘区"}]})
    assert r.status_code == 204
    r = await client.get("/iot/devices/lamp001", headers=H)
    assert r.json()["static_attributes"][0]["value"] == "灘区"
    r = await client.delete("/iot/devices/lamp001", headers=H)
    assert r.status_code == 204
    r = await client.get("/iot/devices/lamp001", headers=H)
    assert r.status_code == 404 and r.json() == {
        "name": "DEVICE_NOT_FOUND", "message": "No device was found with id:lamp001"}


async def test_bad_provisioning_is_refused_whole(client: httpx.AsyncClient) -> None:
    bad_bodies = [
        {"devices": [DEVICE, {"entity_type": "X"}]},                      # no device_id
        {"devices": [{**DEVICE, "attributes": [{"object_id": "x"}]}]},   # attribute without name
        {"devices": [{**DEVICE, "protocol": "SOAP"}]},
        {"devices": [{**DEVICE, "timezone": "Mars/Olympus"}]},
        {"devices": [{**DEVICE, "endpoint": "ftp://x"}]},
        {"devices": []}, {"nope": 1}, [1],
    ]
    for body in bad_bodies:
        r = await client.post("/iot/devices", headers=H, json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["name"] == "WRONG_SYNTAX"
    r = await client.post("/iot/devices", headers=H, content=b"{broken")
    assert r.status_code == 400
    r = await client.post("/iot/devices", headers={**H, "content-type": "text/csv"},
                          content=b"device_id\nx")
    assert r.status_code == 415 and r.json()["name"] == "UNSUPPORTED_CONTENT_TYPE"
    r = await client.post("/iot/devices", headers={"fiware-service": "bad service!"},
                          json={"devices": [DEVICE]})
    assert r.status_code == 400
    r = await client.get("/iot/devices", headers=H)
    assert r.json()["count"] == 0                                   # nothing half-stored


async def test_native_api_lists_devices_by_state(client: httpx.AsyncClient) -> None:
    r = await client.post("/assets/v1/devices", headers={"NGSILD-Tenant": "kobe"},
                          json={**DEVICE, "apikey": "k1"})
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "unknown" and r.headers["location"].endswith("/lamp001")
    r = await client.post("/iot/d?k=k1&i=lamp001", content=b"l|300")
    assert r.status_code == 200, r.text
    r = await client.get("/assets/v1/devices?state=online", headers={"NGSILD-Tenant": "kobe"})
    assert [d["device_id"] for d in r.json()] == ["lamp001"]
    assert r.json()[0]["last_seen"] is not None
    r = await client.get("/assets/v1/devices?state=offline", headers={"NGSILD-Tenant": "kobe"})
    assert r.json() == []
    r = await client.get("/assets/v1/devices?state=sleeping", headers={"NGSILD-Tenant": "kobe"})
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
    r = await client.get("/assets/v1/devices/none", headers={"NGSILD-Tenant": "kobe"})
    assert r.status_code == 404
    r = await client.delete("/assets/v1/devices/lamp001", headers={"NGSILD-Tenant": "kobe"})
    assert r.status_code == 204
