"""SubscriptionRegistry.match: which subscriptions a change fires, and with which trigger.

Pure unit tests of the hot path (no storage): subscriptions are parsed as the API parses them,
entities as the broker stores them, and the attribute change kinds come from history.py exactly
as the write path computes them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from cityos.data.ngsild.history import attribute_changes
from cityos.data.ngsild.model import Entity
from cityos.data.ngsild.payload import parse_entity, utc_now
from cityos.data.ngsild.store.base import Change
from cityos.data.ngsild.subscriptions import Subscription, SubscriptionRegistry
from cityos.data.ngsild.subscriptions.parse import parse_subscription
from cityos.data.ngsild.terms import core_only

TM = core_only()
SANNOMIYA = [135.1955, 34.6946]


def make_sub(sub_id: str, tenant: str = "", **members: Any) -> Subscription:
    body = {"id": f"urn:ngsi-ld:Subscription:{sub_id}", "type": "Subscription",
            "notification": {"endpoint": {"uri": "http://127.0.0.1:9/notify"}}, **members}
    return parse_subscription(body, TM, tenant, utc_now())


def spot(number: int, status: str = "free", lon: float = 135.1955, **attrs: Any) -> Entity:
    body = {"id": f"urn:ngsi-ld:ParkingSpot:kobe-{number}", "type": "ParkingSpot",
            "name": {"type": "Property", "value": f"三宮 {number} 番"},
            "status": {"type": "Property", "value": status},
            "location": {"type": "GeoProperty", "value": {"type": "Point",
                                                           "coordinates": [lon, 34.6946]}},
            **attrs}
    return parse_entity(body, TM, utc_now())


def changed(entity: Entity, **attrs: Any) -> Entity:
    """A copy of ``entity`` with some attributes replaced (None removes one)."""
    after = {**entity, "attrs": dict(entity["attrs"])}
    for name, value in attrs.items():
        iri = TM.expand(name)
        if value is None:
            after["attrs"].pop(iri)
        else:
            after["attrs"][iri] = [{"type": "Property", "value": value,
                                    "createdAt": utc_now(), "modifiedAt": utc_now()}]
    return after


def registry_of(*subs: Subscription) -> SubscriptionRegistry:
    registry = SubscriptionRegistry()
    for sub in subs:
        registry.put(sub)
    return registry


def fire(registry: SubscriptionRegistry, before: Entity | None, after: Entity | None,
         tenant: str = "") -> list[tuple[str, str]]:
    entity_id = (after or before or {})["id"]
    change = Change(entity_id, before, after)
    found = registry.match(tenant, change, attribute_changes(before, after))
    return sorted((sub_id.rsplit(":", 1)[1], trigger) for sub_id, trigger in found)


def test_default_triggers_are_attribute_created_and_updated() -> None:
    registry = registry_of(make_sub("s", entities=[{"type": "ParkingSpot"}]))
    first = spot(1)
    assert fire(registry, None, first) == [("s", "attributeCreated")]
    assert fire(registry, first, changed(first, status="occupied")) == [("s", "attributeUpdated")]
    assert fire(registry, first, changed(first, status=None)) == []       # attributeDeleted is off
    assert fire(registry, first, None) == []                               # entityDeleted is off
    assert fire(registry, first, first) == []                              # nothing changed


def test_every_trigger() -> None:
    triggers = ["entityCreated", "entityUpdated", "entityDeleted", "attributeCreated",
                "attributeUpdated", "attributeDeleted"]
    registry = registry_of(*[make_sub(t, entities=[{"type": "ParkingSpot"}],
                                      notificationTrigger=[t]) for t in triggers])
    first = spot(1)
    assert fire(registry, None, first) == [("attributeCreated", "attributeCreated"),
                                           ("entityCreated", "entityCreated")]
    assert fire(registry, first, changed(first, status="occupied")) == [
        ("attributeUpdated", "attributeUpdated"), ("entityUpdated", "entityUpdated")]
    assert fire(registry, first, changed(first, capacity=1)) == [
        ("attributeCreated", "attributeCreated"), ("entityUpdated", "entityUpdated")]
    assert fire(registry, first, changed(first, name=None)) == [
        ("attributeDeleted", "attributeDeleted"), ("entityUpdated", "entityUpdated")]
    assert fire(registry, first, None) == [("entityDeleted", "entityDeleted")]
    retyped = {**first, "type": [*first["type"], TM.expand("Carpark")]}
    assert fire(registry, first, retyped) == [("entityUpdated", "entityUpdated")]


def test_watched_attributes_narrow_the_triggers() -> None:
    registry = registry_of(
        make_sub("status", entities=[{"type": "ParkingSpot"}], watchedAttributes=["status"]),
        make_sub("any-type", watchedAttributes=["name"],
                 notificationTrigger=["attributeUpdated", "entityCreated"]))
    first = spot(1)
    assert fire(registry, None, first) == [("any-type", "entityCreated"),
                                           ("status", "attributeCreated")]
    assert fire(registry, first, changed(first, status="occupied")) == [
        ("status", "attributeUpdated")]
    assert fire(registry, first, changed(first, name="三宮 北")) == [
        ("any-type", "attributeUpdated")]
    assert fire(registry, first, changed(first, capacity=3)) == []
    bare = parse_entity({"id": "urn:ngsi-ld:Building:kobe-1", "type": "Building"}, TM, utc_now())
    assert fire(registry, None, bare) == []   # watched attributes absent: entityCreated does not fire


def test_q_is_evaluated_on_the_state_after_the_change() -> None:
    registry = registry_of(make_sub("free", entities=[{"type": "ParkingSpot"}],
                                    q='status=="free"',
                                    notificationTrigger=["attributeUpdated", "entityDeleted"]))
    occupied = spot(1, status="occupied")
    assert fire(registry, occupied, changed(occupied, status="free")) == [
        ("free", "attributeUpdated")]
    free = spot(2)
    assert fire(registry, free, changed(free, status="occupied")) == []
    assert fire(registry, free, None) == [("free", "entityDeleted")]       # before-state for deletions
    assert fire(registry, occupied, None) == []


def test_geo_q_near_and_within() -> None:
    registry = registry_of(
        make_sub("near", entities=[{"type": "ParkingSpot"}],
                 geoQ={"georel": "near;maxDistance==500", "geometry": "Point",
                       "coordinates": SANNOMIYA}),
        make_sub("within", entities=[{"type": "ParkingSpot"}],
                 geoQ={"georel": "within", "geometry": "Polygon",
                       "coordinates": [[[135.0, 34.6], [135.1, 34.6], [135.1, 34.8],
                                        [135.0, 34.8], [135.0, 34.6]]]}))
    assert fire(registry, None, spot(1)) == [("near", "attributeCreated")]
    assert fire(registry, None, spot(2, lon=135.05)) == [("within", "attributeCreated")]


def test_ids_id_patterns_and_type_expressions() -> None:
    registry = registry_of(
        make_sub("id", entities=[{"id": "urn:ngsi-ld:ParkingSpot:kobe-1"}]),
        make_sub("pattern", entities=[{"idPattern": "kobe-[12]$", "type": "ParkingSpot"}]),
        make_sub("and", entities=[{"type": "ParkingSpot;Carpark"}]),
        make_sub("or", entities=[{"type": "Building,ParkingSpot"}]),
        make_sub("other", entities=[{"type": "Building"}]))
    assert fire(registry, None, spot(1)) == [("id", "attributeCreated"), ("or", "attributeCreated"),
                                             ("pattern", "attributeCreated")]
    assert fire(registry, None, spot(3)) == [("or", "attributeCreated")]
    both = {**spot(4), "type": [TM.expand("ParkingSpot"), TM.expand("Carpark")]}
    # "or" is indexed under two types the entity both has: it still fires once
    assert fire(registry, None, both) == [("and", "attributeCreated"), ("or", "attributeCreated")]


def test_scope_q() -> None:
    registry = registry_of(make_sub("scope", entities=[{"type": "ParkingSpot"}],
                                    scopeQ="/Kobe/#"))
    assert fire(registry, None, {**spot(1), "scope": ["/Kobe/Chuo"]}) == [
        ("scope", "attributeCreated")]
    assert fire(registry, None, {**spot(2), "scope": ["/Osaka"]}) == []
    assert fire(registry, None, spot(3)) == []


def test_paused_expired_and_periodic_subscriptions_never_match() -> None:
    expired = make_sub("expired", entities=[{"type": "ParkingSpot"}],
                       expiresAt="2099-01-01T00:00:00+09:00")
    expired.expires_at = 1  # long past
    registry = registry_of(
        make_sub("paused", entities=[{"type": "ParkingSpot"}], isActive=False),
        make_sub("periodic", entities=[{"type": "ParkingSpot"}], timeInterval=60),
        expired,
        make_sub("live", entities=[{"type": "ParkingSpot"}],
                 expiresAt="2099-01-01T00:00:00+09:00"))
    assert fire(registry, None, spot(1)) == [("live", "attributeCreated")]
    statuses = {s.id.rsplit(":", 1)[1]: registry.status(s) for s in registry.all()}
    assert statuses == {"paused": "paused", "periodic": "active", "expired": "expired",
                        "live": "active"}


def test_expiry_is_checked_at_match_time() -> None:
    soon = make_sub("soon", entities=[{"type": "ParkingSpot"}],
                    expiresAt="2099-01-01T00:00:00Z")
    registry = registry_of(soon)
    assert fire(registry, None, spot(1)) == [("soon", "attributeCreated")]
    soon.expires_at = 1   # time has passed since it was indexed
    assert fire(registry, None, spot(2)) == []


def test_tenants_are_separate() -> None:
    registry = registry_of(make_sub("kobe", tenant="kobe", entities=[{"type": "ParkingSpot"}]),
                           make_sub("default", entities=[{"type": "ParkingSpot"}]))
    assert fire(registry, None, spot(1), tenant="kobe") == [("kobe", "attributeCreated")]
    assert fire(registry, None, spot(1)) == [("default", "attributeCreated")]
    assert fire(registry, None, spot(1), tenant="osaka") == []


def test_put_and_remove_swap_the_index_copy_on_write() -> None:
    registry = registry_of(make_sub("a", entities=[{"type": "ParkingSpot"}]))
    old_index = registry._index
    registry.put(make_sub("a", entities=[{"type": "Building"}]))
    assert registry._index is not old_index
    assert old_index[""].by_type  # a reader holding the old snapshot still sees a whole index
    assert fire(registry, None, spot(1)) == []
    registry.put(make_sub("b", watchedAttributes=["status"]))
    assert fire(registry, None, spot(1)) == [("b", "attributeCreated")]
    assert registry.remove("", "urn:ngsi-ld:Subscription:b")
    assert not registry.remove("", "urn:ngsi-ld:Subscription:b")
    assert fire(registry, None, spot(1)) == []
    assert registry.get("", "urn:ngsi-ld:Subscription:b") is None


def test_counters_are_created_on_demand_and_dropped_with_the_subscription() -> None:
    sub = make_sub("c", entities=[{"type": "ParkingSpot"}])
    registry = registry_of(sub)
    counters = registry.counters("", sub.id)
    assert counters is registry.counters("", sub.id) and counters.times_sent == 0
    counters.consecutive_failures = 2
    assert registry.status(sub) == "failed"
    registry.remove("", sub.id)
    assert registry.counters("", sub.id).times_sent == 0 and not registry.counters("", sub.id).failing


def test_many_subscriptions_only_the_type_index_is_walked() -> None:
    """1,000 subscriptions on other types cost nothing for a ParkingSpot change."""
    subs = [make_sub(f"other-{i}", entities=[{"type": f"Sensor{i}"}]) for i in range(1000)]
    registry = registry_of(*subs, make_sub("mine", entities=[{"type": "ParkingSpot"}]))
    index = registry._index[""]
    assert len(index.by_type[TM.expand("ParkingSpot")]) == 1 and not index.untyped
    assert fire(registry, None, spot(1)) == [("mine", "attributeCreated")]


def test_subscriptions_selecting_alike_fire_together_but_expire_alone() -> None:
    alike = {"entities": [{"type": "ParkingSpot"}], "watchedAttributes": ["status"],
             "q": 'status=="occupied"'}
    first, second = make_sub("feed-1", **alike), make_sub("feed-2", **alike)
    other = make_sub("feed-3", **{**alike, "q": 'status=="closed"'})
    registry = registry_of(first, second, other)
    before = spot(1)
    assert fire(registry, before, changed(before, status="occupied")) == [
        ("feed-1", "attributeUpdated"), ("feed-2", "attributeUpdated")]
    # long past: only its twin still fires (a PATCH replaces the subscription in the registry)
    registry.put(dataclasses.replace(first, expires_at=1))
    assert fire(registry, before, changed(before, status="occupied")) == [
        ("feed-2", "attributeUpdated")]
    assert fire(registry, before, changed(before, status="closed")) == [
        ("feed-3", "attributeUpdated")]
