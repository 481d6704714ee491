"""Distributed type and attribute discovery (clause 4.3.6, 5.7.5 - 5.7.10) against real sources.

The ETSI suite has no DistributedOperations discovery TPs; the tests are named after the local
discovery TPs they extend (022_01 types, 023_01 type details, 024_01 type info, 025_01
attributes, 026_01 attribute details, 027_01 attribute info) and the distributed ones whose
behaviour they share (6317 warnings, D018 Via).  The broker under test is city B (the ``client``
fixture, both engines); city A is a second real CityOS, or a stub HTTP server.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from cityos.data.ngsild.csource.index import index_of
from tests.data.test_csource_support import (
    BASE,
    CSR,
    registration,
    served_cityos,
    served_stub,
    settings,
    vehicle,
)

__all__ = ["settings"]
V1, V2, V3 = (f"urn:ngsi-ld:Vehicle:{n}" for n in ("V1", "V2", "V3"))
BUILDING = {"id": "urn:ngsi-ld:Building:b1", "type": "Building",
            "name": {"type": "Property", "value": "神戸市役所"}}
BUS = {"id": "urn:ngsi-ld:Bus:1", "type": "Bus", "route": {"type": "Property", "value": "7"}}
PARKED = {"type": "Relationship", "object": "urn:ngsi-ld:Building:b1"}


async def _city_a(a: httpx.AsyncClient) -> None:
    """City A: two Vehicles (speed, fuel, parkedAt) and a Bus nobody registers."""
    for entity in (vehicle(V1, 10, fuel={"type": "Property", "value": 0.5}, parkedAt=PARKED),
                   vehicle(V2, 20), BUS):
        assert (await a.post(f"{BASE}/entities", json=entity)).status_code == 201


async def _city_b(client: httpx.AsyncClient, a_url: str) -> None:
    """City B: a Building and a Vehicle of its own, and a registration of A's Vehicles and
    Trucks (A has no Truck: the type is known from the registration alone)."""
    for entity in (BUILDING, vehicle(V3, 30)):
        assert (await client.post(f"{BASE}/entities", json=entity)).status_code == 201
    body = registration(a_url, entities=[{"type": "Vehicle"}, {"type": "Truck"}])
    assert (await client.post(CSR, json=body)).status_code == 201


async def test_022_01_023_01_types_include_the_sources_types(client: httpx.AsyncClient) -> None:
    async with served_cityos() as (a_url, a):
        await _city_a(a)
        await _city_b(client, a_url)
        listed = await client.get(f"{BASE}/types")
        assert listed.status_code == 200, listed.text
        assert listed.json()["typeList"] == ["Building", "Truck", "Vehicle"]   # no Bus
        assert "ngsild-warning" not in listed.headers
        details = (await client.get(f"{BASE}/types", params={"details": "true"})).json()
        by_name = {d["typeName"]: d["attributeNames"] for d in details}
        assert by_name == {"Building": ["name"], "Truck": [],
                           "Vehicle": ["fuel", "parkedAt", "speed"]}
        local = (await client.get(f"{BASE}/types", params={"local": "true"})).json()
        assert local["typeList"] == ["Building", "Vehicle"]


async def test_024_01_type_info_adds_the_sources_counts(client: httpx.AsyncClient) -> None:
    async with served_cityos() as (a_url, a):
        await _city_a(a)
        await _city_b(client, a_url)
        info = await client.get(f"{BASE}/types/Vehicle")
        assert info.status_code == 200, info.text
        body = info.json()
        assert body["entityCount"] == 3                  # V3 here, V1 and V2 in city A
        kinds = {d["attributeName"]: d["attributeTypes"] for d in body["attributeDetails"]}
        assert kinds == {"fuel": ["Property"], "parkedAt": ["Relationship"],
                         "speed": ["Property"]}
        truck = await client.get(f"{BASE}/types/Truck")      # registered, no instance anywhere
        assert truck.status_code == 200 and truck.json()["entityCount"] == 0
        assert (await client.get(f"{BASE}/types/Bus")).status_code == 404   # not registered
        local = await client.get(f"{BASE}/types/Vehicle", params={"local": "true"})
        assert local.json()["entityCount"] == 1


async def test_024_02_02_027_02_02_expanded_names_are_found_here_and_at_the_source(
        client: httpx.AsyncClient) -> None:
    tram_type, load = "https://example.org/kobe#Tram", "https://example.org/kobe#load"
    tram = {"id": "urn:ngsi-ld:Tram:1", "type": tram_type,
            load: {"type": "Property", "value": 0.7}}
    async with served_cityos() as (a_url, a):
        assert (await a.post(f"{BASE}/entities", json=tram)).status_code == 201
        assert (await client.post(f"{BASE}/entities",
                                  json={**tram, "id": "urn:ngsi-ld:Tram:2"})).status_code == 201
        body = registration(a_url, entities=[{"type": tram_type}])
        assert (await client.post(CSR, json=body)).status_code == 201
        info = await client.get(f"{BASE}/types/{quote(tram_type, safe='')}")
        assert info.status_code == 200, info.text
        assert info.json()["entityCount"] == 2 and "ngsild-warning" not in info.headers
        attr = await client.get(f"{BASE}/attributes/{quote(load, safe='')}")
        assert attr.status_code == 200 and attr.json()["attributeCount"] == 2


async def test_025_01_026_01_027_01_attributes_include_the_sources_attributes(
        client: httpx.AsyncClient) -> None:
    async with served_cityos() as (a_url, a):
        await _city_a(a)
        await _city_b(client, a_url)
        listed = (await client.get(f"{BASE}/attributes")).json()
        assert listed["attributeList"] == ["fuel", "name", "parkedAt", "speed"]   # no route
        details = (await client.get(f"{BASE}/attributes", params={"details": "true"})).json()
        by_name = {d["attributeName"]: d for d in details}
        assert by_name["speed"]["attributeCount"] == 3
        assert by_name["speed"]["typeNames"] == ["Vehicle"]
        assert by_name["parkedAt"]["attributeTypes"] == ["Relationship"]
        assert by_name["name"]["attributeCount"] == 1
        speed = await client.get(f"{BASE}/attributes/speed")
        assert speed.status_code == 200, speed.text
        assert speed.json()["attributeCount"] == 3
        fuel = (await client.get(f"{BASE}/attributes/fuel")).json()
        assert fuel["attributeCount"] == 1 and fuel["typeNames"] == ["Vehicle"]
        assert (await client.get(f"{BASE}/attributes/route")).status_code == 404
        local = await client.get(f"{BASE}/attributes/fuel", params={"local": "true"})
        assert local.status_code == 404


async def test_registered_attribute_names_are_discoverable_without_asking(
        client: httpx.AsyncClient) -> None:
    async with served_stub() as (url, stub):
        body = registration(url)
        body["information"] = [{"entities": [{"type": "Vehicle"}],
                                "propertyNames": ["speed"], "relationshipNames": ["owner"]}]
        assert (await client.post(CSR, json=body)).status_code == 201
        # the source also reports an attribute the registration does not cover: left out
        stub.reply("GET", "/attributes", 200, [
            {"id": "urn:x", "type": "Attribute", "attributeName": name, "attributeCount": 2,
             "attributeTypes": ["Property"], "typeNames": ["Vehicle"]}
            for name in ("speed", "secret")])
        listed = await client.get(f"{BASE}/attributes")
        assert listed.json()["attributeList"] == ["owner", "speed"]
        assert "ngsild-warning" not in listed.headers
        # registered for Vehicles only: asked for details, which name the entity types
        assert stub.received[-1]["query"] == {"details": "true"}
        owner = (await client.get(f"{BASE}/attributes/owner")).json()
        assert owner["attributeTypes"] == ["Relationship"] and owner["typeNames"] == ["Vehicle"]
        info = (await client.get(f"{BASE}/types/Vehicle")).json()
        assert [d["attributeName"] for d in info["attributeDetails"]] == ["owner", "speed"]


async def test_only_registrations_serving_the_discovery_operation_are_used(
        client: httpx.AsyncClient) -> None:
    async with served_stub() as (url, stub):
        stub.reply("GET", "/types", 200, {"id": "urn:x", "type": "EntityTypeList",
                                          "typeList": ["Vehicle"]})
        reads = registration(url, operations=["retrieveOps"])
        assert (await client.post(CSR, json=reads)).status_code == 201
        assert (await client.get(f"{BASE}/types")).json()["typeList"] == []
        assert stub.received == []
        types_only = registration(url, reg_id="urn:ngsi-ld:ContextSourceRegistration:r2",
                                  operations=["retrieveEntityTypes"])
        assert (await client.post(CSR, json=types_only)).status_code == 201
        assert (await client.get(f"{BASE}/types")).json()["typeList"] == ["Vehicle"]
        assert [r["path"] for r in stub.received] == [f"{BASE}/types"]
        # retrieveEntityTypeDetails and retrieveAttrTypes are not served by r2
        assert (await client.get(f"{BASE}/types", params={"details": "true"})).json() == []
        assert (await client.get(f"{BASE}/attributes")).json()["attributeList"] == []
        assert len(stub.received) == 1


async def test_6317_discovery_warnings_for_failing_sources(client: httpx.AsyncClient) -> None:
    async with served_stub() as (url, stub):
        assert (await client.post(f"{BASE}/entities", json=BUILDING)).status_code == 201
        assert (await client.post(CSR, json=registration(url))).status_code == 201
        stub.reply("GET", "/types", 500, {"type": "InternalError"})
        failed = await client.get(f"{BASE}/types")
        assert failed.status_code == 200
        # the registration still tells that the source holds Vehicles
        assert failed.json()["typeList"] == ["Building", "Vehicle"]
        assert "299 city-b" in failed.headers["ngsild-warning"]
        stub.reply("GET", "/attributes", 200, {"attributeList": "speed"})
        invalid = await client.get(f"{BASE}/attributes")
        assert invalid.json()["attributeList"] == ["name"]
        assert "111 city-b" in invalid.headers["ngsild-warning"]
        missing = await client.get(f"{BASE}/attributes/nothing")
        assert missing.status_code == 404 and "ngsild-warning" not in missing.headers
        dead = registration("http://127.0.0.1:9", reg_id="urn:ngsi-ld:ContextSourceRegistration:d",
                            entities=[{"type": "Truck"}])
        assert (await client.post(CSR, json=dead)).status_code == 201
        unknown = await client.get(f"{BASE}/types/Truck")
        assert unknown.status_code == 200 and unknown.json()["entityCount"] == 0
        assert "199 city-b" in unknown.headers["ngsild-warning"]


async def test_D018_discovery_carries_via_and_stops_loops(client: httpx.AsyncClient) -> None:
    async with served_stub() as (url, stub):
        stub.reply("GET", "/types/Vehicle", 200,
                   {"id": "urn:x", "type": "EntityTypeInfo", "typeName": "Vehicle",
                    "entityCount": 4, "attributeDetails": [
                        {"id": "urn:y", "type": "Attribute", "attributeName": "speed",
                         "attributeTypes": ["Property"]}]})
        body = registration(url, contextSourceInfo=[{"key": "Authorization",
                                                     "value": "Bearer city-a-token"}])
        headers = {"NGSILD-Tenant": "kobe"}
        assert (await client.post(CSR, json=body, headers=headers)).status_code == 201
        got = await client.get(f"{BASE}/types/Vehicle", headers={**headers, "Via": "1.1 gw"})
        assert got.status_code == 200 and got.json()["entityCount"] == 4
        sent: dict[str, Any] = stub.received[-1]["headers"]
        assert sent["via"] == "1.1 gw, 1.1 city-b" and sent["ngsild-tenant"] == "kobe"
        assert sent["authorization"] == "Bearer city-a-token"
        looped = await client.get(f"{BASE}/types/Vehicle",
                                  headers={**headers, "Via": "1.1 city-b"})
        assert looped.status_code == 404 and len(stub.received) == 1


async def test_discovery_without_registrations_stays_local(client: httpx.AsyncClient,
                                                           app: object) -> None:
    assert (await client.post(f"{BASE}/entities", json=BUILDING)).status_code == 201
    for path in ("/types", "/types/Building", "/attributes?details=true", "/attributes/name"):
        response = await client.get(BASE + path)
        assert response.status_code == 200 and "ngsild-warning" not in response.headers
    index = index_of(app)
    assert await index.for_tenant("") == [] and index._client is None
    bad = await client.get(f"{BASE}/types", params={"local": "maybe"})
    assert bad.status_code == 400
