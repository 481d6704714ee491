"""The admin API and /me through HTTP: CRUD as a platform operator (a real token),
then scoping with real tokens (operators stay in their home tenant, nobody grants more than it
holds), on both engines."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from cityos.auth.admin import ErasureSweep
from cityos.auth.directory import Policy

PASSWORD = "correct horse battery"


@pytest.fixture
def app(auth_app: Any) -> Any:
    return auth_app


@pytest.fixture
async def client(auth_app: Any, token_for: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The admin API as a platform operator (whose account is not in the directory's lists)."""
    token = await token_for(roles=["platform-operator"], subject="platform-admin")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=auth_app),
                                 base_url="http://testserver",
                                 headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


async def _org(client: httpx.AsyncClient, org_id: str, tenant: str = "") -> dict[str, Any]:
    r = await client.post("/admin/organizations", json={
        "id": org_id, "name": org_id.title(), "kind": "municipality", "homeTenant": tenant})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _account(client: httpx.AsyncClient, username: str, **extra: Any) -> httpx.Response:
    return await client.post("/admin/accounts", json={"username": username, "password": PASSWORD,
                                                      **extra})


async def test_organizations(client: httpx.AsyncClient) -> None:
    org = await _org(client, "kobe", "kobe")
    assert org["homeTenant"] == "kobe" and org["kind"] == "municipality"
    assert (await client.post("/admin/organizations", json={
        "id": "kobe", "name": "Other", "kind": "other"})).status_code == 409
    bad = await client.post("/admin/organizations", json={"id": "Kobe City", "name": "x"})
    assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"
    assert (await client.post("/admin/organizations", json={
        "id": "x", "name": "X", "kind": "castle"})).status_code == 400
    assert [o["id"] for o in (await client.get("/admin/organizations")).json()] == ["kobe"]
    assert (await client.get("/admin/organizations/kobe")).json()["name"] == "Kobe"
    assert (await _account(client, "taro", organization="kobe")).status_code == 201
    assert (await client.delete("/admin/organizations/kobe")).status_code == 409
    await _org(client, "empty")
    assert (await client.delete("/admin/organizations/empty")).status_code == 204
    assert (await client.get("/admin/organizations/empty")).status_code == 404
    assert (await client.get("/me", headers={"Authorization": ""})).status_code == 401


