"""NGSI v2 single attributes and attribute values, /v2, /version and /v2/types (both engines)."""

from __future__ import annotations

import json

import httpx

ROOM = {"id": "Room1", "type": "Room",
        "temperature": {"value": 23, "type": "Number",
                        "metadata": {"unitCode": {"type": "Text", "value": "CEL"}}},
        "address": {"type": "StructuredValue", "value": {"city": "Kobe", "zip": "650"}},
        "label": {"type": "Text", "value": "east"}}


async def test_attribute_get_put_delete(client: httpx.AsyncClient) -> None:
    await client.post("/v2/entities", json=ROOM)
    got = await client.get("/v2/entities/Room1/attrs/temperature")
    assert got.json() == {"type": "Number", "value": 23,
                          "metadata": {"unitCode": {"type": "Text", "value": "CEL"}}}
    put = await client.put("/v2/entities/Room1/attrs/temperature",
                           json={"type": "Number", "value": 30})
    assert put.status_code == 204
    assert (await client.get("/v2/entities/Room1/attrs/temperature")).json() == \
        {"type": "Number", "value": 30, "metadata": {}}
    missing = await client.get("/v2/entities/Room1/attrs/nothing")
    assert missing.status_code == 404
    assert missing.json() == {"error": "NotFound",
                              "description": "The entity does not have such an attribute"}
    assert (await client.put("/v2/entities/Room1/attrs/nothing",
                             json={"value": 1})).status_code == 404
    assert (await client.delete("/v2/entities/Room1/attrs/label")).status_code == 204
    assert (await client.delete("/v2/entities/Room1/attrs/label")).status_code == 404
    assert (await client.get("/v2/entities/Ghost/attrs/label")).status_code == 404


async def test_attribute_value_json_and_text(client: httpx.AsyncClient) -> None:
    await client.post("/v2/entities", json=ROOM)
    obj = await client.get("/v2/entities/Room1/attrs/address/value",
                           headers={"accept": "application/json"})
    assert obj.json() == {"city": "Kobe", "zip": "650"}
    as_text = await client.get("/v2/entities/Room1/attrs/address/value",
                               headers={"accept": "text/plain"})
    assert as_text.headers["content-type"].startswith("text/plain")
    assert json.loads(as_text.text) == {"city": "Kobe", "zip": "650"}  # JSON, sent as text
    text = await client.get("/v2/entities/Room1/attrs/label/value")
    assert text.headers["content-type"].startswith("text/plain") and text.text == '"east"'
    number = await client.get("/v2/entities/Room1/attrs/temperature/value",
                              headers={"accept": "text/*"})
    assert number.text == "23"
    refused = await client.get("/v2/entities/Room1/attrs/label/value",
                               headers={"accept": "application/json"})
    assert refused.status_code == 406
    assert refused.json() == {"error": "NotAcceptable",
                              "description": "accepted MIME types: text/plain"}
    xml = await client.get("/v2/entities/Room1/attrs/address/value",
                           headers={"accept": "application/xml"})
    assert xml.status_code == 406
    put_text = await client.put("/v2/entities/Room1/attrs/temperature/value", content=b"31.5",
                                headers={"content-type": "text/plain"})
    assert put_text.status_code == 204
    after = (await client.get("/v2/entities/Room1/attrs/temperature")).json()
    # the attribute keeps its type and its metadata
    assert after["value"] == 31.5 and after["type"] == "Number" and "unitCode" in after["metadata"]
    put_json = await client.put("/v2/entities/Room1/attrs/address/value",
                                json={"city": "Osaka"})
    assert put_json.status_code == 204
    assert (await client.get("/v2/entities/Room1/attrs/address/value",
                             headers={"accept": "application/json"})).json() == {"city": "Osaka"}
    quoted = await client.put("/v2/entities/Room1/attrs/label/value", content='"西口"'.encode(),
                              headers={"content-type": "text/plain"})
    assert quoted.status_code == 204
    assert (await client.get("/v2/entities/Room1?options=keyValues")).json()["label"] == "西口"
    bare = await client.put("/v2/entities/Room1/attrs/label/value", content=b"west",
                            headers={"content-type": "text/plain"})
    assert bare.status_code == 400 and bare.json()["error"] == "BadRequest"
    xml_body = await client.put("/v2/entities/Room1/attrs/label/value", content=b"<a/>",
                                headers={"content-type": "application/xml"})
    assert xml_body.status_code == 415


async def test_entry_point_and_version(client: httpx.AsyncClient) -> None:
    v2 = (await client.get("/v2")).json()
    assert v2 == {"entities_url": "/v2/entities", "types_url": "/v2/types",
                  "subscriptions_url": "/v2/subscriptions", "registrations_url": "/v2/registrations"}
    version = (await client.get("/version")).json()
    assert version["orion"]["version"].count(".") == 2 and "uptime" in version["orion"]


async def test_types(client: httpx.AsyncClient) -> None:
    await client.post("/v2/entities", json=ROOM)
    for item in ({"id": "Room2", "type": "Room", "temperature": 1},
                 {"id": "Car1", "type": "Car", "speed": 3}):
        await client.post("/v2/entities?options=keyValues", json=item)
    types = await client.get("/v2/types?options=count")
    assert types.headers["fiware-total-count"] == "2"
    by_name = {t["type"]: t for t in types.json()}
    assert by_name["Room"]["count"] == 2
    assert by_name["Room"]["attrs"]["temperature"] == {"types": ["Number"]}
    assert by_name["Room"]["attrs"]["address"] == {"types": ["StructuredValue"]}
    assert (await client.get("/v2/types?options=values")).json() == ["Car", "Room"]
    one = (await client.get("/v2/types/Car")).json()
    assert one == {"attrs": {"speed": {"types": ["Number"]}}, "count": 1}
    missing = await client.get("/v2/types/Boat")
    assert missing.status_code == 404 and missing.json()["error"] == "NotFound"
