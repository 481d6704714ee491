"""Contract tests: discovery (CIM 009 5.7.5 - 5.7.10): /types, /types/{type}, /attributes,
/attributes/{attr}, with and without details, compacted against the caller's @context."""

from __future__ import annotations

from typing import Any

import httpx

BASE = "/ngsi-ld/v1"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
DC = "https://uri.etsi.org/ngsi-ld/default-context/"
KOBE = "https://example.org/kobe#"
CTX_DOC = {"@context": {"Shelter": KOBE + "Shelter", "capacity": KOBE + "capacity"}}

ENTITIES: list[dict[str, Any]] = [
    {"id": "urn:ngsi-ld:Shelter:chuo-1", "type": "Shelter",
     "name": {"type": "Property", "value": "中央区避難所"},
     "capacity": {"type": "Property", "value": 300},
     "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [135.19, 34.69]}}},
    {"id": "urn:ngsi-ld:Shelter:nada-1", "type": "Shelter",
     "name": {"type": "Property", "value": "灘区避難所"},
     "capacity": {"type": "Property", "value": 150}},
    {"id": "urn:ngsi-ld:Building:kobe-tower", "type": "Building",
     "name": {"type": "Property", "value": "神戸ポートタワー"},
     "owner": {"type": "Relationship", "object": "urn:ngsi-ld:Organization:kobe-city"}},
]


async def seed(client: httpx.AsyncClient) -> str:
    """Create the entities with a hosted user context; returns that context's URL."""
    response = await client.post(f"{BASE}/jsonldContexts", json=CTX_DOC)
    assert response.status_code == 201, response.text
    url = "http://cityos.test" + response.headers["location"]
    for entity in ENTITIES:
        response = await client.post(f"{BASE}/entities", json=entity, headers=link(url))
        assert response.status_code == 201, response.text
    return url


def link(url: str) -> dict[str, str]:
    return {"Link": f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; '
                    'type="application/ld+json"'}


async def test_types_list(client: httpx.AsyncClient) -> None:
    url = await seed(client)
    response = await client.get(f"{BASE}/types", headers=link(url))
    assert response.status_code == 200
    body = response.json()
    assert body["type"] == "EntityTypeList" and body["id"].startswith("urn:ngsi-ld:EntityTypeList:")
    assert sorted(body["typeList"]) == ["Building", "Shelter"]
    # without the user context the type is shown as its full IRI
    plain = (await client.get(f"{BASE}/types")).json()
    assert sorted(plain["typeList"]) == ["Building", KOBE + "Shelter"]


async def test_types_details(client: httpx.AsyncClient) -> None:
    url = await seed(client)
    body = (await client.get(f"{BASE}/types", params={"details": "true"},
                             headers=link(url))).json()
    shelter = next(t for t in body if t["typeName"] == "Shelter")
    assert shelter == {"id": KOBE + "Shelter", "type": "EntityType", "typeName": "Shelter",
                       "attributeNames": sorted(["capacity", "location", "name"])}


async def test_type_info(client: httpx.AsyncClient) -> None:
    url = await seed(client)
    response = await client.get(f"{BASE}/types/Shelter", headers=link(url))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == KOBE + "Shelter" and body["type"] == "EntityTypeInfo"
    assert body["typeName"] == "Shelter" and body["entityCount"] == 2
    details = {a["attributeName"]: a for a in body["attributeDetails"]}
    assert details["capacity"] == {"id": KOBE + "capacity", "type": "Attribute",
                                   "attributeName": "capacity", "attributeTypes": ["Property"]}
    assert details["location"]["attributeTypes"] == ["GeoProperty"]
    response = await client.get(f"{BASE}/types/Shelter")  # no context: a different IRI
    assert response.status_code == 404
    assert response.json()["type"] == ERR + "ResourceNotFound"


async def test_attributes_list_and_details(client: httpx.AsyncClient) -> None:
    url = await seed(client)
    body = (await client.get(f"{BASE}/attributes", headers=link(url))).json()
    assert body["type"] == "AttributeList"
    assert sorted(body["attributeList"]) == ["capacity", "location", "name", "owner"]
    details = (await client.get(f"{BASE}/attributes", params={"details": "true"},
                                headers=link(url))).json()
    name = next(a for a in details if a["attributeName"] == "name")
    assert name == {"id": DC + "name", "type": "Attribute", "attributeName": "name",
                    "attributeCount": 3, "attributeTypes": ["Property"],
                    "typeNames": ["Building", "Shelter"]}


async def test_attribute_info(client: httpx.AsyncClient) -> None:
    url = await seed(client)
    response = await client.get(f"{BASE}/attributes/capacity", headers=link(url))
    assert response.status_code == 200, response.text
    assert response.json() == {"id": KOBE + "capacity", "type": "Attribute",
                               "attributeName": "capacity", "attributeCount": 2,
                               "attributeTypes": ["Property"], "typeNames": ["Shelter"]}
    owner = (await client.get(f"{BASE}/attributes/owner")).json()
    assert owner["attributeCount"] == 1 and owner["attributeTypes"] == ["Relationship"]
    missing = await client.get(f"{BASE}/attributes/capacity")  # default-context IRI: unknown
    assert missing.status_code == 404
    assert missing.json()["type"] == ERR + "ResourceNotFound"


async def test_discovery_follows_deletes(client: httpx.AsyncClient) -> None:
    url = await seed(client)
    await client.delete(f"{BASE}/entities/urn:ngsi-ld:Building:kobe-tower")
    types = (await client.get(f"{BASE}/types", headers=link(url))).json()["typeList"]
    assert types == ["Shelter"]
    assert (await client.get(f"{BASE}/attributes/owner")).status_code == 404


async def test_discovery_on_an_empty_broker(client: httpx.AsyncClient) -> None:
    assert (await client.get(f"{BASE}/types")).json()["typeList"] == []
    assert (await client.get(f"{BASE}/attributes")).json()["attributeList"] == []
    assert (await client.get(f"{BASE}/types", params={"details": "maybe"})).status_code == 400


async def test_discovery_as_json_ld(client: httpx.AsyncClient) -> None:
    url = await seed(client)
    response = await client.get(f"{BASE}/types", headers={**link(url),
                                                          "Accept": "application/ld+json"})
    assert response.headers["content-type"].startswith("application/ld+json")
    assert response.json()["@context"] == url
