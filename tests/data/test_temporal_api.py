"""Contract tests of the temporal API (ETSI GS CIM 009 clause 5.7.3 - 5.7.4, 6.18 - 6.24) on both
engines: history recorded by ordinary entity writes, temporal writes, time relations, lastN,
representations, instance edits and deletes, errors."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

BASE = "/ngsi-ld/v1"
TEMPORAL = f"{BASE}/temporal/entities"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
SENSOR = "urn:ngsi-ld:WeatherObserved:kobe-port"
NS = "https://uri.etsi.org/ngsi-ld/default-context/"


def problem(response: httpx.Response, status: int, name: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["type"] == ERR + name, body
    return body


def readings(values: list[tuple[Any, str]], **extra: Any) -> list[dict[str, Any]]:
    return [{"type": "Property", "value": v, "observedAt": t, **extra} for v, t in values]


TEMPS = [(12.5, "2026-11-25T09:00:00+09:00"), (13.0, "2026-11-25T10:00:00+09:00"),
         (14.5, "2026-11-25T11:00:00+09:00"), (13.5, "2026-11-25T12:00:00+09:00")]


async def post_temporal(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post(TEMPORAL, json=body)


async def seed(client: httpx.AsyncClient) -> None:
    body = {"id": SENSOR, "type": "WeatherObserved", "temperature": readings(TEMPS),
            "name": [{"type": "Property", "value": "神戸港 観測点",
                      "observedAt": "2026-11-25T09:00:00+09:00"}]}
    response = await post_temporal(client, body)
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"{TEMPORAL}/{SENSOR}"


async def get_temporal(client: httpx.AsyncClient, entity_id: str = SENSOR,
                       **params: Any) -> httpx.Response:
    return await client.get(f"{TEMPORAL}/{entity_id}", params=params)


def values_of(body: dict[str, Any], attr: str) -> list[Any]:
    return [i["value"] for i in body[attr]]


# -- history through ordinary entity writes ---------------------------------------------------
async def test_entity_writes_record_history(client: httpx.AsyncClient) -> None:
    entity = {"id": SENSOR, "type": "WeatherObserved",
              "temperature": {"type": "Property", "value": 10.0,
                              "observedAt": "2026-11-25T08:00:00+09:00"}}
    assert (await client.post(f"{BASE}/entities", json=entity)).status_code == 201
    patch = {"temperature": {"type": "Property", "value": 11.0,
                             "observedAt": "2026-11-25T09:00:00+09:00"}}
    assert (await client.patch(f"{BASE}/entities/{SENSOR}/attrs", json=patch)).status_code == 204
    append = {"comment": {"type": "Property", "value": "晴れ"}}
    assert (await client.post(f"{BASE}/entities/{SENSOR}/attrs", json=append)).status_code == 204
    response = await get_temporal(client)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == SENSOR and body["type"] == "WeatherObserved"
    assert values_of(body, "temperature") == [10.0, 11.0]
    assert [i["observedAt"] for i in body["temperature"]] == ["2026-11-24T23:00:00.000Z",
                                                              "2026-11-25T00:00:00.000Z"]
    assert all(i["instanceId"].startswith("urn:ngsi-ld:attribute:instance:")
               for i in body["temperature"])
    assert values_of(body, "comment") == ["晴れ"]


async def test_history_outlives_the_entity(client: httpx.AsyncClient) -> None:
    entity = {"id": SENSOR, "type": "WeatherObserved",
              "temperature": {"type": "Property", "value": 10.0,
                              "observedAt": "2026-11-25T08:00:00Z"}}
    await client.post(f"{BASE}/entities", json=entity)
    assert (await client.delete(f"{BASE}/entities/{SENSOR}")).status_code == 204
    body = (await get_temporal(client, options="sysAttrs")).json()
    assert values_of(body, "temperature") == [10.0]
    assert "deletedAt" in body
    # and it is still found by a temporal query
    found = (await client.get(TEMPORAL, params={"type": "WeatherObserved"})).json()
    assert [e["id"] for e in found] == [SENSOR]


# -- temporal writes ---------------------------------------------------------------------------
async def test_create_then_add_instances(client: httpx.AsyncClient) -> None:
    await seed(client)
    more = {"id": SENSOR, "type": "WeatherObserved",
            "temperature": readings([(15.0, "2026-11-25T13:00:00+09:00")])}
    assert (await post_temporal(client, more)).status_code == 204
    extra = {"humidity": readings([(60, "2026-11-25T13:00:00+09:00")])}
    assert (await client.post(f"{TEMPORAL}/{SENSOR}/attrs", json=extra)).status_code == 204
    body = (await get_temporal(client)).json()
    assert values_of(body, "temperature") == [12.5, 13.0, 14.5, 13.5, 15.0]
    assert values_of(body, "humidity") == [60]
    assert body["name"][0]["value"] == "神戸港 観測点"


async def test_add_to_missing_entity_is_404(client: httpx.AsyncClient) -> None:
    extra = {"humidity": readings([(60, "2026-11-25T13:00:00Z")])}
    problem(await client.post(f"{TEMPORAL}/{SENSOR}/attrs", json=extra), 404, "ResourceNotFound")


# -- time relations and time properties -------------------------------------------------------
@pytest.mark.parametrize(("params", "expected"), [
    ({"timerel": "before", "timeAt": "2026-11-25T11:00:00+09:00"}, [12.5, 13.0]),
    ({"timerel": "after", "timeAt": "2026-11-25T10:00:00+09:00"}, [14.5, 13.5]),
    ({"timerel": "between", "timeAt": "2026-11-25T01:00:00Z",
      "endTimeAt": "2026-11-25T03:00:00Z"}, [13.0, 14.5]),
    ({}, [12.5, 13.0, 14.5, 13.5]),
])
async def test_timerel(client: httpx.AsyncClient, params: dict[str, str],
                       expected: list[float]) -> None:
    await seed(client)
    body = (await get_temporal(client, attrs="temperature", **params)).json()
    assert values_of(body, "temperature") == expected
    assert "name" not in body


async def test_timeproperty_created_at(client: httpx.AsyncClient) -> None:
    await seed(client)
    everything = (await get_temporal(client, timeproperty="createdAt",
                                     attrs="temperature")).json()
    created = everything["temperature"][0]["createdAt"]
    assert all("createdAt" in i for i in everything["temperature"])
    # by createdAt the instances were all recorded just now, not at their observedAt
    before = await get_temporal(client, timeproperty="createdAt", timerel="before",
                                timeAt="2026-11-25T03:30:00Z", attrs="temperature")
    assert before.status_code == 200 and "temperature" not in before.json()
    after = await get_temporal(client, timeproperty="createdAt", timerel="after",
                               timeAt=created, attrs="temperature")
    assert "temperature" not in after.json()        # after is strict: none after the first
    up_to = await get_temporal(client, timeproperty="createdAt", timerel="before",
                               timeAt="2999-01-01T00:00:00Z", attrs="temperature")
    assert len(up_to.json()["temperature"]) == 4


async def test_last_n(client: httpx.AsyncClient) -> None:
    await seed(client)
    response = await get_temporal(client, lastN="2", attrs="temperature")
    assert response.status_code == 200
    assert values_of(response.json(), "temperature") == [14.5, 13.5]
    both = await get_temporal(client, lastN="1", timerel="before",
                              timeAt="2026-11-25T11:00:00+09:00")
    assert values_of(both.json(), "temperature") == [13.0]


async def test_temporal_values_representation(client: httpx.AsyncClient) -> None:
    await seed(client)
    body = (await get_temporal(client, options="temporalValues")).json()
    assert body["temperature"] == {"type": "Property", "values": [
        [12.5, "2026-11-25T00:00:00.000000Z"], [13.0, "2026-11-25T01:00:00.000000Z"],
        [14.5, "2026-11-25T02:00:00.000000Z"], [13.5, "2026-11-25T03:00:00.000000Z"]]}
    assert body["name"]["values"][0][0] == "神戸港 観測点"
    same = (await get_temporal(client, format="temporalValues")).json()
    assert same == body


async def test_relationship_and_dataset_ids(client: httpx.AsyncClient) -> None:
    body = {"id": SENSOR, "type": "WeatherObserved",
            "refDevice": [{"type": "Relationship", "object": "urn:ngsi-ld:Device:a",
                           "observedAt": "2026-11-25T00:00:00Z"}],
            "temperature": readings([(1, "2026-11-25T00:00:00Z")]) + readings(
                [(2, "2026-11-25T00:00:00Z")], datasetId="urn:ngsi-ld:dataset:backup")}
    assert (await post_temporal(client, body)).status_code == 201
    simple = (await get_temporal(client, options="temporalValues")).json()
    assert simple["refDevice"] == {"type": "Relationship", "objects": [
        ["urn:ngsi-ld:Device:a", "2026-11-25T00:00:00.000000Z"]]}
    assert sorted(simple["temperature"], key=lambda g: g.get("datasetId", "")) == [
        {"type": "Property", "values": [[1, "2026-11-25T00:00:00.000000Z"]]},
        {"type": "Property", "datasetId": "urn:ngsi-ld:dataset:backup",
         "values": [[2, "2026-11-25T00:00:00.000000Z"]]}]


async def test_compaction_with_link_context(client: httpx.AsyncClient) -> None:
    ctx = {"@context": {"temperatura": "https://example.org/jp#temperature"}}
    created = await client.post(f"{BASE}/jsonldContexts", json=ctx)
    assert created.status_code == 201, created.text
    link = (f'<http://cityos.test{created.headers["location"]}>; '
            'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"')
    body = {"id": SENSOR, "type": "WeatherObserved",
            "temperatura": readings([(3, "2026-11-25T00:00:00Z")])}
    response = await client.post(TEMPORAL, json=body, headers={"Link": link})
    assert response.status_code == 201, response.text
    plain = (await get_temporal(client)).json()
    assert "https://example.org/jp#temperature" in plain
    compact = await client.get(f"{TEMPORAL}/{SENSOR}", headers={"Link": link})
    assert values_of(compact.json(), "temperatura") == [3]
    assert created.headers["location"] in compact.headers["link"]
    ld = await client.get(f"{TEMPORAL}/{SENSOR}",
                           headers={"Link": link, "Accept": "application/ld+json"})
    assert "@context" in ld.json()


# -- queries -----------------------------------------------------------------------------------
async def test_query_by_type_q_and_count(client: httpx.AsyncClient) -> None:
    await seed(client)
    other = {"id": "urn:ngsi-ld:WeatherObserved:rokko", "type": "WeatherObserved",
             "temperature": readings([(2.0, "2026-11-25T09:00:00+09:00")])}
    await post_temporal(client, other)
    await post_temporal(client, {"id": "urn:ngsi-ld:Road:1", "type": "Road",
                                  "temperature": readings([(40, "2026-11-25T00:00:00Z")])})
    response = await client.get(TEMPORAL, params={"type": "WeatherObserved", "count": "true",
                                                   "attrs": "temperature", "lastN": "1"})
    assert response.status_code == 200, response.text
    assert response.headers["NGSILD-Results-Count"] == "2"
    assert {e["id"]: values_of(e, "temperature") for e in response.json()} == {
        SENSOR: [13.5], "urn:ngsi-ld:WeatherObserved:rokko": [2.0]}
    # q is decided on the latest state: 13.5 at Kobe port, 2.0 at Rokko
    warm = await client.get(TEMPORAL, params={"type": "WeatherObserved", "q": "temperature>10"})
    assert [e["id"] for e in warm.json()] == [SENSOR]
    paged = await client.get(TEMPORAL, params={"type": "WeatherObserved", "limit": "1"})
    assert len(paged.json()) == 1 and 'rel="next"' in paged.headers["link"]


async def test_post_query_with_temporal_q(client: httpx.AsyncClient) -> None:
    await seed(client)
    query = {"type": "Query", "entities": [{"type": "WeatherObserved"}],
             "attrs": ["temperature"],
             "temporalQ": {"timerel": "after", "timeAt": "2026-11-25T02:00:00Z"}}
    response = await client.post(f"{BASE}/temporal/entityOperations/query", json=query)
    assert response.status_code == 200, response.text
    [entity] = response.json()
    assert values_of(entity, "temperature") == [13.5]


async def test_query_needs_a_filter(client: httpx.AsyncClient) -> None:
    problem(await client.get(TEMPORAL), 400, "BadRequestData")


# -- instance and attribute edits --------------------------------------------------------------
async def test_modify_and_delete_an_instance(client: httpx.AsyncClient) -> None:
    await seed(client)
    instances = (await get_temporal(client, attrs="temperature")).json()["temperature"]
    first = instances[0]["instanceId"]
    url = f"{TEMPORAL}/{SENSOR}/attrs/temperature/{first}"
    patched = await client.patch(url, json={"value": 99.5})
    assert patched.status_code == 204, patched.text
    after = (await get_temporal(client, attrs="temperature", options="sysAttrs")).json()
    assert values_of(after, "temperature") == [99.5, 13.0, 14.5, 13.5]
    changed = after["temperature"][0]
    assert changed["observedAt"] == "2026-11-25T00:00:00.000Z"   # kept
    assert changed["modifiedAt"] > changed["createdAt"]
    assert (await client.delete(url)).status_code == 204
    left = (await get_temporal(client, attrs="temperature")).json()
    assert values_of(left, "temperature") == [13.0, 14.5, 13.5]
    problem(await client.delete(url), 404, "ResourceNotFound")
    problem(await client.patch(url, json={"value": 1}), 404, "ResourceNotFound")


async def test_delete_attribute_by_dataset_and_all(client: httpx.AsyncClient) -> None:
    other = "urn:ngsi-ld:dataset:backup"
    body = {"id": SENSOR, "type": "WeatherObserved",
            "temperature": readings([(1, "2026-11-25T00:00:00Z")])
            + readings([(2, "2026-11-25T00:00:00Z")], datasetId=other),
            "humidity": readings([(50, "2026-11-25T00:00:00Z")])}
    await post_temporal(client, body)
    url = f"{TEMPORAL}/{SENSOR}/attrs/temperature"
    assert (await client.delete(url, params={"datasetId": other})).status_code == 204
    assert values_of((await get_temporal(client)).json(), "temperature") == [1]
    assert (await client.delete(url)).status_code == 204          # the default instances
    assert "temperature" not in (await get_temporal(client)).json()
    problem(await client.delete(url), 404, "ResourceNotFound")
    h_url = f"{TEMPORAL}/{SENSOR}/attrs/humidity"
    assert (await client.delete(h_url, params={"deleteAll": "true"})).status_code == 204
    assert "humidity" not in (await get_temporal(client)).json()


async def test_delete_temporal_entity(client: httpx.AsyncClient) -> None:
    await seed(client)
    assert (await client.delete(f"{TEMPORAL}/{SENSOR}")).status_code == 204
    problem(await get_temporal(client), 404, "ResourceNotFound")
    problem(await client.delete(f"{TEMPORAL}/{SENSOR}"), 404, "ResourceNotFound")


# -- errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize("params", [
    {"timerel": "during", "timeAt": "2026-11-25T00:00:00Z"},
    {"timerel": "before"},
    {"timerel": "before", "timeAt": "yesterday"},
    {"timerel": "before", "timeAt": "2026-11-25"},
    {"timerel": "between", "timeAt": "2026-11-25T00:00:00Z"},
    {"timerel": "between", "timeAt": "2026-11-25T02:00:00Z", "endTimeAt": "2026-11-25T01:00:00Z"},
    {"timeAt": "2026-11-25T00:00:00Z"},
    {"timeproperty": "removedAt"},
    {"lastN": "0"}, {"lastN": "-3"}, {"lastN": "ten"},
    {"options": "aggregatedValues"},
    {"options": "aggregatedValues", "aggrMethods": "median"},
    {"options": "aggregatedValues", "aggrMethods": "avg", "aggrPeriodDuration": "1 hour"},
    {"options": "aggregatedValues", "aggrMethods": "avg", "aggrPeriodDuration": "PT"},
    {"options": "aggregatedValues", "aggrMethods": "avg", "aggrPeriodDuration": "P"},
    {"aggrMethods": "avg"},
    {"options": "temporalValues,aggregatedValues", "aggrMethods": "avg"},
    {"options": "bogus"},
    {"format": "bogus"},
])
async def test_bad_parameters_are_400(client: httpx.AsyncClient, params: dict[str, str]) -> None:
    await seed(client)
    problem(await get_temporal(client, **params), 400, "BadRequestData")
    problem(await client.get(TEMPORAL, params={"type": "WeatherObserved", **params}), 400,
            "BadRequestData")


async def test_unknown_entity_and_bad_ids(client: httpx.AsyncClient) -> None:
    problem(await get_temporal(client, "urn:ngsi-ld:WeatherObserved:nowhere"), 404,
            "ResourceNotFound")
    problem(await get_temporal(client, "not a uri"), 400, "BadRequestData")
    await seed(client)
    problem(await get_temporal(client, type="Road"), 404, "ResourceNotFound")


@pytest.mark.parametrize("body", [
    [],
    {"type": "WeatherObserved"},
    {"id": SENSOR},
    {"id": SENSOR, "type": "WeatherObserved", "temperature": []},
    {"id": SENSOR, "type": "WeatherObserved",
     "temperature": [{"type": "Property", "value": 1, "observedAt": "noon"}]},
    {"id": SENSOR, "type": "WeatherObserved", "temperature": [{"type": "Nonsense", "value": 1}]},
])
async def test_bad_temporal_bodies_are_400(client: httpx.AsyncClient, body: Any) -> None:
    problem(await post_temporal(client, body), 400, "BadRequestData")
    problem(await get_temporal(client), 404, "ResourceNotFound")  # nothing was written
