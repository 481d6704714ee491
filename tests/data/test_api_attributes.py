"""Contract tests: attribute operations and attribute kinds (CIM 009 4.5, 5.6.2 - 5.6.5, 5.6.19).

Append (204, or 207 with an UpdateResult under noOverwrite), update (204 / 207 notUpdated),
partial update, replace, delete with datasetId / deleteAll; every attribute type of v1.8;
sub-attributes, multi-attribute instances, observedAt normalisation and system attributes.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

BASE = "/ngsi-ld/v1"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
EID = "urn:ngsi-ld:AirQualityObserved:sannomiya"
ATTRS = f"{BASE}/entities/{EID}/attrs"


async def make(client: httpx.AsyncClient, **attrs: Any) -> None:
    body = {"id": EID, "type": "AirQualityObserved",
            "no2": {"type": "Property", "value": 22, "unitCode": "GQ"}, **attrs}
    response = await client.post(f"{BASE}/entities", json=body)
    assert response.status_code == 201, response.text


async def fetch(client: httpx.AsyncClient, **params: str) -> dict[str, Any]:
    response = await client.get(f"{BASE}/entities/{EID}", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def problem(response: httpx.Response, status: int, name: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["type"] == ERR + name


# ---------------------------------------------------------------------------------- append

async def test_append_new_and_existing_attributes_is_204(client: httpx.AsyncClient) -> None:
    await make(client)
    body = {"no2": {"type": "Property", "value": 30},
            "pm25": {"type": "Property", "value": 8, "unitCode": "GQ"}}
    response = await client.post(ATTRS, json=body)
    assert response.status_code == 204, response.text
    got = await fetch(client)
    assert got["no2"]["value"] == 30 and "unitCode" not in got["no2"]  # overwritten whole
    assert got["pm25"]["value"] == 8


async def test_append_no_overwrite_reports_207_update_result(client: httpx.AsyncClient) -> None:
    await make(client)
    body = {"no2": {"type": "Property", "value": 99},
            "pm10": {"type": "Property", "value": 15}}
    response = await client.post(ATTRS, params={"options": "noOverwrite"}, json=body)
    assert response.status_code == 207, response.text
    result = response.json()
    assert result["updated"] == ["pm10"]
    assert [n["attributeName"] for n in result["notUpdated"]] == ["no2"]
    assert all(n["reason"] for n in result["notUpdated"])
    got = await fetch(client)
    assert got["no2"]["value"] == 22 and got["pm10"]["value"] == 15


async def test_append_no_overwrite_with_only_new_attributes_is_204(
        client: httpx.AsyncClient) -> None:
    await make(client)
    response = await client.post(ATTRS, params={"options": "noOverwrite"},
                                 json={"o3": {"type": "Property", "value": 40}})
    assert response.status_code == 204


async def test_append_to_unknown_entity_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post(ATTRS, json={"o3": {"type": "Property", "value": 40}})
    problem(response, 404, "ResourceNotFound")


# ---------------------------------------------------------------------------------- update

async def test_update_existing_attributes_is_204(client: httpx.AsyncClient) -> None:
    await make(client)
    response = await client.patch(ATTRS, json={"no2": {"type": "Property", "value": 25}})
    assert response.status_code == 204, response.text
    assert (await fetch(client))["no2"]["value"] == 25


async def test_update_with_missing_attribute_is_207_not_updated(
        client: httpx.AsyncClient) -> None:
    await make(client)
    response = await client.patch(ATTRS, json={"no2": {"type": "Property", "value": 26},
                                               "so2": {"type": "Property", "value": 3}})
    assert response.status_code == 207, response.text
    result = response.json()
    assert result["updated"] == ["no2"]
    assert [n["attributeName"] for n in result["notUpdated"]] == ["so2"]
    got = await fetch(client)
    assert got["no2"]["value"] == 26 and "so2" not in got


async def test_update_of_unknown_entity_is_404(client: httpx.AsyncClient) -> None:
    problem(await client.patch(ATTRS, json={"no2": {"type": "Property", "value": 1}}),
            404, "ResourceNotFound")


# ------------------------------------------------------------------- partial update, replace

async def test_partial_attribute_update_keeps_other_members(client: httpx.AsyncClient) -> None:
    await make(client)
    response = await client.patch(f"{ATTRS}/no2", json={"value": 31})
    assert response.status_code == 204, response.text
    got = (await fetch(client))["no2"]
    assert got == {"type": "Property", "value": 31, "unitCode": "GQ"}


async def test_partial_update_of_missing_attribute_is_404(client: httpx.AsyncClient) -> None:
    await make(client)
    problem(await client.patch(f"{ATTRS}/pm25", json={"value": 1}), 404, "ResourceNotFound")


async def test_replace_attribute_drops_old_members(client: httpx.AsyncClient) -> None:
    await make(client)
    response = await client.put(f"{ATTRS}/no2", json={"type": "Property", "value": 40})
    assert response.status_code == 204, response.text
    assert (await fetch(client))["no2"] == {"type": "Property", "value": 40}
    problem(await client.put(f"{ATTRS}/pm25", json={"type": "Property", "value": 1}),
            404, "ResourceNotFound")


# ---------------------------------------------------------------------------------- delete

async def test_delete_attribute_and_dataset_instances(client: httpx.AsyncClient) -> None:
    await make(client, pm25=[
        {"type": "Property", "value": 8},
        {"type": "Property", "value": 9, "datasetId": "urn:ngsi-ld:Dataset:sensor-a"},
        {"type": "Property", "value": 10, "datasetId": "urn:ngsi-ld:Dataset:sensor-b"},
    ])
    response = await client.delete(f"{ATTRS}/pm25",
                                   params={"datasetId": "urn:ngsi-ld:Dataset:sensor-a"})
    assert response.status_code == 204, response.text
    left = (await fetch(client))["pm25"]
    assert sorted(i.get("datasetId", "") for i in left) == ["", "urn:ngsi-ld:Dataset:sensor-b"]
    # without datasetId only the default instance goes
    assert (await client.delete(f"{ATTRS}/pm25")).status_code == 204
    left = (await fetch(client))["pm25"]
    left = left if isinstance(left, list) else [left]
    assert [i["datasetId"] for i in left] == ["urn:ngsi-ld:Dataset:sensor-b"]
    problem(await client.delete(f"{ATTRS}/pm25", params={"datasetId": "urn:ngsi-ld:Dataset:x"}),
            404, "ResourceNotFound")


async def test_delete_all_instances(client: httpx.AsyncClient) -> None:
    await make(client, pm25=[
        {"type": "Property", "value": 8},
        {"type": "Property", "value": 9, "datasetId": "urn:ngsi-ld:Dataset:sensor-a"},
    ])
    response = await client.delete(f"{ATTRS}/pm25", params={"deleteAll": "true"})
    assert response.status_code == 204
    assert "pm25" not in await fetch(client)
    problem(await client.delete(f"{ATTRS}/pm25"), 404, "ResourceNotFound")


# --------------------------------------------------------------------------- attribute kinds

ALL_KINDS: dict[str, Any] = {
    "name": {"type": "LanguageProperty", "languageMap": {"ja": "三宮駅前", "en": "Sannomiya"}},
    "refDevice": {"type": "Relationship", "object": "urn:ngsi-ld:Device:no2-1",
                  "objectType": "Device"},
    "location": {"type": "GeoProperty",
                 "value": {"type": "Point", "coordinates": [135.1953, 34.6946]}},
    "category": {"type": "VocabProperty", "vocab": "urban"},
    "hourly": {"type": "ListProperty", "valueList": [21, 22, 24]},
    "sensors": {"type": "ListRelationship",
                "objectList": [{"object": "urn:ngsi-ld:Device:1"}, {"object": "urn:ngsi-ld:Device:2"}]},
    "raw": {"type": "JsonProperty", "json": {"aqi": {"level": "良い", "value": 42}}},
}


async def test_every_attribute_kind_round_trips(client: httpx.AsyncClient) -> None:
    await make(client, **ALL_KINDS)
    got = await fetch(client)
    assert got["name"] == ALL_KINDS["name"]
    assert got["refDevice"] == ALL_KINDS["refDevice"]
    assert got["location"] == ALL_KINDS["location"]
    assert got["category"] == ALL_KINDS["category"]
    assert got["hourly"] == ALL_KINDS["hourly"]
    assert got["raw"] == ALL_KINDS["raw"]
    # the normalized objectList holds {"object": ...} members (clause 4.5.1), whatever was sent
    assert got["sensors"] == ALL_KINDS["sensors"]


async def test_concise_input_is_understood(client: httpx.AsyncClient) -> None:
    body = {"id": EID, "type": "AirQualityObserved", "no2": 22,
            "name": {"languageMap": {"ja": "三宮"}},
            "refDevice": {"object": "urn:ngsi-ld:Device:no2-1"},
            "location": {"type": "Point", "coordinates": [135.1953, 34.6946]},
            "category": {"vocab": "urban"}, "hourly": {"valueList": [1, 2]},
            "raw": {"json": {"k": 1}}}
    assert (await client.post(f"{BASE}/entities", json=body)).status_code == 201
    got = await fetch(client)
    assert got["no2"] == {"type": "Property", "value": 22}
    assert got["name"]["type"] == "LanguageProperty"
    assert got["refDevice"]["type"] == "Relationship"
    assert got["location"]["type"] == "GeoProperty"
    assert got["category"]["type"] == "VocabProperty"
    assert got["hourly"]["type"] == "ListProperty"
    assert got["raw"]["type"] == "JsonProperty"


async def test_invalid_attribute_values_are_400(client: httpx.AsyncClient) -> None:
    bad: list[dict[str, Any]] = [
        {"refDevice": {"type": "Relationship", "object": "not a uri"}},
        {"location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [200, 0]}}},
        {"name": {"type": "LanguageProperty", "languageMap": {"ja": 3}}},
        {"hourly": {"type": "ListProperty", "valueList": 3}},
        {"no2": {"type": "Propertyy", "value": 1}},
        {"no2": {"type": "Property"}},
    ]
    for attrs in bad:
        body = {"id": EID, "type": "AirQualityObserved", **attrs}
        response = await client.post(f"{BASE}/entities", json=body)
        problem(response, 400, "BadRequestData")


async def test_sub_attributes_and_multi_instances(client: httpx.AsyncClient) -> None:
    await make(client, no2=[
        {"type": "Property", "value": 22, "observedAt": "2026-11-25T09:00:00+09:00",
         "accuracy": {"type": "Property", "value": 0.5, "unitCode": "P1"},
         "measuredBy": {"type": "Relationship", "object": "urn:ngsi-ld:Device:a"}},
        {"type": "Property", "value": 23, "datasetId": "urn:ngsi-ld:Dataset:satellite"},
    ])
    got = (await fetch(client))["no2"]
    assert isinstance(got, list) and len(got) == 2
    default = next(i for i in got if "datasetId" not in i)
    assert default["observedAt"] == "2026-11-25T00:00:00.000Z"
    assert default["accuracy"] == {"type": "Property", "value": 0.5, "unitCode": "P1"}
    assert default["measuredBy"]["object"] == "urn:ngsi-ld:Device:a"
    only = await fetch(client, datasetId="urn:ngsi-ld:Dataset:satellite")
    assert only["no2"]["value"] == 23


async def test_duplicate_dataset_ids_are_400(client: httpx.AsyncClient) -> None:
    body = {"id": EID, "type": "AirQualityObserved",
            "no2": [{"type": "Property", "value": 1}, {"type": "Property", "value": 2}]}
    problem(await client.post(f"{BASE}/entities", json=body), 400, "BadRequestData")


async def test_observed_at_with_offset_is_normalised_to_utc(client: httpx.AsyncClient) -> None:
    await make(client, pm25={"type": "Property", "value": 8,
                             "observedAt": "2026-01-01T08:30:00+09:00"})
    assert (await fetch(client))["pm25"]["observedAt"] == "2025-12-31T23:30:00.000Z"
    bad = {"id": "urn:ngsi-ld:X:1", "type": "X",
           "p": {"type": "Property", "value": 1, "observedAt": "昨日"}}
    problem(await client.post(f"{BASE}/entities", json=bad), 400, "BadRequestData")


async def test_system_attributes_created_stays_modified_moves(client: httpx.AsyncClient) -> None:
    await make(client)
    first = await fetch(client, options="sysAttrs")
    assert first["createdAt"].endswith("Z") and first["no2"]["createdAt"].endswith("Z")
    assert "createdAt" not in await fetch(client)  # only with sysAttrs
    await asyncio.sleep(0.002)
    assert (await client.patch(f"{ATTRS}/no2", json={"value": 23})).status_code == 204
    second = await fetch(client, options="sysAttrs")
    assert second["createdAt"] == first["createdAt"]
    assert second["modifiedAt"] > first["modifiedAt"]
    assert second["no2"]["createdAt"] == first["no2"]["createdAt"]
    assert second["no2"]["modifiedAt"] > first["no2"]["modifiedAt"]


async def test_system_attributes_in_the_body_are_ignored(client: httpx.AsyncClient) -> None:
    await make(client, createdAt="1999-01-01T00:00:00Z")
    got = await fetch(client, options="sysAttrs")
    assert not got["createdAt"].startswith("1999")


async def test_attribute_named_by_a_percent_encoded_iri(client: httpx.AsyncClient) -> None:
    """A full attribute IRI in the path has slashes; encoded as %2F it still names the attribute."""
    iri = "https://smartdatamodels.org/dataModel.Environment/pm25"
    await make(client, **{iri: {"type": "Property", "value": 12}})
    path = f"{ATTRS}/https%3A%2F%2Fsmartdatamodels.org%2FdataModel.Environment%2Fpm25"
    assert (await client.patch(path, json={"value": 30})).status_code == 204
    assert (await fetch(client))[iri]["value"] == 30
    assert (await client.delete(path)).status_code == 204
    assert iri not in await fetch(client)
    assert (await client.delete(path)).status_code == 404
