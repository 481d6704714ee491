"""Contract tests: batch operations (CIM 009 5.6.7 - 5.6.10, 5.6.20, 6.14 - 6.18).

201 / 204 / 207 as the ETSI test suite expects, the BatchOperationResult body
``{"success": [...], "errors": [{"entityId", "error": ProblemDetails}]}`` and the documented
maximum batch size (100 in the test settings): a larger batch is refused whole, nothing written.
"""

from __future__ import annotations

from typing import Any

import httpx

BASE = "/ngsi-ld/v1"
OPS = f"{BASE}/entityOperations"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"


def spot(n: int | str, status: str = "free", **extra: Any) -> dict[str, Any]:
    """A parking spot in Motomachi (Kobe)."""
    return {"id": f"urn:ngsi-ld:ParkingSpot:motomachi-{n}", "type": "ParkingSpot",
            "name": {"type": "Property", "value": f"元町 {n} 番"},
            "status": {"type": "Property", "value": status}, **extra}


async def stored(client: httpx.AsyncClient, n: int | str) -> dict[str, Any] | None:
    response = await client.get(f"{BASE}/entities/urn:ngsi-ld:ParkingSpot:motomachi-{n}")
    return response.json() if response.status_code == 200 else None


async def count(client: httpx.AsyncClient) -> int:
    response = await client.get(f"{BASE}/entities",
                                params={"type": "ParkingSpot", "limit": "0", "count": "true"})
    return int(response.headers["NGSILD-Results-Count"])


def batch_result(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 207, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"success", "errors"}
    for error in body["errors"]:
        assert set(error) >= {"entityId", "error"}
        assert error["error"]["type"].startswith(ERR) and error["error"]["title"]
    return body


