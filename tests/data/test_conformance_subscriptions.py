"""Subscription behaviour checked against the cases of the ETSI NGSI-LD conformance test suite.

Our own tests, not a translation of the suite: each names the ETSI test id (028_*, 029_*, 030_*,
032_*, 046_*, 5811_*) whose behaviour it checks, on both engines, through the real app with a
real HTTP receiver.  Where the suite and ETSI GS CIM 009 v1.8 disagree we follow the spec and the
comment says so (see docs/subscriptions.md, "Conformance").
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.data.test_notify_support import Receiver, free_port, notifying_client, receiver

BASE = "/ngsi-ld/v1"
VOCAB = "https://ngsi-ld-test-suite/context#"
# an inline @context like the suite's: the short names it uses map into one vocabulary
CONTEXT = {"Building": f"{VOCAB}Building", "name": f"{VOCAB}name",
           "airQualityLevel": f"{VOCAB}airQualityLevel", "subCategory": f"{VOCAB}subCategory"}
LD = {"Content-Type": "application/ld+json"}


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with notifying_client(database_url, notification_backoff=0.02,
                                notification_retries=1) as c:
        yield c


@pytest.fixture
async def rec() -> AsyncIterator[Receiver]:
    async with receiver() as r:
        yield r


def building_id() -> str:
    return f"urn:ngsi-ld:Building:{uuid.uuid4().hex[:10]}"


def sub_id() -> str:
    return f"urn:ngsi-ld:Subscription:{uuid.uuid4().hex[:10]}"


async def create_building(client: httpx.AsyncClient, entity_id: str, **extra: Any) -> None:
    body = {"id": entity_id, "type": "Building",
            "name": {"type": "Property", "value": "Eiffel Tower"},
            "airQualityLevel": {"type": "Property", "value": 4},
            "subCategory": {"type": "Property", "value": "tourism"},
            **extra, "@context": CONTEXT}
    got = await client.post(f"{BASE}/entities", json=body, headers=LD)
    assert got.status_code == 201, got.text


async def set_air_quality(client: httpx.AsyncClient, entity_id: str, value: Any = 5) -> None:
    got = await client.post(f"{BASE}/entities/{entity_id}/attrs", headers=LD, json={
        "airQualityLevel": {"type": "Property", "value": value}, "@context": CONTEXT})
    assert got.status_code == 204, got.text


async def subscribe(client: httpx.AsyncClient, body: dict[str, Any], *,
                    context: Any = CONTEXT) -> str:
    payload = {"id": sub_id(), "type": "Subscription", **body}
    if context is None:
        got = await client.post(f"{BASE}/subscriptions", json=payload)
    else:
        got = await client.post(f"{BASE}/subscriptions", json={**payload, "@context": context},
                                headers=LD)
    assert got.status_code == 201, got.text
    return str(payload["id"])


def endpoint(rec: Receiver, **extra: Any) -> dict[str, Any]:
    return {"endpoint": {"uri": rec.url(), "accept": "application/json", **extra}}


async def nothing_more(rec: Receiver, count: int, seconds: float = 0.5) -> None:
    await asyncio.sleep(seconds)
    assert len(rec.received) == count, [r.body for r in rec.received]


def problem(response: httpx.Response, status: int, kind: str) -> None:
    assert response.status_code == status, response.text
    doc = response.json()
    assert doc["type"] == f"https://uri.etsi.org/ngsi-ld/errors/{kind}", doc
    assert doc.get("title")


def is_ngsild_date(text: str) -> bool:
    return text.endswith("Z") and datetime.fromisoformat(text) is not None


# -- create: 028_*, 5811_* -------------------------------------------------------------------

async def test_create_invalid_json_and_empty_body(client: httpx.AsyncClient) -> None:
    # ETSI 028_02_01: a body that is not JSON is InvalidRequest
    got = await client.post(f"{BASE}/subscriptions", content=b'{"type": "Subscription",',
                            headers={"Content-Type": "application/json"})
    problem(got, 400, "InvalidRequest")
    # ETSI 028_02_02: an empty object is BadRequestData
    problem(await client.post(f"{BASE}/subscriptions", json={}), 400, "BadRequestData")


@pytest.mark.parametrize("bad_id", ["invalidId", ""])
async def test_create_with_invalid_or_empty_id(client: httpx.AsyncClient, bad_id: str) -> None:
    # ETSI 028_03_01 (invalidId) and 028_03_02 (empty id)
    got = await client.post(f"{BASE}/subscriptions", json={
        "id": bad_id, "type": "Subscription", "entities": [{"type": "Building"}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:1/notify"}}})
    problem(got, 400, "BadRequestData")


async def test_create_with_known_id_is_already_exists(client: httpx.AsyncClient) -> None:
    # ETSI 028_04_01
    body = {"entities": [{"type": "Building"}],
            "notification": {"endpoint": {"uri": "http://127.0.0.1:1/notify"}}}
    known = await subscribe(client, body)
    again = await client.post(f"{BASE}/subscriptions", headers=LD, json={
        "id": known, "type": "Subscription", **body, "@context": CONTEXT})
    problem(again, 409, "AlreadyExists")


@pytest.mark.parametrize("members", [{"throttling": 5, "timeInterval": 10},   # ETSI 028_05_01
                                     {"throttling": -5}])                     # ETSI 028_05_02
async def test_create_with_invalid_throttling(client: httpx.AsyncClient,
                                              members: dict[str, Any]) -> None:
    got = await client.post(f"{BASE}/subscriptions", json={
        "type": "Subscription", "entities": [{"type": "Building"}], **members,
        "notification": {"endpoint": {"uri": "http://127.0.0.1:1/notify"}}})
    problem(got, 400, "BadRequestData")


async def test_create_with_invalid_or_unavailable_jsonld_context(
        client: httpx.AsyncClient) -> None:
    body = {"type": "Subscription", "entities": [{"type": "Building"}],
            "notification": {"endpoint": {"uri": "http://127.0.0.1:1/notify",
                                          "accept": "application/ld+json"}}}
    # ETSI 028_07_01: jsonldContext is not a URI
    problem(await client.post(f"{BASE}/subscriptions", json={**body,
                                                             "jsonldContext": "unknownContext"}),
            400, "BadRequestData")
    # ETSI 028_07_02: a URI nothing answers at is LdContextNotAvailable (503)
    dead = f"http://127.0.0.1:{free_port()}/context.jsonld"
    problem(await client.post(f"{BASE}/subscriptions", json={**body, "jsonldContext": dead}),
            503, "LdContextNotAvailable")


@pytest.mark.parametrize(("extra", "status"), [
    # ETSI 028_10_01: string pairs are fine, and notifierInfo keys other than MQTT's are kept
    ({"receiverInfo": [{"key": "Authorization", "value": "Bearer abc"}],
      "notifierInfo": [{"key": "Prefer", "value": "body=json"}]}, 201),
    ({"receiverInfo": [{"key": "K", "value": 42}]}, 400),              # ETSI 028_10_02
    ({"notifierInfo": [{"key": "K", "value": {"a": 1}}]}, 400),        # ETSI 028_10_03
    ({"receiverInfo": [{"key": "K"}]}, 400),                           # ETSI 028_10_04
    ({"receiverInfo": [{"key": 5, "value": "v"}]}, 400),               # ETSI 028_10_05
])
async def test_endpoint_key_value_pairs(client: httpx.AsyncClient, extra: dict[str, Any],
                                        status: int) -> None:
    got = await client.post(f"{BASE}/subscriptions", json={
        "type": "Subscription", "entities": [{"type": "Building"}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:1/notify", **extra}}})
    assert got.status_code == status, got.text
    if status == 400:
        problem(got, 400, "BadRequestData")


async def test_create_edges_of_5_8_1(client: httpx.AsyncClient) -> None:
    body = {"type": "Subscription", "entities": [{"type": "Building"}],
            "notification": {"endpoint": {"uri": "http://127.0.0.1:1/notify"}}}
    # ETSI 5811_01_01: an expiresAt in the past
    problem(await client.post(f"{BASE}/subscriptions",
                              json={**body, "expiresAt": "2000-01-01T00:00:00Z"}),
            400, "BadRequestData")
    # ETSI 5811_01_02: isActive false starts paused
    paused = await subscribe(client, {**body, "isActive": False})
    assert (await client.get(f"{BASE}/subscriptions/{paused}")).json()["status"] == "paused"
    # ETSI 5811_01_03: no id, one is generated and the Location names it
    got = await client.post(f"{BASE}/subscriptions", json=body)
    assert got.status_code == 201
    generated = got.headers["Location"].rsplit("/", 1)[-1]
    assert generated.startswith("urn:")
    assert (await client.get(f"{BASE}/subscriptions/{generated}")).status_code == 200


# -- update, retrieve, delete: 029_*, 030_*, 032_* -------------------------------------------

async def test_update_errors(client: httpx.AsyncClient) -> None:
    # ETSI 029_02_01: an unknown subscription
    got = await client.patch(f"{BASE}/subscriptions/urn:ngsi-ld:Subscription:unknown",
                             json={"subscriptionName": "x"})
    problem(got, 404, "ResourceNotFound")
    known = await subscribe(client, {"entities": [{"type": "Building"}],
                                     "notification": {"endpoint": {"uri": "http://127.0.0.1:1/n"}}})
    # ETSI 029_03_01: a fragment breaking the data types
    problem(await client.patch(f"{BASE}/subscriptions/{known}", json={"throttling": "often"}),
            400, "BadRequestData")
    # ETSI 029_04_01: removing a mandatory member (the endpoint) with null
    problem(await client.patch(f"{BASE}/subscriptions/{known}", json={
        "type": "Subscription", "notification": {"format": "keyValues", "endpoint": None}}),
        400, "BadRequestData")
    # a failed PATCH changed nothing
    doc = (await client.get(f"{BASE}/subscriptions/{known}")).json()
    assert doc["notification"]["endpoint"]["uri"] == "http://127.0.0.1:1/n"
    assert "format" not in doc["notification"]


async def test_retrieve_and_delete_errors(client: httpx.AsyncClient) -> None:
    unknown = "urn:ngsi-ld:Subscription:unknown"
    problem(await client.get(f"{BASE}/subscriptions/{unknown}"), 404,
            "ResourceNotFound")                                            # ETSI 030_02_01
    problem(await client.get(f"{BASE}/subscriptions/invalidId"), 400,
            "BadRequestData")                                              # ETSI 030_03_01
    problem(await client.delete(f"{BASE}/subscriptions/{unknown}"), 404,
            "ResourceNotFound")                                            # ETSI 032_02_01
    problem(await client.delete(f"{BASE}/subscriptions/invalidId"), 400,
            "BadRequestData")                                              # ETSI 032_03_01


# -- notification behaviour: 046_* -----------------------------------------------------------

async def test_active_subscription_notifies_with_the_notification_structure(
        client: httpx.AsyncClient, rec: Receiver) -> None:
    # ETSI 046_01_01, 046_03_01, 046_07_01: an update of a subscribed entity is notified
    entity = building_id()
    await create_building(client, entity)
    sub = await subscribe(client, {"entities": [{"id": entity, "type": "Building"}],
                                   "notification": endpoint(rec)})
    await set_air_quality(client, entity)
    got = await rec.wait_for(lambda r: len(r) == 1)
    note = got[0].body
    assert note["type"] == "Notification"
    assert note["subscriptionId"] == sub
    assert note["id"].startswith("urn:")
    assert is_ngsild_date(note["notifiedAt"])
    assert note["data"][0]["id"] == entity
    assert note["data"][0]["airQualityLevel"]["value"] == 5
    assert note["data"][0]["name"]["value"] == "Eiffel Tower"   # every attribute, not only the
    # changed one: no notification.attributes was given


async def test_watched_attributes_and_q(client: httpx.AsyncClient, rec: Receiver) -> None:
    # ETSI 046_04_01 (watchedAttributes) and 046_05_01 (watchedAttributes and q)
    entity = building_id()
    await create_building(client, entity)
    sub = await subscribe(client, {"entities": [{"type": "Building"}],
                                   "watchedAttributes": ["airQualityLevel"],
                                   "q": "airQualityLevel>4", "notification": endpoint(rec)})
    got = await client.post(f"{BASE}/entities/{entity}/attrs", headers=LD, json={
        "name": {"type": "Property", "value": "Tour Eiffel"}, "@context": CONTEXT})
    assert got.status_code == 204                     # not a watched attribute
    await set_air_quality(client, entity, 3)          # watched, but q is false
    await nothing_more(rec, 0, 0.3)
    await set_air_quality(client, entity, 5)
    note = (await rec.wait_for(lambda r: len(r) == 1))[0].body
    assert note["subscriptionId"] == sub
    assert note["data"][0]["airQualityLevel"]["value"] == 5
    assert note["data"][0]["name"]["value"] == "Tour Eiffel"


async def test_entity_created_and_type_selection(client: httpx.AsyncClient,
                                                 rec: Receiver) -> None:
    # ETSI 046_06_01 (entityCreated) and 046_16_01 (a type selection matches a new entity)
    await subscribe(client, {"entities": [{"type": "Building"}],
                             "notificationTrigger": ["entityCreated"],
                             "notification": endpoint(rec)})
    entity = building_id()
    await create_building(client, entity)
    note = (await rec.wait_for(lambda r: len(r) == 1))[0].body
    assert note["data"][0]["id"] == entity
    assert note["triggerReason"] == "entityCreated"
    await set_air_quality(client, entity)             # an update is not entityCreated
    await nothing_more(rec, 1, 0.3)


async def test_notification_attributes_and_uri_expansion(client: httpx.AsyncClient,
                                                         rec: Receiver) -> None:
    # ETSI 046_07_02: only notification.attributes are sent
    entity = building_id()
    await create_building(client, entity)
    await subscribe(client, {"entities": [{"id": entity, "type": "Building"}],
                             "notification": {"attributes": ["airQualityLevel"],
                                              **endpoint(rec)}})
    # ETSI 046_07_03: a subscription made with the core context only sees the full IRIs
    await subscribe(client, {"entities": [{"id": entity, "type": f"{VOCAB}Building"}],
                             "notification": endpoint(rec, uri=rec.url("/core"))}, context=None)
    await set_air_quality(client, entity)
    got = await rec.wait_for(lambda r: len(r) == 2)
    chosen = next(r.body for r in got if r.path == "/notify")["data"][0]
    assert "airQualityLevel" in chosen and "name" not in chosen
    expanded = next(r.body for r in got if r.path == "/core")["data"][0]
    assert f"{VOCAB}airQualityLevel" in expanded
    assert expanded["type"] == f"{VOCAB}Building"


async def test_receiver_info_becomes_headers(client: httpx.AsyncClient, rec: Receiver) -> None:
    # ETSI 046_09_01
    entity = building_id()
    await create_building(client, entity)
    await subscribe(client, {"entities": [{"id": entity, "type": "Building"}],
                             "notification": endpoint(rec, receiverInfo=[
                                 {"key": "X-Additional-Key", "value": "some value"}])})
    await set_air_quality(client, entity)
    got = await rec.wait_for(lambda r: len(r) == 1)
    assert got[0].headers["X-Additional-Key"] == "some value"


async def test_json_and_json_ld_notifications(client: httpx.AsyncClient, rec: Receiver) -> None:
    entity = building_id()
    await create_building(client, entity)
    # ETSI 046_10_01: JSON by default, the @context in a Link header, none in the body
    await subscribe(client, {"entities": [{"id": entity, "type": "Building"}],
                             "notification": {"endpoint": {"uri": rec.url("/json")}}})
    # ETSI 046_14_01: application/ld+json: no Link header, the @context in the body
    await subscribe(client, {"entities": [{"id": entity, "type": "Building"}],
                             "notification": endpoint(rec, uri=rec.url("/ld"),
                                                      accept="application/ld+json")})
    await set_air_quality(client, entity)
    got = await rec.wait_for(lambda r: len(r) == 2)
    plain = next(r for r in got if r.path == "/json")
    assert plain.headers["Content-Type"].startswith("application/json")
    assert 'rel="http://www.w3.org/ns/json-ld#context"' in plain.headers["Link"]
    assert "@context" not in plain.body and "@context" not in plain.body["data"][0]
    linked = next(r for r in got if r.path == "/ld")
    assert linked.headers["Content-Type"].startswith("application/ld+json")
    assert "Link" not in linked.headers
    # the suite looks for @context in data[0]; CityOS puts it once at the top of the
    # notification, where JSON-LD applies it to every entity in data (docs/subscriptions.md)
    assert linked.body["@context"] == CONTEXT
    assert "airQualityLevel" in linked.body["data"][0]


async def test_counters_after_success(client: httpx.AsyncClient, rec: Receiver) -> None:
    # ETSI 046_11_01 (timesSent is 1) and 046_12_01 (status ok, lastNotification, lastSuccess)
    entity = building_id()
    await create_building(client, entity)
    sub = await subscribe(client, {"entities": [{"id": entity, "type": "Building"}],
                                   "notification": endpoint(rec)})
    await set_air_quality(client, entity)
    await rec.wait_for(lambda r: len(r) == 1)
    notification: dict[str, Any] = {}
    for _ in range(50):
        notification = (await client.get(f"{BASE}/subscriptions/{sub}")).json()["notification"]
        if notification.get("timesSent"):
            break
        await asyncio.sleep(0.02)
    assert notification["timesSent"] == 1
    assert notification["status"] == "ok"
    assert is_ngsild_date(notification["lastNotification"])
    assert is_ngsild_date(notification["lastSuccess"])
    assert "lastFailure" not in notification


async def test_counters_after_failure(client: httpx.AsyncClient, rec: Receiver) -> None:
    # ETSI 046_13_01: the receiver answers 500: status failed, lastFailure set
    rec.statuses.extend([500, 500, 500])
    entity = building_id()
    await create_building(client, entity)
    sub = await subscribe(client, {"entities": [{"id": entity, "type": "Building"}],
                                   "notification": endpoint(rec)})
    await set_air_quality(client, entity)
    notification: dict[str, Any] = {}
    for _ in range(100):
        notification = (await client.get(f"{BASE}/subscriptions/{sub}")).json()["notification"]
        if notification.get("timesFailed"):
            break
        await asyncio.sleep(0.02)
    assert notification["status"] == "failed"
    assert is_ngsild_date(notification["lastFailure"])
    assert "lastSuccess" not in notification


async def test_throttling_holds_back_the_next_notification(client: httpx.AsyncClient,
                                                           rec: Receiver) -> None:
    # ETSI 046_15_01: within the throttling window the second change is not sent (CityOS sends
    # it once the window has passed, so nothing is lost)
    entity = building_id()
    await create_building(client, entity)
    await subscribe(client, {"entities": [{"id": entity, "type": "Building"}], "throttling": 2,
                             "notification": endpoint(rec)})
    await set_air_quality(client, entity, 5)
    await rec.wait_for(lambda r: len(r) == 1)
    await set_air_quality(client, entity, 6)
    await nothing_more(rec, 1, 0.8)


async def test_sys_attrs_in_notifications(client: httpx.AsyncClient, rec: Receiver) -> None:
    # ETSI 046_17_01 (sysAttrs true) and 046_18_01 (sysAttrs false)
    entity = building_id()
    await create_building(client, entity)
    for flag in (True, False):
        await subscribe(client, {"entities": [{"id": entity, "type": "Building"}],
                                 "notification": {"sysAttrs": flag,
                                                  **endpoint(rec, uri=rec.url(f"/{flag}"))}})
    await set_air_quality(client, entity)
    got = await rec.wait_for(lambda r: len(r) == 2)
    with_sys = next(r.body for r in got if r.path == "/True")["data"][0]
    without = next(r.body for r in got if r.path == "/False")["data"][0]
    assert "createdAt" in with_sys and "modifiedAt" in with_sys
    assert "createdAt" not in without and "modifiedAt" not in without


async def test_entity_deleted(client: httpx.AsyncClient, rec: Receiver) -> None:
    # ETSI 046_21_01: exactly id, type and deletedAt
    entity = building_id()
    await create_building(client, entity)
    sub = await subscribe(client, {"entities": [{"type": "Building"}],
                                   "notificationTrigger": ["entityDeleted"],
                                   "notification": endpoint(rec)})
    assert (await client.delete(f"{BASE}/entities/{entity}")).status_code == 204
    note = (await rec.wait_for(lambda r: len(r) == 1))[0].body
    assert note["subscriptionId"] == sub
    assert len(note["data"]) == 1
    gone = note["data"][0]
    assert set(gone) == {"id", "type", "deletedAt"}
    assert gone["id"] == entity and gone["type"] == "Building"
    assert is_ngsild_date(gone["deletedAt"])


async def test_attribute_deleted(client: httpx.AsyncClient, rec: Receiver) -> None:
    # (the suite names the attribute through its remote context; the app cannot fetch it here,
    # so this entity and its subscriptions use the core context and the URL says "name")
    entity = building_id()
    got = await client.post(f"{BASE}/entities", json={
        "id": entity, "type": "Building", "name": {"type": "Property", "value": "Eiffel Tower"},
        "subCategory": {"type": "Property", "value": "tourism"}})
    assert got.status_code == 201, got.text
    # ETSI 046_22_01: keyValues, the deleted attribute is sent as "urn:ngsi-ld:null"
    await subscribe(client, {"entities": [{"type": "Building"}],
                             "notificationTrigger": ["attributeDeleted"],
                             "notification": {"format": "keyValues", **endpoint(rec)}},
                    context=None)
    # ETSI 046_22_03: attributeDeleted for a watched attribute that is not the deleted one
    await subscribe(client, {"entities": [{"type": "Building"}],
                             "watchedAttributes": ["subCategory"],
                             "notificationTrigger": ["attributeDeleted"],
                             "notification": endpoint(rec, uri=rec.url("/watched"))},
                    context=None)
    got = await client.delete(f"{BASE}/entities/{entity}/attrs/name")
    assert got.status_code == 204, got.text
    note = (await rec.wait_for(lambda r: len(r) == 1))[0]
    assert note.path == "/notify"
    assert note.body["data"][0]["id"] == entity
    assert note.body["data"][0]["name"] == "urn:ngsi-ld:null"
    assert note.body["triggerReason"] == "attributeDeleted"
    await nothing_more(rec, 1, 0.3)


async def test_periodic_notification(client: httpx.AsyncClient, rec: Receiver) -> None:
    # ETSI 046_02_01: with timeInterval the state is sent every interval, without changes
    entity = building_id()
    await create_building(client, entity)
    sub = await subscribe(client, {"entities": [{"id": entity, "type": "Building"}],
                                   "timeInterval": 0.5, "notification": endpoint(rec)})
    got = await rec.wait_for(lambda r: len(r) >= 2, timeout=3)
    for note in got[:2]:
        assert note.body["subscriptionId"] == sub
        assert note.body["data"][0]["id"] == entity
        assert note.body["data"][0]["airQualityLevel"]["value"] == 4
        assert note.body["data"][0]["name"]["value"] == "Eiffel Tower"

