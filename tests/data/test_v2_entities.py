"""NGSI v2 /v2/entities: create, list, retrieve, attribute writes, delete (both engines)."""

from __future__ import annotations

from typing import Any

import httpx

ROOM = {"id": "Room1", "type": "Room",
        "temperature": {"value": 23.5, "type": "Number",
                        "metadata": {"accuracy": {"value": 0.5, "type": "Number"}}},
        "name": {"value": "会議室 A"},
        "location": {"value": "34.69, 135.19", "type": "geo:point"}}


async def create(client: httpx.AsyncClient, body: dict[str, Any], **headers: str) -> httpx.Response:
    return await client.post("/v2/entities", json=body, headers=headers)


async def test_create_then_retrieve_round_trips_types_and_metadata(client: httpx.AsyncClient) -> None:
    r = await create(client, ROOM)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == "/v2/entities/Room1?type=Room"
    got = await client.get("/v2/entities/Room1", headers={"fiware-correlator": "c-42"})
    assert got.headers["fiware-correlator"] == "c-42"     # echoed, as Orion does
    body = got.json()
    assert body["id"] == "Room1" and body["type"] == "Room"
    assert body["temperature"] == {"type": "Number", "value": 23.5,
                                   "metadata": {"accuracy": {"type": "Number", "value": 0.5}}}
    assert body["name"] == {"type": "Text", "value": "会議室 A", "metadata": {}}
    assert body["location"]["type"] == "geo:point"
    assert body["location"]["value"] == "34.69, 135.19"


async def test_create_errors_follow_orion(client: httpx.AsyncClient) -> None:
    assert (await create(client, ROOM)).status_code == 201
    again = await create(client, ROOM)
    assert again.status_code == 422
    assert again.json() == {"error": "Unprocessable", "description": "Already Exists"}
    bad = await create(client, {"id": "Room(2)", "type": "Room"})
    assert bad.status_code == 400 and bad.json()["error"] == "BadRequest"
    assert "Invalid characters" in bad.json()["description"]
    no_id = await create(client, {"type": "Room"})
    assert no_id.status_code == 400
    reserved = await create(client, {"id": "R3", "dateCreated": {"value": 1}})
    assert reserved.status_code == 400
    text = await client.post("/v2/entities", content=b"x", headers={"content-type": "text/plain"})
    assert text.status_code == 415 and text.json()["error"] == "UnsupportedMediaType"
    empty = await client.post("/v2/entities", content=b"", headers={"content-type": "application/json"})
    assert empty.status_code == 411 and empty.json()["error"] == "ContentLengthRequired"
    broken = await client.post("/v2/entities", content=b"{", headers={"content-type": "application/json"})
    assert broken.status_code == 400 and broken.json()["error"] == "ParseError"
    attr_not_object = await create(client, {"id": "R4", "t": 5})
    assert attr_not_object.status_code == 400
    bad_date = await create(client, {"id": "R5", "d": {"type": "DateTime", "value": "yesterday"}})
    assert bad_date.status_code == 400


async def test_key_values_create_and_read(client: httpx.AsyncClient) -> None:
    r = await client.post("/v2/entities?options=keyValues",
                          json={"id": "Car1", "type": "Car", "speed": 40, "on": True,
                                "tags": ["a"], "owner": None})
    assert r.status_code == 201
    body = (await client.get("/v2/entities/Car1")).json()
    assert body["speed"]["type"] == "Number" and body["on"]["type"] == "Boolean"
    assert body["tags"]["type"] == "StructuredValue" and body["owner"]["type"] == "None"
    kv = (await client.get("/v2/entities/Car1?options=keyValues")).json()
    assert kv == {"id": "Car1", "type": "Car", "speed": 40, "on": True, "tags": ["a"], "owner": None}
    values = (await client.get("/v2/entities/Car1?options=values&attrs=speed,on")).json()
    assert values == [40, True]
    attrs_only = (await client.get("/v2/entities/Car1/attrs?options=keyValues&attrs=speed")).json()
    assert attrs_only == {"speed": 40}


async def test_default_type_and_upsert(client: httpx.AsyncClient) -> None:
    assert (await create(client, {"id": "T1", "a": {"value": 1}})).status_code == 201
    assert (await client.get("/v2/entities/T1")).json()["type"] == "Thing"
    r = await client.post("/v2/entities?options=upsert",
                          json={"id": "T1", "type": "Thing", "b": {"value": 2}})
    assert r.status_code == 204
    body = (await client.get("/v2/entities/T1?options=keyValues")).json()
    assert body == {"id": "T1", "type": "Thing", "a": 1, "b": 2}
    created = await client.post("/v2/entities?options=upsert", json={"id": "T2", "x": {"value": 1}})
    assert created.status_code == 201


async def test_retrieve_not_found_and_type_filter(client: httpx.AsyncClient) -> None:
    await create(client, ROOM)
    missing = await client.get("/v2/entities/Nope")
    assert missing.status_code == 404
    assert missing.json() == {"error": "NotFound", "description":
                              "The requested entity has not been found. Check type and id"}
    assert (await client.get("/v2/entities/Room1?type=Car")).status_code == 404
    assert (await client.get("/v2/entities/Room1?type=Room")).status_code == 200
    bad_option = await client.get("/v2/entities/Room1?options=bogus")
    assert bad_option.status_code == 400


