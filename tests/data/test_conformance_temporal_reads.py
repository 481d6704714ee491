"""More temporal reads checked against the ETSI NGSI-LD suite (020_09 - 020_23, 021_*), on both
engines: timerel errors, the simplified form of every attribute type, deletions
(``timeproperty=deletedAt``), ``pick`` / ``omit``, ``datasetId`` and ``format`` over ``options``.
Helpers and the Vehicle fixture come from ``test_conformance_temporal``; docs/temporal.md lists
where CityOS knowingly differs.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.data.test_conformance_temporal import CAR, FUEL_DS, TEMPORAL, create, problem, prop

ENTITIES = "/ngsi-ld/v1/entities"
NULL = "urn:ngsi-ld:null"
COMMON = "urn:ngsi-ld:Dataset:Common"


@pytest.mark.parametrize("params", [
    pytest.param({"timerel": "after"}, id="020_09_01"),
    pytest.param({"timerel": "before"}, id="020_09_02"),
    pytest.param({"timerel": "between", "timeAt": "2020-08-01T12:00:00Z"}, id="020_09_03"),
    pytest.param({"timerel": "during", "timeAt": "2020-08-01T12:05:00Z"}, id="021_26_07"),
    pytest.param({"timerel": "after", "timeAt": "2020-08-01"}, id="021_26_09"),
])
async def test_invalid_time_relations(client: httpx.AsyncClient, params: dict[str, str]) -> None:
    await create(client)
    problem(await client.get(f"{TEMPORAL}/{CAR}", params=params), 400, "BadRequestData")


async def test_query_needs_an_entity_filter(client: httpx.AsyncClient) -> None:
    # ETSI 021_12_01 (only a time relation) and 021_24 (ids alone do not qualify either... in
    # v1.8 an id list is a filter: CityOS answers it, see docs/temporal.md)
    await create(client)
    problem(await client.get(TEMPORAL, params={"timerel": "after",
                                               "timeAt": "2020-07-01T12:05:00Z"}),
            400, "BadRequestData")


async def test_simplified_form_of_every_attribute_type(client: httpx.AsyncClient) -> None:
    # ETSI 020_10_01 (Property), 020_12_01/02 (LanguageProperty), 020_15_01/02 (JsonProperty),
    # 020_16_01/02 (VocabProperty)
    street = [{"type": "LanguageProperty", "languageMap": {"fr": "Grand Place", "nl": "Grote Markt"},
               "observedAt": "2020-08-01T12:03:00Z"},
              {"type": "LanguageProperty", "languageMap": {"fr": "Grand Marché", "it": "Mercato"},
               "observedAt": "2020-08-01T12:07:00Z"}]
    await create(client, {
        "id": CAR, "type": "Vehicle",
        "speed": [prop(120, "2020-08-01T12:03:00Z"), prop(80, "2020-08-01T12:05:00Z")],
        "street": street,
        "json": [{"type": "JsonProperty", "json": {"id": "x", "null": None},
                  "observedAt": "2020-08-01T12:03:00Z"}],
        "vocab": [{"type": "VocabProperty", "vocab": "monument",
                   "observedAt": "2020-08-01T12:03:00Z"}]})
    normal = (await client.get(f"{TEMPORAL}/{CAR}")).json()
    assert [i["languageMap"] for i in normal["street"]] == [s["languageMap"] for s in street]
    assert normal["json"][0]["json"] == {"id": "x", "null": None}
    simple = (await client.get(f"{TEMPORAL}/{CAR}", params={"options": "temporalValues"})).json()
    assert [v for v, _ in simple["speed"]["values"]] == [120, 80]
    assert simple["street"]["type"] == "LanguageProperty"
    assert [m for m, _ in simple["street"]["languageMaps"]] == [s["languageMap"] for s in street]
    assert simple["json"] == {"type": "JsonProperty",
                              "jsons": [[{"id": "x", "null": None}, "2020-08-01T12:03:00.000000Z"]]}
    assert simple["vocab"]["vocabs"][0][0] == "monument"


async def test_deleted_at(client: httpx.AsyncClient) -> None:
    # ETSI 020_17_01..03: timeproperty=deletedAt shows the deletions of attributes
    entity_id = "urn:ngsi-ld:Vehicle:etsi-020-17"
    got = await client.post(ENTITIES, json={
        "id": entity_id, "type": "Vehicle",
        "fuelLevel": {"type": "Property", "value": 67},
        "isParkedIn": {"type": "Relationship", "object": "urn:ngsi-ld:OffStreetParking:A"},
        "name": {"type": "LanguageProperty", "languageMap": {"fr": "Ma voiture"}}})
    assert got.status_code == 201, got.text
    for name in ("fuelLevel", "isParkedIn", "name"):
        assert (await client.delete(f"{ENTITIES}/{entity_id}/attrs/{name}")).status_code == 204
    body = (await client.get(f"{TEMPORAL}/{entity_id}",
                             params={"timeproperty": "deletedAt"})).json()
    fuel, parked, name = body["fuelLevel"], body["isParkedIn"], body["name"]
    assert [{k: v for k, v in i.items() if k not in ("instanceId", "deletedAt")}
            for i in (fuel[0], parked[0], name[0])] == [
        {"type": "Property", "value": NULL}, {"type": "Relationship", "object": NULL},
        {"type": "LanguageProperty", "languageMap": {"@none": NULL}}]
    assert all(i[0]["deletedAt"].endswith("Z") and i[0]["instanceId"]
               for i in (fuel, parked, name))
    # the live history still has the instances themselves, without deletion markers
    live = (await client.get(f"{TEMPORAL}/{entity_id}")).json()
    assert [i["value"] for i in live["fuelLevel"]] == [67]
    # temporalValues: the null value at the time of the deletion
    values = (await client.get(f"{TEMPORAL}/{entity_id}", params={
        "timeproperty": "deletedAt", "options": "temporalValues"})).json()
    assert values["fuelLevel"]["values"][0][0] == NULL
    problem(await client.get(f"{TEMPORAL}/{entity_id}", params={
        "timeproperty": "deletedAt", "options": "aggregatedValues", "aggrMethods": "max"}),
        400, "BadRequestData")


@pytest.mark.parametrize(("params", "members"), [
    pytest.param({"pick": "speed"}, {"speed"}, id="020_21_01"),
    pytest.param({"omit": "speed"}, {"id", "type", "fuelLevel"}, id="020_21_02"),
    pytest.param({"pick": "id,speed"}, {"id", "speed"}, id="020_21_03"),
    pytest.param({"omit": "type,speed"}, {"id", "fuelLevel"}, id="020_21_04"),
])
async def test_pick_and_omit(client: httpx.AsyncClient, params: dict[str, str],
                             members: set[str]) -> None:
    await create(client)
    got = await client.get(f"{TEMPORAL}/{CAR}", params=params)
    assert got.status_code == 200, got.text
    assert set(got.json()) == members
    # ETSI 021_21_01..06: the same on the query
    listed = await client.get(TEMPORAL, params={"type": "Vehicle", **params})
    assert [set(e) for e in listed.json()] == [members]


@pytest.mark.parametrize("params", [
    pytest.param({"pick": "speed", "omit": "speed"}, id="020_22_01"),
    pytest.param({"pick": "speed", "attrs": "fuelLevel"}, id="020_22_02"),
    pytest.param({"omit": "speed", "attrs": "fuelLevel"}, id="020_22_03"),
    pytest.param({"pick": "owner{name}"}, id="5741_01_02"),
])
async def test_invalid_pick_and_omit(client: httpx.AsyncClient, params: dict[str, str]) -> None:
    await create(client)
    problem(await client.get(f"{TEMPORAL}/{CAR}", params=params), 400, "BadRequestData")
    # ETSI 021_22_01..03 on the query
    problem(await client.get(TEMPORAL, params={"type": "Vehicle", **params}), 400,
            "BadRequestData")


@pytest.mark.parametrize("params", [
    pytest.param({"pick": "unknown"}, id="020_23_01"),
    pytest.param({"omit": "id,type,fuelLevel,speed"}, id="020_23_02"),
])
async def test_nothing_left_is_not_found(client: httpx.AsyncClient, params: dict[str, str]) -> None:
    await create(client)
    problem(await client.get(f"{TEMPORAL}/{CAR}", params=params), 404, "ResourceNotFound")


async def test_dataset_id_filter(client: httpx.AsyncClient) -> None:
    # ETSI 021_18_01..07: attrs and datasetId select instances (temporalValues)
    await create(client, {"id": CAR, "type": "Vehicle",
                          "speed": [prop(1, "2020-08-01T12:05:00Z"),
                                    prop(2, "2020-08-01T12:06:00Z", datasetId=COMMON)],
                          "fuelLevel": [prop(3, "2020-08-01T12:05:00Z", datasetId=FUEL_DS),
                                        prop(4, "2020-08-01T12:06:00Z", datasetId=COMMON)]})

    async def values(**params: str) -> dict[str, list[Any]]:
        got = await client.get(TEMPORAL, params={"type": "Vehicle", "timerel": "after",
                                                 "timeAt": "2020-08-01T12:04:00Z",
                                                 "options": "temporalValues", **params})
        assert got.status_code == 200, got.text
        out: dict[str, list[Any]] = {}
        for name, member in got.json()[0].items():
            if name in ("id", "type"):
                continue
            for group in member if isinstance(member, list) else [member]:
                out.setdefault(name, []).extend(v for v, _ in group["values"])
        return out

    assert await values(attrs="speed") == {"speed": [1, 2]}
    assert await values(datasetId=COMMON) == {"speed": [2], "fuelLevel": [4]}
    assert await values(datasetId=f"{COMMON},{FUEL_DS}") == {"speed": [2], "fuelLevel": [3, 4]}
    assert await values(datasetId="@none") == {"speed": [1]}
    assert await values(attrs="speed", datasetId="@none") == {"speed": [1]}
    assert await values(attrs="fuelLevel", datasetId=FUEL_DS) == {"fuelLevel": [3]}
    assert await values(attrs="speed", datasetId=FUEL_DS) == {}
    problem(await client.get(f"{TEMPORAL}/{CAR}", params={"datasetId": "not a uri"}), 400,
            "BadRequestData")
    # on one entity, and in aggregations
    one = (await client.get(f"{TEMPORAL}/{CAR}", params={"datasetId": COMMON})).json()
    assert [i["value"] for i in one["fuelLevel"]] == [4]
    sums = (await client.get(f"{TEMPORAL}/{CAR}", params={
        "datasetId": FUEL_DS, "options": "aggregatedValues", "aggrMethods": "sum"})).json()
    assert sums["fuelLevel"]["sum"][0][0] == 3 and "speed" not in sums


async def test_format_wins_over_options(client: httpx.AsyncClient) -> None:
    # ETSI 021_19_01..03: format alone, format over options (aggregation parameters then moot),
    # options alone
    await create(client)
    base = {"type": "Vehicle", "timerel": "after", "timeAt": "2020-01-01T12:03:00Z"}
    for extra in ({"format": "temporalValues"},
                  {"format": "temporalValues", "options": "aggregatedValues",
                   "aggrMethods": "sum"},
                  {"options": "temporalValues"}):
        got = await client.get(TEMPORAL, params={**base, **extra})
        assert got.status_code == 200, (extra, got.text)
        assert "values" in got.json()[0]["speed"]
    # aggregation parameters without any aggregatedValues stay an error
    problem(await client.get(TEMPORAL, params={**base, "aggrMethods": "sum"}), 400,
            "BadRequestData")


async def test_time_bounds(client: httpx.AsyncClient) -> None:
    # ETSI 021_26_03..06: before is exclusive, between is [timeAt, endTimeAt), whatever the
    # spelling of the instant (021_26_01/02, after inclusive, is v1.9.1: see docs/temporal.md)
    await create(client, {"id": CAR, "type": "Vehicle", "speed": [
        prop(1, "2020-08-01T12:03:00Z"), prop(2, "2020-08-01T12:05:00Z"),
        prop(3, "2020-08-01T12:07:00Z")]})

    async def speeds(**params: str) -> list[Any]:
        got = await client.get(f"{TEMPORAL}/{CAR}", params={"attrs": "speed", **params})
        return [i["value"] for i in got.json().get("speed", [])]

    for at in ("2020-08-01T12:05:00Z", "2020-08-01T12:05:00.000Z"):
        assert await speeds(timerel="before", timeAt=at) == [1]
        assert await speeds(timerel="after", timeAt=at) == [3]
    assert await speeds(timerel="between", timeAt="2020-08-01T12:03:00.000Z",
                        endTimeAt="2020-08-01T12:05:00Z") == [1]


async def test_simplified_geo_and_list_types(client: httpx.AsyncClient) -> None:
    # ETSI 459_01: GeoProperty pairs under values, ListProperty / ListRelationship as bare arrays
    await create(client, {"id": CAR, "type": "Vehicle",
                          "location": [{"type": "GeoProperty", "observedAt": "2026-08-10T00:00:01Z",
                                        "value": {"type": "Point", "coordinates": [1.0, 2.0]}}],
                          "tyres": {"type": "ListProperty", "valueList": [1.2, 3.4],
                                    "observedAt": "2026-08-10T00:00:01Z"},
                          "route": {"type": "ListRelationship", "observedAt": "2026-08-10T00:00:01Z",
                                    "objectList": ["urn:ngsi-ld:Road:1", "urn:ngsi-ld:Road:2"]}})
    body = (await client.get(f"{TEMPORAL}/{CAR}", params={"options": "temporalValues"})).json()
    assert set(body["location"]) == {"type", "values"}
    assert body["location"]["values"][0][0] == {"type": "Point", "coordinates": [1.0, 2.0]}
    assert body["tyres"]["valueLists"][0][0] == [1.2, 3.4]
    assert body["route"]["objectLists"][0][0] == ["urn:ngsi-ld:Road:1", "urn:ngsi-ld:Road:2"]


async def test_upsert_unions_types_and_keeps_null_instances(client: httpx.AsyncClient) -> None:
    # ETSI 5611_01_01: a second POST adds a type and an instance valued urn:ngsi-ld:null;
    # 5611_01_02: a null entity member is refused and nothing is stored
    await create(client, {"id": CAR, "type": "Vehicle", "speed": [prop(1, "2026-01-01T00:00:00Z")]})
    again = await client.post(TEMPORAL, json={"id": CAR, "type": ["Vehicle", "Truck"],
                                              "speed": [prop(NULL, "2026-01-02T00:00:00Z")]})
    assert again.status_code == 204, again.text
    body = (await client.get(f"{TEMPORAL}/{CAR}")).json()
    assert body["type"] == ["Vehicle", "Truck"]
    assert [i["value"] for i in body["speed"]] == [1, NULL]
    other = "urn:ngsi-ld:Vehicle:etsi-5611"
    problem(await client.post(TEMPORAL, json={"id": other, "type": "Vehicle",
                                              "expiresAt": NULL,
                                              "speed": [prop(1, "2026-01-01T00:00:00Z")]}),
            400, "BadRequestData")
    problem(await client.get(f"{TEMPORAL}/{other}"), 404, "ResourceNotFound")
