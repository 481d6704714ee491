"""The registry's entity-id index beside its type index (subscriptions/index.py).

A subscription whose selectors name entity ids is looked at only for those entities; one with
several selectors may be indexed under an id and a type at once and must still fire once.
Adding, replacing, pausing and removing subscriptions must keep the index exact.
"""

from __future__ import annotations

from cityos.data.ngsild.subscriptions import SubscriptionRegistry
from tests.data.test_subscriptions_match import TM, changed, fire, make_sub, registry_of, spot

SPOT_1 = "urn:ngsi-ld:ParkingSpot:kobe-1"


def test_one_subscription_per_entity_is_found_by_id_alone() -> None:
    subs = [make_sub(f"s{n}", entities=[{"id": f"urn:ngsi-ld:ParkingSpot:kobe-{n}",
                                         "type": "ParkingSpot"}]) for n in range(1000)]
    registry = registry_of(*subs)
    index = registry._index[""]
    assert len(index.by_id) == 1000 and not index.by_type and not index.untyped
    assert len(index.by_id["urn:ngsi-ld:ParkingSpot:kobe-7"]) == 1
    before = spot(7)
    assert fire(registry, before, changed(before, status="occupied")) == [
        ("s7", "attributeUpdated")]
    assert fire(registry, None, spot(1000)) == []        # no subscription names it


def test_id_and_type_indexes_together_fire_each_subscription_once() -> None:
    registry = registry_of(
        make_sub("id-or-type", entities=[{"id": SPOT_1}, {"type": "ParkingSpot"}]),
        make_sub("id-or-other-type", entities=[{"id": SPOT_1}, {"type": "Building"}]),
        make_sub("id-twice", entities=[{"id": SPOT_1}, {"id": SPOT_1, "type": "ParkingSpot"}]),
        make_sub("typed", entities=[{"type": "ParkingSpot"}]),
        make_sub("id-typed", entities=[{"id": SPOT_1, "type": "ParkingSpot"}]),
        make_sub("id-wrong-type", entities=[{"id": SPOT_1, "type": "Building"}]),
        make_sub("id-and-pattern", entities=[{"id": SPOT_1, "idPattern": "kobe-9$"}]),
        make_sub("pattern", entities=[{"idPattern": "kobe-1$"}]),
        make_sub("watching", watchedAttributes=["status"]))
    index = registry._index[""]
    assert set(index.by_id) == {SPOT_1}
    assert {c.sub.id.rsplit(":", 1)[1] for c in index.by_type[TM.expand("ParkingSpot")]} == {
        "id-or-type", "typed"}
    created = "attributeCreated"
    assert fire(registry, None, spot(1)) == [
        ("id-or-other-type", created), ("id-or-type", created), ("id-twice", created),
        ("id-typed", created), ("pattern", created), ("typed", created), ("watching", created)]
    assert fire(registry, None, spot(2)) == [
        ("id-or-type", created), ("typed", created), ("watching", created)]
    both = {**spot(1), "type": [TM.expand("ParkingSpot"), TM.expand("Building")]}
    assert [name for name, _ in fire(registry, None, both)] == [
        "id-or-other-type", "id-or-type", "id-twice", "id-typed", "id-wrong-type", "pattern",
        "typed", "watching"]


def test_alike_subscriptions_by_id_fire_together() -> None:
    alike = {"entities": [{"id": SPOT_1}], "watchedAttributes": ["status"]}
    registry = registry_of(make_sub("a", **alike), make_sub("b", **alike))
    assert len(registry._index[""].by_id[SPOT_1]) == 1      # compiled once for both
    before = spot(1)
    assert fire(registry, before, changed(before, status="occupied")) == [
        ("a", "attributeUpdated"), ("b", "attributeUpdated")]
    assert fire(registry, before, changed(before, name="元町")) == []


def test_one_alike_group_firing_alone_hands_out_the_same_tuple_every_time() -> None:
    from cityos.data.ngsild.history import attribute_changes
    from cityos.data.ngsild.store.base import Change

    alike = {"entities": [{"type": "ParkingSpot"}]}
    registry = registry_of(make_sub("a", **alike), make_sub("b", **alike))

    def found(before: dict, after: dict) -> object:
        return registry.match("", Change(after["id"], before, after),
                              attribute_changes(before, after))

    first, second = spot(1), spot(2)
    one = found(first, changed(first, status="occupied"))
    other = found(second, changed(second, status="free"))
    assert one is other and isinstance(one, tuple) and len(one) == 2
    # a second group firing too: a fresh answer holding both, each subscription once
    registry.put(make_sub("watcher", entities=[{"type": "ParkingSpot"}],
                          watchedAttributes=["status"]))
    both = found(first, changed(first, status="occupied"))
    assert both is not one and sorted(s.rsplit(":", 1)[1] for s, _ in both) == [
        "a", "b", "watcher"]


def test_adding_pausing_replacing_and_removing_keep_the_id_index_exact() -> None:
    registry = SubscriptionRegistry()
    sub = make_sub("s", entities=[{"id": SPOT_1}])
    registry.put(sub)
    assert fire(registry, None, spot(1)) == [("s", "attributeCreated")]
    registry.put(make_sub("s", entities=[{"id": SPOT_1}], isActive=False))
    assert fire(registry, None, spot(1)) == [] and "" not in registry._index
    registry.put(make_sub("s", entities=[{"id": SPOT_1}]))
    assert fire(registry, None, spot(1)) == [("s", "attributeCreated")]
    registry.put(make_sub("s", entities=[{"id": "urn:ngsi-ld:ParkingSpot:kobe-2"}]))
    assert fire(registry, None, spot(1)) == []
    assert fire(registry, None, spot(2)) == [("s", "attributeCreated")]
    assert set(registry._index[""].by_id) == {"urn:ngsi-ld:ParkingSpot:kobe-2"}
    other = make_sub("t", tenant="kobe", entities=[{"id": "urn:ngsi-ld:ParkingSpot:kobe-2"}])
    registry.put(other)
    assert registry.remove("", sub.id)
    assert fire(registry, None, spot(2)) == [] and "" not in registry._index
    assert fire(registry, None, spot(2), tenant="kobe") == [("t", "attributeCreated")]


def test_wants_previous_follows_the_subscriptions() -> None:
    plain = make_sub("plain", entities=[{"id": SPOT_1}])
    changes = make_sub("changes", entities=[{"id": SPOT_1}],
                       notification={"endpoint": {"uri": "http://127.0.0.1:9/notify"},
                                     "showChanges": True})
    deleted = make_sub("deleted", entities=[{"type": "ParkingSpot"}],
                       notificationTrigger=["attributeDeleted"])
    registry = registry_of(plain, changes, deleted)
    assert not registry.wants_previous("", [plain.id])
    assert registry.wants_previous("", [plain.id, changes.id])
    assert registry.wants_previous("", [deleted.id])
    assert not registry.wants_previous("kobe", [changes.id])      # another tenant's id
    registry.remove("", changes.id)
    assert not registry.wants_previous("", [plain.id, changes.id])
