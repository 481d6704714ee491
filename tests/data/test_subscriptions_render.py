"""render_notification: the Notification body and headers in every format and option."""

from __future__ import annotations

from typing import Any

from cityos.data.ngsild.context import core_context_object
from cityos.data.ngsild.model import Entity
from cityos.data.ngsild.payload import parse_entity, utc_now
from cityos.data.ngsild.subscriptions import NotifyItem, Subscription, render_notification
from cityos.data.ngsild.subscriptions.parse import parse_subscription
from cityos.data.ngsild.terms import build_term_map

CONTEXT_URL = "https://kobe.example.jp/context.jsonld"
VOCAB = "https://kobe.example.jp/vocab#"
TM = build_term_map([{"ParkingSpot": VOCAB + "ParkingSpot", "occupancy": VOCAB + "occupancy",
                      "name": VOCAB + "name", "operator": VOCAB + "operator",
                      "category": VOCAB + "category", "Public": VOCAB + "Public",
                      "Private": VOCAB + "Private"}], core_context_object())


def make_sub(notification: dict[str, Any] | None = None, tenant: str = "",
             **members: Any) -> Subscription:
    params = {"endpoint": {"uri": "http://127.0.0.1:9/notify"}, **(notification or {})}
    body = {"id": "urn:ngsi-ld:Subscription:render", "type": "Subscription",
            "entities": [{"type": "ParkingSpot"}], "notification": params, **members}
    return parse_subscription(body, TM, tenant, utc_now(), context=CONTEXT_URL)


def spot(occupancy: int = 3, **extra: Any) -> Entity:
    return parse_entity({
        "id": "urn:ngsi-ld:ParkingSpot:kobe-1", "type": "ParkingSpot",
        "name": {"type": "LanguageProperty", "languageMap": {"ja": "三宮駐車場", "en": "Sannomiya"}},
        "occupancy": {"type": "Property", "value": occupancy, "unitCode": "C62"},
        "operator": {"type": "Relationship", "object": "urn:ngsi-ld:Organization:kobe-city"},
        "category": {"type": "VocabProperty", "vocab": "Public"},
        **extra}, TM, utc_now())


def with_attr(entity: Entity, name: str, instance: dict[str, Any] | None) -> Entity:
    attrs = dict(entity["attrs"])
    if instance is None:
        attrs.pop(TM.expand(name))
    else:
        attrs[TM.expand(name)] = [{**instance, "createdAt": utc_now(), "modifiedAt": utc_now()}]
    return {**entity, "attrs": attrs, "modifiedAt": utc_now()}


def render(sub: Subscription, *items: NotifyItem) -> tuple[dict[str, Any], dict[str, str]]:
    return render_notification(sub, list(items), TM, notified_at="2026-11-25T00:00:00.000Z")


def test_normalized_notification_with_link_header() -> None:
    body, headers = render(make_sub(), NotifyItem(spot(), None, "attributeCreated"))
    assert body["id"].startswith("urn:ngsi-ld:Notification:")
    assert body["type"] == "Notification"
    assert body["subscriptionId"] == "urn:ngsi-ld:Subscription:render"
    assert body["notifiedAt"] == "2026-11-25T00:00:00.000Z"
    assert body["triggerReason"] == "attributeCreated"
    assert "@context" not in body
    [entity] = body["data"]
    assert entity["type"] == "ParkingSpot"
    assert entity["name"] == {"type": "LanguageProperty",
                              "languageMap": {"ja": "三宮駐車場", "en": "Sannomiya"}}
    assert entity["occupancy"] == {"type": "Property", "value": 3, "unitCode": "C62"}
    assert entity["category"] == {"type": "VocabProperty", "vocab": "Public"}
    assert "createdAt" not in entity
    assert headers["Content-Type"] == "application/json"
    assert headers["Link"].startswith(f"<{CONTEXT_URL}>")
    assert "NGSILD-Tenant" not in headers


def test_ld_json_carries_the_context_in_the_body() -> None:
    sub = make_sub({"endpoint": {"uri": "http://127.0.0.1:9/n", "accept": "application/ld+json"}})
    body, headers = render(sub, NotifyItem(spot(), None, "attributeCreated"))
    assert body["@context"] == CONTEXT_URL
    assert "Link" not in headers and headers["Content-Type"] == "application/ld+json"