async def test_batch_create_all_new_is_201_with_ids(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{OPS}/create", json=[spot(1), spot(2)])
    assert response.status_code == 201, response.text
    assert response.json() == [spot(1)["id"], spot(2)["id"]]
    assert (await stored(client, 2)) is not None


async def test_batch_create_partial_is_207(client: httpx.AsyncClient) -> None:
    await client.post(f"{OPS}/create", json=[spot(1)])
    bad = {"id": "not a uri", "type": "ParkingSpot"}
    response = await client.post(f"{OPS}/create", json=[spot(1), spot(2), bad])
    body = batch_result(response)
    assert body["success"] == [spot(2)["id"]]
    errors = {e["entityId"]: e["error"]["type"] for e in body["errors"]}
    assert errors == {spot(1)["id"]: ERR + "AlreadyExists", "not a uri": ERR + "BadRequestData"}
    assert (await stored(client, 2)) is not None


async def test_batch_create_duplicate_ids_in_one_batch(client: httpx.AsyncClient) -> None:
    body = batch_result(await client.post(f"{OPS}/create", json=[spot(1), spot(1, "taken")]))
    assert body["success"] == [spot(1)["id"]]
    assert [e["entityId"] for e in body["errors"]] == [spot(1)["id"]]


async def test_batch_upsert_replace_creates_201_and_replaces_204(
        client: httpx.AsyncClient) -> None:
    await client.post(f"{OPS}/create", json=[spot(1, extra={"type": "Property", "value": 1})])
    response = await client.post(f"{OPS}/upsert", json=[spot(1, "occupied"), spot(2)])
    assert response.status_code == 201, response.text
    assert response.json() == [spot(2)["id"]]
    first = await stored(client, 1)
    assert first is not None and first["status"]["value"] == "occupied" and "extra" not in first
    response = await client.post(f"{OPS}/upsert", json=[spot(1), spot(2)])
    assert response.status_code == 204 and response.content == b""


async def test_batch_upsert_update_keeps_other_attributes(client: httpx.AsyncClient) -> None:
    await client.post(f"{OPS}/create", json=[spot(1, extra={"type": "Property", "value": 1})])
    response = await client.post(f"{OPS}/upsert", params={"options": "update"},
                                 json=[spot(1, "occupied")])
    assert response.status_code == 204, response.text
    first = await stored(client, 1)
    assert first is not None and first["status"]["value"] == "occupied"
    assert first["extra"]["value"] == 1
    bad = await client.post(f"{OPS}/upsert", params={"options": "replace,update"}, json=[spot(1)])
    assert bad.status_code == 400


async def test_batch_upsert_partial_is_207(client: httpx.AsyncClient) -> None:
    body = batch_result(await client.post(f"{OPS}/upsert", json=[spot(1), {"type": "X"}]))
    assert body["success"] == [spot(1)["id"]]
    assert len(body["errors"]) == 1


async def test_batch_update_and_no_overwrite(client: httpx.AsyncClient) -> None:
    await client.post(f"{OPS}/create", json=[spot(1), spot(2)])
    update = [{"id": spot(1)["id"], "status": {"type": "Property", "value": "occupied"}},
              {"id": spot(2)["id"], "status": {"type": "Property", "value": "closed"},
               "level": {"type": "Property", "value": -1}}]
    response = await client.post(f"{OPS}/update", json=update)
    assert response.status_code == 204, response.text
    second = await stored(client, 2)
    assert second is not None and second["status"]["value"] == "closed"
    assert second["level"]["value"] == -1
    keep = [{"id": spot(1)["id"], "status": {"type": "Property", "value": "free"}}]
    response = await client.post(f"{OPS}/update", params={"options": "noOverwrite"}, json=keep)
    assert response.status_code == 204
    first = await stored(client, 1)
    assert first is not None and first["status"]["value"] == "occupied"


async def test_batch_update_of_missing_entity_is_207(client: httpx.AsyncClient) -> None:
    await client.post(f"{OPS}/create", json=[spot(1)])
    update = [{"id": spot(1)["id"], "status": {"type": "Property", "value": "occupied"}},
              {"id": spot(9)["id"], "status": {"type": "Property", "value": "occupied"}}]
    body = batch_result(await client.post(f"{OPS}/update", json=update))
    assert body["success"] == [spot(1)["id"]]
    assert body["errors"][0]["entityId"] == spot(9)["id"]
    assert body["errors"][0]["error"]["type"] == ERR + "ResourceNotFound"


async def test_batch_merge(client: httpx.AsyncClient) -> None:
    await client.post(f"{OPS}/create", json=[spot(1, extra={"type": "Property", "value": 1})])
    merge = [{"id": spot(1)["id"], "type": "ParkingSpot", "status": {"value": "occupied"},
              "extra": "urn:ngsi-ld:null"}]
    response = await client.post(f"{OPS}/merge", json=merge)
    assert response.status_code == 204, response.text
    first = await stored(client, 1)
    assert first is not None and first["status"] == {"type": "Property", "value": "occupied"}
    assert "extra" not in first
    # a bare object merges into an existing attribute: here it deletes a sub-attribute
    await client.post(f"{OPS}/merge", json=[{"id": spot(1)["id"], "status": {
        "reason": {"type": "Property", "value": "工事中"}}}])
    first = await stored(client, 1)
    assert first is not None and first["status"]["reason"]["value"] == "工事中"
    response = await client.post(f"{OPS}/merge", json=[{"id": spot(1)["id"], "status": {
        "reason": "urn:ngsi-ld:null"}}])
    assert response.status_code == 204, response.text
    first = await stored(client, 1)
    assert first is not None and first["status"] == {"type": "Property", "value": "occupied"}
    body = batch_result(await client.post(f"{OPS}/merge", json=[{"id": spot(7)["id"]}]))
    assert body["errors"][0]["error"]["type"] == ERR + "ResourceNotFound"


async def test_batch_delete(client: httpx.AsyncClient) -> None:
    await client.post(f"{OPS}/create", json=[spot(1), spot(2)])
    response = await client.post(f"{OPS}/delete", json=[spot(1)["id"]])
    assert response.status_code == 204
    assert await stored(client, 1) is None
    body = batch_result(await client.post(f"{OPS}/delete", json=[spot(2)["id"], spot(1)["id"]]))
    assert body["success"] == [spot(2)["id"]]
    assert body["errors"][0]["entityId"] == spot(1)["id"]
    assert body["errors"][0]["error"]["type"] == ERR + "ResourceNotFound"


async def test_batch_larger_than_the_maximum_is_400_and_writes_nothing(
        client: httpx.AsyncClient) -> None:
    for op, payload in (("create", [spot(n) for n in range(101)]),
                        ("upsert", [spot(n) for n in range(101)]),
                        ("update", [spot(n) for n in range(101)]),
                        ("merge", [spot(n) for n in range(101)]),
                        ("delete", [spot(n)["id"] for n in range(101)])):
        response = await client.post(f"{OPS}/{op}", json=payload)
        assert response.status_code == 400, op
        problem = response.json()
        assert problem["type"] == ERR + "BadRequestData"
        assert "100" in problem["detail"] and "101" in problem["detail"]
    assert await count(client) == 0
    # exactly the maximum is fine
    response = await client.post(f"{OPS}/create", json=[spot(n) for n in range(100)])
    assert response.status_code == 201
    assert await count(client) == 100


async def test_batch_bodies_must_be_non_empty_arrays(client: httpx.AsyncClient) -> None:
    for payload in ([], {"id": spot(1)["id"]}):
        response = await client.post(f"{OPS}/create", json=payload)
        assert response.status_code == 400
        assert response.json()["type"] == ERR + "BadRequestData"
    response = await client.post(f"{OPS}/create", content=b"[{",
                                 headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["type"] == ERR + "InvalidRequest"


async def test_batch_json_ld_entities_carry_their_own_context(client: httpx.AsyncClient) -> None:
    ctx = {"@context": {"level": "https://example.org/kobe#level"}}
    entity = {**spot(1), "level": {"type": "Property", "value": 2}, **ctx}
    response = await client.post(f"{OPS}/create", json=[entity],
                                 headers={"Content-Type": "application/ld+json"})
    assert response.status_code == 201, response.text
    first = await stored(client, 1)
    assert first is not None and first["https://example.org/kobe#level"]["value"] == 2
    # a JSON-LD batch whose entity lacks @context, or with a Link header, is 400
    response = await client.post(f"{OPS}/create", json=[spot(2)],
                                 headers={"Content-Type": "application/ld+json"})
    assert response.status_code == 400
