"""Notification behaviour checked against the ETSI NGSI-LD conformance test suite, part two.

Subscription ``datasetId`` (028_06, 046_19) and linked entities in notifications (``join``,
046_23 - 046_30).  The shared helpers live in ``test_conformance_subscriptions``; each test names
the ETSI ids whose behaviour it checks, on both engines, through the real app and a real HTTP
receiver.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.data.test_conformance_subscriptions import (
    BASE,
    LD,
    VOCAB,
    building_id,
    endpoint,
    problem,
    subscribe,
)

# the notifying client and receiver fixtures, shared with the other conformance files
from tests.data.test_conformance_subscriptions import client as client
from tests.data.test_conformance_subscriptions import rec as rec
from tests.data.test_notify_support import Receiver

# the suite's names used here, in one vocabulary (like its compound @context)
CONTEXT = {name: f"{VOCAB}{name}" for name in (
    "Building", "City", "name", "locatedAt", "description", "isInCountry", "airQualityLevel")}
FRENCH = "urn:ngsi-ld:Dataset:french-name"


async def create(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    got = await client.post(f"{BASE}/entities", json={**body, "@context": CONTEXT}, headers=LD)
    assert got.status_code == 201, got.text


async def append(client: httpx.AsyncClient, entity_id: str, attrs: dict[str, Any]) -> None:
    got = await client.post(f"{BASE}/entities/{entity_id}/attrs", headers=LD,
                            json={**attrs, "@context": CONTEXT})
    assert got.status_code == 204, got.text


async def only_notification(rec: Receiver) -> dict[str, Any]:
    got = await rec.wait_for(lambda r: len(r) >= 1)
    body: dict[str, Any] = got[0].body
    return body


# -- datasetId: 028_06, 046_19 ----------------------------------------------------------------

async def test_subscription_with_dataset_id_reads_back(client: httpx.AsyncClient) -> None:
    # ETSI 028_06_01: created (201), and GET shows datasetId and the default notificationTrigger
    sub = await subscribe(client, {
        "entities": [{"type": "Building"}], "datasetId": [FRENCH],
        "notification": {"format": "normalized", "endpoint": {
            "uri": "http://127.0.0.1:1/notify", "accept": "application/ld+json"}}},
        context=CONTEXT)
    got = await client.get(f"{BASE}/subscriptions/{sub}",
                           headers={"Accept": "application/ld+json"})
    assert got.status_code == 200, got.text
    doc = got.json()
    assert doc["datasetId"] == [FRENCH]
    assert doc["notificationTrigger"] == ["attributeCreated", "attributeUpdated"]
    assert doc["status"] == "active"
    # PATCH replaces it, null removes it
    patched = await client.patch(f"{BASE}/subscriptions/{sub}", json={"datasetId": ["@none"]})
    assert patched.status_code == 204, patched.text
    assert (await client.get(f"{BASE}/subscriptions/{sub}")).json()["datasetId"] == ["@none"]
    await client.patch(f"{BASE}/subscriptions/{sub}", json={"datasetId": None})
    assert "datasetId" not in (await client.get(f"{BASE}/subscriptions/{sub}")).json()
    bad = await client.patch(f"{BASE}/subscriptions/{sub}", json={"datasetId": "not-a-list"})
    problem(bad, 400, "BadRequestData")


async def test_dataset_id_filters_the_notified_instances(client: httpx.AsyncClient,
                                                         rec: Receiver) -> None:
    # ETSI 046_19_01: only the attribute instances of the subscription's datasetIds are sent
    entity = building_id()
    await create(client, {
        "id": entity, "type": "Building",
        "name": [{"type": "Property", "value": "Eiffel Tower"},
                 {"type": "Property", "value": "Tour Eiffel", "datasetId": FRENCH},
                 {"type": "Property", "value": "Eiffelturm",
                  "datasetId": "urn:ngsi-ld:Dataset:german-name"}],
        "locatedAt": [{"type": "Relationship", "object": "urn:ngsi-ld:City:Paris"},
                      {"type": "Relationship", "object": "urn:ngsi-ld:Ville:Paris",
                       "datasetId": FRENCH},
                      {"type": "Relationship", "object": "urn:ngsi-ld:Ciudad:París",
                       "datasetId": "urn:ngsi-ld:Dataset:spanish-name"}]})
    sub = await subscribe(client, {
        "entities": [{"id": entity, "type": "Building"}], "datasetId": [FRENCH],
        "notification": endpoint(rec)}, context=CONTEXT)
    await append(client, entity, {"name": {"type": "Property", "value": "Le Tour Eiffel",
                                           "datasetId": FRENCH}})
    note = await only_notification(rec)
    assert note["subscriptionId"] == sub
    data = note["data"][0]
    assert data["id"] == entity
    assert data["name"] == {"type": "Property", "value": "Le Tour Eiffel", "datasetId": FRENCH}
    assert data["locatedAt"] == {"type": "Relationship", "object": "urn:ngsi-ld:Ville:Paris",
                                 "datasetId": FRENCH}


async def test_dataset_id_none_selects_the_default_instance(client: httpx.AsyncClient,
                                                            rec: Receiver) -> None:
    # clause 4.5.5: "@none" is the instance without a datasetId; an attribute with no selected
    # instance is left out (keyValues shows the one selected value)
    entity = building_id()
    await create(client, {
        "id": entity, "type": "Building",
        "name": [{"type": "Property", "value": "Eiffel Tower"},
                 {"type": "Property", "value": "Tour Eiffel", "datasetId": FRENCH}],
        "description": {"type": "Property", "value": "only French", "datasetId": FRENCH}})
    await subscribe(client, {
        "entities": [{"id": entity, "type": "Building"}], "datasetId": ["@none"],
        "notification": {"format": "keyValues", **endpoint(rec)}}, context=CONTEXT)
    await append(client, entity, {"airQualityLevel": {"type": "Property", "value": 3}})
    data = (await only_notification(rec))["data"][0]
    assert data == {"id": entity, "type": "Building", "name": "Eiffel Tower",
                    "airQualityLevel": 3}


# -- join: 046_23 - 046_30 ------------------------------------------------------------------

PARIS = {"id": "urn:ngsi-ld:City:Paris", "type": "City",
         "description": {"type": "Property",
                         "value": "Paris is the capital and largest city of France"},
         "name": {"type": "Property", "value": "Paris"},
         "isInCountry": {"type": "Relationship", "object": "urn:ngsi-ld:Country:France"}}
PARIS_NORMALIZED = {k: v for k, v in PARIS.items()}
PARIS_SIMPLIFIED = {"id": PARIS["id"], "type": "City",
                    "description": "Paris is the capital and largest city of France",
                    "name": "Paris", "isInCountry": "urn:ngsi-ld:Country:France"}
LOCATED = {"type": "Relationship", "object": "urn:ngsi-ld:City:Paris"}


async def linked_notification(client: httpx.AsyncClient, rec: Receiver,
                              notification: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A Building located at a City (a fresh id each time), a join subscription on Buildings,
    then the Building's name updated: the one notification."""
    city = {**PARIS, "id": f"urn:ngsi-ld:City:Paris-{building_id()[-10:]}"}
    await create(client, city)
    entity = building_id()
    await create(client, {"id": entity, "type": "Building",
                          "locatedAt": {"type": "Relationship", "object": city["id"]}})
    await subscribe(client, {"entities": [{"id": entity, "type": "Building"}],
                             "notification": {**notification, **endpoint(rec)}},
                    context=CONTEXT)
    await append(client, entity, {"name": {"type": "Property", "value": "Tour Eiffel"}})
    note = await only_notification(rec)
    return city["id"], note