def test_key_values_concise_attributes_sys_attrs_and_lang() -> None:
    item = NotifyItem(spot(), None, "attributeCreated")
    key_values, _ = render(make_sub({"format": "keyValues"}), item)
    assert key_values["data"] == [{"id": "urn:ngsi-ld:ParkingSpot:kobe-1", "type": "ParkingSpot",
                                   "name": {"languageMap": {"ja": "三宮駐車場", "en": "Sannomiya"}},
                                   "occupancy": 3,
                                   "operator": "urn:ngsi-ld:Organization:kobe-city",
                                   "category": {"vocab": "Public"}}]
    concise, _ = render(make_sub({"format": "concise", "attributes": ["occupancy"]}), item)
    assert concise["data"] == [{"id": "urn:ngsi-ld:ParkingSpot:kobe-1", "type": "ParkingSpot",
                                "occupancy": {"value": 3, "unitCode": "C62"}}]
    sys_attrs, _ = render(make_sub({"sysAttrs": True, "attributes": ["occupancy"]}), item)
    [entity] = sys_attrs["data"]
    assert entity["createdAt"] and entity["modifiedAt"] and entity["occupancy"]["createdAt"]
    japanese, _ = render(make_sub({"attributes": ["name"]}, lang="ja"), item)
    assert japanese["data"][0]["name"] == {"type": "Property", "value": "三宮駐車場", "lang": "ja"}


def test_show_changes_adds_previous_values() -> None:
    before = spot(3)
    after = with_attr(before, "occupancy", {"type": "Property", "value": 4})
    after = with_attr(after, "operator", {"type": "Relationship",
                                          "object": "urn:ngsi-ld:Organization:hanshin"})
    after = with_attr(after, "category", {"type": "VocabProperty", "vocab": VOCAB + "Private"})
    after = with_attr(after, "capacity", {"type": "Property", "value": 120})
    sub = make_sub({"showChanges": True})
    body, _ = render(sub, NotifyItem(after, before, "attributeUpdated"))
    [entity] = body["data"]
    assert entity["occupancy"] == {"type": "Property", "value": 4, "previousValue": 3}
    assert entity["operator"]["previousObject"] == "urn:ngsi-ld:Organization:kobe-city"
    assert entity["category"] == {"type": "VocabProperty", "vocab": "Private",
                                  "previousVocab": "Public"}
    assert entity["capacity"] == {"type": "Property", "value": 120}       # new: no previous
    assert "previousLanguageMap" not in entity["name"]                    # unchanged
    concise, _ = render(make_sub({"showChanges": True, "format": "concise"}),
                        NotifyItem(after, before, "attributeUpdated"))
    # a bare concise value cannot carry previousValue, so it becomes an object
    assert concise["data"][0]["occupancy"] == {"value": 4, "previousValue": 3}
    without, _ = render(make_sub(), NotifyItem(after, before, "attributeUpdated"))
    assert "previousValue" not in without["data"][0]["occupancy"]


def test_show_changes_on_a_language_property_with_lang() -> None:
    before = spot()
    after = with_attr(before, "name", {"type": "LanguageProperty",
                                       "languageMap": {"ja": "三宮第二駐車場", "en": "Sannomiya 2"}})
    body, _ = render(make_sub({"showChanges": True}, lang="ja"),
                     NotifyItem(after, before, "attributeUpdated"))
    assert body["data"][0]["name"] == {"type": "Property", "value": "三宮第二駐車場",
                                       "lang": "ja", "previousValue": "三宮駐車場"}


