"""Contract tests: multi-tenancy with the NGSILD-Tenant header (CIM 009 4.14, 6.3.14).

A tenant is created implicitly by its first write; tenants see nothing of each other; a read
naming a tenant that never stored anything is 404 NonexistentTenant.
"""

from __future__ import annotations

import httpx

BASE = "/ngsi-ld/v1"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
EID = "urn:ngsi-ld:Streetlight:kitano-1"
KOBE = {"NGSILD-Tenant": "kobe"}
OSAKA = {"NGSILD-Tenant": "osaka"}


def light(power: float) -> dict[str, object]:
    return {"id": EID, "type": "Streetlight",
            "name": {"type": "Property", "value": "北野坂 1 号灯"},
            "powerState": {"type": "Property", "value": "on"},
            "power": {"type": "Property", "value": power, "unitCode": "WTT"}}


async def test_tenants_are_isolated(client: httpx.AsyncClient) -> None:
    assert (await client.post(f"{BASE}/entities", json=light(40), headers=KOBE)).status_code == 201
    # the same id in another tenant and in the default tenant is a different entity
    assert (await client.post(f"{BASE}/entities", json=light(60), headers=OSAKA)).status_code == 201
    assert (await client.post(f"{BASE}/entities", json=light(80))).status_code == 201
    for headers, power in ((KOBE, 40), (OSAKA, 60), ({}, 80)):
        got = await client.get(f"{BASE}/entities/{EID}", headers=headers)
        assert got.json()["power"]["value"] == power
    await client.delete(f"{BASE}/entities/{EID}", headers=KOBE)
    assert (await client.get(f"{BASE}/entities/{EID}", headers=KOBE)).status_code == 404
    assert (await client.get(f"{BASE}/entities/{EID}", headers=OSAKA)).status_code == 200


async def test_queries_batches_and_discovery_stay_in_their_tenant(
        client: httpx.AsyncClient) -> None:
    await client.post(f"{BASE}/entityOperations/create", json=[light(40)], headers=KOBE)
    other = {"id": "urn:ngsi-ld:Building:umeda", "type": "Building"}
    await client.post(f"{BASE}/entities", json=other, headers=OSAKA)
    kobe = await client.get(f"{BASE}/entities", params={"local": "true"}, headers=KOBE)
    assert [e["id"] for e in kobe.json()] == [EID]
    types = await client.get(f"{BASE}/types", headers=OSAKA)
    assert types.json()["typeList"] == ["Building"]
    default = await client.get(f"{BASE}/entities", params={"type": "Streetlight"})
    assert default.json() == []
    query = {"type": "Query", "entities": [{"type": "Streetlight"}]}
    posted = await client.post(f"{BASE}/entityOperations/query", json=query, headers=OSAKA)
    assert posted.json() == []
    purge = await client.delete(f"{BASE}/entities", params={"type": "Streetlight"}, headers=OSAKA)
    assert purge.status_code == 204
    assert (await client.get(f"{BASE}/entities/{EID}", headers=KOBE)).status_code == 200


async def test_unknown_tenant_on_read_is_404_nonexistent_tenant(
        client: httpx.AsyncClient) -> None:
    nagoya = {"NGSILD-Tenant": "nagoya"}
    reads = [
        client.get(f"{BASE}/entities/{EID}", headers=nagoya),
        client.get(f"{BASE}/entities", params={"type": "Streetlight"}, headers=nagoya),
        client.get(f"{BASE}/types", headers=nagoya),
        client.get(f"{BASE}/attributes", headers=nagoya),
        client.post(f"{BASE}/entityOperations/query",
                    json={"type": "Query", "entities": [{"type": "X"}]}, headers=nagoya),
    ]
    for call in reads:
        response = await call
        assert response.status_code == 404, response.text
        assert response.json()["type"] == ERR + "NonexistentTenant"


async def test_invalid_tenant_names_are_400(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{BASE}/entities", json=light(1),
                                 headers={"NGSILD-Tenant": "bad tenant/../x"})
    assert response.status_code == 400
    assert response.json()["type"] == ERR + "BadRequestData"
