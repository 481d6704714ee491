"""Every entity API answers only within the caller's token, policies and consents (issue #4).

Tokens are real (the app's own issuer); policies are the built-in ones plus those a test adds.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from cityos.auth.directory import Policy

LD = "/ngsi-ld/v1"
VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"


def bearer(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


def room(n: int, **attrs: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": f"urn:ngsi-ld:Room:{n}", "type": "Room",
                            "temperature": {"type": "Property", "value": 20 + n},
                            "secretCode": {"type": "Property", "value": f"code-{n}"}}
    body.update(attrs)
    return body


def location_of(owner_id: str, n: int) -> dict[str, Any]:
    """A resident's position: personal data (dataOwner, dataCategory)."""
    return {"id": f"urn:ngsi-ld:PersonLocation:{n}", "type": "PersonLocation",
            "dataOwner": {"type": "Relationship", "object": f"urn:cityos:account:{owner_id}"},
            "dataCategory": {"type": "Property", "value": "location"},
            "position": {"type": "GeoProperty",
                         "value": {"type": "Point", "coordinates": [135.19, 34.69]}}}


async def ids(client: httpx.AsyncClient, token: str, query: str = "type=Room", **h: str) -> list[str]:
    r = await client.get(f"{LD}/entities?{query}&count=true&limit=100", headers=bearer(token, **h))
    assert r.status_code == 200, r.text
    found = sorted(e["id"] for e in r.json())
    assert int(r.headers["NGSILD-Results-Count"]) == len(found)   # nothing hidden is counted
    return found


async def test_no_token_no_data_but_open_documents_stay_open(auth_client: httpx.AsyncClient) -> None:
    r = await auth_client.get(f"{LD}/entities?type=Room")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["status"] == 401
    for path in ("/health", "/.well-known/openid-configuration", "/openapi.json"):
        assert (await auth_client.get(path)).status_code == 200, path
    assert (await auth_client.get("/health")).json()["auth"] == "enabled"
    r = await auth_client.get(f"{LD}/entities", headers={"Authorization": "Bearer not.a.jwt"})
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]


async def test_operator_writes_and_reads_its_home_tenant_only(auth_client: httpx.AsyncClient,
                                                             auth_app: Any, token_for: Any) -> None:
    directory = auth_app.state.auth.directory
    await directory.create_organization("kobe", "Kobe City", "municipality", "kobe")
    operator = await token_for(roles=["operator"], organization="kobe", tenant="kobe")
    # no tenant header: the token's home tenant, not the default one
    assert (await auth_client.post(f"{LD}/entities", json=room(1),
                                   headers=bearer(operator))).status_code == 201
    assert await ids(auth_client, operator) == ["urn:ngsi-ld:Room:1"]
    assert await ids(auth_client, operator, NGSILD_Tenant="kobe") == ["urn:ngsi-ld:Room:1"]
    platform = await token_for(roles=["platform-operator"])
    assert await ids(auth_client, platform) == []                      # the default tenant
    r = await auth_client.get(f"{LD}/entities?type=Room", headers=bearer(platform,
                                                                          **{"NGSILD-Tenant": "kobe"}))
    assert [e["id"] for e in r.json()] == ["urn:ngsi-ld:Room:1"]
    # a header naming another tenant grants nothing
    r = await auth_client.get(f"{LD}/entities?type=Room",
                              headers=bearer(operator, **{"NGSILD-Tenant": "osaka"}))
    assert r.status_code == 403
    r = await auth_client.post(f"{LD}/entities", json=room(2),
                               headers=bearer(operator, **{"NGSILD-Tenant": "osaka"}))
    assert r.status_code == 403


async def test_scopes_limit_what_a_token_may_do(auth_client: httpx.AsyncClient, token_for: Any) -> None:
    reader = await token_for(roles=["operator"], scopes="entities:read")
    r = await auth_client.post(f"{LD}/entities", json=room(1), headers=bearer(reader))
    assert r.status_code == 403
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
    r = await auth_client.get(f"{LD}/subscriptions", headers=bearer(reader))
    assert r.status_code == 403
    resident = await token_for(roles=["resident"])
    r = await auth_client.post(f"{LD}/entities", json=room(1), headers=bearer(resident))
    assert r.status_code == 403                    # no policy lets residents write city data


