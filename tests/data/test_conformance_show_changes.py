"""``showChanges``, ``pick`` and ``omit`` in notifications, against the ETSI NGSI-LD test suite.

ETSI 046_31 - 046_41 (previous values of every attribute type, on update, attribute deletion and
entity deletion; none on creation), 046_42 / 046_43 (``pick`` / ``omit``) and 028_08 (their
invalid combinations).  Our own tests on both engines, through the real app and a real HTTP
receiver; shared helpers live in ``test_conformance_subscriptions``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest

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

CONTEXT = {name: f"{VOCAB}{name}" for name in (
    "Building", "name", "locatedAt", "street", "jsonProperty", "vocabProperty")}
NULL = "urn:ngsi-ld:null"
POINT = {"type": "Point", "coordinates": [-8.5, 41.2]}
# building-different-attributes-types.jsonld, without its id
DIFFERENT_TYPES = {
    "type": "Building",
    "name": {"type": "Property", "value": "Eiffel Tower"},
    "locatedAt": {"type": "Relationship", "object": "urn:ngsi-ld:City:Paris"},
    "location": {"type": "GeoProperty", "value": POINT},
    "street": {"type": "LanguageProperty",
               "languageMap": {"fr": "Grand Place", "nl": "Grote Markt"}}}
OLD_JSON = {"id": "some-id", "null": None, "type": "some-type", "anythingElse": "anything-else"}
JSON_BUILDING = {"type": "Building", "jsonProperty": {"type": "JsonProperty", "json": OLD_JSON}}
VOCAB_BUILDING = {"type": "Building",
                  "vocabProperty": {"type": "VocabProperty", "vocab": "monument"}}




async def setup(client: httpx.AsyncClient, rec: Receiver, entity: dict[str, Any],
                notification: dict[str, Any], **members: Any) -> str:
    """``entity`` created under a fresh id, and a subscription on it; returns the id."""
    entity_id = building_id()
    got = await client.post(f"{BASE}/entities", headers=LD,
                            json={"id": entity_id, **entity, "@context": CONTEXT})
    assert got.status_code == 201, got.text
    await subscribe(client, {"entities": [{"id": entity_id, "type": "Building"}],
                             "notification": {**notification, **endpoint(rec)}, **members},
                    context=CONTEXT)
    return entity_id


async def update(client: httpx.AsyncClient, entity_id: str, attrs: dict[str, Any]) -> None:
    got = await client.post(f"{BASE}/entities/{entity_id}/attrs", headers=LD,
                            json={**attrs, "@context": CONTEXT})
    assert got.status_code == 204, got.text


async def data(rec: Receiver) -> dict[str, Any]:
    got = await rec.wait_for(lambda r: len(r) >= 1)
    first: dict[str, Any] = got[0].body["data"][0]
    return first


UPDATES = [
    # ETSI 046_31_01 .. 046_31_04, 046_32_01, 046_33_01: (entity, fragment, attribute, expected)
    pytest.param(DIFFERENT_TYPES, {"name": {"type": "Property", "value": "Tour Eiffel"}}, "name",
                 {"type": "Property", "value": "Tour Eiffel", "previousValue": "Eiffel Tower"},
                 id="046_31_01"),
    pytest.param(DIFFERENT_TYPES,
                 {"locatedAt": {"type": "Relationship", "object": "urn:ngsi-ld:City:Nantes"}},
                 "locatedAt", {"type": "Relationship", "object": "urn:ngsi-ld:City:Nantes",
                               "previousObject": "urn:ngsi-ld:City:Paris"}, id="046_31_02"),
    pytest.param(DIFFERENT_TYPES, {"location": {"type": "GeoProperty", "value": {
        "type": "Point", "coordinates": [13.3986, 52.5547]}}}, "location",
        {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [13.3986, 52.5547]},
         "previousValue": POINT}, id="046_31_03"),
    pytest.param(DIFFERENT_TYPES, {"street": {"type": "LanguageProperty", "languageMap": {
        "fr": "Grand Place", "es": "Gran Lugar"}}}, "street",
        {"type": "LanguageProperty", "languageMap": {"fr": "Grand Place", "es": "Gran Lugar"},
         "previousLanguageMap": {"fr": "Grand Place", "nl": "Grote Markt"}}, id="046_31_04"),
    pytest.param(JSON_BUILDING, {"jsonProperty": {"type": "JsonProperty", "json": {
        "city": "Nantes", "street": "Place Royale"}}}, "jsonProperty",
        {"type": "JsonProperty", "json": {"city": "Nantes", "street": "Place Royale"},
         "previousJson": OLD_JSON}, id="046_32_01"),
    pytest.param(VOCAB_BUILDING, {"vocabProperty": {"type": "VocabProperty", "vocab": "museum"}},
                 "vocabProperty", {"type": "VocabProperty", "vocab": "museum",
                                   "previousVocab": "monument"}, id="046_33_01"),
]


@pytest.mark.parametrize(("entity", "fragment", "name", "expected"), UPDATES)
async def test_show_changes_on_update(client: httpx.AsyncClient, rec: Receiver,
                                      entity: dict[str, Any], fragment: dict[str, Any],
                                      name: str, expected: dict[str, Any]) -> None:
    entity_id = await setup(client, rec, entity, {"showChanges": True})
    await update(client, entity_id, fragment)
    got = await data(rec)
    assert got[name] == expected
    for other in set(entity) - {"type", name}:      # unchanged attributes: no previous value
        assert got[other] == entity[other]


DELETIONS = [
    # ETSI 046_34_01 .. 046_34_04, 046_35_01, 046_36_01: (entity, attribute, expected)
    pytest.param(DIFFERENT_TYPES, "name", {"type": "Property", "value": NULL,
                                           "previousValue": "Eiffel Tower"}, id="046_34_01"),
    pytest.param(DIFFERENT_TYPES, "locatedAt", {"type": "Relationship", "object": NULL,
                                                "previousObject": "urn:ngsi-ld:City:Paris"},
                 id="046_34_02"),
    pytest.param(DIFFERENT_TYPES, "location", {"type": "GeoProperty", "value": NULL,
                                               "previousValue": POINT}, id="046_34_03"),
    pytest.param(DIFFERENT_TYPES, "street", {
        "type": "LanguageProperty", "languageMap": {"@none": NULL},
        "previousLanguageMap": {"fr": "Grand Place", "nl": "Grote Markt"}}, id="046_34_04"),
    pytest.param(JSON_BUILDING, "jsonProperty", {"type": "JsonProperty", "json": NULL,
                                                 "previousJson": OLD_JSON}, id="046_35_01"),
    pytest.param(VOCAB_BUILDING, "vocabProperty", {"type": "VocabProperty", "vocab": NULL,
                                                   "previousVocab": "monument"}, id="046_36_01"),
]


@pytest.mark.parametrize(("entity", "name", "expected"), DELETIONS)
async def test_show_changes_on_attribute_deletion(client: httpx.AsyncClient, rec: Receiver,
                                                  entity: dict[str, Any], name: str,
                                                  expected: dict[str, Any]) -> None:
    entity_id = await setup(client, rec, entity, {"showChanges": True},
                            notificationTrigger=["attributeDeleted"])
    iri = quote(CONTEXT.get(name, name), safe="")      # "location" is a core term
    got = await client.delete(f"{BASE}/entities/{entity_id}/attrs/{iri}")
    assert got.status_code == 204, got.text
    assert (await data(rec))[name] == expected


@pytest.mark.parametrize(("entity", "expected"), [
    # ETSI 046_37_01 (see docs/subscriptions.md on its street member), 046_38_01, 046_39_01
    pytest.param(DIFFERENT_TYPES, {
        "name": {"type": "Property", "value": NULL, "previousValue": "Eiffel Tower"},
        "locatedAt": {"type": "Relationship", "object": NULL,
                      "previousObject": "urn:ngsi-ld:City:Paris"},
        "location": {"type": "GeoProperty", "value": NULL, "previousValue": POINT},
        "street": {"type": "LanguageProperty", "languageMap": {"@none": NULL},
                   "previousLanguageMap": {"fr": "Grand Place", "nl": "Grote Markt"}}},
        id="046_37_01"),
    pytest.param(JSON_BUILDING, {"jsonProperty": {"type": "JsonProperty", "json": NULL,
                                                  "previousJson": OLD_JSON}}, id="046_38_01"),
    pytest.param(VOCAB_BUILDING, {"vocabProperty": {"type": "VocabProperty", "vocab": NULL,
                                                    "previousVocab": "monument"}},
                 id="046_39_01"),
])
async def test_show_changes_on_entity_deletion(client: httpx.AsyncClient, rec: Receiver,
                                               entity: dict[str, Any],
                                               expected: dict[str, Any]) -> None:
    entity_id = await setup(client, rec, entity, {"showChanges": True},
                            notificationTrigger=["entityDeleted"])
    assert (await client.delete(f"{BASE}/entities/{entity_id}")).status_code == 204
    got = await data(rec)
    assert got.pop("deletedAt").endswith("Z")
    assert got == {"id": entity_id, "type": "Building", **expected}


async def test_no_previous_value_on_creation(client: httpx.AsyncClient, rec: Receiver) -> None:
    # ETSI 046_40_01: entityCreated with showChanges carries no previous value
    await subscribe(client, {"entities": [{"type": "Building"}],
                             "notificationTrigger": ["entityCreated"],
                             "notification": {"showChanges": True, **endpoint(rec)}},
                    context=CONTEXT)
    entity_id = building_id()
    got = await client.post(f"{BASE}/entities", headers=LD, json={
        "id": entity_id, **DIFFERENT_TYPES, "@context": CONTEXT})
    assert got.status_code == 201
    created = await data(rec)
    assert created["id"] == entity_id and created["name"]["value"] == "Eiffel Tower"
    assert "previous" not in str(created)
    # ETSI 046_41_01: attributeCreated neither
    rec.received.clear()
    other = await setup(client, rec, {"type": "Building"}, {"showChanges": True},
                        notificationTrigger=["attributeCreated"])
    await update(client, other, {"name": {"type": "Property", "value": "Tour Eiffel"}})
    # the first subscription also saw `other` being created: pick the attributeCreated one
    got = await rec.wait_for(lambda r: any(x.body.get("triggerReason") == "attributeCreated"
                                           for x in r))
    added = next(x.body for x in got if x.body.get("triggerReason") == "attributeCreated")
    assert added["data"][0]["name"] == {"type": "Property", "value": "Tour Eiffel"}


async def test_pick_and_omit(client: httpx.AsyncClient, rec: Receiver) -> None:
    # ETSI 046_42_01: pick id and name
    picked = await setup(client, rec, DIFFERENT_TYPES, {"pick": ["id", "name"]})
    await update(client, picked, {"name": {"type": "Property", "value": "Tour Eiffel"}})
    assert await data(rec) == {"id": picked, "name": {"type": "Property", "value": "Tour Eiffel"}}
    # ETSI 046_43_01: omit type and name
    rec.received.clear()
    omitted = await setup(client, rec, DIFFERENT_TYPES, {"omit": ["type", "name"]})
    await update(client, omitted, {"name": {"type": "Property", "value": "Tour Eiffel"}})
    assert await data(rec) == {"id": omitted, **{k: v for k, v in DIFFERENT_TYPES.items()
                                                 if k not in ("type", "name")}}


@pytest.mark.parametrize("notification", [
    pytest.param({"pick": ["id"], "omit": ["id"]}, id="028_08_01"),
    pytest.param({"pick": ["name"], "attributes": ["name"]}, id="028_08_02"),
    pytest.param({"omit": ["name"], "attributes": ["name"]}, id="028_08_03"),
    pytest.param({"pick": []}, id="028_09_04"),
    pytest.param({"omit": []}, id="028_09_05"),
])
async def test_invalid_pick_omit(client: httpx.AsyncClient, notification: dict[str, Any]) -> None:
    got = await client.post(f"{BASE}/subscriptions", json={
        "type": "Subscription", "entities": [{"type": "Building"}],
        "notification": {**notification, "endpoint": {"uri": "http://127.0.0.1:1/notify"}}})
    problem(got, 400, "BadRequestData")


async def test_pick_reads_back_compacted(client: httpx.AsyncClient) -> None:
    sub = await subscribe(client, {"entities": [{"type": "Building"}], "notification": {
        "pick": ["id", "name"], "endpoint": {"uri": "http://127.0.0.1:1/notify"}}},
        context=CONTEXT)
    plain = (await client.get(f"{BASE}/subscriptions/{sub}")).json()
    assert plain["notification"]["pick"] == ["id", f"{VOCAB}name"]   # no context: full IRIs
