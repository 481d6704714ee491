"""Personal data flows only within live consent, and every access is audited (SI-CS-6, DM-PD-1).

A resident's position (dataOwner + dataCategory=location) is written by a data provider; a
service provider's staff member reads with a multi-factor token carrying ``pd:location`` and the
application's purpose.  Without a live consent the entity is absent everywhere: queries, counts,
GET, /types, temporal, NGSI v2 and notifications.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from cityos.core.settings import Settings
from tests.auth.test_access_entities import LD, bearer, location_of, room
from tests.data.test_notify_support import receiver

MFA = {"amr": ("pwd", "otp", "mfa"), "acr": "urn:cityos:acr:mfa"}


@pytest.fixture
async def city(auth_client: httpx.AsyncClient, auth_app: Any, token_for: Any) -> dict[str, Any]:
    """A resident with a position, a provider's staff token, and the data provider's token."""
    runtime = auth_app.state.auth
    await runtime.directory.create_organization("navi", "Navi Inc.", "service-provider")
    resident = await runtime.directory.create_account("hanako", roles=("resident",))
    provider = await token_for(roles=["data-provider"])
    for body in (location_of(resident.id, 1), room(1)):
        r = await auth_client.post(f"{LD}/entities", json=body, headers=bearer(provider))
        assert r.status_code == 201, r.text
    staff = await token_for(roles=["developer"], organization="navi", purpose="route-guidance",
                            scopes="entities:read subscriptions pd:location", **MFA)
    own = await token_for(subject=resident.id, roles=["resident"], scopes="entities:read")
    return {"runtime": runtime, "resident": resident, "staff": staff, "own": own,
            "provider": provider}


async def visible(client: httpx.AsyncClient, token: str) -> tuple[list[str], int, int, int]:
    """(ids of a query, its count, status of GET by id, PersonLocation count in /types)."""
    r = await client.get(f"{LD}/entities?type=PersonLocation,Room&count=true", headers=bearer(token))
    assert r.status_code == 200, r.text
    found = sorted(e["id"] for e in r.json())
    one = await client.get(f"{LD}/entities/urn:ngsi-ld:PersonLocation:1", headers=bearer(token))
    types = await client.get(f"{LD}/types?details=true", headers=bearer(token))
    counts = [t.get("entityCount", 1) for t in types.json() if t["typeName"] == "PersonLocation"]
    return found, int(r.headers["NGSILD-Results-Count"]), one.status_code, len(counts)


async def give(city: dict[str, Any], **extra: Any) -> Any:
    return await city["runtime"].consents.give(
        f"urn:cityos:account:{city['resident'].id}", "location", "navi", "route-guidance", **extra)


async def test_without_consent_personal_data_looks_absent(auth_client: httpx.AsyncClient,
                                                          city: dict[str, Any]) -> None:
    assert await visible(auth_client, city["staff"]) == (["urn:ngsi-ld:Room:1"], 1, 404, 0)
    # an operator without pd scopes sees the city's data but no one's position
    assert (await visible(auth_client, city["provider"]))[0] == ["urn:ngsi-ld:Room:1"]
    # the owner sees their own data
    assert (await visible(auth_client, city["own"]))[2] == 200


async def test_consent_opens_and_withdrawal_closes_at_once(auth_client: httpx.AsyncClient,
                                                           city: dict[str, Any]) -> None:
    consent = await give(city)
    both = ["urn:ngsi-ld:PersonLocation:1", "urn:ngsi-ld:Room:1"]
    assert await visible(auth_client, city["staff"]) == (both, 2, 200, 1)
    temporal = await auth_client.get(f"{LD}/temporal/entities/urn:ngsi-ld:PersonLocation:1",
                                     headers=bearer(city["staff"]))
    assert temporal.status_code == 200
    await city["runtime"].consents.withdraw(consent.id, consent.owner_id)
    assert await visible(auth_client, city["staff"]) == (["urn:ngsi-ld:Room:1"], 1, 404, 0)
    temporal = await auth_client.get(f"{LD}/temporal/entities/urn:ngsi-ld:PersonLocation:1",
                                     headers=bearer(city["staff"]))
    assert temporal.status_code == 404
    v2 = await auth_client.get("/v2/entities?type=PersonLocation", headers=bearer(city["staff"]))
    assert v2.status_code == 200 and v2.json() == []


async def test_an_expired_consent_or_another_purpose_covers_nothing(
        auth_client: httpx.AsyncClient, city: dict[str, Any], token_for: Any) -> None:
    await give(city, expires_at=int(time.time()) - 1)
    assert (await visible(auth_client, city["staff"]))[2] == 404
    await give(city, expires_at=int(time.time()) + 3600)
    assert (await visible(auth_client, city["staff"]))[2] == 200
    other_purpose = await token_for(roles=["developer"], organization="navi", purpose="marketing",
                                    scopes="entities:read pd:location", **MFA)
    assert (await visible(auth_client, other_purpose))[2] == 404
    no_scope = await token_for(roles=["developer"], organization="navi", purpose="route-guidance",
                               scopes="entities:read", **MFA)
    assert (await visible(auth_client, no_scope))[2] == 404


async def test_personal_data_scopes_need_a_recent_second_factor(auth_client: httpx.AsyncClient,
                                                                city: dict[str, Any],
                                                                token_for: Any) -> None:
    await give(city)
    password_only = await token_for(roles=["developer"], organization="navi",
                                    purpose="route-guidance", scopes="entities:read pd:location")
    r = await auth_client.get(f"{LD}/entities?type=PersonLocation", headers=bearer(password_only))
    assert r.status_code == 401
    assert 'error="insufficient_user_authentication"' in r.headers["www-authenticate"]
    assert "urn:cityos:acr:mfa" in r.headers["www-authenticate"]
    stale = await token_for(roles=["developer"], organization="navi", purpose="route-guidance",
                            scopes="entities:read pd:location", auth_time=int(time.time()) - 86400,
                            **MFA)
    assert (await auth_client.get(f"{LD}/entities?type=Room", headers=bearer(stale))).status_code == 401


async def test_every_read_of_personal_data_is_audited(auth_client: httpx.AsyncClient,
                                                      city: dict[str, Any]) -> None:
    await give(city)
    owner = f"urn:cityos:account:{city['resident'].id}"
    await auth_client.get(f"{LD}/entities/urn:ngsi-ld:PersonLocation:1", headers=bearer(city["staff"]))
    await auth_client.get(f"{LD}/entities?type=PersonLocation", headers=bearer(city["staff"]))
    rows = await city["runtime"].db.fetch(
        "SELECT event, owner_id, category, purpose, processor_org, targets FROM audit_log "
        "WHERE owner_id = ? AND event = 'pd.read'", owner)
    assert len(rows) == 2
    assert {(r["category"], r["purpose"], r["processor_org"]) for r in rows} == {
        ("location", "route-guidance", "navi")}
    assert all("urn:ngsi-ld:PersonLocation:1" in r["targets"] for r in rows)
    # the room is not personal data: reading it writes no audit record
    await auth_client.get(f"{LD}/entities/urn:ngsi-ld:Room:1", headers=bearer(city["staff"]))
    assert len(await city["runtime"].db.fetch(
        "SELECT 1 AS x FROM audit_log WHERE event = 'pd.read'")) == 2


@pytest.fixture
async def notifying(auth_settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    from tests.conftest import started_app

    settings = Settings.load(**{**auth_settings.__dict__, "notification_allow": "127.0.0.1",
                                "notification_backoff": 0.05})
    async with started_app(settings) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c, app


async def test_notifications_carry_personal_data_only_under_live_consent(
        notifying: tuple[httpx.AsyncClient, Any]) -> None:
    client, app = notifying
    runtime = app.state.auth
    await runtime.directory.create_organization("navi", "Navi Inc.", "service-provider")
    resident = await runtime.directory.create_account("taro", roles=("resident",))
    issue = runtime.tokens.issue_access_token
    provider, _ = await issue(subject="dp", kind="client", client_id="dp", tenant="",
                              scope="entities:read entities:write", roles=["data-provider"],
                              organization=None)
    staff_account = await runtime.directory.create_account("navi-staff", roles=("developer",),
                                                           organization_id="navi")
    # the application the staff member signed in with: deleting it would stop the notifications
    await runtime.directory.create_client("Navi", client_id="navi-app", organization_id="navi")
    staff, _ = await issue(subject=staff_account.id, kind="user", client_id="navi-app", tenant="",
                           scope="entities:read subscriptions pd:location", roles=["developer"],
                           organization="navi", purpose="route-guidance", auth_time=int(time.time()),
                           acr=MFA["acr"], amr=MFA["amr"])
    async with receiver() as rec:
        sub = {"type": "Subscription", "entities": [{"type": "PersonLocation"}, {"type": "Room"}],
               "notification": {"endpoint": {"uri": rec.url()}}}
        r = await client.post(f"{LD}/subscriptions", json=sub, headers=bearer(staff))
        assert r.status_code == 201, r.text
        await client.post(f"{LD}/entities", json=location_of(resident.id, 1), headers=bearer(provider))
        await client.post(f"{LD}/entities", json=room(1), headers=bearer(provider))
        await rec.wait_for(lambda got: "urn:ngsi-ld:Room:1" in rec.entity_ids())
        assert "urn:ngsi-ld:PersonLocation:1" not in rec.entity_ids()
        await runtime.consents.give(f"urn:cityos:account:{resident.id}", "location", "navi",
                                    "route-guidance")
        patch = {"position": {"type": "GeoProperty",
                              "value": {"type": "Point", "coordinates": [135.2, 34.7]}}}
        r = await client.patch(f"{LD}/entities/urn:ngsi-ld:PersonLocation:1/attrs", json=patch,
                               headers=bearer(provider))
        assert r.status_code == 204, r.text
        await rec.wait_for(lambda got: "urn:ngsi-ld:PersonLocation:1" in rec.entity_ids())
        rows = await runtime.db.fetch("SELECT 1 AS x FROM audit_log WHERE event = 'pd.notify'")
        assert len(rows) == 1


async def test_writing_someone_elses_personal_data_looks_like_absence(
        auth_client: httpx.AsyncClient, city: dict[str, Any], token_for: Any) -> None:
    """A writer without pd.manage gets 404 for a resident's position, as for no entity."""
    from cityos.auth.directory import Policy

    await city["runtime"].directory.put_policy(Policy(
        "locations-writer", "role", "tracker", ("entity.read", "entity.write")))
    writer = await token_for(roles=["tracker"], scopes="entities:read entities:write")
    patch = {"position": {"type": "GeoProperty",
                          "value": {"type": "Point", "coordinates": [135.0, 34.0]}}}
    hidden = await auth_client.patch(f"{LD}/entities/urn:ngsi-ld:PersonLocation:1/attrs",
                                     json=patch, headers=bearer(writer))
    absent = await auth_client.patch(f"{LD}/entities/urn:ngsi-ld:PersonLocation:404/attrs",
                                     json=patch, headers=bearer(writer))
    assert hidden.status_code == absent.status_code == 404
    assert hidden.json()["type"] == absent.json()["type"]
    # the owner's own data stays as it was
    own = await auth_client.get(f"{LD}/entities/urn:ngsi-ld:PersonLocation:1",
                                headers=bearer(city["own"]))
    assert own.json()["position"]["value"]["coordinates"] == [135.19, 34.69]


async def test_deleting_the_account_erases_its_personal_data(auth_client: httpx.AsyncClient,
                                                             city: dict[str, Any],
                                                             token_for: Any) -> None:
    platform = await token_for(roles=["platform-operator"], subject="platform-admin")
    r = await auth_client.delete(f"/admin/accounts/{city['resident'].id}", headers=bearer(platform))
    assert r.status_code == 204, r.text
    for path in (f"{LD}/entities/urn:ngsi-ld:PersonLocation:1",
                 f"{LD}/temporal/entities/urn:ngsi-ld:PersonLocation:1"):
        assert (await auth_client.get(path, headers=bearer(city["provider"]))).status_code == 404
    # the city's other data stays
    r = await auth_client.get(f"{LD}/entities/urn:ngsi-ld:Room:1", headers=bearer(city["provider"]))
    assert r.status_code == 200
