"""What changed between two states of an entity: attribute change kinds and history rows.

Both the temporal history and subscription triggers need the same answer ("which attribute
instances did this write create, update or delete?"), so it is computed here once per change.
An instance is compared as a whole: a write that sets the same value again still moves its
``modifiedAt``, and that counts as an update, as it does for NGSI-LD's attributeUpdated trigger.
"""

from __future__ import annotations

from typing import Any

from cityos.core.ids import unique_id
from cityos.data.ngsild.model import Entity, Instance
from cityos.data.ngsild.store.base import Change, HistoryRow, TemporalEntityRow
from cityos.data.ngsild.store.history_schema import TemporalEntityIfMissing
from cityos.data.ngsild.times import to_micros

CREATED, UPDATED, DELETED = "created", "updated", "deleted"
INSTANCE_PREFIX = "urn:ngsi-ld:attribute:instance:"


def new_instance_id() -> str:
    """A fresh attribute instance id (NGSI-LD ``instanceId``)."""
    return INSTANCE_PREFIX + unique_id()


def _by_dataset(instances: list[Instance] | None) -> dict[str, Instance]:
    return {i.get("datasetId", ""): i for i in instances or ()}


def attribute_changes(before: Entity | None, after: Entity | None) -> dict[str, str]:
    """Attribute IRI -> ``created`` / ``updated`` / ``deleted`` for every attribute that differs.

    When the entity is created every attribute is ``created``; when it is deleted every attribute
    is ``deleted``.
    """
    old: dict[str, Any] = before["attrs"] if before else {}
    new: dict[str, Any] = after["attrs"] if after else {}
    kinds: dict[str, str] = {}
    for attr, instances in new.items():
        previous = old.get(attr)
        if previous is None:
            kinds[attr] = CREATED
        elif previous != instances:
            kinds[attr] = UPDATED
    for attr in old.keys() - new.keys():
        kinds[attr] = DELETED
    return kinds


def history_rows(change: Change, kinds: dict[str, str], now: int, *,
                 recorded: bool = False) -> tuple[list[HistoryRow], TemporalEntityRow | None]:
    """The attribute instances to append for ``change``, and its entity-level record.

    ``recorded``: the caller knows the entity's record exists, so a plain attribute update needs
    none (not even built: at thousands of updates a second it cost a few per cent of the CPU).
    """
    rows: list[HistoryRow] = []
    before, after = change.before, change.after
    old: dict[str, Any] = before["attrs"] if before else {}
    new: dict[str, Any] = after["attrs"] if after else {}
    for attr in kinds:
        was, now_is = _by_dataset(old.get(attr)), _by_dataset(new.get(attr))
        for dataset, instance in now_is.items():
            if was.get(dataset) != instance:
                rows.append(_row(change.entity_id, attr, dataset, instance, now, deleted=False))
        for dataset in was.keys() - now_is.keys():
            rows.append(_row(change.entity_id, attr, dataset, was[dataset], now, deleted=True))
    current = after or before
    if current is None:
        return rows, None
    if recorded and before is not None and after is not None and \
            not _identity_changed(before, after):
        return rows, None
    record = TemporalEntityRow(
        entity_id=change.entity_id, types=list(current["type"]), scope=current.get("scope"),
        created_at=_micros(current.get("createdAt"), now),
        modified_at=_micros(current.get("modifiedAt"), now) if after else now,
        deleted_at=now if after is None else None)
    if before is None or after is None or _identity_changed(before, after):
        return rows, record
    # a plain attribute update: the record already holds everything it changes (modifiedAt is
    # read from the live entity, see store/temporal_base.live_modified_at); it is only inserted
    # when missing (an entity written before history was switched on), never rewritten
    return rows, TemporalEntityIfMissing(**vars(record)) if rows else None


def _identity_changed(before: Entity, after: Entity) -> bool:
    """Whether the write changed what the temporal entity record holds besides modifiedAt."""
    return (before["type"] != after["type"] or before.get("scope") != after.get("scope")
            or before.get("createdAt") != after.get("createdAt"))


def _row(entity_id: str, attr: str, dataset: str, instance: Instance, now: int, *,
         deleted: bool) -> HistoryRow:
    at = now if deleted else _micros(instance.get("modifiedAt"), now)
    observed = instance.get("observedAt")
    return HistoryRow(entity_id=entity_id, attr=attr, dataset_id=dataset,
                      instance_id=new_instance_id(),
                      observed_at=to_micros(observed) if isinstance(observed, str) else None,
                      created_at=at, modified_at=at, deleted=deleted, doc=instance)


_last_parsed: tuple[str, int] = ("", 0)


def _micros(text: Any, default: int) -> int:
    global _last_parsed
    if not isinstance(text, str):
        return default
    # the instances of one write share their modifiedAt: parse a repeated string once
    last = _last_parsed
    if last[0] == text:
        return last[1]
    micros = to_micros(text)
    _last_parsed = (text, micros)
    return micros