def test_deleted_entity() -> None:
    gone = {**spot(), "deletedAt": "2026-11-25T01:00:00.000000Z"}
    body, _ = render(make_sub(notificationTrigger=["entityDeleted"]),
                     NotifyItem(gone, None, "entityDeleted"))
    assert body["triggerReason"] == "entityDeleted"
    assert body["data"] == [{"id": "urn:ngsi-ld:ParkingSpot:kobe-1", "type": "ParkingSpot",
                             "deletedAt": "2026-11-25T01:00:00.000000Z"}]
    shown, _ = render(make_sub({"showChanges": True}, notificationTrigger=["entityDeleted"]),
                      NotifyItem(gone, None, "entityDeleted"))
    [entity] = shown["data"]
    assert entity["occupancy"] == {"type": "Property", "value": "urn:ngsi-ld:null",
                                   "previousValue": 3}
    assert entity["operator"] == {"type": "Relationship", "object": "urn:ngsi-ld:null",
                                  "previousObject": "urn:ngsi-ld:Organization:kobe-city"}
    assert entity["name"] == {"type": "LanguageProperty",
                              "languageMap": {"@none": "urn:ngsi-ld:null"},
                              "previousLanguageMap": {"ja": "三宮駐車場", "en": "Sannomiya"}}


def test_deleted_attribute() -> None:
    before = spot()
    after = with_attr(before, "occupancy", None)
    body, _ = render(make_sub(notificationTrigger=["attributeDeleted"]),
                     NotifyItem(after, before, "attributeDeleted"))
    assert body["data"][0]["occupancy"] == {"type": "Property", "value": "urn:ngsi-ld:null"}
    shown, _ = render(make_sub({"showChanges": True, "format": "keyValues"},
                               notificationTrigger=["attributeDeleted"]),
                      NotifyItem(after, before, "attributeDeleted"))
    assert shown["data"][0]["occupancy"] == "urn:ngsi-ld:null"
    # an attribute outside notification.attributes is not reported
    narrow, _ = render(make_sub({"attributes": ["name"]}, notificationTrigger=["attributeDeleted"]),
                       NotifyItem(after, before, "attributeDeleted"))
    assert "occupancy" not in narrow["data"][0]


def test_receiver_info_and_tenant_become_headers() -> None:
    sub = make_sub({"endpoint": {"uri": "http://127.0.0.1:9/n", "receiverInfo": [
        {"key": "X-Kobe-Key", "value": "神戸-123"}, {"key": "Authorization", "value": "Bearer t"}]}},
        tenant="kobe")
    body, headers = render(sub, NotifyItem(spot(), None, "attributeCreated"),
                           NotifyItem(spot(5), None, "attributeUpdated"))
    assert headers["X-Kobe-Key"] == "神戸-123" and headers["Authorization"] == "Bearer t"
    assert headers["NGSILD-Tenant"] == "kobe"
    assert len(body["data"]) == 2
    assert "triggerReason" not in body   # two different reasons in one notification


def test_default_term_map_is_the_subscriptions_own() -> None:
    sub = make_sub()
    body, _ = render_notification(sub, [NotifyItem(spot(), None, "attributeCreated")])
    assert body["data"][0]["type"] == VOCAB + "ParkingSpot"   # no term map yet: core context
    sub.term_map = TM
    body, _ = render_notification(sub, [NotifyItem(spot(), None, "attributeCreated")])
    assert body["data"][0]["type"] == "ParkingSpot"


def test_alike_subscriptions_share_a_batch_without_mixing_up_others() -> None:
    import orjson

    first, second = make_sub({"format": "keyValues"}), make_sub({"format": "keyValues"})
    second.id = "urn:ngsi-ld:Subscription:render-2"
    normalized = make_sub()
    for sub in (first, second, normalized):
        sub.term_map = TM                                      # as the registry resolves it
    items = [NotifyItem(spot(n)) for n in range(3)]

    def data(sub: Subscription, batch: list[NotifyItem]) -> list[Any]:
        body, _ = render_notification.encode(sub, batch)
        decoded = orjson.loads(body)
        assert decoded["subscriptionId"] == sub.id
        return [entity["occupancy"] for entity in decoded["data"]]

    assert data(first, items) == [0, 1, 2]
    assert data(second, list(items)) == [0, 1, 2]            # the same batch, another list
    # the same first item followed by other ones is another batch
    assert data(second, [items[0], NotifyItem(spot(9))]) == [0, 9]
    assert data(second, items[:2]) == [0, 1]
    # a subscription rendering its entities otherwise never gets the keyValues bytes
    body, _ = render_notification.encode(normalized, items)
    occupancy = orjson.loads(body)["data"][0]["occupancy"]
    assert occupancy["type"] == "Property" and occupancy["value"] == 0
