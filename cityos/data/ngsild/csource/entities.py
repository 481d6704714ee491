"""Entities received from context sources: parsed to the internal form and merged (4.3.6).

A source answers in the normalized form with system attributes (we ask for ``options=sysAttrs``)
compacted against the context we forwarded, the caller's; parsing it with the caller's term map
gives the same internal form local entities have, so rendering cannot tell them apart.  When
several sources (and the local store) hold the same entity, the result has the union of types
and attributes; for the same attribute instance (same ``datasetId``) the one observed most
recently wins (``observedAt``, else ``modifiedAt``).
"""

from __future__ import annotations

from typing import Any

from cityos.core.problems import Problem
from cityos.data.ngsild.model import ENTITY_KEYS, Entity, Instance
from cityos.data.ngsild.payload import parse_entity, utc_now
from cityos.data.ngsild.terms import TermMap


def from_remote(body: Any, tm: TermMap) -> Entity | None:
    """A source's entity in the internal form, or ``None`` when it is not a valid entity."""
    if not isinstance(body, dict):
        return None
    now = utc_now()
    try:
        entity = parse_entity({k: v for k, v in body.items() if k != "@context"}, tm, now)
    except Problem:
        return None
    for key in ("createdAt", "modifiedAt"):
        if isinstance(body.get(key), str):
            entity[key] = body[key]
    for name, raw in body.items():
        if name in ENTITY_KEYS:
            continue
        instances = entity["attrs"].get(tm.expand(name), [])
        raws = raw if isinstance(raw, list) else [raw]
        for instance, original in zip(instances, raws, strict=False):
            if isinstance(original, dict):
                for key in ("createdAt", "modifiedAt"):
                    if isinstance(original.get(key), str):
                        instance[key] = original[key]
    return entity


def _stamp(instance: Instance) -> str:
    return str(instance.get("observedAt") or instance.get("modifiedAt") or "")


def merge_into(target: Entity, other: Entity) -> None:
    """Merge ``other`` (the same entity from another source) into ``target`` in place."""
    target["type"] = list(dict.fromkeys([*target["type"], *other["type"]]))
    if other.get("scope"):
        target["scope"] = list(dict.fromkeys([*(target.get("scope") or []), *other["scope"]]))
    target["createdAt"] = min(target.get("createdAt", ""), other.get("createdAt", "")) or \
        target.get("createdAt") or other.get("createdAt")
    target["modifiedAt"] = max(target.get("modifiedAt", ""), other.get("modifiedAt", ""))
    for iri, instances in other["attrs"].items():
        mine = target["attrs"].setdefault(iri, [])
        for instance in instances:
            dataset = instance.get("datasetId")
            for i, existing in enumerate(mine):
                if existing.get("datasetId") == dataset:
                    if _stamp(instance) > _stamp(existing):
                        mine[i] = instance
                    break
            else:
                mine.append(instance)


def merge_all(groups: list[list[Entity]]) -> list[Entity]:
    """Entities from several sources, one per id, in first-seen order."""
    by_id: dict[str, Entity] = {}
    for group in groups:
        for entity in group:
            current = by_id.get(entity["id"])
            if current is None:
                by_id[entity["id"]] = entity
            else:
                merge_into(current, entity)
    return list(by_id.values())
