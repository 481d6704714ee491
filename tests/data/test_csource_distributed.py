"""Distributed operations against real context sources (ETSI DistributedOperations D010 - D018).

The broker under test is city B (the ``client`` fixture, both engines); city A is a second real
CityOS served on a free port, or a stub HTTP server where a test needs a failing source.
"""

from __future__ import annotations

import asyncio

import httpx

from cityos.data.ngsild.csource.index import index_of
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
V1, V2, V3 = (f"urn:ngsi-ld:Vehicle:{n}" for n in ("V1", "V2", "V3"))


async def test_D010_01_inc_retrieve_entity_living_on_a_source(client: httpx.AsyncClient) -> None:
    async with served_cityos() as (a_url, a):
        assert (await a.post(f"{BASE}/entities", json=vehicle(V1, 80))).status_code == 201
        assert (await client.get(f"{BASE}/entities/{V1}")).status_code == 404
        assert (await client.post(CSR, json=registration(a_url))).status_code == 201
        got = await client.get(f"{BASE}/entities/{V1}")
        assert got.status_code == 200, got.text
        assert got.json()["speed"] == {"type": "Property", "value": 80}
        assert "ngsild-warning" not in got.headers
        simplified = await client.get(f"{BASE}/entities/{V1}?options=keyValues")
        assert simplified.json() == {"id": V1, "type": "Vehicle", "speed": 80}
        local_only = await client.get(f"{BASE}/entities/{V1}?local=true")
        assert local_only.status_code == 404


async def test_D011_01_inc_query_merges_local_and_remote(client: httpx.AsyncClient) -> None:
    async with served_cityos() as (a_url, a):
        for entity in (vehicle(V1, 10), vehicle(V2, 20)):
            assert (await a.post(f"{BASE}/entities", json=entity)).status_code == 201
        assert (await client.post(f"{BASE}/entities", json=vehicle(V3, 30))).status_code == 201
        assert (await client.post(CSR, json=registration(a_url))).status_code == 201
        response = await client.get(f"{BASE}/entities?type=Vehicle&count=true&options=keyValues")
        assert response.status_code == 200, response.text
        assert sorted(e["speed"] for e in response.json()) == [10, 20, 30]
        assert response.headers["ngsild-results-count"] == "3"
        filtered = await client.get(f"{BASE}/entities?type=Vehicle&q=speed>15&options=keyValues")
        assert sorted(e["speed"] for e in filtered.json()) == [20, 30]
        page = await client.get(f"{BASE}/entities?type=Vehicle&limit=2&offset=2")
        assert len(page.json()) == 1
        other_type = await client.get(f"{BASE}/entities?type=Bus")
        assert other_type.json() == []


async def test_same_entity_from_two_sources_newest_attribute_wins(
        client: httpx.AsyncClient) -> None:
    async with served_cityos() as (a_url, a):
        remote = vehicle(V1, 99, observed="2026-11-26T10:00:00+09:00",
                         fuel={"type": "Property", "value": 0.5})
        assert (await a.post(f"{BASE}/entities", json=remote)).status_code == 201
        local = vehicle(V1, 11, observed="2026-11-26T00:00:00Z")     # = 09:00 in Japan, older
        assert (await client.post(f"{BASE}/entities", json=local)).status_code == 201
        assert (await client.post(CSR, json=registration(a_url))).status_code == 201
        merged = (await client.get(f"{BASE}/entities/{V1}?options=keyValues")).json()
        assert merged == {"id": V1, "type": "Vehicle", "speed": 99, "fuel": 0.5}
        listed = (await client.get(f"{BASE}/entities?type=Vehicle&options=keyValues")).json()
        assert listed == [merged]


async def test_D010_01_aux_auxiliary_only_when_nothing_else_answers(
        client: httpx.AsyncClient) -> None:
    async with served_stub() as (url, stub):
        stub.reply("GET", f"/entities/{V1}", 200, vehicle(V1, 7))
        aux = registration(url, mode="auxiliary", operations=["retrieveOps"])
        assert (await client.post(CSR, json=aux)).status_code == 201
        assert (await client.get(f"{BASE}/entities/{V1}?options=keyValues")).json()["speed"] == 7
        assert (await client.post(f"{BASE}/entities", json=vehicle(V1, 1))).status_code == 201
        asked = len(stub.received)
        got = await client.get(f"{BASE}/entities/{V1}?options=keyValues")
        assert got.json()["speed"] == 1 and len(stub.received) == asked


