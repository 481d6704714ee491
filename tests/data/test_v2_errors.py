"""NGSI v2 input checks: Orion's syntax rules, bodies and error payloads (both engines)."""

from __future__ import annotations

import httpx
import pytest

from cityos.core.settings import Settings


async def test_identifier_syntax_is_orions(client: httpx.AsyncClient) -> None:
    for body in ({"id": "a b"}, {"id": "a/b"}, {"id": "a#b"}, {"id": "x" * 257},
                 {"id": "E", "type": "Ro;om"}, {"id": "E", "type": ""},
                 {"id": "E", "bad name": {"value": 1}}, {"id": "E", "温度": {"value": 1}},
                 {"id": "E", "t": {"value": 1, "type": "Num ber"}},
                 {"id": "E", "t": {"value": 1, "metadata": {"m(1)": {"value": 1}}}},
                 {"id": "E", "t": {"value": 1, "metadata": {"dateModified": {"value": 1}}}},
                 {"id": "E", "t": {"value": 1, "unknown": 2}},
                 {"id": 5}):
        r = await client.post("/v2/entities", json=body)
        assert r.status_code == 400, body
        assert r.json()["error"] == "BadRequest", body
    assert (await client.get("/v2/entities/a%20b")).status_code == 400
    ok = await client.post("/v2/entities", json={"id": "E", "name": {"value": "三宮 (東口); a=b"}})
    assert ok.status_code == 201   # values may carry any text, Japanese included


async def test_location_values_are_checked(client: httpx.AsyncClient) -> None:
    for attr in ({"type": "geo:json", "value": {"type": "Point", "coordinates": [200, 0]}},
                 {"type": "geo:json", "value": "nowhere"},
                 {"type": "geo:point", "value": "91, 0"},
                 {"type": "geo:point", "value": [1, 2]},
                 {"type": "geo:line", "value": ["1, 2"]},
                 {"type": "geo:box", "value": ["1, 2"]},
                 {"type": "geo:polygon", "value": ["0, 0", "0, 1", "1, 1"]}):
        r = await client.post("/v2/entities", json={"id": "G", "location": attr})
        assert r.status_code == 400, attr
    box = {"type": "geo:box", "value": ["34.6, 135.1", "34.8, 135.3"]}
    assert (await client.post("/v2/entities", json={"id": "G", "location": box})).status_code == 201
    assert (await client.get("/v2/entities/G/attrs/location")).json()["value"] == box["value"]
    hit = await client.get("/v2/entities?georel=intersects&geometry=point&coords=34.7,135.2")
    assert [e["id"] for e in hit.json()] == ["G"]


async def test_empty_and_oversized_bodies(client: httpx.AsyncClient, settings: Settings) -> None:
    await client.post("/v2/entities", json={"id": "E", "a": {"value": 1}})
    empty = await client.patch("/v2/entities/E/attrs", json={})
    assert empty.status_code == 400
    huge = b'{"id": "' + b"x" * settings.max_body_bytes + b'"}'
    r = await client.post("/v2/entities", content=huge, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "RequestEntityTooLarge"
    not_object = await client.post("/v2/entities", json=[1, 2])
    assert not_object.status_code == 400


@pytest.mark.parametrize("action", ["update", "replace", "delete"])
async def test_batch_on_missing_entity_is_not_found(client: httpx.AsyncClient, action: str) -> None:
    r = await client.post("/v2/op/update", json={"actionType": action,
                                                 "entities": [{"id": "Nope", "a": {"value": 1}}]})
    assert r.status_code == 404 and r.json()["error"] == "NotFound"
