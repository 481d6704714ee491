"""NGSI v2 idPattern / typePattern run on RE2: no catastrophic backtracking, precise 400s."""

from __future__ import annotations

import httpx

EVIL = "a" * 40 + "!"


async def _seed(client: httpx.AsyncClient) -> None:
    for entity_id, entity_type in ((EVIL, "Room"), ("aaa", "Room"), ("Car1", EVIL)):
        r = await client.post("/v2/entities", json={"id": entity_id, "type": entity_type})
        assert r.status_code == 201, r.text


async def test_catastrophic_id_and_type_patterns_answer(client: httpx.AsyncClient) -> None:
    await _seed(client)
    r = await client.get("/v2/entities", params={"idPattern": "^(a+)+$"})
    assert r.status_code == 200 and [e["id"] for e in r.json()] == ["aaa"]
    r = await client.get("/v2/entities", params={"typePattern": "^(a+)+$"})
    assert r.status_code == 200 and r.json() == []
    r = await client.post("/v2/op/query", json={"entities": [
        {"idPattern": "(a+)+$", "typePattern": "(R+)+oom$"}]})
    assert r.status_code == 200 and [e["id"] for e in r.json()] == ["aaa"]


async def test_patterns_re2_cannot_run_are_orion_bad_requests(client: httpx.AsyncClient) -> None:
    for params in ({"idPattern": "(?=R)Room"}, {"typePattern": r"(R)\1"},
                   {"idPattern": "x" * 300}):
        r = await client.get("/v2/entities", params=params)
        assert r.status_code == 400, params
        assert r.json()["error"] == "BadRequest"
        assert r.json()["description"].startswith("Invalid regex for")
    r = await client.post("/v2/op/query", json={"entities": [{"idPattern": "(?<=a)b"}]})
    assert r.status_code == 400 and r.json()["error"] == "BadRequest"


async def test_subscription_subject_patterns_are_checked(client: httpx.AsyncClient) -> None:
    body = {"subject": {"entities": [{"idPattern": "(?!x)", "type": "Room"}]},
            "notification": {"http": {"url": "http://127.0.0.1:9/n"}}}
    r = await client.post("/v2/subscriptions", json=body)
    assert r.status_code == 400 and r.json()["error"] == "BadRequest"
    body["subject"] = {"entities": [{"idPattern": ".*", "typePattern": r"(\w)\1"}]}
    r = await client.post("/v2/subscriptions", json=body)
    assert r.status_code == 400 and "typePattern" in r.json()["description"]
