"""Contract tests: entity create / retrieve / replace / merge / delete / purge (CIM 009 5.6, 6.4-6.5).

Status codes and bodies as ETSI GS CIM 009 v1.8 and the ETSI NGSI-LD test suite expect them:
201 + Location on create, 204 on replace/merge/delete, 409 AlreadyExists, 404 ResourceNotFound.
"""

from __future__ import annotations

from typing import Any

import httpx

BASE = "/ngsi-ld/v1"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
KOBE = "urn:ngsi-ld:WeatherObserved:kobe-city-hall"


def weather(entity_id: str = KOBE, **extra: Any) -> dict[str, Any]:
    """A weather observation at Kobe City Hall, in normalized form, with Japanese text."""
    return {
        "id": entity_id,
        "type": "WeatherObserved",
        "name": {"type": "Property", "value": "神戸市役所 気象観測点"},
        "temperature": {"type": "Property", "value": 12.5, "unitCode": "CEL",
                        "observedAt": "2026-11-25T09:00:00+09:00"},
        "location": {"type": "GeoProperty",
                     "value": {"type": "Point", "coordinates": [135.1955, 34.6901]}},
        **extra,
    }


async def create(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post(f"{BASE}/entities", json=body)


async def get(client: httpx.AsyncClient, entity_id: str, **params: str) -> httpx.Response:
    return await client.get(f"{BASE}/entities/{entity_id}", params=params)


def problem(response: httpx.Response, status: int, name: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["type"] == ERR + name, body
    assert body["title"] and body["detail"] and body["title"] != body["detail"]
    return body


async def test_create_answers_201_with_location_and_no_body(client: httpx.AsyncClient) -> None:
    response = await create(client, weather())
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"{BASE}/entities/{KOBE}"
    assert response.content == b""
    got = await get(client, KOBE)
    assert got.status_code == 200
    body = got.json()
    assert body["id"] == KOBE and body["type"] == "WeatherObserved"
    assert body["name"] == {"type": "Property", "value": "神戸市役所 気象観測点"}
    # +09:00 is normalised to the same instant in UTC
    assert body["temperature"]["observedAt"] == "2026-11-25T00:00:00.000Z"
    assert body["temperature"]["unitCode"] == "CEL"


async def test_create_twice_is_409_already_exists(client: httpx.AsyncClient) -> None:
    assert (await create(client, weather())).status_code == 201
    problem(await create(client, weather()), 409, "AlreadyExists")


async def test_retrieve_unknown_entity_is_404(client: httpx.AsyncClient) -> None:
    problem(await get(client, "urn:ngsi-ld:WeatherObserved:nowhere"), 404, "ResourceNotFound")


async def test_retrieve_with_other_type_is_404(client: httpx.AsyncClient) -> None:
    await create(client, weather())
    problem(await get(client, KOBE, type="Building"), 404, "ResourceNotFound")
    assert (await get(client, KOBE, type="WeatherObserved")).status_code == 200


async def test_invalid_entity_ids_and_missing_type_are_400(client: httpx.AsyncClient) -> None:
    problem(await create(client, weather("not a uri")), 400, "BadRequestData")
    no_type = weather()
    del no_type["type"]
    problem(await create(client, no_type), 400, "BadRequestData")
    problem(await get(client, "神戸"), 400, "BadRequestData")


async def test_create_refuses_null_values(client: httpx.AsyncClient) -> None:
    body = weather(pressure={"type": "Property", "value": "urn:ngsi-ld:null"})
    problem(await create(client, body), 400, "BadRequestData")
    assert (await get(client, KOBE)).status_code == 404


async def test_replace_entity_keeps_only_the_new_attributes(client: httpx.AsyncClient) -> None:
    await create(client, weather())
    before = (await get(client, KOBE, options="sysAttrs")).json()
    replacement = {"id": KOBE, "type": "WeatherObserved",
                   "humidity": {"type": "Property", "value": 64}}
    response = await client.put(f"{BASE}/entities/{KOBE}", json=replacement)
    assert response.status_code == 204, response.text
    after = (await get(client, KOBE, options="sysAttrs")).json()
    assert "temperature" not in after and "name" not in after
    assert after["humidity"]["value"] == 64
    assert after["createdAt"] == before["createdAt"]
    assert after["modifiedAt"] > before["modifiedAt"]


async def test_replace_unknown_entity_is_404_and_id_mismatch_400(client: httpx.AsyncClient) -> None:
    body = {"type": "WeatherObserved", "humidity": {"type": "Property", "value": 1}}
    problem(await client.put(f"{BASE}/entities/{KOBE}", json=body), 404, "ResourceNotFound")
    await create(client, weather())
    mismatch = {**body, "id": "urn:ngsi-ld:WeatherObserved:osaka"}
    problem(await client.put(f"{BASE}/entities/{KOBE}", json=mismatch), 400, "BadRequestData")


async def test_merge_patch_adds_merges_and_deletes_with_ngsi_ld_null(
        client: httpx.AsyncClient) -> None:
    body = weather(temperature={"type": "Property", "value": 12.5, "unitCode": "CEL",
                                "accuracy": {"type": "Property", "value": 0.5}})
    await create(client, body)
    patch = {
        "temperature": {"value": 13.0},                       # merged: unitCode and sub-attr kept
        "name": "urn:ngsi-ld:null",                          # deleted
        "humidity": {"type": "Property", "value": 70},       # added
    }
    response = await client.patch(f"{BASE}/entities/{KOBE}", json=patch)
    assert response.status_code == 204, response.text
    after = (await get(client, KOBE)).json()
    assert "name" not in after
    assert after["humidity"]["value"] == 70
    assert after["temperature"]["value"] == 13.0
    assert after["temperature"]["unitCode"] == "CEL"
    assert after["temperature"]["accuracy"]["value"] == 0.5


async def test_merge_patch_accepts_merge_patch_json_and_deletes_sub_attributes(
        client: httpx.AsyncClient) -> None:
    body = weather(temperature={"type": "Property", "value": 12.5,
                                "accuracy": {"type": "Property", "value": 0.5}})
    await create(client, body)
    response = await client.patch(
        f"{BASE}/entities/{KOBE}", content=b'{"temperature": {"accuracy": "urn:ngsi-ld:null"}}',
        headers={"Content-Type": "application/merge-patch+json"})
    assert response.status_code == 204, response.text
    after = (await get(client, KOBE)).json()
    assert "accuracy" not in after["temperature"]
    assert after["temperature"]["value"] == 12.5


async def test_merge_unknown_entity_is_404(client: httpx.AsyncClient) -> None:
    response = await client.patch(f"{BASE}/entities/{KOBE}",
                                  json={"humidity": {"type": "Property", "value": 1}})
    problem(response, 404, "ResourceNotFound")


async def test_delete_entity_then_it_is_gone(client: httpx.AsyncClient) -> None:
    await create(client, weather())
    response = await client.delete(f"{BASE}/entities/{KOBE}")
    assert response.status_code == 204
    assert response.content == b""
    problem(await get(client, KOBE), 404, "ResourceNotFound")
    problem(await client.delete(f"{BASE}/entities/{KOBE}"), 404, "ResourceNotFound")


async def test_purge_by_query_deletes_only_the_matching_entities(
        client: httpx.AsyncClient) -> None:
    for n, temp in enumerate([5, 15, 25]):
        entity = weather(f"urn:ngsi-ld:WeatherObserved:{n}",
                         temperature={"type": "Property", "value": temp})
        assert (await create(client, entity)).status_code == 201
    await create(client, {"id": "urn:ngsi-ld:Building:kobe-tower", "type": "Building",
                          "temperature": {"type": "Property", "value": 30}})
    response = await client.delete(f"{BASE}/entities",
                                   params={"type": "WeatherObserved", "q": "temperature>10"})
    assert response.status_code == 204, response.text
    left = await client.get(f"{BASE}/entities", params={"local": "true"})
    assert sorted(e["id"] for e in left.json()) == [
        "urn:ngsi-ld:Building:kobe-tower", "urn:ngsi-ld:WeatherObserved:0"]


async def test_purge_needs_a_filter(client: httpx.AsyncClient) -> None:
    problem(await client.delete(f"{BASE}/entities"), 400, "BadRequestData")


async def test_entity_ids_with_reserved_characters_round_trip(client: httpx.AsyncClient) -> None:
    entity_id = "urn:ngsi-ld:Station:神戸三宮"
    response = await create(client, weather(entity_id))
    assert response.status_code == 201
    location = response.headers["location"]
    assert (await client.get(location)).json()["id"] == entity_id