async def test_6317_01_warnings_for_failing_sources(client: httpx.AsyncClient) -> None:
    async with served_stub() as (url, stub):
        assert (await client.post(CSR, json=registration(url))).status_code == 201
        stub.reply("GET", f"/entities/{V1}", 403, {"type": ERR + "Forbidden"})
        forbidden = await client.get(f"{BASE}/entities/{V1}")
        assert forbidden.status_code == 404 and "299" in forbidden.headers["ngsild-warning"]
        stub.reply("GET", f"/entities/{V1}", 200, b"not a json document")
        invalid = await client.get(f"{BASE}/entities/{V1}")
        assert invalid.status_code == 404 and "111" in invalid.headers["ngsild-warning"]
        stub.reply("GET", f"/entities/{V1}", 404)
        missing = await client.get(f"{BASE}/entities/{V1}")
        assert missing.status_code == 404 and "ngsild-warning" not in missing.headers


async def test_dead_and_slow_sources_do_not_fail_the_query(client: httpx.AsyncClient) -> None:
    assert (await client.post(f"{BASE}/entities", json=vehicle(V3, 30))).status_code == 201
    dead = registration("http://127.0.0.1:9", reg_id="urn:ngsi-ld:ContextSourceRegistration:dead")
    assert (await client.post(CSR, json=dead)).status_code == 201
    async with served_stub() as (url, stub):
        stub.hang = asyncio.Event()          # never set while the query runs: a hung source
        slow = registration(url, reg_id="urn:ngsi-ld:ContextSourceRegistration:slow",
                            management={"timeout": 300, "localOnly": True})
        assert (await client.post(CSR, json=slow)).status_code == 201
        response = await client.get(f"{BASE}/entities?type=Vehicle&options=keyValues")
        stub.hang.set()
        assert response.status_code == 200
        assert [e["id"] for e in response.json()] == [V3]
        warning = response.headers["ngsild-warning"]
        assert warning.count("199 city-b") == 2 and ":dead:" in warning
        assert ":slow: no answer within 0.3 s" in warning      # management.timeout (ms)
        assert stub.received[0]["query"]["local"] == "true"      # management.localOnly
        status = (await client.get(f"{CSR}/urn:ngsi-ld:ContextSourceRegistration:dead")).json()
        assert status["status"] == "failed" and status["timesFailed"] == 1


async def test_D018_02_forwarded_requests_carry_via_tenant_and_csource_info(
        client: httpx.AsyncClient) -> None:
    async with served_stub() as (url, stub):
        stub.reply("GET", f"/entities/{V1}", 200, vehicle(V1))
        body = registration(url, contextSourceInfo=[{"key": "Authorization",
                                                     "value": "Bearer city-a-token"}])
        headers = {"NGSILD-Tenant": "kobe"}
        assert (await client.post(CSR, json=body, headers=headers)).status_code == 201
        # the tenant has registrations but no entity: it exists all the same
        got = await client.get(f"{BASE}/entities/{V1}",
                               headers={**headers, "Via": "1.1 gateway"})
        assert got.status_code == 200
        sent = stub.received[-1]["headers"]
        assert sent["via"] == "1.1 gateway, 1.1 city-b"
        assert sent["ngsild-tenant"] == "kobe"
        assert sent["authorization"] == "Bearer city-a-token"
        assert stub.received[-1]["query"]["options"] == "sysAttrs"


async def test_D018_01_loop_detection_with_via(client: httpx.AsyncClient) -> None:
    async with served_stub() as (url, stub):
        stub.reply("POST", "/entities", 201)
        body = registration(url, operations=["redirectionOps"],
                            entities=[{"type": "Vehicle", "id": V1}])
        assert (await client.post(CSR, json=body)).status_code == 201
        created = await client.post(f"{BASE}/entities", json=vehicle(V1))
        assert created.status_code == 201
        via = stub.received[-1]["headers"]["via"]
        looped = await client.delete(f"{BASE}/entities/{V1}", headers={"Via": via})
        assert looped.status_code == 508 and looped.json()["type"] == ERR + "LoopDetected"
        asked = len(stub.received)
        read = await client.get(f"{BASE}/entities/{V1}", headers={"Via": via})
        assert read.status_code == 200 and len(stub.received) == asked   # local only