async def test_type_and_attribute_policies_narrow_reads(auth_client: httpx.AsyncClient,
                                                        auth_app: Any, token_for: Any) -> None:
    operator = await token_for(roles=["operator"])
    for body in (room(1), room(2), {"id": "urn:ngsi-ld:Bin:1", "type": "Bin",
                                    "fill": {"type": "Property", "value": 0.5}}):
        assert (await auth_client.post(f"{LD}/entities", json=body,
                                       headers=bearer(operator))).status_code == 201
    await auth_app.state.auth.directory.put_policy(Policy(
        "rooms-only", "role", "room-reader", ("entity.read",), types=("Room",),
        attributes=("temperature",)))
    reader = await token_for(roles=["room-reader"], scopes="entities:read")
    assert await ids(auth_client, reader, "type=Room,Bin") == ["urn:ngsi-ld:Room:1",
                                                                "urn:ngsi-ld:Room:2"]
    r = await auth_client.get(f"{LD}/entities/urn:ngsi-ld:Room:1", headers=bearer(reader))
    assert r.status_code == 200 and "secretCode" not in r.json() and "temperature" in r.json()
    assert (await auth_client.get(f"{LD}/entities/urn:ngsi-ld:Bin:1",
                                  headers=bearer(reader))).status_code == 404
    # a hidden attribute cannot be used as a probe
    assert await ids(auth_client, reader, 'type=Room&q=secretCode=="code-1"') == []
    assert await ids(auth_client, reader, "type=Room&q=temperature==21") == ["urn:ngsi-ld:Room:1"]
    types = (await auth_client.get(f"{LD}/types", headers=bearer(reader))).json()
    assert types["typeList"] == ["Room"]


async def test_a_policy_outside_its_validity_period_allows_nothing(
        auth_client: httpx.AsyncClient, auth_app: Any, token_for: Any) -> None:
    now = int(time.time())
    directory = auth_app.state.auth.directory
    await directory.put_policy(Policy("expired", "role", "trial", ("entity.read",),
                                      valid_from=now - 7200, valid_until=now - 3600))
    await directory.put_policy(Policy("future", "role", "later", ("entity.read",),
                                      valid_from=now + 3600))
    await directory.put_policy(Policy("current", "role", "now", ("entity.read",),
                                      valid_from=now - 60, valid_until=now + 3600))
    for role, status in (("trial", 403), ("later", 403), ("now", 200)):
        token = await token_for(roles=[role], scopes="entities:read")
        r = await auth_client.get(f"{LD}/entities?type=Room", headers=bearer(token))
        assert r.status_code == status, role


async def test_writes_outside_the_write_policy_are_refused(auth_client: httpx.AsyncClient,
                                                           auth_app: Any, token_for: Any) -> None:
    await auth_app.state.auth.directory.put_policy(Policy(
        "bins-writer", "role", "bin-writer", ("entity.read", "entity.write"),
        types=("Bin", "PersonLocation")))
    writer = await token_for(roles=["bin-writer"], scopes="entities:read entities:write")
    operator = await token_for(roles=["operator"])
    assert (await auth_client.post(f"{LD}/entities", json=room(1),
                                   headers=bearer(operator))).status_code == 201
    bin_body = {"id": "urn:ngsi-ld:Bin:1", "type": "Bin", "fill": {"type": "Property", "value": 1}}
    assert (await auth_client.post(f"{LD}/entities", json=bin_body,
                                   headers=bearer(writer))).status_code == 201
    r = await auth_client.post(f"{LD}/entities", json=room(2), headers=bearer(writer))
    assert r.status_code == 403
    r = await auth_client.patch(f"{LD}/entities/urn:ngsi-ld:Room:1/attrs",
                                json={"temperature": {"type": "Property", "value": 99}},
                                headers=bearer(writer))
    assert r.status_code in (403, 404)
    # a batch is checked per entity: the Bin lands, the Room does not
    r = await auth_client.post(f"{LD}/entityOperations/upsert", headers=bearer(writer),
                               json=[{**bin_body, "fill": {"type": "Property", "value": 2}},
                                     room(3)])
    assert r.status_code == 207, r.text
    assert await ids(auth_client, operator) == ["urn:ngsi-ld:Room:1"]
    # marking personal data needs pd.manage, which this role has not
    r = await auth_client.post(f"{LD}/entities", json=location_of("someone", 1),
                               headers=bearer(writer))
    assert r.status_code == 403