async def test_account_life_cycle(client: httpx.AsyncClient, app: Any) -> None:
    await _org(client, "kobe", "kobe")
    r = await _account(client, "Taro", name="Taro Kobe", email="taro@example.jp",
                       organization="kobe", roles=["resident", "developer"],
                       attributes={"ward": "Chuo"})
    assert r.status_code == 201, r.text
    account = r.json()
    assert r.headers["location"] == f"/admin/accounts/{account['id']}"
    assert account["roles"] == ["developer", "resident"] and "passwordHash" not in account
    assert (await _account(client, "ＴＡＲＯ")).status_code == 409      # NFKC + case folded
    assert (await _account(client, "hanako", password="short")).status_code == 400
    assert (await _account(client, "hanako", roles=["wizard"])).status_code == 400
    assert (await _account(client, "hanako", organization="nowhere")).status_code == 400
    assert (await _account(client, "has space")).status_code == 400
    assert (await _account(client, "hanako", email="not-an-address")).status_code == 400
    assert (await client.post("/admin/accounts", content=b"[1]")).status_code == 400
    listed = (await client.get("/admin/accounts", params={"organization": "kobe"})).json()
    assert [a["username"] for a in listed] == ["Taro"]
    url = f"/admin/accounts/{account['id']}"
    changed = await client.patch(url, json={"name": "Taro K", "roles": ["resident"],
                                            "status": "disabled", "password": "another long one"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["status"] == "disabled" and changed.json()["roles"] == ["resident"]
    runtime = app.state.auth
    stored = await runtime.directory.get_account(account["id"])
    assert await runtime.passwords.verify(stored.password_hash, "another long one")
    assert (await client.patch(url, json={"status": "deleted"})).status_code == 400
    assert (await client.patch(url, json={"username": "x"})).status_code == 400
    await runtime.directory.note_login_failure(account["id"], 0, threshold=1)
    assert (await client.get(url)).json()["lockedUntil"]
    unlocked = await client.post(url + "/unlock")
    assert unlocked.status_code == 200 and unlocked.json()["lockedUntil"] is None
    assert (await client.get("/admin/accounts/nobody")).status_code == 404
    events = {r["event"] for r in await runtime.db.fetch(
        "SELECT event FROM audit_log WHERE targets LIKE ?", f'%{account["id"]}%')}
    assert {"account.create", "account.change", "account.unlock"} <= events


async def test_delete_erases_the_account_and_runs_the_hooks(client: httpx.AsyncClient,
                                                            app: Any) -> None:
    runtime = app.state.auth
    erased: list[str] = []

    async def hook(account_id: str) -> None:
        erased.append(account_id)

    runtime.erasure_hooks.append(hook)
    account = (await _account(client, "jiro", email="jiro@example.jp")).json()
    assert (await client.delete(f"/admin/accounts/{account['id']}")).status_code == 204
    assert erased == [account["id"]]
    assert (await client.get(f"/admin/accounts/{account['id']}")).status_code == 404
    row = await runtime.directory.get_account(account["id"])
    assert row.status == "deleted" and row.email == "" and row.password_hash is None
    assert (await client.delete(f"/admin/accounts/{account['id']}")).status_code == 404
    assert (await _account(client, "jiro")).status_code == 201          # the username is free

    # an erasure interrupted after marking is finished by the sweep
    other = (await _account(client, "saburo")).json()
    await runtime.directory.update_account(other["id"], status="erasing")
    assert await ErasureSweep(runtime).sweep() == 0
    assert (await runtime.directory.get_account(other["id"])).status == "deleted"
    assert erased[-1] == other["id"]


async def test_roles(client: httpx.AsyncClient) -> None:
    names = [r["name"] for r in (await client.get("/admin/roles")).json()]
    assert {"resident", "operator", "platform-operator"} <= set(names)
    assert (await client.post("/admin/roles", json={"name": "bus-planner",
                                                    "description": "Plans bus routes"})
            ).status_code == 201
    assert (await client.post("/admin/roles", json={"name": "bus-planner"})).status_code == 409
    assert (await client.post("/admin/roles", json={"name": "Bad Name"})).status_code == 400
    assert (await client.delete("/admin/roles/operator")).status_code == 409
    assert (await client.delete("/admin/roles/bus-planner")).status_code == 204
    assert (await client.delete("/admin/roles/bus-planner")).status_code == 404


async def test_policies(client: httpx.AsyncClient) -> None:
    body = {"id": "dev-open-data", "subject": {"role": "developer"}, "actions": ["entity.read"],
            "tenants": ["@home"], "types": ["*"], "attributes": ["*"],
            "validFrom": "2026-04-01T00:00:00+09:00", "validUntil": "2027-04-01T00:00:00+09:00"}
    r = await client.post("/admin/policies", json=body)
    assert r.status_code == 201, r.text
    policy = r.json()
    assert policy["validFrom"] == "2026-03-31T15:00:00Z"
    assert policy["validUntil"] == "2027-03-31T15:00:00Z"
    assert policy["types"] is None and policy["subject"] == {"role": "developer"}
    assert (await client.post("/admin/policies", json=body)).status_code == 409
    generated = await client.post("/admin/policies", json={
        "subject": {"role": "auditor"}, "actions": ["audit.read"], "validFrom": 1775000000})
    assert generated.status_code == 201 and generated.json()["id"].startswith("p-")
    for broken in ({"validUntil": "2026-03-01T00:00:00+09:00"}, {"actions": ["fly"]},
                   {"actions": []}, {"subject": {"role": "wizard"}},
                   {"subject": {"role": "developer", "account": "x"}}, {"tenants": ["a b"]},
                   {"validFrom": "yesterday"}, {"validFrom": "2026-04-01T00:00:00"}):
        assert (await client.put("/admin/policies/x", json={**body, "id": "x", **broken})
                ).status_code == 400, broken
    replaced = await client.put("/admin/policies/dev-open-data",
                                json={**body, "actions": ["entity.read", "subscription.manage"]})
    assert replaced.status_code == 200 and len(replaced.json()["actions"]) == 2
    assert (await client.put("/admin/policies/new-one", json={**body, "id": None})
            ).status_code == 201
    assert (await client.get("/admin/policies/new-one")).json()["actions"] == ["entity.read"]
    ids = [p["id"] for p in (await client.get("/admin/policies")).json()]
    assert {"builtin-operator", "dev-open-data", "new-one"} <= set(ids)
    assert (await client.delete("/admin/policies/builtin-operator")).status_code == 409
    assert (await client.delete("/admin/policies/new-one")).status_code == 204
    assert (await client.get("/admin/policies/new-one")).status_code == 404


async def test_clients(client: httpx.AsyncClient, app: Any) -> None:
    await _org(client, "demo", "")
    body = {"name": "Demo app", "organization": "demo", "clientId": "demo-app",
            "redirectUris": ["http://127.0.0.1:8765/callback", "https://app.example.jp/cb"],
            "grantTypes": ["authorization_code", "refresh_token", "client_credentials"],
            "scopes": ["openid", "entities:read"], "roles": ["developer"],
            "purposes": [{"id": "bus", "text": "Bus arrival times", "category": "ServiceProvision"}],
            "validFrom": "2026-04-01T00:00:00+09:00"}
    r = await client.post("/admin/clients", json=body)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["clientSecret"] and created["validFrom"] == "2026-03-31T15:00:00Z"
    assert r.headers["location"] == "/admin/clients/demo-app"
    assert "clientSecret" not in (await client.get("/admin/clients/demo-app")).json()
    assert (await client.post("/admin/clients", json=body)).status_code == 409
    for broken in ({"redirectUris": ["http://app.example.jp/cb"]},
                   {"redirectUris": ["https://app.example.jp/cb#x"]},
                   {"redirectUris": ["/relative"]}, {"redirectUris": []},
                   {"grantTypes": ["password"]}, {"grantTypes": ["refresh_token"]},
                   {"tokenEndpointAuthMethod": "none"}, {"tokenEndpointAuthMethod": "magic"},
                   {"tokenEndpointAuthMethod": "private_key_jwt"}, {"scopes": ["a b"]},
                   {"roles": ["wizard"]}, {"purposes": [{"text": "no id"}]},
                   {"validFrom": 10, "validUntil": 5}, {"name": ""}):
        assert (await client.post("/admin/clients", json={**body, "clientId": "broken", **broken})
                ).status_code == 400, broken
    public = await client.post("/admin/clients", json={
        "name": "Console", "clientId": "console", "tokenEndpointAuthMethod": "none",
        "redirectUris": ["https://city.example.jp/docs/oauth2-redirect"]})
    assert public.status_code == 201 and "clientSecret" not in public.json()
    assert (await client.post("/admin/clients/console/secret")).status_code == 409
    rotated = await client.post("/admin/clients/demo-app/secret")
    assert rotated.status_code == 200 and rotated.json()["clientSecret"] != created["clientSecret"]
    patched = await client.patch("/admin/clients/demo-app", json={"name": "Demo", "trusted": True,
                                                                  "status": "disabled"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["trusted"] is True and patched.json()["status"] == "disabled"
    assert (await client.patch("/admin/clients/demo-app", json={"grantTypes": ["refresh_token"]})
            ).status_code == 400
    assert (await client.patch("/admin/clients/demo-app",
                               json={"tokenEndpointAuthMethod": "none"})).status_code == 400
    # the two registered here, beside the application the caller's own token came from
    listed = {c["clientId"] for c in (await client.get("/admin/clients")).json()}
    assert listed - {"test-client"} == {"demo-app", "console"}
    assert (await client.delete("/admin/clients/demo-app")).status_code == 204
    assert (await client.get("/admin/clients/demo-app")).status_code == 404


# -- with access control on --------------------------------------------------------------------
@pytest.fixture
async def two_tenants(auth_app: Any) -> dict[str, Any]:
    directory = auth_app.state.auth.directory
    await directory.create_organization("city-a", "City A", "municipality", "a")
    await directory.create_organization("city-b", "City B", "municipality", "b")
    b_account = await directory.create_account("b-resident", organization_id="city-b")
    a_account = await directory.create_account("a-resident", organization_id="city-a")
    return {"a": a_account.id, "b": b_account.id}


async def test_operator_stays_in_its_home_tenant(auth_client: httpx.AsyncClient, token_for: Any,
                                                 auth_app: Any, two_tenants: dict[str, Any]) -> None:
    directory = auth_app.state.auth.directory
    token = await token_for(roles=["operator"], tenant="a", organization="city-a")
    auth = {"Authorization": f"Bearer {token}"}
    r = await auth_client.get("/admin/accounts", headers=auth)
    assert r.status_code == 200, r.text
    listed = r.json()
    assert two_tenants["a"] in {a["id"] for a in listed}
    assert two_tenants["b"] not in {a["id"] for a in listed}
    assert (await auth_client.get(f"/admin/accounts/{two_tenants['b']}", headers=auth)
            ).status_code == 403
    assert (await auth_client.delete(f"/admin/accounts/{two_tenants['b']}", headers=auth)
            ).status_code == 403
    assert (await auth_client.get(f"/admin/accounts/{two_tenants['a']}", headers=auth)
            ).status_code == 200
    new = {"username": "a-dev", "password": PASSWORD, "organization": "city-a"}
    assert (await auth_client.post("/admin/accounts", headers=auth,
                                   json={**new, "organization": "city-b"})).status_code == 403
    assert (await auth_client.post("/admin/accounts", headers=auth,
                                   json={**new, "roles": ["platform-operator"]})).status_code == 403
    assert (await auth_client.post("/admin/accounts", headers=auth,
                                   json={**new, "roles": ["developer"]})).status_code == 201
    boss = await directory.create_account("a-boss", organization_id="city-a",
                                          roles=("platform-operator",))
    assert (await auth_client.patch(f"/admin/accounts/{boss.id}", headers=auth,
                                    json={"password": "taken over!!"})).status_code == 403
    mine = f"/admin/accounts/{two_tenants['a']}"
    assert (await auth_client.patch(mine, headers=auth, json={"roles": ["platform-operator"]})
            ).status_code == 403
    await directory.put_policy(Policy("wide", "account", two_tenants["a"], ("*",), ("*",)))
    assert (await auth_client.patch(mine, headers=auth, json={"password": "taken over!!"})
            ).status_code == 403
    await directory.delete_policy("wide")
    assert (await auth_client.patch(mine, headers=auth, json={"name": "A"})).status_code == 200
    policy = {"subject": {"role": "developer"}, "actions": ["entity.read"]}
    for tenants in (["*"], ["b"], ["@home"]):
        assert (await auth_client.post("/admin/policies", headers=auth,
                                       json={**policy, "tenants": tenants})).status_code == 403
    assert (await auth_client.post("/admin/policies", headers=auth,
                                   json={**policy, "tenants": ["a"]})).status_code == 201
    assert (await auth_client.post("/admin/organizations", headers=auth, json={
        "id": "city-c", "name": "City C", "kind": "other"})).status_code == 403
    orgs = (await auth_client.get("/admin/organizations", headers=auth)).json()
    assert [o["id"] for o in orgs] == ["city-a"]
    assert (await auth_client.post("/admin/clients", headers=auth, json={
        "name": "B app", "organization": "city-b", "grantTypes": ["client_credentials"]})
            ).status_code == 403


async def test_platform_operator_and_developer(auth_client: httpx.AsyncClient, token_for: Any,
                                               two_tenants: dict[str, Any]) -> None:
    platform = await token_for(roles=["platform-operator"])
    listed = (await auth_client.get("/admin/accounts",
                                    headers={"Authorization": f"Bearer {platform}"})).json()
    assert {two_tenants["a"], two_tenants["b"]} <= {a["id"] for a in listed}
    developer = await token_for(roles=["developer"], tenant="a", organization="city-a")
    for path in ("/admin/accounts", "/admin/policies", "/admin/clients", "/admin/roles"):
        r = await auth_client.get(path, headers={"Authorization": f"Bearer {developer}"})
        assert r.status_code == 403, path
    assert (await auth_client.get("/admin/accounts")).status_code == 401


async def test_me_profile_and_password(auth_client: httpx.AsyncClient, auth_app: Any,
                                       token_for: Any, two_tenants: dict[str, Any]) -> None:
    runtime = auth_app.state.auth
    account = await runtime.directory.create_account(
        "me-user", organization_id="city-a", name="Me",
        password_hash=await runtime.passwords.hash(PASSWORD))
    token = await token_for(subject=account.id, tenant="a", organization="city-a")
    auth = {"Authorization": f"Bearer {token}"}
    me = (await auth_client.get("/me", headers=auth)).json()
    assert me["id"] == account.id and me["organization"]["homeTenant"] == "a"
    assert (await auth_client.patch("/me", headers=auth, json={
        "password": "a brand new one", "currentPassword": "wrong password"})).status_code == 403
    assert (await auth_client.patch("/me", headers=auth, json={"roles": ["operator"]})
            ).status_code == 400
    changed = await auth_client.patch("/me", headers=auth, json={
        "name": "Me Too", "password": "a brand new one", "currentPassword": PASSWORD})
    assert changed.status_code == 200 and changed.json()["name"] == "Me Too"
    stored = await runtime.directory.get_account(account.id)
    assert await runtime.passwords.verify(stored.password_hash, "a brand new one")
    client_token = await token_for(kind="client", roles=["developer"])
    assert (await auth_client.get("/me", headers={"Authorization": f"Bearer {client_token}"})
            ).status_code == 401
