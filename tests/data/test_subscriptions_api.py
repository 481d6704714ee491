"""Contract tests of /ngsi-ld/v1/subscriptions on both engines (ETSI GS CIM 009 5.8, 6.10-6.11):
create, retrieve, query with paging, update, delete, tenants, and persistence across restarts."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx

from cityos.core.settings import Settings
from tests.data.test_subscriptions_support import (
    BASE,
    KOBE_CONTEXT,
    KOBE_TYPE,
    RECEIVER,
    app,
    client_for,
    created_id,
    host_context,
    post,
    post_ld,
    problem,
    running_app,
    settings,
    subscription,
)

__all__ = ["app", "settings"]  # fixtures used by the tests below


async def get(client: httpx.AsyncClient, sub_id: str, **headers: str) -> httpx.Response:
    return await client.get(f"{BASE}/subscriptions/{sub_id}", headers=headers)


async def test_create_answers_201_with_location_and_get_returns_what_was_written(
        client: httpx.AsyncClient) -> None:
    body = subscription(id="urn:ngsi-ld:Subscription:kobe-parking-1",
                        description="空き状況が変わったら通知 / notify on status change",
                        q="status==\"free\"", expiresAt="2099-04-01T09:00:00+09:00")
    response = await post(client, body)
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"{BASE}/subscriptions/urn:ngsi-ld:Subscription:kobe-parking-1"
    assert response.content == b""
    got = await get(client, "urn:ngsi-ld:Subscription:kobe-parking-1")
    assert got.status_code == 200
    assert "ngsi-ld-core-context" in got.headers["link"]
    expected = {**body, "expiresAt": "2099-04-01T00:00:00.000Z", "status": "active",
                "notificationTrigger": ["attributeCreated", "attributeUpdated"]}   # the default
    assert got.json() == expected   # +09:00 is stored as the same instant in UTC


async def test_generated_id_is_a_subscription_urn(client: httpx.AsyncClient) -> None:
    sub_id = await created_id(await post(client, subscription()))
    assert sub_id.startswith("urn:ngsi-ld:Subscription:")
    assert (await get(client, sub_id)).json()["id"] == sub_id


async def test_create_twice_is_409(client: httpx.AsyncClient) -> None:
    body = subscription(id="urn:ngsi-ld:Subscription:twice")
    assert (await post(client, body)).status_code == 201
    problem(await post(client, body), 409, "AlreadyExists")


async def test_unknown_subscription_is_404_for_get_patch_delete(client: httpx.AsyncClient) -> None:
    missing = "urn:ngsi-ld:Subscription:nowhere"
    problem(await get(client, missing), 404, "ResourceNotFound")
    problem(await client.patch(f"{BASE}/subscriptions/{missing}", json={"isActive": False}),
            404, "ResourceNotFound")
    problem(await client.delete(f"{BASE}/subscriptions/{missing}"), 404, "ResourceNotFound")
    problem(await get(client, "not a uri"), 400, "BadRequestData")


async def test_delete_answers_204_and_the_subscription_is_gone(client: httpx.AsyncClient) -> None:
    sub_id = await created_id(await post(client, subscription()))
    response = await client.delete(f"{BASE}/subscriptions/{sub_id}")
    assert response.status_code == 204 and response.content == b""
    problem(await get(client, sub_id), 404, "ResourceNotFound")
    problem(await client.delete(f"{BASE}/subscriptions/{sub_id}"), 404, "ResourceNotFound")
    assert (await client.get(f"{BASE}/subscriptions")).json() == []


async def test_patch_replaces_members_merges_notification_and_null_removes(
        client: httpx.AsyncClient) -> None:
    sub_id = await created_id(await post(client, subscription(q="status==\"free\"")))
    response = await client.patch(f"{BASE}/subscriptions/{sub_id}", json={
        "q": None, "isActive": False, "description": "夜間は停止 / paused at night",
        "notification": {"format": "keyValues", "attributes": ["status"]}})
    assert response.status_code == 204, response.text
    body = (await get(client, sub_id)).json()
    assert "q" not in body
    assert body["isActive"] is False and body["status"] == "paused"
    assert body["description"] == "夜間は停止 / paused at night"
    assert body["notification"] == {"endpoint": {"uri": RECEIVER, "accept": "application/json"},
                                    "format": "keyValues", "attributes": ["status"]}
    assert (await client.patch(f"{BASE}/subscriptions/{sub_id}",
                               json={"isActive": True})).status_code == 204
    assert (await get(client, sub_id)).json()["status"] == "active"


async def test_patch_errors(client: httpx.AsyncClient) -> None:
    sub_id = await created_id(await post(client, subscription()))
    url = f"{BASE}/subscriptions/{sub_id}"
    problem(await client.patch(url, json={"notification": {"endpoint": None}}), 400,
            "BadRequestData")
    problem(await client.patch(url, json={"notification": None}), 400, "BadRequestData")
    problem(await client.patch(url, json={"id": "urn:ngsi-ld:Subscription:other"}), 400,
            "BadRequestData")
    problem(await client.patch(url, json={"watchedAttributes": [], }), 400, "BadRequestData")
    problem(await client.patch(url, json={"timeInterval": 60}), 400, "BadRequestData")
    problem(await client.patch(url, json={}), 400, "BadRequestData")
    problem(await client.patch(url, content=b"{", headers={"Content-Type": "application/json"}),
            400, "InvalidRequest")
    # nothing of the failed patches stuck
    body = (await get(client, sub_id)).json()
    assert body["watchedAttributes"] == ["status"] and "timeInterval" not in body


async def test_expired_subscription_reads_as_expired(client: httpx.AsyncClient) -> None:
    sub_id = await created_id(await post(client, subscription()))
    patched = await client.patch(f"{BASE}/subscriptions/{sub_id}",
                                 json={"expiresAt": "2020-01-01T00:00:00+09:00"})
    assert patched.status_code == 204, patched.text
    body = (await get(client, sub_id)).json()
    assert body["status"] == "expired" and body["expiresAt"] == "2019-12-31T15:00:00.000Z"


async def test_query_pages_with_count_and_links(client: httpx.AsyncClient) -> None:
    ids = [await created_id(await post(client, subscription(
        id=f"urn:ngsi-ld:Subscription:page-{i}"))) for i in range(5)]
    response = await client.get(f"{BASE}/subscriptions", params={"limit": "2", "count": "true"})
    assert response.status_code == 200
    assert response.headers["ngsild-results-count"] == "5"
    assert [s["id"] for s in response.json()] == ids[:2]
    assert 'rel="next"' in response.headers["link"]
    rest = await client.get(f"{BASE}/subscriptions", params={"limit": "2", "offset": "4"})
    assert [s["id"] for s in rest.json()] == ids[4:]
    assert "ngsild-results-count" not in rest.headers
    problem(await client.get(f"{BASE}/subscriptions", params={"limit": "201"}), 403,
            "TooManyResults")
    problem(await client.get(f"{BASE}/subscriptions", params={"limit": "x"}), 400,
            "BadRequestData")
    problem(await client.get(f"{BASE}/subscriptions", params={"options": "keyValues"}), 400,
            "BadRequestData")


async def test_sys_attrs_show_created_and_modified(client: httpx.AsyncClient) -> None:
    sub_id = await created_id(await post(client, subscription()))
    plain = (await get(client, sub_id)).json()
    assert "createdAt" not in plain
    first = (await client.get(f"{BASE}/subscriptions/{sub_id}?options=sysAttrs")).json()
    assert first["createdAt"] == first["modifiedAt"]
    await client.patch(f"{BASE}/subscriptions/{sub_id}", json={"description": "更新"})
    second = (await client.get(f"{BASE}/subscriptions/{sub_id}?options=sysAttrs")).json()
    assert second["createdAt"] == first["createdAt"]
    assert second["modifiedAt"] > first["modifiedAt"]


async def test_ld_json_create_and_names_compacted_for_each_reader(
        client: httpx.AsyncClient) -> None:
    body = subscription(entities=[{"type": "ParkingSpot"}], watchedAttributes=["occupancy"],
                        notification={"attributes": ["駐車場名", "occupancy"],
                                      "endpoint": {"uri": RECEIVER}})
    sub_id = await created_id(await post_ld(client, body))
    # no @context: full IRIs (ETSI 029_05)
    expanded = (await get(client, sub_id)).json()
    assert expanded["entities"] == [{"type": KOBE_TYPE}]
    assert expanded["watchedAttributes"] == ["https://kobe.example.jp/vocab#occupancy"]
    assert expanded["notification"]["attributes"] == ["https://kobe.example.jp/vocab#name",
                                                      "https://kobe.example.jp/vocab#occupancy"]
    # the author's context, hosted: short names again
    link = await host_context(client, KOBE_CONTEXT)
    compact = (await get(client, sub_id, Link=link)).json()
    assert compact["entities"] == [{"type": "ParkingSpot"}]
    assert compact["watchedAttributes"] == ["occupancy"]
    assert compact["notification"]["attributes"] == ["駐車場名", "occupancy"]
    # JSON-LD answer carries @context in the body
    ld = await get(client, sub_id, Link=link, Accept="application/ld+json")
    assert ld.headers["content-type"].startswith("application/ld+json")
    assert "@context" in ld.json()


async def test_patch_under_another_context_re_expands_only_its_members(
        client: httpx.AsyncClient) -> None:
    sub_id = await created_id(await post_ld(client, subscription(watchedAttributes=["occupancy"])))
    other = {"occupancy": "https://other.example.org/occupancy"}
    link = await host_context(client, other)
    response = await client.patch(f"{BASE}/subscriptions/{sub_id}",
                                  json={"watchedAttributes": ["occupancy"]}, headers={"Link": link})
    assert response.status_code == 204, response.text
    body = (await get(client, sub_id)).json()
    assert body["watchedAttributes"] == ["https://other.example.org/occupancy"]
    assert body["entities"] == [{"type": KOBE_TYPE}]          # untouched member, old context


async def test_type_expressions_keep_their_shape(client: httpx.AsyncClient) -> None:
    body = subscription(entities=[{"type": "(ParkingSpot;OffStreetParking),Building"},
                                  {"idPattern": "^urn:ngsi-ld:ParkingSpot:kobe-.*$"}])
    sub_id = await created_id(await post_ld(client, body))
    link = await host_context(client, KOBE_CONTEXT)
    got = (await get(client, sub_id, Link=link)).json()
    assert got["entities"] == body["entities"]


async def test_tenants_are_isolated(client: httpx.AsyncClient) -> None:
    kobe = {"NGSILD-Tenant": "kobe"}
    sub_id = await created_id(await post(client, subscription(), **kobe))
    assert (await get(client, sub_id, **kobe)).status_code == 200
    problem(await get(client, sub_id), 404, "ResourceNotFound")
    problem(await client.delete(f"{BASE}/subscriptions/{sub_id}"), 404, "ResourceNotFound")
    assert (await client.get(f"{BASE}/subscriptions")).json() == []
    listed = await client.get(f"{BASE}/subscriptions", headers=kobe)
    assert [s["id"] for s in listed.json()] == [sub_id]
    problem(await client.get(f"{BASE}/subscriptions", headers={"NGSILD-Tenant": "osaka"}),
            404, "NonexistentTenant")
    problem(await client.get(f"{BASE}/subscriptions", headers={"NGSILD-Tenant": "bad tenant"}),
            400, "BadRequestData")
    # the same id may exist in another tenant
    assert (await post(client, subscription(id=sub_id))).status_code == 201


async def test_subscriptions_survive_a_restart(settings: Settings, tmp_path: Any) -> None:
    if settings.database_url == "sqlite://":
        settings = replace(settings, database_url=f"sqlite:///{tmp_path / 'subs.db'}")
    body = subscription(id="urn:ngsi-ld:Subscription:restart", q="status==\"free\"",
                        geoQ={"georel": "near;maxDistance==500", "geometry": "Point",
                              "coordinates": [135.1955, 34.6901]})
    async with running_app(settings, empty=True) as first, client_for(first) as client:
        assert (await post_ld(client, body)).status_code == 201
        kobe = await created_id(await post(client, subscription(), **{"NGSILD-Tenant": "kobe"}))
        before = (await client.get(f"{BASE}/subscriptions/urn:ngsi-ld:Subscription:restart")).json()
    async with running_app(settings) as second, client_for(second) as client:
        after = (await client.get(f"{BASE}/subscriptions/urn:ngsi-ld:Subscription:restart")).json()
        assert after == before
        registry = second.state.broker.registry
        restored = registry.get("", "urn:ngsi-ld:Subscription:restart")
        assert restored.selectors[0].types.alternatives == (frozenset({KOBE_TYPE}),)
        assert restored.geo.geoproperty == "https://uri.etsi.org/ngsi-ld/location"
        assert restored.q is not None
        assert registry.get("kobe", kobe) is not None


async def test_registry_sees_create_patch_delete(app: Any, client: httpx.AsyncClient) -> None:
    registry = app.state.broker.registry
    sub_id = await created_id(await post(client, subscription()))
    assert registry.get("", sub_id).is_active
    await client.patch(f"{BASE}/subscriptions/{sub_id}", json={"isActive": False})
    assert not registry.get("", sub_id).is_active
    await client.delete(f"{BASE}/subscriptions/{sub_id}")
    assert registry.get("", sub_id) is None


async def test_notifier_is_told_about_changes(app: Any, client: httpx.AsyncClient) -> None:
    calls: list[tuple[str, Any]] = []

    class Recorder:
        def subscription_changed(self, sub: Any) -> None:
            calls.append(("changed", sub.id))

        def subscription_removed(self, tenant: str, sub_id: str) -> None:
            calls.append(("removed", (tenant, sub_id)))

    app.state.broker.notifier = Recorder()
    sub_id = await created_id(await post(client, subscription(timeInterval=60,
                                                              watchedAttributes=None)))
    await client.patch(f"{BASE}/subscriptions/{sub_id}", json={"timeInterval": 120})
    await client.delete(f"{BASE}/subscriptions/{sub_id}")
    assert calls == [("changed", sub_id), ("changed", sub_id), ("removed", ("", sub_id))]


async def test_counters_appear_in_notification_after_deliveries(
        app: Any, client: httpx.AsyncClient) -> None:
    sub_id = await created_id(await post(client, subscription()))
    counters = app.state.broker.registry.counters("", sub_id)
    counters.times_sent, counters.times_failed = 3, 1
    counters.last_notification = counters.last_failure = "2026-11-25T00:00:00.000Z"
    counters.last_success = "2026-11-24T23:00:00.000Z"
    counters.consecutive_failures = 1
    body: dict[str, Any] = (await get(client, sub_id)).json()
    assert body["notification"]["timesSent"] == 3
    assert body["notification"]["timesFailed"] == 1
    assert body["notification"]["status"] == "failed"
    assert body["notification"]["lastSuccess"] == "2026-11-24T23:00:00.000Z"
    assert body["status"] == "active"   # failed is the notification's status, not the subscription's
    assert app.state.broker.registry.status(app.state.broker.registry.get("", sub_id)) == "failed"