def with_city(value: Any, city_id: str) -> Any:
    """``value`` with the test's own Paris id instead of the suite's."""
    if isinstance(value, dict):
        return {k: with_city(v, city_id) for k, v in value.items()}
    return city_id if value == PARIS["id"] else value


async def test_join_flat(client: httpx.AsyncClient, rec: Receiver) -> None:
    # ETSI 046_23_01: the linking entity, then the linked one
    city, note = await linked_notification(client, rec, {"join": "flat", "joinLevel": 1})
    building, linked = note["data"]
    assert building["name"] == {"type": "Property", "value": "Tour Eiffel"}
    assert building["locatedAt"] == with_city(LOCATED, city)
    assert linked == with_city(PARIS_NORMALIZED, city)


async def test_join_flat_sys_attrs(client: httpx.AsyncClient, rec: Receiver) -> None:
    # ETSI 046_24_01: sysAttrs apply to linked entities too
    _, note = await linked_notification(client, rec, {"join": "flat", "sysAttrs": True})
    building, linked = note["data"]
    for entity in (building, linked):
        assert entity["createdAt"].endswith("Z") and entity["modifiedAt"].endswith("Z")
    assert "createdAt" in building["locatedAt"] and "modifiedAt" in linked["name"]


async def test_join_flat_simplified(client: httpx.AsyncClient, rec: Receiver) -> None:
    # ETSI 046_25_01: keyValues for both
    city, note = await linked_notification(client, rec, {"join": "flat", "format": "keyValues"})
    building, linked = note["data"]
    assert building["name"] == "Tour Eiffel" and building["locatedAt"] == city
    assert linked == with_city(PARIS_SIMPLIFIED, city)


async def test_join_flat_attributes(client: httpx.AsyncClient, rec: Receiver) -> None:
    # ETSI 046_26_01: notification.attributes narrows the linking entity, not the linked one
    city, note = await linked_notification(client, rec, {
        "join": "flat", "joinLevel": 1, "attributes": ["locatedAt"]})
    building, linked = note["data"]
    assert "name" not in building and building["locatedAt"] == with_city(LOCATED, city)
    assert linked == with_city(PARIS_NORMALIZED, city)


async def test_join_inline(client: httpx.AsyncClient, rec: Receiver) -> None:
    # ETSI 046_27_01: the linked entity inside the relationship
    city, note = await linked_notification(client, rec, {"join": "inline", "joinLevel": 1})
    [building] = note["data"]
    assert building["name"] == {"type": "Property", "value": "Tour Eiffel"}
    assert building["locatedAt"] == {**with_city(LOCATED, city),
                                     "entity": with_city(PARIS_NORMALIZED, city)}


