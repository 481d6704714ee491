"""Contract tests: entity representations (CIM 009 4.5): normalized, concise, simplified, GeoJSON,
attrs / pick / omit, lang, and content negotiation of the response (clause 6.3.4 - 6.3.6)."""

from __future__ import annotations

from typing import Any

import httpx

BASE = "/ngsi-ld/v1"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
EID = "urn:ngsi-ld:PointOfInterest:ikuta-jinja"

SHRINE: dict[str, Any] = {
    "id": EID,
    "type": "PointOfInterest",
    "name": {"type": "LanguageProperty",
             "languageMap": {"ja": "生田神社", "en": "Ikuta Shrine", "@none": "Ikuta-jinja"}},
    "visitors": {"type": "Property", "value": 1200, "unitCode": "IE",
                 "observedAt": "2026-01-01T10:00:00+09:00",
                 "reliability": {"type": "Property", "value": 0.9}},
    "operator": {"type": "Relationship", "object": "urn:ngsi-ld:Organization:ikuta"},
    "category": {"type": "VocabProperty", "vocab": "shrine"},
    "openingHours": {"type": "ListProperty", "valueList": ["07:00", "17:00"]},
    "nearby": {"type": "ListRelationship",
               "objectList": [{"object": "urn:ngsi-ld:Station:sannomiya"}]},
    "extra": {"type": "JsonProperty", "json": {"鳥居": 1}},
    "location": {"type": "GeoProperty",
                 "value": {"type": "Point", "coordinates": [135.1910, 34.6960]}},
    "entrance": {"type": "GeoProperty",
                 "value": {"type": "Point", "coordinates": [135.1912, 34.6950]}},
}


