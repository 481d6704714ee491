"""Our own checks of the behaviours the ETSI NGSI-LD conformance suite tests on the temporal API
(TP/NGSI-LD/ContextInformation/{Provision,Consumption}/TemporalEntity*), on both engines.  Each
test names the ETSI test ids it corresponds to; the expectations follow ETSI GS CIM 009 v1.8
(where the suite expects something else, docs/temporal.md says so and the test asserts 1.8)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cityos.data.ngsild.temporal import pagination

TEMPORAL = "/ngsi-ld/v1/temporal/entities"
QUERY = "/ngsi-ld/v1/temporal/entityOperations/query"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
CAR = "urn:ngsi-ld:Vehicle:etsi-7"
OTHER = "urn:ngsi-ld:Vehicle:etsi-unknown"
FUEL_DS = "urn:ngsi-ld:Vehicle:12345-fuel"
MISSING_INSTANCE = "urn:ngsi-ld:01234567890123456789"


def prop(value: Any, observed: str, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, "observedAt": observed, **extra}


def vehicle(entity_id: str = CAR) -> dict[str, Any]:
    """Two attributes, fuelLevel with a default and a named datasetId (like the suite's data)."""
    return {"id": entity_id, "type": "Vehicle",
            "speed": [prop(120, "2020-09-01T12:03:00Z"), prop(80, "2020-09-01T12:05:00Z")],
            "fuelLevel": [prop(67, "2020-09-01T12:03:00Z"), prop(53, "2020-09-01T13:05:00Z"),
                          prop(40, "2020-09-01T14:07:00Z", datasetId=FUEL_DS)]}


async def create(client: httpx.AsyncClient, body: dict[str, Any] | None = None) -> None:
    response = await client.post(TEMPORAL, json=body or vehicle())
    assert response.status_code == 201, response.text


def problem(response: httpx.Response, status: int, name: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == ERR + name, body
    assert body["title"]


def summary(attr: list[dict[str, Any]]) -> list[tuple[Any, str, str | None]]:
    """(value, observedAt to the minute, datasetId) of each instance, sorted."""
    return sorted((i["value"], i["observedAt"][:16], i.get("datasetId")) for i in attr)


async def instance_ids(client: httpx.AsyncClient, attr: str = "speed") -> list[str]:
    body = (await client.get(f"{TEMPORAL}/{CAR}")).json()
    return [i["instanceId"] for i in body[attr]]


# -- create / update (5.6.11) ------------------------------------------------------------------
async def test_create_then_retrieve_same_instances(client: httpx.AsyncClient) -> None:
    # ETSI 007_01_01, 007_01_02: 201, empty body, Location; the retrieval holds every instance
    response = await client.post(TEMPORAL, json=vehicle())
    assert response.status_code == 201 and response.content == b""
    assert response.headers["location"] == f"{TEMPORAL}/{CAR}"
    body = (await client.get(f"{TEMPORAL}/{CAR}")).json()
    assert body["type"] == "Vehicle"
    assert summary(body["speed"]) == [(80, "2020-09-01T12:05", None),
                                      (120, "2020-09-01T12:03", None)]
    assert summary(body["fuelLevel"]) == [(40, "2020-09-01T14:07", FUEL_DS),
                                          (53, "2020-09-01T13:05", None),
                                          (67, "2020-09-01T12:03", None)]
    assert all(i["instanceId"].startswith("urn:") for i in body["speed"])


async def test_create_rejects_bad_bodies(client: httpx.AsyncClient) -> None:
    # ETSI 007_02_01 (invalid JSON), 007_02_02 (empty body): InvalidRequest with a title
    json_type = {"content-type": "application/ld+json"}
    problem(await client.post(TEMPORAL, content=b'{"id": "urn:x:1",,}', headers=json_type),
            400, "InvalidRequest")
    problem(await client.post(TEMPORAL, content=b"", headers=json_type), 400, "InvalidRequest")
    # ETSI 007_03_01 (no id), 007_03_02 (id not a URI): 400
    no_id = {"type": "Vehicle", "speed": [prop(1, "2020-09-01T12:00:00Z")]}
    problem(await client.post(TEMPORAL, json=no_id), 400, "BadRequestData")
    problem(await client.post(TEMPORAL, json={**vehicle(), "id": "invalidId"}), 400,
            "BadRequestData")
    assert (await client.get(f"{TEMPORAL}/{CAR}")).status_code == 404


async def test_second_create_adds_instances_and_answers_204(client: httpx.AsyncClient) -> None:
    # ETSI 008_01_01, 5611_01_01: an existing temporal entity -> 204 and the instances are added.
    # v1.8 clause 5.6.11.4 adds the instances; 008_01 expects an instance with the same
    # observedAt to be replaced instead (docs/temporal.md, "ETSI conformance").
    await create(client)
    again = {"id": CAR, "type": "Vehicle", "speed": [prop(100, "2020-09-01T12:07:00Z")]}
    response = await client.post(TEMPORAL, json=again)
    assert response.status_code == 204 and response.content == b""
    body = (await client.get(f"{TEMPORAL}/{CAR}")).json()
    assert [i["value"] for i in body["speed"]] == [120, 80, 100]
    assert len(body["fuelLevel"]) == 3


# -- delete the temporal entity (5.6.16) -------------------------------------------------------
async def test_delete_temporal_entity(client: httpx.AsyncClient) -> None:
    # ETSI 009_01_01: 204 with an empty body, then the retrieval is a 404
    await create(client)
    response = await client.delete(f"{TEMPORAL}/{CAR}")
    assert response.status_code == 204 and response.content == b""
    problem(await client.get(f"{TEMPORAL}/{CAR}"), 404, "ResourceNotFound")
    # ETSI 009_02_01: no id -> 405; 009_02_02: invalid id -> 400; 009_03_01: unknown -> 404
    assert (await client.delete(f"{TEMPORAL}/")).status_code == 405
    problem(await client.delete(f"{TEMPORAL}/invalidId"), 400, "BadRequestData")
    problem(await client.delete(f"{TEMPORAL}/{OTHER}"), 404, "ResourceNotFound")


# -- add attributes (5.6.12) -------------------------------------------------------------------
async def test_add_attributes(client: httpx.AsyncClient) -> None:
    # ETSI 014_01_01: 204, the new instances appear next to the old ones
    await create(client)
    fragment = {"speed": [prop(100, "2020-09-01T12:07:00Z")],
                "fuelLevel": [prop(30, "2020-09-01T15:07:00Z")]}
    response = await client.post(f"{TEMPORAL}/{CAR}/attrs", json=fragment)
    assert response.status_code == 204 and response.content == b""
    body = (await client.get(f"{TEMPORAL}/{CAR}")).json()
    assert [i["value"] for i in body["speed"]] == [120, 80, 100]
    assert summary(body["fuelLevel"])[0] == (30, "2020-09-01T15:07", None)


async def test_add_attributes_errors(client: httpx.AsyncClient) -> None:
    await create(client)
    fragment = {"speed": [prop(100, "2020-09-01T12:07:00Z")]}
    # ETSI 014_02_01 (empty entity id), 014_02_02 (invalid entity id): 400
    problem(await client.post(f"{TEMPORAL}//attrs", json=fragment), 400, "BadRequestData")
    problem(await client.post(f"{TEMPORAL}/thisIsAninvalidId/attrs", json=fragment), 400,
            "BadRequestData")
    # ETSI 014_03_01: unknown entity -> 404
    problem(await client.post(f"{TEMPORAL}/{OTHER}/attrs", json=fragment), 404,
            "ResourceNotFound")
    # ETSI 014_04_01 (invalid JSON), 014_04_02 (empty body): InvalidRequest
    json_type = {"content-type": "application/json"}
    problem(await client.post(f"{TEMPORAL}/{CAR}/attrs", content=b'{"speed":,}',
                               headers=json_type), 400, "InvalidRequest")
    problem(await client.post(f"{TEMPORAL}/{CAR}/attrs", content=b"", headers=json_type), 400,
            "InvalidRequest")
    assert len((await client.get(f"{TEMPORAL}/{CAR}")).json()["speed"]) == 2


# -- delete an attribute (5.6.13) --------------------------------------------------------------
@pytest.mark.parametrize(("params", "left"), [
    # ETSI 015_01_01: the default instances only
    ({}, [(40, "2020-09-01T14:07", FUEL_DS)]),
    # ETSI 015_01_02: one datasetId's instances only
    ({"datasetId": FUEL_DS}, [(53, "2020-09-01T13:05", None), (67, "2020-09-01T12:03", None)]),
    # ETSI 015_01_03: deleteAll
    ({"deleteAll": "true"}, None),
])
async def test_delete_attribute(client: httpx.AsyncClient, params: dict[str, str],
                                left: list[Any] | None) -> None:
    await create(client)
    response = await client.delete(f"{TEMPORAL}/{CAR}/attrs/fuelLevel", params=params)
    assert response.status_code == 204 and response.content == b""
    body = (await client.get(f"{TEMPORAL}/{CAR}")).json()
    assert len(body["speed"]) == 2
    if left is None:
        assert "fuelLevel" not in body
    else:
        assert summary(body["fuelLevel"]) == left


async def test_delete_attribute_errors(client: httpx.AsyncClient) -> None:
    await create(client)
    # ETSI 015_02_01 (empty id), 015_02_02 (invalid id), 015_02_03 (invalid name): 400
    problem(await client.delete(f"{TEMPORAL}//attrs/speed"), 400, "BadRequestData")
    problem(await client.delete(f"{TEMPORAL}/invalidId/attrs/speed"), 400, "BadRequestData")
    problem(await client.delete(f"{TEMPORAL}/{CAR}/attrs/invalid(Name"), 400, "BadRequestData")
    # ETSI 015_04_01..03: dot segments, percent-encoded once or twice, are not names
    for name in ("%2e%2e", "%252e%252e", "%2e"):
        problem(await client.delete(f"{TEMPORAL}/{CAR}/attrs/{name}"), 400, "BadRequestData")
    # ETSI 015_03_01 (unknown entity), 015_03_02 (attribute not there): 404
    problem(await client.delete(f"{TEMPORAL}/{OTHER}/attrs/fuelLevel"), 404, "ResourceNotFound")
    problem(await client.delete(f"{TEMPORAL}/{CAR}/attrs/notExistingAttribute"), 404,
            "ResourceNotFound")
    body = (await client.get(f"{TEMPORAL}/{CAR}")).json()
    assert len(body["speed"]) == 2 and len(body["fuelLevel"]) == 3


# -- partial update of an instance (5.6.14) ----------------------------------------------------
async def test_modify_instance_keeps_its_id(client: httpx.AsyncClient) -> None:
    # ETSI 016_01_01: 204, the first speed instance has the new value and the same instanceId
    await create(client)
    first = (await instance_ids(client))[0]
    fragment = prop(129, "2020-09-01T12:03:00Z")
    response = await client.patch(f"{TEMPORAL}/{CAR}/attrs/speed/{first}", json=fragment)
    assert response.status_code == 204 and response.content == b""
    body = (await client.get(f"{TEMPORAL}/{CAR}")).json()
    assert body["speed"][0]["instanceId"] == first
    assert [i["value"] for i in body["speed"]] == [129, 80]


async def test_modify_instance_errors(client: httpx.AsyncClient) -> None:
    await create(client)
    iid = (await instance_ids(client))[0]
    fragment = prop(129, "2020-09-01T12:03:00Z")

    async def patch(entity: str, attr: str, instance: str) -> httpx.Response:
        return await client.patch(f"{TEMPORAL}/{entity}/attrs/{attr}/{instance}", json=fragment)

    # ETSI 016_02_01 (invalid id), 016_02_02 (empty id), 016_02_03 (invalid instanceId),
    # 016_02_05 (invalid name): 400
    problem(await patch("invalidId", "speed", iid), 400, "BadRequestData")
    problem(await patch("", "speed", iid), 400, "BadRequestData")
    problem(await patch(CAR, "speed", "invalidId"), 400, "BadRequestData")
    problem(await patch(CAR, "invalid(Id", iid), 400, "BadRequestData")
    # ETSI 016_02_04 (no instanceId), 016_02_06 (no attribute name): 405
    assert (await patch(CAR, "speed", "")).status_code == 405
    assert (await patch(CAR, "", iid)).status_code == 405
    # ETSI 016_03_01 (unknown entity), 016_03_02 (unknown attribute), 016_03_03 (unknown
    # instance): 404
    problem(await patch(OTHER, "speed", iid), 404, "ResourceNotFound")
    problem(await patch(CAR, "speed2", iid), 404, "ResourceNotFound")
    problem(await patch(CAR, "speed", MISSING_INSTANCE), 404, "ResourceNotFound")
    assert [i["value"] for i in (await client.get(f"{TEMPORAL}/{CAR}")).json()["speed"]] \
        == [120, 80]


# -- delete an instance (5.6.15) ---------------------------------------------------------------
async def test_delete_instance(client: httpx.AsyncClient) -> None:
    # ETSI 017_01_01: 204, the instance is gone, the others stay
    await create(client)
    first = (await instance_ids(client))[0]
    response = await client.delete(f"{TEMPORAL}/{CAR}/attrs/speed/{first}")
    assert response.status_code == 204 and response.content == b""
    assert [i["value"] for i in (await client.get(f"{TEMPORAL}/{CAR}")).json()["speed"]] == [80]


async def test_delete_instance_errors(client: httpx.AsyncClient) -> None:
    await create(client)
    iid = (await instance_ids(client))[0]

    async def delete(entity: str, attr: str, instance: str) -> httpx.Response:
        return await client.delete(f"{TEMPORAL}/{entity}/attrs/{attr}/{instance}")

    # ETSI 017_02_01..05: invalid / empty id, invalid instanceId, invalid / empty name -> 400
    problem(await delete("invalidId", "speed", iid), 400, "BadRequestData")
    problem(await delete("", "speed", iid), 400, "BadRequestData")
    problem(await delete(CAR, "speed", "invalidId"), 400, "BadRequestData")
    problem(await delete(CAR, "invalid(Name", iid), 400, "BadRequestData")
    problem(await delete(CAR, "", iid), 400, "BadRequestData")
    # ETSI 017_03_01..03: unknown entity, attribute or instance -> 404
    problem(await delete(OTHER, "speed", iid), 404, "ResourceNotFound")
    problem(await delete(CAR, "speed2", iid), 404, "ResourceNotFound")
    problem(await delete(CAR, "speed", MISSING_INSTANCE), 404, "ResourceNotFound")
    assert len((await client.get(f"{TEMPORAL}/{CAR}")).json()["speed"]) == 2


# -- retrieve (5.7.3) --------------------------------------------------------------------------
async def test_retrieve_errors(client: httpx.AsyncClient) -> None:
    # ETSI 020_06_01: invalid id -> 400; 020_07_01: unknown entity -> 404
    problem(await client.get(f"{TEMPORAL}/invalidUri"), 400, "BadRequestData")
    problem(await client.get(f"{TEMPORAL}/urn:ngsi-ld:Vehicle:unknowEntity"), 404,
            "ResourceNotFound")


async def test_retrieve_time_relations_and_last_n(client: httpx.AsyncClient) -> None:
    # ETSI 020_02, 020_03, 020_04, 020_05 (timerel before / after / between, lastN)
    await create(client)

    async def speeds(**params: Any) -> list[Any]:
        response = await client.get(f"{TEMPORAL}/{CAR}", params={"attrs": "speed", **params})
        assert response.status_code == 200, response.text
        return [i["value"] for i in response.json().get("speed", [])]

    assert await speeds(timerel="before", timeAt="2020-09-01T12:04:00Z") == [120]
    assert await speeds(timerel="after", timeAt="2020-09-01T12:04:00Z") == [80]
    assert await speeds(timerel="between", timeAt="2020-09-01T12:00:00Z",
                        endTimeAt="2020-09-01T12:04:00Z") == [120]
    assert await speeds(lastN="1") == [80]
    assert await speeds(timerel="before", timeAt="2020-09-01T12:00:00Z") == []


async def test_retrieve_temporal_values(client: httpx.AsyncClient) -> None:
    # ETSI 020_08, 020_18: options=temporalValues -> [[value, time], ...], one object per datasetId
    await create(client)
    body = (await client.get(f"{TEMPORAL}/{CAR}", params={"options": "temporalValues"})).json()
    speed = body["speed"]
    speed = speed[0] if isinstance(speed, list) else speed
    assert speed["type"] == "Property"
    assert [v for v, _ in speed["values"]] == [120, 80]
    fuel = {g.get("datasetId"): [v for v, _ in g["values"]] for g in body["fuelLevel"]}
    assert fuel == {None: [67, 53], FUEL_DS: [40]}


async def test_retrieve_aggregated_values(client: httpx.AsyncClient) -> None:
    # ETSI 020_11_01..04: aggrMethods avg / avg,max per PT1H and min,max per P1D, attrs
    await create(client)
    response = await client.get(f"{TEMPORAL}/{CAR}", params={
        "options": "aggregatedValues", "aggrMethods": "avg,max", "aggrPeriodDuration": "PT1H",
        "attrs": "speed"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"id", "type", "speed"}
    speed = body["speed"]
    speed = speed[0] if isinstance(speed, list) else speed
    assert [p[0] for p in speed["avg"]] == [100.0] and [p[0] for p in speed["max"]] == [120]
    day = (await client.get(f"{TEMPORAL}/{CAR}", params={
        "options": "aggregatedValues", "aggrMethods": "min,max", "aggrPeriodDuration": "P1D",
        "attrs": "fuelLevel"})).json()
    default = next(g for g in day["fuelLevel"] if "datasetId" not in g)
    assert default["min"][0][0] == 53 and default["max"][0][0] == 67


async def test_temporal_parameter_errors(client: httpx.AsyncClient) -> None:
    # ETSI 021_09, 021_10, 021_11, 021_27 (temporalQ errors): bad timerel, missing timeAt,
    # between without endTimeAt, lastN 0 or fractional, unknown aggrMethod / duration -> 400
    await create(client)
    base = {"type": "Vehicle"}
    for params in ({"timerel": "foo", "timeAt": "2020-09-01T12:00:00Z"},
                   {"timerel": "after"},
                   {"timerel": "after", "timeAt": "notADate"},
                   {"timerel": "between", "timeAt": "2020-09-01T12:00:00Z"},
                   {"lastN": "0"}, {"lastN": "1.5"},
                   {"timeproperty": "bogus"},
                   {"options": "aggregatedValues", "aggrMethods": "bogus"},
                   {"options": "aggregatedValues", "aggrMethods": "avg",
                    "aggrPeriodDuration": "1H"}):
        problem(await client.get(TEMPORAL, params={**base, **params}), 400, "BadRequestData")
    # the same through POST /temporal/entityOperations/query and its temporalQ
    for temporal_q in ({"timerel": "foo", "timeAt": "2020-09-01T12:00:00Z"},
                       {"timerel": "between", "timeAt": "2020-09-01T12:00:00Z"},
                       {"timerel": "after", "timeAt": "2020-09-01T12:00:00Z", "lastN": 0}):
        query = {"type": "Query", "entities": [{"type": "Vehicle"}], "temporalQ": temporal_q}
        problem(await client.post(QUERY, json=query), 400, "BadRequestData")


async def test_query_needs_a_filter_and_selects_by_type(client: httpx.AsyncClient) -> None:
    # ETSI 021_01 (type + timerel), 021_05 (no filter -> 400)
    await create(client)
    await create(client, {**vehicle("urn:ngsi-ld:Bus:etsi-1"), "type": "Bus"})
    problem(await client.get(TEMPORAL), 400, "BadRequestData")
    response = await client.get(TEMPORAL, params={"type": "Vehicle", "timerel": "after",
                                                   "timeAt": "2020-09-01T12:04:00Z"})
    assert response.status_code == 200, response.text
    [entity] = response.json()
    assert entity["id"] == CAR and [i["value"] for i in entity["speed"]] == [80]
    query = {"type": "Query", "entities": [{"type": "Bus"}],
             "temporalQ": {"timerel": "after", "timeAt": "2020-09-01T12:04:00Z"}}
    response = await client.post(QUERY, json=query)
    assert response.status_code == 200, response.text
    assert [e["id"] for e in response.json()] == ["urn:ngsi-ld:Bus:etsi-1"]


async def test_content_range_when_instances_are_cut(client: httpx.AsyncClient,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # ETSI 020_13_01, 020_13_03, 020_13_08: 206 with Content-Range: date-time start-end/size
    monkeypatch.setattr(pagination, "INSTANCE_LIMIT", 2)
    speeds = [prop(m, f"2020-01-01T00:{m:02d}:00Z") for m in range(5)]
    await create(client, {"id": CAR, "type": "Vehicle", "speed": speeds})
    response = await client.get(f"{TEMPORAL}/{CAR}")
    assert response.status_code == 206
    assert response.headers["content-range"] == \
        "date-time 2020-01-01T00:00:00.000000Z-2020-01-01T00:01:00.000000Z/*"
    response = await client.get(f"{TEMPORAL}/{CAR}", params={
        "timerel": "after", "timeAt": "2019-01-01T01:01:00Z"})
    assert response.headers["content-range"].startswith("date-time 2019-01-01T01:01:00")
    response = await client.get(f"{TEMPORAL}/{CAR}", params={
        "lastN": "5", "timerel": "before", "timeAt": "2021-01-01T01:01:00Z"})
    assert response.status_code == 206
    assert response.headers["content-range"] == \
        "date-time 2021-01-01T01:01:00.000000Z-2020-01-01T00:03:00.000000Z/5"
    assert [i["value"] for i in response.json()["speed"]] == [3, 4]