async def test_join_inline_sys_attrs(client: httpx.AsyncClient, rec: Receiver) -> None:
    # ETSI 046_28_01
    _, note = await linked_notification(client, rec, {"join": "inline", "sysAttrs": True})
    linked = note["data"][0]["locatedAt"]["entity"]
    assert linked["createdAt"].endswith("Z") and "modifiedAt" in linked["name"]


async def test_join_inline_simplified(client: httpx.AsyncClient, rec: Receiver) -> None:
    # ETSI 046_29_01: in keyValues the linked entity replaces the relationship's value
    city, note = await linked_notification(client, rec, {"join": "inline",
                                                          "format": "keyValues"})
    assert note["data"] == [{"id": note["data"][0]["id"], "type": "Building",
                             "name": "Tour Eiffel",
                             "locatedAt": with_city(PARIS_SIMPLIFIED, city)}]


async def test_join_inline_attributes(client: httpx.AsyncClient, rec: Receiver) -> None:
    # ETSI 046_30_01
    city, note = await linked_notification(client, rec, {
        "join": "inline", "joinLevel": 1, "attributes": ["locatedAt"]})
    [building] = note["data"]
    assert set(building) == {"id", "type", "locatedAt"}
    assert building["locatedAt"]["entity"] == with_city(PARIS_NORMALIZED, city)


async def test_join_level_two_and_missing_targets(client: httpx.AsyncClient,
                                                  rec: Receiver) -> None:
    # joinLevel 2 follows the City's own isInCountry; a target that does not exist stays a
    # plain reference (no error, no entity)
    tag = building_id()[-10:]
    france = {"id": f"urn:ngsi-ld:Country:France-{tag}", "type": "Country",
              "name": {"type": "Property", "value": "France"}}
    await create(client, france)
    city = {**PARIS, "id": f"urn:ngsi-ld:City:Paris-{tag}",
            "isInCountry": {"type": "Relationship", "object": france["id"]}}
    await create(client, city)
    entity = building_id()
    await create(client, {"id": entity, "type": "Building",
                          "locatedAt": {"type": "Relationship", "object": city["id"]},
                          "description": {"type": "Relationship",
                                          "object": "urn:ngsi-ld:Thing:missing"}})
    await subscribe(client, {"entities": [{"id": entity, "type": "Building"}],
                             "notification": {"join": "flat", "joinLevel": 2, **endpoint(rec)}},
                    context=CONTEXT)
    await append(client, entity, {"name": {"type": "Property", "value": "Tour Eiffel"}})
    data = (await only_notification(rec))["data"]
    assert [e["id"] for e in data] == [entity, city["id"], france["id"]]
    assert data[0]["description"] == {"type": "Relationship",
                                      "object": "urn:ngsi-ld:Thing:missing"}


async def test_join_in_get_and_entity_deleted(client: httpx.AsyncClient, rec: Receiver) -> None:
    # join and joinLevel read back in GET; a deleted entity is notified without linked entities
    city = {**PARIS, "id": f"urn:ngsi-ld:City:Paris-{building_id()[-10:]}"}
    await create(client, city)
    entity = building_id()
    await create(client, {"id": entity, "type": "Building",
                          "locatedAt": {"type": "Relationship", "object": city["id"]}})
    sub = await subscribe(client, {"entities": [{"id": entity, "type": "Building"}],
                                   "notificationTrigger": ["entityDeleted"],
                                   "notification": {"join": "inline", "joinLevel": 2,
                                                    **endpoint(rec)}}, context=CONTEXT)
    got = (await client.get(f"{BASE}/subscriptions/{sub}")).json()
    assert got["notification"]["join"] == "inline" and got["notification"]["joinLevel"] == 2
    assert (await client.delete(f"{BASE}/entities/{entity}")).status_code == 204
    data = (await only_notification(rec))["data"]
    assert data == [{"id": entity, "type": "Building", "deletedAt": data[0]["deletedAt"]}]


# -- isActive: 5212_01 ------------------------------------------------------------------------

async def test_paused_subscription_delivers_nothing_until_resumed(client: httpx.AsyncClient,
                                                                  rec: Receiver) -> None:
    # ETSI 5212_01_01: isActive false: a matching change reaches no endpoint
    sub = await subscribe(client, {"entities": [{"type": "Building"}], "isActive": False,
                                   "notification": endpoint(rec)}, context=CONTEXT)
    entity = building_id()
    await create(client, {"id": entity, "type": "Building",
                          "name": {"type": "Property", "value": "Eiffel Tower"}})
    # ETSI 5212_01_02: resumed, the next change is notified, and it is the first one received
    assert (await client.patch(f"{BASE}/subscriptions/{sub}",
                               json={"isActive": True})).status_code == 204
    await append(client, entity, {"airQualityLevel": {"type": "Property", "value": 5}})
    note = await only_notification(rec)
    assert note["subscriptionId"] == sub
    assert note["data"][0]["airQualityLevel"]["value"] == 5
    assert len(rec.received) == 1