async def setup(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{BASE}/entities", json=SHRINE)
    assert response.status_code == 201, response.text


async def get(client: httpx.AsyncClient, headers: dict[str, str] | None = None,
              **params: str) -> httpx.Response:
    return await client.get(f"{BASE}/entities/{EID}", params=params, headers=headers)


async def test_normalized_is_the_default_and_lossless(client: httpx.AsyncClient) -> None:
    await setup(client)
    response = await get(client)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    expected = {k: v for k, v in SHRINE.items()}
    expected["visitors"] = {**SHRINE["visitors"], "observedAt": "2026-01-01T01:00:00.000Z"}
    assert body == expected


async def test_concise_drops_types_but_stays_unambiguous(client: httpx.AsyncClient) -> None:
    await setup(client)
    for params in ({"options": "concise"}, {"format": "concise"}):
        body = (await get(client, **params)).json()
        assert body["visitors"] == {"value": 1200, "unitCode": "IE",
                                    "observedAt": "2026-01-01T01:00:00.000Z",
                                    "reliability": 0.9}
        assert body["operator"] == {"object": "urn:ngsi-ld:Organization:ikuta"}
        assert body["name"] == {"languageMap": SHRINE["name"]["languageMap"]}
        assert body["category"] == {"vocab": "shrine"}
        assert body["openingHours"] == {"valueList": ["07:00", "17:00"]}
        assert body["extra"] == {"json": {"鳥居": 1}}
        assert body["location"] == SHRINE["location"]["value"]


async def test_simplified_key_values(client: httpx.AsyncClient) -> None:
    await setup(client)
    for params in ({"options": "keyValues"}, {"options": "simplified"},
                   {"format": "simplified"}, {"format": "keyValues"}):
        body = (await get(client, **params)).json()
        assert body["visitors"] == 1200
        assert body["operator"] == "urn:ngsi-ld:Organization:ikuta"
        assert body["location"] == SHRINE["location"]["value"]
        assert body["name"] == {"languageMap": SHRINE["name"]["languageMap"]}
        assert body["category"] == {"vocab": "shrine"}
        assert body["openingHours"] == {"valueList": ["07:00", "17:00"]}
        assert body["nearby"] == {"objectList": ["urn:ngsi-ld:Station:sannomiya"]}
        assert body["extra"] == {"json": {"鳥居": 1}}


async def test_conflicting_or_unknown_options_are_400(client: httpx.AsyncClient) -> None:
    await setup(client)
    for params in ({"options": "keyValues,concise"}, {"options": "fancy"},
                   {"format": "xml"}):
        response = await get(client, **params)
        assert response.status_code == 400, params
        assert response.json()["type"] == ERR + "BadRequestData"


async def test_lang_turns_a_language_property_into_a_property(client: httpx.AsyncClient) -> None:
    await setup(client)
    body = (await get(client, lang="ja")).json()
    assert body["name"] == {"type": "Property", "value": "生田神社", "lang": "ja"}
    assert (await get(client, lang="ja", options="keyValues")).json()["name"] == "生田神社"
    # a language the map lacks falls back to @none
    assert (await get(client, lang="fr")).json()["name"]["lang"] == "@none"
    assert (await get(client, lang="*")).json()["name"]["type"] == "Property"


async def test_attrs_pick_and_omit(client: httpx.AsyncClient) -> None:
    await setup(client)
    body = (await get(client, attrs="name,visitors")).json()
    assert set(body) == {"id", "type", "name", "visitors"}
    body = (await get(client, pick="id,visitors")).json()
    assert set(body) == {"id", "visitors"}
    body = (await get(client, omit="type,location,entrance")).json()
    assert "type" not in body and "location" not in body and "name" in body
    response = await get(client, pick="id", omit="type")
    assert response.status_code == 400
    # none of the requested attributes: 404 (clause 5.7.1, ETSI test 018_03_02)
    response = await get(client, attrs="doesNotExist")
    assert response.status_code == 404
    assert response.json()["type"] == ERR + "ResourceNotFound"


async def test_sys_attrs_only_on_request(client: httpx.AsyncClient) -> None:
    await setup(client)
    assert "createdAt" not in (await get(client)).json()
    body = (await get(client, options="sysAttrs")).json()
    assert body["createdAt"] <= body["modifiedAt"]
    assert "modifiedAt" in body["visitors"]
    simplified = (await get(client, options="sysAttrs,keyValues")).json()
    assert simplified["visitors"] == 1200


async def test_geojson_feature_and_geometry_property(client: httpx.AsyncClient) -> None:
    await setup(client)
    geo = {"Accept": "application/geo+json"}
    response = await get(client, headers=geo)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json")
    feature = response.json()
    assert feature["type"] == "Feature" and feature["id"] == EID
    assert feature["geometry"] == SHRINE["location"]["value"]
    assert feature["properties"]["type"] == "PointOfInterest"
    assert feature["properties"]["visitors"]["value"] == 1200
    other = (await get(client, headers=geo, geometryProperty="entrance")).json()
    assert other["geometry"] == SHRINE["entrance"]["value"]
    simple = (await get(client, headers=geo, options="keyValues")).json()
    assert simple["properties"]["visitors"] == 1200
    collection = await client.get(f"{BASE}/entities", params={"type": "PointOfInterest"},
                                  headers=geo)
    assert collection.headers["content-type"].startswith("application/geo+json")
    assert collection.json()["type"] == "FeatureCollection"
    assert [f["id"] for f in collection.json()["features"]] == [EID]


async def test_json_response_names_the_context_in_a_link_header(
        client: httpx.AsyncClient) -> None:
    await setup(client)
    response = await get(client)
    link = response.headers["link"]
    assert f"<{CORE}>" in link and 'rel="http://www.w3.org/ns/json-ld#context"' in link
    assert "@context" not in response.json()


async def test_json_ld_response_carries_context_in_the_body(client: httpx.AsyncClient) -> None:
    await setup(client)
    response = await get(client, headers={"Accept": "application/ld+json"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/ld+json")
    assert response.json()["@context"] == CORE
    listing = await client.get(f"{BASE}/entities", params={"type": "PointOfInterest"},
                               headers={"Accept": "application/ld+json"})
    assert all(e["@context"] == CORE for e in listing.json())


async def test_accept_negotiation(client: httpx.AsyncClient) -> None:
    await setup(client)
    for accept, expected in (("*/*", "application/json"),
                             ("application/*", "application/json"),
                             ("text/html, application/ld+json;q=0.5", "application/ld+json"),
                             ("application/json;q=0.2, application/ld+json", "application/ld+json")):
        response = await get(client, headers={"Accept": accept})
        assert response.status_code == 200, accept
        assert response.headers["content-type"].startswith(expected), accept
    response = await get(client, headers={"Accept": "text/html"})
    assert response.status_code == 406
    assert response.json()["type"] == ERR + "NotAcceptable"
    response = await get(client, headers={"Accept": "application/geo+json"}, options="fancy")
    assert response.status_code == 400
