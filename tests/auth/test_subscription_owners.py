"""A subscription belongs to the organization that created it: its endpoint (and the secrets in
receiverInfo) are not another service provider's to read, change or delete (NGSI-LD and v2)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.auth.test_access_entities import LD, bearer

SUB = {"type": "Subscription", "entities": [{"type": "Room"}],
       "notification": {"endpoint": {"uri": "https://receiver.navi.example/notify",
                                     "receiverInfo": [{"key": "X-Api-Key", "value": "secret-1"}]}}}
V2_SUB = {"subject": {"entities": [{"idPattern": ".*", "type": "Room"}]},
          "notification": {"http": {"url": "https://receiver.navi.example/notify"}}}


async def test_other_organizations_do_not_see_a_subscription(auth_client: httpx.AsyncClient,
                                                             auth_app: Any, token_for: Any) -> None:
    directory = auth_app.state.auth.directory
    for org in ("navi", "bus"):
        await directory.create_organization(org, org.title(), "service-provider")
    navi = await token_for(roles=["developer"], organization="navi", scopes="subscriptions")
    bus = await token_for(roles=["developer"], organization="bus", scopes="subscriptions")
    operator = await token_for(roles=["operator"], scopes="subscriptions")
    r = await auth_client.post(f"{LD}/subscriptions", json=SUB, headers=bearer(navi))
    assert r.status_code == 201, r.text
    location = r.headers["location"]
    r = await auth_client.post("/v2/subscriptions", json=V2_SUB, headers=bearer(navi))
    assert r.status_code == 201, r.text
    v2_location = r.headers["location"]

    assert len((await auth_client.get(f"{LD}/subscriptions", headers=bearer(navi))).json()) == 1
    assert (await auth_client.get(f"{LD}/subscriptions", headers=bearer(bus))).json() == []
    assert (await auth_client.get(location, headers=bearer(bus))).status_code == 404
    assert (await auth_client.patch(location, json={"q": "x==1"},
                                    headers=bearer(bus))).status_code == 404
    assert (await auth_client.delete(location, headers=bearer(bus))).status_code == 404
    assert (await auth_client.get("/v2/subscriptions", headers=bearer(bus))).json() == []
    assert (await auth_client.get(v2_location, headers=bearer(bus))).status_code == 404
    assert (await auth_client.delete(v2_location, headers=bearer(bus))).status_code == 404
    # the city's operator sees and manages every subscription of its tenant
    assert len((await auth_client.get(f"{LD}/subscriptions", headers=bearer(operator))).json()) == 1
    assert (await auth_client.get(location, headers=bearer(navi))).status_code == 200
    assert (await auth_client.delete(location, headers=bearer(operator))).status_code == 204
