"""Distributed writes: batches (ETSI D012 - D016) and exclusive attribute splits (D001_01_exc)."""

from __future__ import annotations

import httpx
import orjson

from tests.data.test_csource_support import (
    BASE,
    CSR,
    ERR,
    registration,
    served_cityos,
    served_stub,
    settings,
    vehicle,
)

__all__ = ["settings"]
BATCH_OPS = ["redirectionOps", "createBatch", "upsertBatch", "updateBatch", "deleteBatch",
             "mergeBatch"]
V1, V2 = "urn:ngsi-ld:Vehicle:V1", "urn:ngsi-ld:Vehicle:V2"
BUS = {"id": "urn:ngsi-ld:Bus:B1", "type": "Bus", "speed": {"type": "Property", "value": 40}}


async def test_D012_01_exc_batch_create_goes_to_the_source_in_one_request(
        client: httpx.AsyncClient) -> None:
    async with served_stub() as (url, stub):
        stub.reply("POST", "/entityOperations/create", 201, [V1, V2])
        body = registration(url, mode="exclusive", operations=BATCH_OPS,
                            entities=[{"type": "Vehicle", "idPattern": "urn:ngsi-ld:Vehicle:*"}])
        assert (await client.post(CSR, json=body)).status_code == 201
        created = await client.post(f"{BASE}/entityOperations/create",
                                    json=[vehicle(V1), vehicle(V2), BUS])
        assert created.status_code == 201, created.text
        assert sorted(created.json()) == sorted([V1, V2, BUS["id"]])
        [sent] = [r for r in stub.received if r["path"].endswith("/entityOperations/create")]
        assert [e["id"] for e in orjson.loads(sent["body"])] == [V1, V2]
        assert (await client.get(f"{BASE}/entities/{BUS['id']}?local=true")).status_code == 200
        assert (await client.get(f"{BASE}/entities/{V1}?local=true")).status_code == 404


async def test_D013_01_inc_batch_upsert_done_locally_and_on_the_source(
        client: httpx.AsyncClient) -> None:
    async with served_cityos() as (a_url, a):
        body = registration(a_url, operations=BATCH_OPS)
        assert (await client.post(CSR, json=body)).status_code == 201
        upserted = await client.post(f"{BASE}/entityOperations/upsert",
                                     json=[vehicle(V1, 3), BUS])
        assert upserted.status_code == 201, upserted.text
        assert (await a.get(f"{BASE}/entities/{V1}")).status_code == 200
        assert (await a.get(f"{BASE}/entities/{BUS['id']}")).status_code == 404
        assert (await client.get(f"{BASE}/entities/{V1}?local=true")).status_code == 200
        deleted = await client.post(f"{BASE}/entityOperations/delete", json=[V1])
        assert deleted.status_code == 204, deleted.text
        assert (await a.get(f"{BASE}/entities/{V1}")).status_code == 404
        assert (await client.get(f"{BASE}/entities/{V1}?local=true")).status_code == 404


async def test_D014_red_failing_source_is_reported_per_entity(client: httpx.AsyncClient) -> None:
    assert (await client.post(f"{BASE}/entities", json=BUS)).status_code == 201
    async with served_stub() as (url, stub):
        stub.reply("POST", "/entityOperations/update", 503,
                   {"type": ERR + "InternalError", "title": "down", "status": 503})
        body = registration(url, mode="redirect", operations=BATCH_OPS)
        assert (await client.post(CSR, json=body)).status_code == 201
        update = [{"id": V1, "type": "Vehicle", "speed": {"type": "Property", "value": 1}},
                  {"id": BUS["id"], "type": "Bus", "speed": {"type": "Property", "value": 2}}]
        answer = await client.post(f"{BASE}/entityOperations/update", json=update)
        assert answer.status_code == 207, answer.text
        result = answer.json()
        assert result["success"] == [BUS["id"]]
        [error] = result["errors"]
        assert error["entityId"] == V1 and error["registrationId"].endswith(":r1")
        assert error["error"]["status"] == 503


async def test_batch_write_with_our_via_is_a_loop(client: httpx.AsyncClient) -> None:
    async with served_stub() as (url, _):
        body = registration(url, mode="redirect", operations=BATCH_OPS)
        assert (await client.post(CSR, json=body)).status_code == 201
        looped = await client.post(f"{BASE}/entityOperations/create", json=[vehicle(V1)],
                                   headers={"Via": "1.1 city-b"})
        assert looped.status_code == 508


async def test_D001_01_exc_exclusive_attributes_go_to_the_source_the_rest_stays_here(
        client: httpx.AsyncClient) -> None:
    async with served_cityos() as (a_url, a):
        body = registration(a_url, mode="exclusive", operations=["redirectionOps"],
                            information=[{"entities": [{"type": "Vehicle", "id": V1}],
                                          "propertyNames": ["speed"]}])
        assert (await client.post(CSR, json=body)).status_code == 201
        entity = vehicle(V1, 70, brandName={"type": "Property", "value": "Mazda"})
        created = await client.post(f"{BASE}/entities", json=entity)
        assert created.status_code == 201, created.text
        remote = (await a.get(f"{BASE}/entities/{V1}?options=keyValues")).json()
        assert remote == {"id": V1, "type": "Vehicle", "speed": 70}
        local = (await client.get(f"{BASE}/entities/{V1}?local=true&options=keyValues")).json()
        assert local == {"id": V1, "type": "Vehicle", "brandName": "Mazda"}
        merged = (await client.get(f"{BASE}/entities/{V1}?options=keyValues")).json()
        assert merged == {"id": V1, "type": "Vehicle", "brandName": "Mazda", "speed": 70}
        patched = await client.patch(f"{BASE}/entities/{V1}/attrs",
                                     json={"speed": {"type": "Property", "value": 71}})
        assert patched.status_code == 204
        assert (await a.get(f"{BASE}/entities/{V1}?options=keyValues")).json()["speed"] == 71