async def test_D001_01_red_create_is_redirected_not_stored_locally(
        client: httpx.AsyncClient) -> None:
    async with served_cityos() as (a_url, a):
        body = registration(a_url, mode="redirect", operations=["redirectionOps"])
        assert (await client.post(CSR, json=body)).status_code == 201
        created = await client.post(f"{BASE}/entities", json=vehicle(V1, 5))
        assert created.status_code == 201, created.text
        assert (await a.get(f"{BASE}/entities/{V1}")).status_code == 200
        assert (await client.get(f"{BASE}/entities/{V1}?local=true")).status_code == 404
        patched = await client.patch(f"{BASE}/entities/{V1}/attrs",
                                     json={"speed": {"type": "Property", "value": 6}})
        assert patched.status_code == 204
        assert (await a.get(f"{BASE}/entities/{V1}?options=keyValues")).json()["speed"] == 6
        assert (await client.delete(f"{BASE}/entities/{V1}")).status_code == 204
        assert (await a.get(f"{BASE}/entities/{V1}")).status_code == 404


async def test_D001_01_inc_failing_inclusive_source_gives_207(client: httpx.AsyncClient) -> None:
    async with served_stub() as (url, stub):
        stub.reply("POST", "/entities", 500, {"type": ERR + "InternalError", "title": "boom"})
        body = registration(url, operations=["redirectionOps"])
        assert (await client.post(CSR, json=body)).status_code == 201
        created = await client.post(f"{BASE}/entities", json=vehicle(V1))
        assert created.status_code == 207, created.text
        result = created.json()
        assert result["errors"][0]["registrationId"].endswith(":r1")
        assert result["success"][0]["source"] == "local"
        assert (await client.get(f"{BASE}/entities/{V1}?local=true")).status_code == 200


async def test_without_registrations_nothing_is_forwarded(client: httpx.AsyncClient,
                                                         app: object) -> None:
    assert (await client.post(f"{BASE}/entities", json=vehicle(V1))).status_code == 201
    assert (await client.get(f"{BASE}/entities/{V1}")).status_code == 200
    index = index_of(app)
    assert await index.for_tenant("") == [] and index._client is None


async def test_D011_post_query_is_forwarded_as_a_query_body(client: httpx.AsyncClient) -> None:
    async with served_cityos() as (a_url, a):
        assert (await a.post(f"{BASE}/entities", json=vehicle(V1, 10))).status_code == 201
        assert (await client.post(f"{BASE}/entities", json=vehicle(V2, 20))).status_code == 201
        assert (await client.post(CSR, json=registration(a_url))).status_code == 201
        query = {"type": "Query", "entities": [{"type": "Vehicle"}], "q": "speed<15"}
        response = await client.post(f"{BASE}/entityOperations/query?options=keyValues",
                                     json=query)
        assert response.status_code == 200, response.text
        assert response.json() == [{"id": V1, "type": "Vehicle", "speed": 10}]


async def test_expired_registrations_are_ignored(client: httpx.AsyncClient) -> None:
    async with served_stub() as (url, stub):
        stub.reply("GET", f"/entities/{V1}", 200, vehicle(V1))
        body = registration(url, expiresAt="2020-01-01T00:00:00+09:00")
        assert (await client.post(CSR, json=body)).status_code == 201
        assert (await client.get(f"{BASE}/entities/{V1}")).status_code == 404
        assert stub.received == []


async def test_warnings_stay_ascii_for_japanese_registration_ids(
        client: httpx.AsyncClient) -> None:
    dead = registration("http://127.0.0.1:9", reg_id="urn:ngsi-ld:ContextSourceRegistration:神戸")
    assert (await client.post(CSR, json=dead)).status_code == 201
    assert (await client.post(f"{BASE}/entities", json=vehicle(V1))).status_code == 201
    response = await client.get(f"{BASE}/entities?type=Vehicle")
    assert response.status_code == 200
    warning = response.headers["ngsild-warning"]
    assert warning.isascii() and "%E7%A5%9E%E6%88%B8" in warning
    bad = registration("http://x.example.jp", contextSourceInfo=[{"key": "X-City",
                                                                  "value": "神戸"}])
    assert (await client.post(CSR, json=bad)).status_code == 400


async def test_warnings_of_a_source_federating_further_are_passed_on(
        client: httpx.AsyncClient) -> None:
    async with served_cityos() as (a_url, a):
        assert (await a.post(f"{BASE}/entities", json=vehicle(V1))).status_code == 201
        beyond = registration("http://127.0.0.1:9", reg_id="urn:ngsi-ld:ContextSourceRegistration:c")
        assert (await a.post(CSR, json=beyond)).status_code == 201      # A -> a dead city C
        assert (await client.post(CSR, json=registration(a_url))).status_code == 201
        response = await client.get(f"{BASE}/entities?type=Vehicle")
        assert [e["id"] for e in response.json()] == [V1]
        assert response.headers["ngsild-warning"].startswith('199 city-a "urn:ngsi-ld:'
                                                             'ContextSourceRegistration:c')
