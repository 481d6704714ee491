"""POST /entityOperations/query with several EntitySelectors: any selector selects an entity."""

from __future__ import annotations

import httpx

BASE = "/ngsi-ld/v1"


async def _seed(client: httpx.AsyncClient) -> None:
    entities = [
        {"id": "urn:ngsi-ld:ParkingSpot:kobe:1", "type": "ParkingSpot",
         "name": {"type": "Property", "value": "三宮 1番"}, "free": {"type": "Property", "value": True}},
        {"id": "urn:ngsi-ld:ParkingSpot:kobe:2", "type": "ParkingSpot",
         "name": {"type": "Property", "value": "三宮 2番"}, "free": {"type": "Property", "value": False}},
        {"id": "urn:ngsi-ld:Streetlight:kobe:1", "type": "Streetlight",
         "name": {"type": "Property", "value": "街灯 1"}, "free": {"type": "Property", "value": True}},
        {"id": "urn:ngsi-ld:Shelter:kobe:1", "type": "Shelter",
         "name": {"type": "Property", "value": "東遊園地"}},
    ]
    response = await client.post(f"{BASE}/entityOperations/create", json=entities)
    assert response.status_code == 201, response.text


async def _query(client: httpx.AsyncClient, body: dict[str, object], **params: str) -> httpx.Response:
    return await client.post(f"{BASE}/entityOperations/query", json={"type": "Query", **body},
                             params=params)


async def test_two_selectors_select_the_union(client: httpx.AsyncClient) -> None:
    await _seed(client)
    response = await _query(client, {"entities": [{"type": "Streetlight"},
                                                  {"id": "urn:ngsi-ld:Shelter:kobe:1"}]},
                            count="true")
    assert response.status_code == 200, response.text
    assert [e["id"] for e in response.json()] == ["urn:ngsi-ld:Streetlight:kobe:1",
                                                  "urn:ngsi-ld:Shelter:kobe:1"]
    assert response.headers["NGSILD-Results-Count"] == "2"


async def test_selectors_combine_with_q_and_each_selector_is_exact(client: httpx.AsyncClient) -> None:
    await _seed(client)
    response = await _query(client, {
        "entities": [{"type": "ParkingSpot", "idPattern": ":2$"}, {"type": "Streetlight"}],
        "q": "free==true"})
    assert response.status_code == 200, response.text
    assert [e["id"] for e in response.json()] == ["urn:ngsi-ld:Streetlight:kobe:1"]
    response = await _query(client, {
        "entities": [{"type": "ParkingSpot", "idPattern": ":2$"}, {"type": "Streetlight"}]})
    assert sorted(e["id"] for e in response.json()) == ["urn:ngsi-ld:ParkingSpot:kobe:2",
                                                        "urn:ngsi-ld:Streetlight:kobe:1"]


async def test_selectors_without_types_mix_ids_and_patterns(client: httpx.AsyncClient) -> None:
    await _seed(client)
    response = await _query(client, {"entities": [{"idPattern": "Shelter"},
                                                  {"id": "urn:ngsi-ld:ParkingSpot:kobe:1"}]})
    assert sorted(e["id"] for e in response.json()) == ["urn:ngsi-ld:ParkingSpot:kobe:1",
                                                        "urn:ngsi-ld:Shelter:kobe:1"]


async def test_bad_selectors_are_400(client: httpx.AsyncClient) -> None:
    await _seed(client)
    for entities in ([], [{"type": 3}], [{}, {"type": "A"}], [{"type": "A"}, {"idPattern": "("}],
                     [{"type": "A"}, {"bogus": "x"}], ["urn:x"]):
        response = await _query(client, {"entities": entities})
        assert response.status_code == 400, (entities, response.text)
        assert response.json()["type"].endswith("/BadRequestData")
