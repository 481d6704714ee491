"""NGSI v2 POST /v2/op/update and /v2/op/query (both engines)."""

from __future__ import annotations

from typing import Any

import httpx


async def op(client: httpx.AsyncClient, action: str, entities: list[dict[str, Any]],
             options: str = "") -> httpx.Response:
    url = "/v2/op/update" + (f"?options={options}" if options else "")
    return await client.post(url, json={"actionType": action, "entities": entities})


async def kv(client: httpx.AsyncClient, entity_id: str) -> Any:
    r = await client.get(f"/v2/entities/{entity_id}?options=keyValues")
    return r.json() if r.status_code == 200 else r.status_code


async def test_append_update_replace_delete(client: httpx.AsyncClient) -> None:
    r = await op(client, "append", [{"id": "S1", "type": "Sensor", "v": {"value": 1}},
                                    {"id": "S2", "type": "Sensor", "v": {"value": 2}}])
    assert r.status_code == 204, r.text
    assert await kv(client, "S1") == {"id": "S1", "type": "Sensor", "v": 1}
    r = await op(client, "append", [{"id": "S1", "type": "Sensor", "w": 5}], "keyValues")
    assert r.status_code == 204
    assert await kv(client, "S1") == {"id": "S1", "type": "Sensor", "v": 1, "w": 5}
    strict = await op(client, "appendStrict", [{"id": "S1", "type": "Sensor", "w": {"value": 6}}])
    assert strict.status_code == 422
    assert (await op(client, "update", [{"id": "S2", "v": {"value": 20}}])).status_code == 204
    assert (await kv(client, "S2"))["v"] == 20
    missing_attr = await op(client, "update", [{"id": "S2", "nope": {"value": 1}}])
    assert missing_attr.status_code == 422
    missing_entity = await op(client, "update", [{"id": "S9", "v": {"value": 1}}])
    assert missing_entity.status_code == 404
    assert (await op(client, "replace", [{"id": "S1", "z": {"value": 0}}])).status_code == 204
    assert await kv(client, "S1") == {"id": "S1", "type": "Sensor", "z": 0}
    assert (await op(client, "delete", [{"id": "S1", "z": {}}])).status_code == 204
    assert await kv(client, "S1") == {"id": "S1", "type": "Sensor"}
    assert (await op(client, "delete", [{"id": "S1"}, {"id": "S2"}])).status_code == 204
    assert await kv(client, "S1") == 404 and await kv(client, "S2") == 404


async def test_batch_is_all_or_nothing(client: httpx.AsyncClient) -> None:
    await op(client, "append", [{"id": "S1", "type": "Sensor", "v": {"value": 1}}])
    r = await op(client, "update", [{"id": "S1", "v": {"value": 99}},
                                    {"id": "Ghost", "v": {"value": 1}}])
    assert r.status_code == 404
    assert (await kv(client, "S1"))["v"] == 1


async def test_ngsiv1_action_names_as_orion_accepts_them(client: httpx.AsyncClient) -> None:
    """Orion falls back to NGSIv1's names in any case; FIWARE's CRUD tutorial sends append_strict."""
    assert (await op(client, "append_strict", [{"id": "S1", "type": "T", "v": 1}],
                     "keyValues")).status_code == 204
    again = await op(client, "APPEND_STRICT", [{"id": "S1", "type": "T", "v": 2}], "keyValues")
    assert again.status_code == 422                               # strict, not a plain append
    assert (await op(client, "UPDATE", [{"id": "S1", "v": {"value": 3}}])).status_code == 204
    assert (await op(client, "Append", [{"id": "S1", "w": {"value": 4}}])).status_code == 204
    assert await kv(client, "S1") == {"id": "S1", "type": "T", "v": 3, "w": 4}
    assert (await op(client, "REPLACE", [{"id": "S1", "z": {"value": 0}}])).status_code == 204
    assert await kv(client, "S1") == {"id": "S1", "type": "T", "z": 0}
    assert (await op(client, "Delete", [{"id": "S1"}])).status_code == 204
    assert await kv(client, "S1") == 404
    for unknown in ("APPENDSTRICT", "append-strict", "upsert", ""):
        assert (await op(client, unknown, [{"id": "S1"}])).status_code == 400, unknown


async def test_batch_errors(client: httpx.AsyncClient) -> None:
    bad_action = await op(client, "upsert", [{"id": "S1"}])
    assert bad_action.status_code == 400 and bad_action.json()["error"] == "BadRequest"
    assert (await op(client, "append", [])).status_code == 400
    assert (await client.post("/v2/op/update", json={"entities": []})).status_code == 400
    assert (await op(client, "append", [{"type": "NoId"}])).status_code == 400
    assert (await op(client, "append", [{"id": "bad id"}])).status_code == 400


async def test_batch_query(client: httpx.AsyncClient) -> None:
    await op(client, "append", [
        {"id": "Room1", "type": "Room", "temperature": 10},
        {"id": "Room2", "type": "Room", "temperature": 20},
        {"id": "Car1", "type": "Car", "temperature": 30}], "keyValues")
    await client.post("/v2/entities/Room1/attrs", json={"location": {"type": "geo:point",
                                                                      "value": "34.69, 135.19"}})
    r = await client.post("/v2/op/query?options=count,keyValues",
                          json={"entities": [{"idPattern": ".*", "type": "Room"}],
                                "attrs": ["temperature"],
                                "expression": {"q": "temperature>5"}})
    assert r.status_code == 200, r.text
    assert r.json() == [{"id": "Room1", "type": "Room", "temperature": 10},
                        {"id": "Room2", "type": "Room", "temperature": 20}]
    assert r.headers["fiware-total-count"] == "2"
    by_id = await client.post("/v2/op/query", json={"entities": [{"id": "Car1"}]})
    assert [e["id"] for e in by_id.json()] == ["Car1"]
    pattern = await client.post("/v2/op/query?options=keyValues&attrs=temperature",
                                json={"entities": [{"idPattern": ".*", "typePattern": "^Ca"}]})
    assert [e["id"] for e in pattern.json()] == ["Car1"]
    geo = await client.post("/v2/op/query", json={"expression": {
        "georel": "near;maxDistance:1000", "geometry": "point", "coords": "34.69,135.19"}})
    assert [e["id"] for e in geo.json()] == ["Room1"]
    bad = await client.post("/v2/op/query", json={"entities": [{"type": "Room"}]})
    assert bad.status_code == 400
    bad_member = await client.post("/v2/op/query", json={"what": 1})
    assert bad_member.status_code == 400