async def test_builtin_attributes_and_metadata_on_request(client: httpx.AsyncClient) -> None:
    await create(client, ROOM)
    plain = (await client.get("/v2/entities/Room1")).json()
    assert "dateCreated" not in plain
    body = (await client.get("/v2/entities/Room1?attrs=dateCreated,dateModified,*"
                             "&metadata=dateModified,*")).json()
    assert body["dateCreated"]["type"] == "DateTime"
    assert body["dateCreated"]["value"].endswith("Z") and len(body["dateCreated"]["value"]) == 24
    assert "temperature" in body
    meta = body["temperature"]["metadata"]
    assert meta["dateModified"]["type"] == "DateTime" and "accuracy" in meta
    only = (await client.get("/v2/entities/Room1?attrs=dateCreated")).json()
    assert set(only) == {"id", "type", "dateCreated"}


async def test_update_append_replace_attrs(client: httpx.AsyncClient) -> None:
    await create(client, ROOM)
    patch = await client.patch("/v2/entities/Room1/attrs", json={"temperature": {"value": 25}})
    assert patch.status_code == 204
    body = (await client.get("/v2/entities/Room1")).json()
    # metadata not named again are kept (Orion's default; overrideMetadata replaces them)
    assert body["temperature"]["value"] == 25 and "accuracy" in body["temperature"]["metadata"]
    missing = await client.patch("/v2/entities/Room1/attrs", json={"pressure": {"value": 1}})
    assert missing.status_code == 422
    assert missing.json() == {"error": "Unprocessable", "description": "do not exist: Room1 - [ pressure ]"}
    append = await client.post("/v2/entities/Room1/attrs", json={"pressure": {"value": 1013}})
    assert append.status_code == 204
    strict = await client.post("/v2/entities/Room1/attrs?options=append",
                               json={"pressure": {"value": 1}})
    assert strict.status_code == 422 and "already exist" in strict.json()["description"]
    override = await client.patch("/v2/entities/Room1/attrs?options=overrideMetadata",
                                  json={"temperature": {"value": 26, "metadata": {}}})
    assert override.status_code == 204
    assert (await client.get("/v2/entities/Room1")).json()["temperature"]["metadata"] == {}
    replace = await client.put("/v2/entities/Room1/attrs?options=keyValues", json={"only": 1})
    assert replace.status_code == 204
    assert (await client.get("/v2/entities/Room1?options=keyValues")).json() == \
        {"id": "Room1", "type": "Room", "only": 1}
    no_entity = await client.patch("/v2/entities/Ghost/attrs", json={"a": {"value": 1}})
    assert no_entity.status_code == 404
    with_id = await client.post("/v2/entities/Room1/attrs", json={"id": "x"})
    assert with_id.status_code == 400


async def test_delete_entity(client: httpx.AsyncClient) -> None:
    await create(client, ROOM)
    assert (await client.delete("/v2/entities/Room1")).status_code == 204
    assert (await client.get("/v2/entities/Room1")).status_code == 404
    assert (await client.delete("/v2/entities/Room1")).status_code == 404


async def test_datetime_is_normalised_to_utc(client: httpx.AsyncClient) -> None:
    await create(client, {"id": "Ev1", "type": "Event",
                          "at": {"type": "DateTime", "value": "2026-04-01T09:00:00+09:00"}})
    body = (await client.get("/v2/entities/Ev1")).json()
    assert body["at"] == {"type": "DateTime", "value": "2026-04-01T00:00:00.000Z", "metadata": {}}


async def test_a_trailing_slash_names_the_same_resource(client: httpx.AsyncClient) -> None:
    """Orion (and FIWARE's tutorials) accept ``/v2/entities/``: answer it, do not redirect."""
    created = await client.post("/v2/entities/", json={"id": "S1", "type": "Store", "n": 1},
                                params={"options": "keyValues"})
    assert created.status_code == 201, created.text
    assert created.headers["Location"] == "/v2/entities/S1?type=Store"
    listed = await client.get("/v2/entities/", params={"type": "Store", "options": "count"})
    assert listed.status_code == 200
    assert listed.headers["Fiware-Total-Count"] == "1"
    assert [e["id"] for e in listed.json()] == ["S1"]
    one = await client.get("/v2/entities/S1/attrs/n/", headers={"Accept": "application/json"})
    assert one.status_code == 200 and one.json()["value"] == 1
    assert (await client.get("/v2/")).json()["entities_url"] == "/v2/entities"
    assert (await client.get("/version/")).json()["orion"]["version"].startswith("3.")
    assert (await client.get("/v2/entities/Nope/")).json()["error"] == "NotFound"
    for method, path in (("PUT", "/v2/entities/"), ("PUT", "/v2/entities"), ("POST", "/version"),
                         ("DELETE", "/v2/types"), ("POST", "/v2")):
        wrong = await client.request(method, path)
        assert wrong.status_code == 405, (method, path)
        assert wrong.json() == {"error": "MethodNotAllowed", "description": "method not allowed"}
        assert "GET" in wrong.headers["Allow"] and method not in wrong.headers["Allow"]
        assert wrong.headers["Fiware-Correlator"]


async def test_an_unknown_v2_path_is_orions_service_not_found(client: httpx.AsyncClient) -> None:
    for path in ("/v2/foo", "/v2/foo/", "/v2/entities/E1/attrs/a/value/extra"):
        answer = await client.get(path)
        assert answer.status_code == 400, path                      # no redirect, no problem+json
        assert answer.json() == {"error": "BadRequest", "description":
                                 "Service not found. Check your URL as probably it is wrong."}
