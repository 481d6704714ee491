"""Context source registrations: CRUD, validation, conflict rules, query (ETSI 033 - 037, 5922).

Test names carry the ETSI NGSI-LD test suite ids (TP/NGSI-LD/ContextSource/...) they mirror.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.data.test_csource_support import CSR, ERR, registration, settings, vehicle

__all__ = ["settings"]
EP = "http://csource.example.jp:1026"
R1 = "urn:ngsi-ld:ContextSourceRegistration:r1"


async def _create(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post(CSR, json=body)


async def test_033_01_create_then_036_01_retrieve(client: httpx.AsyncClient) -> None:
    body = registration(EP, information=[{
        "entities": [{"id": "urn:ngsi-ld:Vehicle:A456", "type": "Vehicle"}],
        "propertyNames": ["brandName", "speed"], "relationshipNames": ["isParked"]}])
    created = await _create(client, body)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"{CSR}/{R1}"
    got = await client.get(f"{CSR}/{R1}")
    assert got.status_code == 200
    reg = got.json()
    assert reg["information"] == body["information"]
    assert reg["mode"] == "inclusive" and reg["operations"] == ["federationOps"]
    assert reg["endpoint"] == EP
    assert "createdAt" not in reg
    assert "createdAt" in (await client.get(f"{CSR}/{R1}?options=sysAttrs")).json()


async def test_033_01_generated_id_and_japanese_name(client: httpx.AsyncClient) -> None:
    body = registration(EP, registrationName="神戸市 駐車場", expiresAt="2099-04-01T09:00:00+09:00")
    del body["id"]
    created = await _create(client, body)
    assert created.status_code == 201
    reg = (await client.get(created.headers["location"])).json()
    assert reg["registrationName"] == "神戸市 駐車場"
    assert reg["expiresAt"] == "2099-04-01T00:00:00.000Z"


async def test_033_02_invalid_content_is_bad_request_data(client: httpx.AsyncClient) -> None:
    for bad in ({"id": R1, "type": "ContextSourceRegistration", "information": None,
                 "endpoint": EP},
                {**registration(EP), "type": "Registration"},
                {**registration(EP), "endpoint": "not a uri"},
                {**registration(EP), "endpoint": "ftp://x.example.jp"},
                {**registration(EP), "information": []},
                {**registration(EP), "information": [{"entities": [{"id": "urn:x:1"}]}]},
                {**registration(EP), "information": [{"entities": [{"type": "V",
                                                                    "idPattern": "("}]}]},
                {**registration(EP), "mode": "sometimes"},
                {**registration(EP), "operations": ["teleport"]},
                {**registration(EP), "contextSourceInfo": [{"key": "bad header", "value": "1"}]},
                {**registration(EP), "managementInterval": {"startAt": "yesterday"}},
                {**registration(EP), "location": {"type": "Point", "coordinates": [500, 0]}},
                {**registration(EP), "management": {"timeout": -1}},
                {**registration(EP), "management": {"localOnly": "yes"}}):
        response = await _create(client, bad)
        assert response.status_code == 400, (bad, response.text)
        assert response.json()["type"] == ERR + "BadRequestData"


async def test_033_03_already_exists(client: httpx.AsyncClient) -> None:
    assert (await _create(client, registration(EP))).status_code == 201
    again = await _create(client, registration(EP))
    assert again.status_code == 409 and again.json()["type"] == ERR + "AlreadyExists"


async def test_033_04_invalid_json(client: httpx.AsyncClient) -> None:
    response = await client.post(CSR, content=b"{oops",
                                 headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["type"] == ERR + "InvalidRequest"


async def test_5922_01_01_auxiliary_with_write_ops(client: httpx.AsyncClient) -> None:
    bad = registration(EP, mode="auxiliary", operations=["updateEntity"])
    response = await _create(client, bad)
    assert response.status_code == 400 and response.json()["type"] == ERR + "BadRequestData"
    ok = registration(EP, mode="auxiliary", operations=["retrieveOps"])
    assert (await _create(client, ok)).status_code == 201


async def test_5922_01_02_redirect_over_existing_entity_is_conflict(
        client: httpx.AsyncClient) -> None:
    assert (await client.post("/ngsi-ld/v1/entities",
                              json=vehicle("urn:ngsi-ld:Vehicle:V1"))).status_code == 201
    body = registration(EP, mode="redirect", operations=["retrieveOps"],
                        entities=[{"type": "Vehicle", "id": "urn:ngsi-ld:Vehicle:V1"}])
    response = await _create(client, body)
    assert response.status_code == 409 and response.json()["type"] == ERR + "Conflict"
    by_type = registration(EP, mode="redirect", entities=[{"type": "Vehicle"}])
    assert (await _create(client, by_type)).status_code == 409
    other = registration(EP, mode="redirect", entities=[{"type": "Bus"}])
    assert (await _create(client, other)).status_code == 201


async def test_5922_01_03_exclusive_over_existing_attribute_is_conflict(
        client: httpx.AsyncClient) -> None:
    assert (await client.post("/ngsi-ld/v1/entities",
                              json=vehicle("urn:ngsi-ld:Vehicle:V1"))).status_code == 201
    info = {"entities": [{"type": "Vehicle", "id": "urn:ngsi-ld:Vehicle:V1"}]}
    clash = registration(EP, mode="exclusive", information=[{**info, "propertyNames": ["speed"]}])
    response = await _create(client, clash)
    assert response.status_code == 409 and response.json()["type"] == ERR + "Conflict"
    fine = registration(EP, mode="exclusive", information=[{**info, "propertyNames": ["fuel"]}])
    assert (await _create(client, fine)).status_code == 201
    twice = registration(EP, reg_id="urn:ngsi-ld:ContextSourceRegistration:r2", mode="exclusive",
                         information=[{**info, "propertyNames": ["fuel"]}])
    assert (await _create(client, twice)).status_code == 409


async def test_registration_endpoint_is_guarded_by_the_ssrf_policy(
        client: httpx.AsyncClient) -> None:
    response = await _create(client, registration("http://169.254.169.254"))
    assert response.status_code == 400 and "CITYOS_NOTIFICATION_ALLOW" in response.json()["detail"]


async def test_034_01_update_then_034_02_missing_and_invalid(client: httpx.AsyncClient) -> None:
    assert (await _create(client, registration(EP))).status_code == 201
    patched = await client.patch(f"{CSR}/{R1}", json={"endpoint": "http://other.example.jp",
                                                      "contextSourceInfo": [
                                                          {"key": "X-City", "value": "kobe"}]})
    assert patched.status_code == 204, patched.text
    reg = (await client.get(f"{CSR}/{R1}")).json()
    assert reg["endpoint"] == "http://other.example.jp"
    assert reg["contextSourceInfo"] == [{"key": "X-City", "value": "kobe"}]
    missing = await client.patch(f"{CSR}/urn:ngsi-ld:ContextSourceRegistration:none",
                                 json={"endpoint": EP})
    assert missing.status_code == 404 and missing.json()["type"] == ERR + "ResourceNotFound"
    wrong_type = await client.patch(f"{CSR}/{R1}", json={"type": "Subscription"})
    assert wrong_type.status_code == 400
    aux_write = await client.patch(f"{CSR}/{R1}", json={"mode": "auxiliary",
                                                        "operations": ["createEntity"]})
    assert aux_write.status_code == 400
    assert (await client.get(f"{CSR}/{R1}")).json()["mode"] == "inclusive"   # no partial write


async def test_035_01_delete_and_035_02_missing(client: httpx.AsyncClient) -> None:
    assert (await _create(client, registration(EP))).status_code == 201
    assert (await client.delete(f"{CSR}/{R1}")).status_code == 204
    assert (await client.get(f"{CSR}/{R1}")).status_code == 404
    assert (await client.delete(f"{CSR}/{R1}")).status_code == 404
    assert (await client.delete(f"{CSR}/not-a-uri")).status_code == 400


async def test_037_query_by_type_attrs_id_pattern_csf_and_geo(client: httpx.AsyncClient) -> None:
    kobe = {"type": "Point", "coordinates": [135.195, 34.69]}
    regs = [
        registration(EP, reg_id="urn:ngsi-ld:ContextSourceRegistration:veh", location=kobe,
                     brandName="Mazda", information=[{
                         "entities": [{"type": "Vehicle", "id": "urn:ngsi-ld:Vehicle:A1"}],
                         "propertyNames": ["speed"]}]),
        registration(EP, reg_id="urn:ngsi-ld:ContextSourceRegistration:bus", brandName="Isuzu",
                     information=[{"entities": [{"type": "Bus", "idPattern": "^urn:.*:kobe"}]}]),
    ]
    for body in regs:
        assert (await _create(client, body)).status_code == 201

    async def ids(query: str) -> list[str]:
        response = await client.get(f"{CSR}?{query}")
        assert response.status_code == 200, response.text
        return sorted(r["id"].rsplit(":", 1)[1] for r in response.json())

    assert await ids("type=Vehicle") == ["veh"]
    assert await ids("type=Vehicle,Bus") == ["bus", "veh"]
    assert await ids("attrs=speed") == ["bus", "veh"]          # bus registers every attribute
    assert await ids("id=urn:ngsi-ld:Vehicle:A1") == ["veh"]
    assert await ids("id=urn:ngsi-ld:Bus:kobe") == ["bus"]
    assert await ids("idPattern=Vehicle") == ["veh"]
    assert await ids('csf=brandName=="Isuzu"') == ["bus"]
    assert await ids("georel=near;maxDistance==2000&geometry=Point&coordinates=[135.19,34.69]") \
        == ["veh"]
    page = await client.get(f"{CSR}?limit=1&count=true")
    assert page.headers["ngsild-results-count"] == "2" and len(page.json()) == 1
    assert (await client.get(f"{CSR}?idPattern=(")).status_code == 400
    assert (await client.get(f"{CSR}?limit=1000")).status_code == 403


async def test_registrations_are_per_tenant(client: httpx.AsyncClient) -> None:
    created = await client.post(CSR, json=registration(EP), headers={"NGSILD-Tenant": "kobe"})
    assert created.status_code == 201
    assert (await client.get(CSR)).json() == []
    listed = await client.get(CSR, headers={"NGSILD-Tenant": "kobe"})
    assert [r["id"] for r in listed.json()] == [R1]
