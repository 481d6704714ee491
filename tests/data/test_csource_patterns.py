"""Registration idPattern runs on RE2: a catastrophic pattern cannot block entity retrieval."""

from __future__ import annotations

import httpx

from tests.data.test_csource_support import BASE, CSR, ERR, registration, served_stub, settings

__all__ = ["settings"]


async def test_catastrophic_registration_pattern_does_not_block(client: httpx.AsyncClient) -> None:
    async with served_stub() as (url, stub):
        body = registration(url, entities=[{"type": "Vehicle", "idPattern": "(a+)+$"}])
        assert (await client.post(CSR, json=body)).status_code == 201
        evil = "urn:ngsi-ld:Vehicle:" + "a" * 40 + "!"
        r = await client.get(f"{BASE}/entities/{evil}")
        assert r.status_code == 404
        assert stub.received == []                       # not covered: never forwarded
        await client.get(f"{BASE}/entities/urn:ngsi-ld:Vehicle:aaa")
        assert len(stub.received) == 1                   # covered: forwarded
        r = await client.get(f"{BASE}/csourceRegistrations",
                             params={"idPattern": "(a+)+$", "type": "Vehicle"})
        assert r.status_code == 200 and len(r.json()) == 1


async def test_registration_pattern_re2_cannot_run_is_refused(client: httpx.AsyncClient) -> None:
    for pattern in ("(?=a)a", r"(a)\1", "a" * 300):
        body = registration("http://127.0.0.1:9", entities=[{"type": "V", "idPattern": pattern}])
        r = await client.post(CSR, json=body)
        assert r.status_code == 400, pattern
        assert r.json()["type"] == ERR + "BadRequestData"
    r = await client.get(CSR, params={"idPattern": "(?<=x)y", "type": "V"})
    assert r.status_code == 400 and r.json()["type"] == ERR + "BadRequestData"
    sub = {"type": "Subscription", "entities": [{"type": "V", "idPattern": "(?!b)"}],
           "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}}}
    r = await client.post(f"{BASE}/csourceSubscriptions", json=sub)
    assert r.status_code == 400 and r.json()["type"] == ERR + "BadRequestData"
