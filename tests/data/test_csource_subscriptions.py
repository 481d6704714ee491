"""Context source registration subscriptions (ETSI 038 - 042, 047): CRUD and csourceNotifications."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson

from cityos.data.ngsild.csource.index import index_of
from tests.data.test_csource_support import CSR, ERR, registration, served_stub, settings

__all__ = ["settings"]
CSUB = "/ngsi-ld/v1/csourceSubscriptions"
S1 = "urn:ngsi-ld:Subscription:s1"
EP = "http://csource.example.jp:1026"


def _sub(uri: str, **extra: Any) -> dict[str, Any]:
    return {"id": S1, "type": "Subscription", "entities": [{"type": "Vehicle"}],
            "notification": {"format": "keyValues",
                             "endpoint": {"uri": uri, "accept": "application/json"}}, **extra}


async def test_038_01_create_040_01_retrieve_041_query_042_delete(
        client: httpx.AsyncClient) -> None:
    created = await client.post(CSUB, json=_sub("http://receiver.example.jp/notify"))
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"{CSUB}/{S1}"
    got = (await client.get(f"{CSUB}/{S1}")).json()
    assert got["entities"] == [{"type": "Vehicle"}]
    assert got["isActive"] is True and got["status"] == "active"
    assert got["notification"]["endpoint"]["uri"] == "http://receiver.example.jp/notify"
    listed = await client.get(f"{CSUB}?count=true")
    assert [s["id"] for s in listed.json()] == [S1]
    assert listed.headers["ngsild-results-count"] == "1"
    assert (await client.patch(f"{CSUB}/{S1}", json={"isActive": False})).status_code == 204
    assert (await client.get(f"{CSUB}/{S1}")).json()["status"] == "paused"
    assert (await client.delete(f"{CSUB}/{S1}")).status_code == 204
    assert (await client.get(f"{CSUB}/{S1}")).status_code == 404
    assert (await client.delete(f"{CSUB}/{S1}")).status_code == 404


async def test_038_invalid_subscriptions(client: httpx.AsyncClient) -> None:
    uri = "http://receiver.example.jp/notify"
    for bad in ({**_sub(uri), "type": "Registration"},
                {k: v for k, v in _sub(uri).items() if k != "notification"},
                _sub("mqtt://broker.example.jp/topic"),
                _sub("http://127.0.0.2/notify"),
                {**_sub(uri), "entities": [{"id": "urn:x:1"}]},
                {**_sub(uri), "csf": "(("}):
        response = await client.post(CSUB, json=bad)
        assert response.status_code == 400, (bad, response.text)
        assert response.json()["type"] == ERR + "BadRequestData"
    periodic = await client.post(CSUB, json={**_sub(uri), "timeInterval": 10})
    assert periodic.status_code == 422
    assert (await client.post(CSUB, json=_sub(uri))).status_code == 201
    assert (await client.post(CSUB, json=_sub(uri))).status_code == 409


async def test_047_02_notified_initially_then_on_update_and_when_no_longer_matching(
        client: httpx.AsyncClient, app: Any) -> None:
    async with served_stub() as (url, stub):
        stub.replies[("POST", "/notify")] = (204, b"")
        assert (await client.post(CSR, json=registration(EP))).status_code == 201
        assert (await client.post(CSUB, json=_sub(f"{url}/notify"))).status_code == 201
        [first] = await stub.wait_for(1)
        note = orjson.loads(first["body"])
        assert note["type"] == "Notification" and note["subscriptionId"] == S1
        assert note["triggerReason"] == "newlyMatching"
        assert [r["id"] for r in note["data"]] == ["urn:ngsi-ld:ContextSourceRegistration:r1"]
        reg_url = f"{CSR}/urn:ngsi-ld:ContextSourceRegistration:r1"
        assert (await client.patch(reg_url, json={"endpoint": "http://b.example.jp"})
                ).status_code == 204
        second = orjson.loads((await stub.wait_for(2))[1]["body"])
        assert second["triggerReason"] == "updated"
        assert second["data"][0]["endpoint"] == "http://b.example.jp"
        bus = {"information": [{"entities": [{"type": "Bus"}]}]}
        assert (await client.patch(reg_url, json=bus)).status_code == 204
        third = orjson.loads((await stub.wait_for(3))[2]["body"])
        assert third["triggerReason"] == "noLongerMatching"
        other = registration(EP, reg_id="urn:ngsi-ld:ContextSourceRegistration:r2")
        assert (await client.post(CSR, json=other)).status_code == 201
        fourth = orjson.loads((await stub.wait_for(4))[3]["body"])
        assert fourth["triggerReason"] == "newlyMatching"
        assert (await client.delete(f"{CSR}/urn:ngsi-ld:ContextSourceRegistration:r2")
                ).status_code == 204
        fifth = orjson.loads((await stub.wait_for(5))[4]["body"])
        assert fifth["triggerReason"] == "noLongerMatching"
        await asyncio.gather(*index_of(app).tasks)       # the last answer is counted
        counters = (await client.get(f"{CSUB}/{S1}")).json()["notification"]
        assert counters["timesSent"] == 5 and counters["status"] == "ok"
        assert "timesFailed" not in counters


async def test_watched_attributes_and_csf_select_registrations(client: httpx.AsyncClient) -> None:
    async with served_stub() as (url, stub):
        sub = _sub(f"{url}/notify", watchedAttributes=["speed"], csf='brandName=="Mazda"')
        assert (await client.post(CSUB, json=sub)).status_code == 201
        info = [{"entities": [{"type": "Vehicle"}], "propertyNames": ["fuel"]}]
        skipped = registration(EP, reg_id="urn:ngsi-ld:ContextSourceRegistration:fuel",
                               information=info, brandName="Mazda")
        assert (await client.post(CSR, json=skipped)).status_code == 201
        wrong_brand = registration(EP, reg_id="urn:ngsi-ld:ContextSourceRegistration:isuzu",
                                   brandName="Isuzu")
        assert (await client.post(CSR, json=wrong_brand)).status_code == 201
        wanted = registration(EP, reg_id="urn:ngsi-ld:ContextSourceRegistration:mazda",
                              brandName="Mazda")
        assert (await client.post(CSR, json=wanted)).status_code == 201
        [only] = await stub.wait_for(1)
        assert orjson.loads(only["body"])["data"][0]["id"].endswith(":mazda")
