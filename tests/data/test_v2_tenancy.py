"""NGSI v2 Fiware-Service (tenants) and Fiware-ServicePath (both engines)."""

from __future__ import annotations

import httpx


def sp(path: str, service: str | None = None) -> dict[str, str]:
    headers = {"fiware-servicepath": path}
    if service:
        headers["fiware-service"] = service
    return headers


async def make(client: httpx.AsyncClient, entity_id: str, path: str | None = None,
               service: str | None = None) -> None:
    headers = sp(path, service) if path else ({"fiware-service": service} if service else {})
    r = await client.post("/v2/entities?options=keyValues", json={"id": entity_id, "type": "Spot", "n": 1},
                          headers=headers)
    assert r.status_code == 201, r.text


async def listed(client: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    r = await client.get("/v2/entities", headers=headers)
    assert r.status_code == 200, r.text
    return sorted(e["id"] for e in r.json())


async def test_service_paths_filter_queries(client: httpx.AsyncClient) -> None:
    await make(client, "Root1")
    await make(client, "Kobe1", "/Hyogo/Kobe")
    await make(client, "Himeji1", "/Hyogo/Himeji")
    await make(client, "Osaka1", "/Osaka")
    assert await listed(client, {}) == ["Himeji1", "Kobe1", "Osaka1", "Root1"]
    assert await listed(client, sp("/")) == ["Root1"]
    assert await listed(client, sp("/#")) == ["Himeji1", "Kobe1", "Osaka1", "Root1"]
    assert await listed(client, sp("/Hyogo")) == []
    assert await listed(client, sp("/Hyogo/#")) == ["Himeji1", "Kobe1"]
    assert await listed(client, sp("/Hyogo/Kobe")) == ["Kobe1"]
    assert await listed(client, sp("/Hyogo/Kobe, /Osaka")) == ["Kobe1", "Osaka1"]
    assert await listed(client, sp("/,/Osaka")) == ["Osaka1", "Root1"]


async def test_service_path_on_entity_operations(client: httpx.AsyncClient) -> None:
    await make(client, "Kobe1", "/Hyogo/Kobe")
    assert (await client.get("/v2/entities/Kobe1", headers=sp("/Osaka"))).status_code == 404
    assert (await client.get("/v2/entities/Kobe1", headers=sp("/Hyogo/#"))).status_code == 200
    assert (await client.get("/v2/entities/Kobe1")).status_code == 200
    # writes see their own service path only (default "/"), as in Orion
    wrong = await client.patch("/v2/entities/Kobe1/attrs", json={"n": {"value": 2}})
    assert wrong.status_code == 404
    right = await client.patch("/v2/entities/Kobe1/attrs", json={"n": {"value": 2}},
                               headers=sp("/Hyogo/Kobe"))
    assert right.status_code == 204
    assert (await client.delete("/v2/entities/Kobe1", headers=sp("/Osaka"))).status_code == 404
    assert (await client.delete("/v2/entities/Kobe1", headers=sp("/Hyogo/Kobe"))).status_code == 204


async def test_bad_service_paths(client: httpx.AsyncClient) -> None:
    for bad in ("Hyogo", "/a b", "/" + "/".join(["x"] * 11), "/" + "x" * 51):
        r = await client.get("/v2/entities", headers=sp(bad))
        assert r.status_code == 400, bad
        assert r.json()["error"] == "BadRequest"
    many = ",".join(f"/p{i}" for i in range(11))
    assert (await client.get("/v2/entities", headers=sp(many))).status_code == 400
    write = await client.post("/v2/entities", json={"id": "X"}, headers=sp("/a/#"))
    assert write.status_code == 400
    two = await client.post("/v2/entities", json={"id": "X"}, headers=sp("/a,/b"))
    assert two.status_code == 400


async def test_tenants_are_separate(client: httpx.AsyncClient) -> None:
    await make(client, "A1", service="kobe")
    await make(client, "B1", service="osaka")
    await make(client, "D1")
    assert await listed(client, {"fiware-service": "kobe"}) == ["A1"]
    assert await listed(client, {"fiware-service": "Osaka"}) == ["B1"]   # lower-cased, as Orion
    assert await listed(client, {}) == ["D1"]
    assert (await client.get("/v2/entities/A1")).status_code == 404
    assert (await client.get("/v2/entities/A1", headers={"fiware-service": "kobe"})).status_code == 200
    bad = await client.get("/v2/entities", headers={"fiware-service": "a-b"})
    assert bad.status_code == 400 and bad.json()["error"] == "BadRequest"
    # the same tenant through NGSI-LD: one data set
    ld = await client.get("/ngsi-ld/v1/entities/urn:ngsi-v2:A1", headers={"NGSILD-Tenant": "kobe"})
    assert ld.status_code == 200 and ld.json()["id"] == "urn:ngsi-v2:A1"
