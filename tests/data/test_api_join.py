"""Contract tests: linked entity retrieval, ``join``/``joinLevel``/``containedBy`` (CIM 009 4.5.23).

Parking in Kobe: 駐車区画 (ParkingSpot) -> 駐車場 (OffStreetParking) -> 区役所 (Ward), and the ward
lists its car parks in a ListRelationship, which closes a cycle.  The expectations follow the ETSI
test suite (018_10 - 018_21 for retrieval, 019_13 - 019_23 for queries).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import httpx
import pytest

BASE = "/ngsi-ld/v1"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"

S1 = "urn:ngsi-ld:ParkingSpot:sannomiya-001"
S2 = "urn:ngsi-ld:ParkingSpot:sannomiya-002"
S3 = "urn:ngsi-ld:ParkingSpot:motomachi-001"
P1 = "urn:ngsi-ld:OffStreetParking:sannomiya"
P_MISSING = "urn:ngsi-ld:OffStreetParking:motomachi"
W1 = "urn:ngsi-ld:Ward:chuo"

ENTITIES: list[dict[str, Any]] = [
    {"id": S1, "type": "ParkingSpot",
     "name": {"type": "Property", "value": "三宮 1番区画"},
     "status": {"type": "Property", "value": "free"},
     "refParkingSite": {"type": "Relationship", "object": P1}},
    {"id": S2, "type": "ParkingSpot",
     "name": {"type": "Property", "value": "三宮 2番区画"},
     "status": {"type": "Property", "value": "occupied"},
     "refParkingSite": {"type": "Relationship", "object": P1},
     # a ward is not a device: objectType keeps it out of the join
     "observedBy": {"type": "Relationship", "object": W1, "objectType": "Device"}},
    {"id": S3, "type": "ParkingSpot",
     "name": {"type": "Property", "value": "元町 1番区画"},
     "refParkingSite": {"type": "Relationship", "object": P_MISSING}},
    {"id": P1, "type": "OffStreetParking",
     "name": {"type": "Property", "value": "三宮中央駐車場"},
     "totalSpotNumber": {"type": "Property", "value": 120},
     "location": {"type": "GeoProperty",
                  "value": {"type": "Point", "coordinates": [135.1955, 34.6946]}},
     "refWard": {"type": "Relationship", "object": W1, "objectType": "Ward"}},
    {"id": W1, "type": "Ward",
     "name": {"type": "Property", "value": "中央区役所"},
     "managedParking": {"type": "ListRelationship", "objectList": [P1, P_MISSING]}},
]


@pytest.fixture
async def kobe(client: httpx.AsyncClient) -> httpx.AsyncClient:
    response = await client.post(f"{BASE}/entityOperations/create", json=ENTITIES)
    assert response.status_code == 201, response.text
    return client


async def get(client: httpx.AsyncClient, entity_id: str, **params: str) -> Any:
    response = await client.get(f"{BASE}/entities/{entity_id}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def ids(body: list[dict[str, Any]]) -> list[str]:
    return [e["id"] for e in body]


async def test_inline_puts_the_linked_entity_into_the_relationship(kobe: httpx.AsyncClient) -> None:
    body = await get(kobe, S1, join="inline")
    rel = body["refParkingSite"]
    assert rel["type"] == "Relationship" and rel["object"] == P1
    linked = rel["entity"]
    assert linked["id"] == P1 and linked["type"] == "OffStreetParking"
    assert linked["name"] == {"type": "Property", "value": "三宮中央駐車場"}
    assert linked["totalSpotNumber"]["value"] == 120
    # joinLevel defaults to 1: the car park's own relationship is not followed
    assert linked["refWard"] == {"type": "Relationship", "object": W1, "objectType": "Ward"}


async def test_inline_two_levels_and_list_relationships(kobe: httpx.AsyncClient) -> None:
    body = await get(kobe, S1, join="inline", joinLevel="2")
    ward = body["refParkingSite"]["entity"]["refWard"]["entity"]
    assert ward["id"] == W1 and ward["name"]["value"] == "中央区役所"
    assert "entityList" not in ward["managedParking"]  # level 3 is not asked for
    # from the car park: its ward, and the ward's ListRelationship back to the car park
    body = await get(kobe, P1, join="inline", joinLevel="2")
    ward = body["refWard"]["entity"]
    parking = ward["managedParking"]
    assert parking["objectList"] == [{"object": P1}, {"object": P_MISSING}]
    assert ids(parking["entityList"]) == [P1]  # the missing car park is skipped
    # P1 was met at depth 0: shown again, but its links are not expanded a second time
    assert "entity" not in parking["entityList"][0]["refWard"]


async def test_cycles_terminate(kobe: httpx.AsyncClient) -> None:
    flat = await get(kobe, S1, join="flat", joinLevel="10")
    assert ids(flat) == [S1, P1, W1]  # P1 is reached again from W1 but not repeated
    inline = await get(kobe, S1, join="inline", joinLevel="6")
    ward = inline["refParkingSite"]["entity"]["refWard"]["entity"]
    again = ward["managedParking"]["entityList"][0]
    assert again["id"] == P1 and "entity" not in again["refWard"]


async def test_flat_returns_the_entity_then_its_linked_entities(kobe: httpx.AsyncClient) -> None:
    one = await get(kobe, S1, join="flat")
    assert ids(one) == [S1, P1]
    assert one[0]["refParkingSite"] == {"type": "Relationship", "object": P1}
    assert "entity" not in one[1]["refWard"]
    two = await get(kobe, S1, join="flat", joinLevel="2")
    assert ids(two) == [S1, P1, W1]
    assert two[2]["managedParking"]["objectList"] == [{"object": P1}, {"object": P_MISSING}]


async def test_missing_targets_are_skipped(kobe: httpx.AsyncClient) -> None:
    plain = await get(kobe, S3)
    # ETSI 018_14: both join types give the entity as it is when the target does not exist
    assert await get(kobe, S3, join="inline") == plain
    assert await get(kobe, S3, join="flat") == plain
    assert await get(kobe, S3, join="@none") == plain


async def test_key_values_inline_replaces_the_reference_by_the_entity(
        kobe: httpx.AsyncClient) -> None:
    body = await get(kobe, S1, join="inline", joinLevel="2", options="keyValues")
    assert body["refParkingSite"] == {
        "id": P1, "type": "OffStreetParking", "name": "三宮中央駐車場", "totalSpotNumber": 120,
        "location": {"type": "Point", "coordinates": [135.1955, 34.6946]},
        "refWard": {"id": W1, "type": "Ward", "name": "中央区役所",
                    "managedParking": {"objectList": [P1, P_MISSING]}}}
    ward = await get(kobe, W1, join="inline", format="simplified")
    assert ward["managedParking"]["entityList"][0]["id"] == P1
    assert ward["managedParking"]["entityList"][1] == P_MISSING  # unresolved: stays a reference
    flat = await get(kobe, S1, join="flat", options="keyValues")
    assert flat == [{"id": S1, "type": "ParkingSpot", "name": "三宮 1番区画", "status": "free",
                     "refParkingSite": P1},
                    {"id": P1, "type": "OffStreetParking", "name": "三宮中央駐車場",
                     "totalSpotNumber": 120,
                     "location": {"type": "Point", "coordinates": [135.1955, 34.6946]},
                     "refWard": W1}]


async def test_linked_entities_share_the_representation(kobe: httpx.AsyncClient) -> None:
    body = await get(kobe, S1, join="inline", options="sysAttrs,concise")
    linked = body["refParkingSite"]["entity"]
    assert "createdAt" in linked and "modifiedAt" in linked  # ETSI 018_11
    assert linked["name"]["value"] == "三宮中央駐車場" and "type" not in linked["name"]
    flat = await get(kobe, S1, join="flat", options="sysAttrs")
    assert all("createdAt" in e for e in flat)  # ETSI 018_12


async def test_pick_and_omit_project_linked_entities_with_braces(kobe: httpx.AsyncClient) -> None:
    body = await get(kobe, S1, join="inline", joinLevel="2", pick="id,refParkingSite{id,name}")
    assert body == {"id": S1, "refParkingSite": {
        "type": "Relationship", "object": P1,
        "entity": {"id": P1, "name": {"type": "Property", "value": "三宮中央駐車場"}}}}
    # refWard is not picked on the car park, so the ward is not fetched (ETSI 018_20_02)
    flat = await get(kobe, S1, join="flat", joinLevel="2", pick="id,refParkingSite{id,name}")
    assert flat == [{"id": S1, "refParkingSite": {"type": "Relationship", "object": P1}},
                    {"id": P1, "name": {"type": "Property", "value": "三宮中央駐車場"}}]
    nested = await get(kobe, S1, join="flat", joinLevel="2",
                       pick="id,refParkingSite{id,refWard{id,name}}")
    assert nested[2] == {"id": W1, "name": {"type": "Property", "value": "中央区役所"}}
    # without braces pick applies to the requested entity only; an unpicked link is not followed
    assert await get(kobe, S1, join="flat", pick="id,name") == {
        "id": S1, "name": {"type": "Property", "value": "三宮 1番区画"}}
    omitted = await get(kobe, S1, join="flat", joinLevel="2",
                        omit="type,refParkingSite{totalSpotNumber,location}")
    assert "type" not in omitted[0]
    assert set(omitted[1]) == {"id", "type", "name", "refWard"}
    assert set(omitted[2]) == {"id", "type", "name", "managedParking"}  # ETSI 018_21


async def test_attrs_selects_what_is_followed(kobe: httpx.AsyncClient) -> None:
    body = await get(kobe, S1, join="inline", attrs="refParkingSite")
    assert set(body) == {"id", "type", "refParkingSite"}
    assert set(body["refParkingSite"]["entity"]) == {
        "id", "type", "name", "totalSpotNumber", "location", "refWard"}
    assert await get(kobe, S1, join="flat", attrs="status") == {
        "id": S1, "type": "ParkingSpot", "status": {"type": "Property", "value": "free"}}


async def test_object_type_restricts_the_linked_entities(app: Any,
                                                        kobe: httpx.AsyncClient) -> None:
    body = await get(kobe, S2, join="inline")
    assert body["refParkingSite"]["entity"]["id"] == P1
    assert "entity" not in body["observedBy"]  # W1 is a Ward, not a Device
    assert ids(await get(kobe, S2, join="flat")) == [S2, P1]
    # when every link of a level names an objectType, only entities of those types are fetched
    sensor = {"id": "urn:ngsi-ld:ParkingSpot:sannomiya-003", "type": "ParkingSpot",
              "observedBy": {"type": "Relationship", "object": W1, "objectType": "Device"}}
    assert (await kobe.post(f"{BASE}/entities", json=sensor)).status_code == 201
    plans = await _recording(app, get(kobe, sensor["id"], join="flat"))
    assert [sorted(next(iter(g)) for g in p.types.alternatives) for p in plans] == [
        ["https://uri.etsi.org/ngsi-ld/default-context/Device"]]
    assert (await get(kobe, sensor["id"], join="flat"))["id"] == sensor["id"]
    assert ids(await get(kobe, P1, join="flat")) == [P1, W1]  # objectType Ward fits


async def _recording(app: Any, call: Any) -> list[Any]:
    """The query plans the store receives while ``call`` runs."""
    store = app.state.broker.store.inner      # the engine behind the guarded store
    plans: list[Any] = []
    real_query = store.query

    async def recording(plan: Any) -> Any:
        plans.append(plan)
        return await real_query(plan)

    store.query = recording
    try:
        await call
    finally:
        del store.query
    return plans


async def test_query_flat_lists_each_linked_entity_once(kobe: httpx.AsyncClient) -> None:
    response = await kobe.get(f"{BASE}/entities",
                              params={"type": "ParkingSpot", "join": "flat", "count": "true"})
    assert response.status_code == 200, response.text
    assert ids(response.json()) == [S1, S2, S3, P1]  # ETSI 019_13_02: roots first
    assert response.headers["NGSILD-Results-Count"] == "3"  # the count is of matching entities
    response = await kobe.get(f"{BASE}/entities", params={
        "type": "ParkingSpot", "join": "inline", "joinLevel": "2", "limit": "2"})
    body = response.json()
    assert ids(body) == [S1, S2]
    assert all(e["refParkingSite"]["entity"]["refWard"]["entity"]["id"] == W1 for e in body)


async def test_query_geojson_with_join(kobe: httpx.AsyncClient) -> None:
    response = await kobe.get(f"{BASE}/entities", params={"type": "ParkingSpot", "join": "flat"},
                              headers={"Accept": "application/geo+json"})
    assert response.status_code == 200, response.text
    features = response.json()["features"]
    assert [f["id"] for f in features] == [S1, S2, S3, P1]
    assert features[3]["geometry"]["coordinates"] == [135.1955, 34.6946]
    response = await kobe.get(f"{BASE}/entities/{S1}", params={"join": "inline"},
                              headers={"Accept": "application/geo+json"})
    assert response.json()["properties"]["refParkingSite"]["entity"]["id"] == P1


async def test_json_ld_flat_items_each_carry_the_context(kobe: httpx.AsyncClient) -> None:
    response = await kobe.get(f"{BASE}/entities/{S1}", params={"join": "flat"},
                              headers={"Accept": "application/ld+json"})
    body = response.json()
    assert ids(body) == [S1, P1] and all("@context" in e for e in body)


async def test_post_query_with_join(kobe: httpx.AsyncClient) -> None:
    query = {"type": "Query", "entities": [{"type": "ParkingSpot"}], "q": 'status=="free"',
             "join": "inline", "joinLevel": 2}
    response = await kobe.post(f"{BASE}/entityOperations/query", json=query)
    assert response.status_code == 200, response.text
    [spot] = response.json()
    assert spot["refParkingSite"]["entity"]["refWard"]["entity"]["name"]["value"] == "中央区役所"
    query = {"type": "Query", "entities": [{"type": "ParkingSpot"}]}
    response = await kobe.post(f"{BASE}/entityOperations/query", json=query,
                               params={"join": "flat"})
    assert ids(response.json()) == [S1, S2, S3, P1]
    query |= {"join": "flat", "joinLevel": "2", "containedBy": [P1]}
    response = await kobe.post(f"{BASE}/entityOperations/query", json=query)
    assert ids(response.json()) == [S1, S2, S3]


async def test_contained_by_entities_are_not_returned_again(kobe: httpx.AsyncClient) -> None:
    assert ids(await get(kobe, S1, join="flat", joinLevel="2", containedBy=W1)) == [S1, P1]
    inline = await get(kobe, S1, join="inline", containedBy=P1)
    assert "entity" not in inline["refParkingSite"]


@pytest.mark.parametrize("params", [
    {"joinLevel": "2"},                                   # joinLevel without join
    {"containedBy": P1},                                  # containedBy without join
    {"join": "deep"},
    {"join": "inline", "joinLevel": "0"},
    {"join": "inline", "joinLevel": "-1"},
    {"join": "flat", "joinLevel": "abc"},
    {"join": "flat", "joinLevel": "11"},                  # above the documented maximum
    {"join": "flat", "containedBy": "not a uri"},
    {"join": "inline", "pick": "id,refParkingSite{id,name"},
    {"join": "inline", "pick": "id,refParkingSite{id,na me}"},
])
async def test_bad_join_parameters_are_400(kobe: httpx.AsyncClient, params: dict[str, str]) -> None:
    for url, more in ((f"{BASE}/entities/{S1}", {}), (f"{BASE}/entities", {"type": "ParkingSpot"})):
        response = await kobe.get(url, params=params | more)
        assert response.status_code == 400, (url, params, response.text)
        assert response.json()["type"] == ERR + "BadRequestData"


@pytest.mark.parametrize("extra", [{"join": 1}, {"join": "deep"}, {"joinLevel": 1},
                                   {"join": "flat", "joinLevel": True},
                                   {"join": "flat", "containedBy": [1]}])
async def test_bad_join_in_a_query_body_is_400(kobe: httpx.AsyncClient,
                                               extra: dict[str, Any]) -> None:
    query = {"type": "Query", "entities": [{"type": "ParkingSpot"}], **extra}
    response = await kobe.post(f"{BASE}/entityOperations/query", json=query)
    assert response.status_code == 400, response.text


async def test_join_stays_in_the_tenant(kobe: httpx.AsyncClient) -> None:
    tenant = {"NGSILD-Tenant": "kobe"}
    spot = {**ENTITIES[0], "name": {"type": "Property", "value": "テナントの区画"}}
    assert (await kobe.post(f"{BASE}/entities", json=spot, headers=tenant)).status_code == 201
    response = await kobe.get(f"{BASE}/entities/{S1}", params={"join": "inline"}, headers=tenant)
    assert "entity" not in response.json()["refParkingSite"]  # P1 exists in the default tenant
    response = await kobe.get(f"{BASE}/entities/{S1}", params={"join": "flat"}, headers=tenant)
    assert response.json()["id"] == S1


async def test_fan_out_is_one_bounded_query_per_level(app: Any, kobe: httpx.AsyncClient) -> None:
    broker = app.state.broker
    spots = [f"urn:ngsi-ld:ParkingSpot:kobe-{n}" for n in range(5)]
    await kobe.post(f"{BASE}/entityOperations/create",
                    json=[{"id": s, "type": "ParkingSpot",
                           "refParkingSite": {"type": "Relationship", "object": P1}}
                          for s in spots])
    hub = {"id": "urn:ngsi-ld:OffStreetParking:harborland", "type": "OffStreetParking",
           "spots": {"type": "ListRelationship", "objectList": spots},
           "refWard": {"type": "Relationship", "object": W1}}
    assert (await kobe.post(f"{BASE}/entities", json=hub)).status_code == 201
    broker.settings = dataclasses.replace(broker.settings, max_page_size=3)
    body: list[dict[str, Any]] = []

    async def retrieve() -> None:
        body.extend(await get(kobe, hub["id"], join="flat", joinLevel="2"))

    queries = await _recording(app, retrieve())
    # 6 targets at level 1, at most 3 of them fetched, in one query; level 2 in one more
    assert ids(body) == [hub["id"], *spots[:3], P1]
    assert [len(p.ids) for p in queries] == [3, 1]
    assert all(p.tenant == "" for p in queries)


async def test_join_responses_match_the_openapi_document(kobe: httpx.AsyncClient) -> None:
    from openapi_schema_validator import OAS31Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    from cityos.core.settings import Settings
    from cityos.data.ngsild import join
    from cityos.gateway import openapi_params
    from cityos.gateway.openapi_ngsild import build_openapi

    assert openapi_params.MAX_JOIN_LEVEL == join.MAX_JOIN_LEVEL
    assert openapi_params.INLINE_COPIES == join.INLINE_COPIES
    doc = build_openapi(Settings.load(database_url="sqlite://"), "http://cityos.test")
    registry: Registry = Registry().with_resource(
        "urn:cityos:openapi", Resource.from_contents(doc, default_specification=DRAFT202012))

    def validator(schema: Any) -> OAS31Validator:
        text = json.dumps(schema).replace('"#/components/', '"urn:cityos:openapi#/components/')
        return OAS31Validator(json.loads(text), registry=registry)

    def response_schema(path: str) -> Any:
        return doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]

    entity = validator({"$ref": "#/components/schemas/Entity"})  # normalized, strictly
    retrieve = validator(response_schema("/ngsi-ld/v1/entities/{entity_id}"))
    for entity_id in (S1, W1, P1):
        inline = await get(kobe, entity_id, join="inline", joinLevel="3")
        flat = await get(kobe, entity_id, join="flat", joinLevel="2")
        for body in (inline, *flat):
            assert not list(entity.iter_errors(body)), body
        for body in (inline, flat, await get(kobe, entity_id, join="flat", format="keyValues")):
            assert not list(retrieve.iter_errors(body))
    query = validator(response_schema("/ngsi-ld/v1/entities"))
    response = await kobe.get(f"{BASE}/entities", params={"type": "ParkingSpot,Ward",
                                                          "join": "inline", "joinLevel": "2"})
    assert not list(query.iter_errors(response.json()))
