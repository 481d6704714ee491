"""One data set, two faces: NGSI v2 and NGSI-LD see and notify the same entities."""

from __future__ import annotations

import httpx

from tests.data.test_notify_support import notifying_client, receiver

LD = "/ngsi-ld/v1"


async def test_v2_write_is_read_through_ngsi_ld(client: httpx.AsyncClient) -> None:
    r = await client.post("/v2/entities", json={
        "id": "Room1", "type": "Room",
        "temperature": {"type": "Number", "value": 21, "metadata": {
            "accuracy": {"type": "Number", "value": 0.5},
            "unitCode": {"type": "Text", "value": "CEL"}}},
        "location": {"type": "geo:point", "value": "34.69, 135.19"},
        "refBuilding": {"type": "Relationship", "value": "Building7"}})
    assert r.status_code == 201
    ld = (await client.get(f"{LD}/entities/urn:ngsi-v2:Room1")).json()
    assert ld["type"] == "Room"
    assert ld["temperature"] == {"type": "Property", "value": 21, "unitCode": "CEL",
                                 "accuracy": {"type": "Property", "value": 0.5}}
    assert ld["location"] == {"type": "GeoProperty",
                              "value": {"type": "Point", "coordinates": [135.19, 34.69]}}
    assert ld["refBuilding"] == {"type": "Relationship", "object": "urn:ngsi-v2:Building7"}
    # and the NGSI-LD geo-query finds it
    near = await client.get(f"{LD}/entities", params={
        "type": "Room", "georel": "near;maxDistance==100", "geometry": "Point",
        "coordinates": "[135.19,34.69]"})
    assert [e["id"] for e in near.json()] == ["urn:ngsi-v2:Room1"]


async def test_ngsi_ld_write_is_read_through_v2(client: httpx.AsyncClient) -> None:
    body = {"id": "urn:ngsi-ld:Room:kobe-1", "type": "Room",
            "temperature": {"type": "Property", "value": 19.5, "observedAt": "2026-11-25T00:00:00Z"},
            "name": {"type": "Property", "value": "三宮"},
            "opened": {"type": "Property", "value": {"@type": "DateTime",
                                                     "@value": "2026-04-01T00:00:00Z"}},
            "location": {"type": "GeoProperty", "value": {"type": "Point",
                                                           "coordinates": [135.19, 34.69]}},
            "owner": {"type": "Relationship", "object": "urn:ngsi-v2:Person1"}}
    r = await client.post(f"{LD}/entities", json=body,
                          headers={"content-type": "application/json"})
    assert r.status_code == 201, r.text
    v2 = (await client.get("/v2/entities/urn:ngsi-ld:Room:kobe-1")).json()
    assert v2["id"] == "urn:ngsi-ld:Room:kobe-1" and v2["type"] == "Room"
    assert v2["temperature"] == {"type": "Number", "value": 19.5, "metadata": {
        "observedAt": {"type": "DateTime", "value": "2026-11-25T00:00:00.000Z"}}}
    assert v2["name"]["type"] == "Text"
    assert v2["opened"] == {"type": "DateTime", "value": "2026-04-01T00:00:00Z", "metadata": {}}
    assert v2["location"]["type"] == "geo:json"
    assert v2["owner"] == {"type": "Relationship", "value": "Person1", "metadata": {}}
    # v2 queries see it, and a v2 update is visible through NGSI-LD
    found = await client.get("/v2/entities?q=temperature>19&type=Room&options=keyValues&attrs=temperature")
    assert found.json() == [{"id": "urn:ngsi-ld:Room:kobe-1", "type": "Room", "temperature": 19.5}]
    rel = await client.get("/v2/entities?q=owner==Person1")
    assert [e["id"] for e in rel.json()] == ["urn:ngsi-ld:Room:kobe-1"]
    await client.patch("/v2/entities/urn:ngsi-ld:Room:kobe-1/attrs", json={"temperature": {"value": 25}})
    ld = (await client.get(f"{LD}/entities/urn:ngsi-ld:Room:kobe-1?attrs=temperature")).json()
    assert ld["temperature"]["value"] == 25


async def test_ids_map_reversibly(client: httpx.AsyncClient) -> None:
    for v2_id in ("a{b}|c^d", "12:30", "x%41"):
        r = await client.post("/v2/entities", json={"id": v2_id, "type": "T"})
        assert r.status_code == 201, (v2_id, r.text)
        got = await client.get("/v2/entities", params={"id": v2_id})
        assert [e["id"] for e in got.json()] == [v2_id]
    listed = (await client.get(f"{LD}/entities?type=T")).json()
    assert sorted(e["id"] for e in listed) == sorted(
        ["urn:ngsi-v2:a%7Bb%7D%7Cc%5Ed", "urn:ngsi-v2:12:30", "urn:ngsi-v2:x%2541"])
    reserved = await client.post("/v2/entities", json={"id": "urn:ngsi-v2:x"})
    assert reserved.status_code == 400


async def test_ngsi_ld_subscription_fires_on_v2_write(database_url: str) -> None:
    async with receiver() as rec, notifying_client(database_url) as c:
        sub = {"id": "urn:ngsi-ld:Subscription:v2", "type": "Subscription",
               "entities": [{"type": "Room"}], "watchedAttributes": ["temperature"],
               "notification": {"endpoint": {"uri": rec.url(), "accept": "application/json"}}}
        r = await c.post(f"{LD}/subscriptions", json=sub,
                         headers={"content-type": "application/json"})
        assert r.status_code == 201, r.text
        r = await c.post("/v2/entities?options=keyValues",
                         json={"id": "Room9", "type": "Room", "temperature": 30})
        assert r.status_code == 201
        await rec.wait_for(lambda got: any(d["id"] == "urn:ngsi-v2:Room9"
                                           for x in got for d in x.body["data"]))
        r = await c.patch("/v2/entities/Room9/attrs", json={"temperature": {"value": 31}})
        assert r.status_code == 204
        received = await rec.wait_for(lambda got: any(
            d.get("temperature", {}).get("value") == 31 for x in got for d in x.body["data"]))
        assert all(x.body["subscriptionId"] == sub["id"] for x in received)


async def test_an_ngsi_ld_entity_with_a_japanese_iri_id_is_addressable_through_v2(
        client: httpx.AsyncClient) -> None:
    entity_id = "urn:ngsi-ld:指定緊急避難場所一覧:kobe:1"
    created = await client.post(f"{LD}/entities", json={
        "id": entity_id, "type": "Shelter", "name": {"type": "Property", "value": "東遊園地"}})
    assert created.status_code == 201
    quoted = httpx.URL(f"/v2/entities/{entity_id}").raw_path.decode()
    read = await client.get(quoted, params={"options": "keyValues"})
    assert read.status_code == 200
    assert read.json() == {"id": entity_id, "type": "Shelter", "name": "東遊園地"}
    patched = await client.patch(f"{quoted}/attrs", json={"name": {"value": "みなと公園"}})
    assert patched.status_code == 204
    assert (await client.get(f"{LD}/entities/{entity_id}")).json()["name"]["value"] == "みなと公園"
    # a non-IRI id keeps Orion's ASCII rule, and Orion's forbidden characters stay forbidden
    assert (await client.post("/v2/entities", json={"id": "避難所1", "type": "Shelter"})).status_code == 400
    assert (await client.post("/v2/entities", json={"id": "urn:x:避難所(1)", "type": "Shelter"})
            ).status_code == 400
