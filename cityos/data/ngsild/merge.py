"""Pure functions that change an entity in its internal form (no I/O).

They implement the update semantics of clause 5.6 (append, update, partial update, merge-patch,
replace, delete attribute) and keep the system attributes right: ``createdAt`` never changes after
creation, ``modifiedAt`` moves on every change of the entity or attribute.
"""

from __future__ import annotations

import copy
from typing import Any

from cityos.core.problems import BadRequestData, ResourceNotFound
from cityos.data.ngsild.model import VALUE_KEY, Entity, Instance
from cityos.data.ngsild.payload import NULL_URI


def _same_dataset(a: Instance, b: Instance) -> bool:
    return a.get("datasetId") == b.get("datasetId")


def _find(instances: list[Instance], dataset_id: str | None) -> int | None:
    for index, instance in enumerate(instances):
        if instance.get("datasetId") == dataset_id:
            return index
    return None


def _is_null(instance: Instance) -> bool:
    return instance.get(VALUE_KEY.get(instance.get("type", ""), "value")) == NULL_URI


def put_instance(entity: Entity, iri: str, new: Instance, now: str) -> None:
    """Add or overwrite one instance (matched by ``datasetId``), keeping its ``createdAt``."""
    instances = entity["attrs"].setdefault(iri, [])
    index = _find(instances, new.get("datasetId"))
    new = dict(new)
    new["modifiedAt"] = now
    if index is None:
        new["createdAt"] = now
        instances.append(new)
    else:
        new["createdAt"] = instances[index]["createdAt"]
        instances[index] = new


def append_attributes(entity: Entity, attrs: dict[str, list[Instance]], now: str,
                      no_overwrite: bool) -> tuple[list[str], list[str]]:
    """POST /entities/{id}/attrs: add attributes; with ``noOverwrite`` keep existing ones.

    Returns (updated attribute IRIs, attribute IRIs not updated).
    """
    updated: list[str] = []
    skipped: list[str] = []
    for iri, instances in attrs.items():
        existing = entity["attrs"].get(iri, [])
        done = False
        for new in instances:
            if no_overwrite and _find(existing, new.get("datasetId")) is not None:
                continue
            put_instance(entity, iri, new, now)
            existing = entity["attrs"][iri]
            done = True
        (updated if done else skipped).append(iri)
    if updated:
        entity["modifiedAt"] = now
    return updated, skipped


def update_attributes(entity: Entity, attrs: dict[str, list[Instance]],
                      now: str) -> tuple[list[str], list[str]]:
    """PATCH /entities/{id}/attrs: replace attributes that exist; report the others."""
    updated: list[str] = []
    skipped: list[str] = []
    for iri, instances in attrs.items():
        existing = entity["attrs"].get(iri)
        if not existing:
            skipped.append(iri)
            continue
        done = False
        for new in instances:
            if _find(existing, new.get("datasetId")) is None:
                continue
            if _is_null(new):
                existing[:] = [i for i in existing if not _same_dataset(i, new)]
            else:
                put_instance(entity, iri, new, now)
            done = True
        if not entity["attrs"].get(iri):
            entity["attrs"].pop(iri, None)
        (updated if done else skipped).append(iri)
    if updated:
        entity["modifiedAt"] = now
    return updated, skipped


def merge_instance(old: Instance, patch: Instance, now: str) -> Instance:
    """Merge-patch semantics for one attribute: members replace, sub-attributes merge."""
    merged = copy.deepcopy(old)
    kind = patch.get("type", old["type"])
    if kind != old["type"]:
        for key in VALUE_KEY.values():
            merged.pop(key, None)
        merged["type"] = kind
    for key, value in patch.items():
        if key in ("createdAt", "modifiedAt", "sub", "type"):
            continue
        merged[key] = value
    for sub_iri, sub in patch.get("sub", {}).items():
        subs = merged.setdefault("sub", {})
        if _is_null(sub):
            subs.pop(sub_iri, None)
        elif sub_iri in subs:
            subs[sub_iri] = merge_instance(subs[sub_iri], sub, now)
        else:
            subs[sub_iri] = sub
    if merged.get("sub") == {}:
        merged.pop("sub")
    merged["modifiedAt"] = now
    return merged


def merge_entity(entity: Entity, attrs: dict[str, list[Instance]], now: str,
                 new_types: list[str] | None = None) -> None:
    """PATCH /entities/{id} (merge-patch, clause 5.6.17): add, merge or delete (null) attributes."""
    if new_types:
        entity["type"] = list(dict.fromkeys([*entity["type"], *new_types]))
    for iri, instances in attrs.items():
        existing = entity["attrs"].get(iri, [])
        for patch in instances:
            index = _find(existing, patch.get("datasetId"))
            if _is_null(patch):
                if index is not None:
                    existing.pop(index)
                continue
            if index is None:
                put_instance(entity, iri, patch, now)
                existing = entity["attrs"][iri]
            else:
                existing[index] = merge_instance(existing[index], patch, now)
        if iri in entity["attrs"] and not entity["attrs"][iri]:
            del entity["attrs"][iri]
    entity["modifiedAt"] = now


def partial_update(entity: Entity, iri: str, patch: Instance, name: str, now: str) -> None:
    """PATCH /entities/{id}/attrs/{attr}: merge into the instance with the same ``datasetId``."""
    existing = entity["attrs"].get(iri)
    if not existing:
        raise ResourceNotFound(f"entity {entity['id']} has no attribute {name!r}")
    index = _find(existing, patch.get("datasetId"))
    if index is None:
        raise ResourceNotFound(f"attribute {name!r} has no instance with datasetId "
                               f"{patch.get('datasetId')!r}")
    if _is_null(patch):
        existing.pop(index)
        if not existing:
            del entity["attrs"][iri]
    else:
        existing[index] = merge_instance(existing[index], patch, now)
    entity["modifiedAt"] = now


def replace_attribute(entity: Entity, iri: str, instances: list[Instance], name: str,
                      now: str) -> None:
    """PUT /entities/{id}/attrs/{attr}: replace an existing attribute (instance by datasetId)."""
    if not entity["attrs"].get(iri):
        raise ResourceNotFound(f"entity {entity['id']} has no attribute {name!r}")
    for new in instances:
        put_instance(entity, iri, new, now)
    entity["modifiedAt"] = now


def delete_attribute(entity: Entity, iri: str, name: str, dataset_id: str | None,
                     delete_all: bool, now: str) -> None:
    """DELETE /entities/{id}/attrs/{attr} with optional ``datasetId`` / ``deleteAll``."""
    existing = entity["attrs"].get(iri)
    if not existing:
        raise ResourceNotFound(f"entity {entity['id']} has no attribute {name!r}")
    if delete_all:
        del entity["attrs"][iri]
    else:
        index = _find(existing, dataset_id)
        if index is None:
            what = f"datasetId {dataset_id!r}" if dataset_id else "a default instance"
            raise ResourceNotFound(f"attribute {name!r} has no instance with {what}")
        existing.pop(index)
        if not existing:
            del entity["attrs"][iri]
    entity["modifiedAt"] = now


def replace_entity(old: Entity, new: Entity, now: str) -> Entity:
    """PUT /entities/{id}: a new body, the old ``createdAt``."""
    out = dict(new)
    out["id"] = old["id"]
    out["type"] = new.get("type") or old["type"]
    out["createdAt"] = old["createdAt"]
    out["modifiedAt"] = now
    return out


def strip_nulls(attrs: dict[str, list[Instance]], what: str) -> None:
    """Reject ``urn:ngsi-ld:null`` where deletion makes no sense (create, replace)."""
    for iri, instances in attrs.items():
        for instance in instances:
            if _is_null(instance):
                raise BadRequestData(f"{what}: attribute {iri} must not be null")


def check_body_id(body: Any, entity_id: str) -> None:
    """A body that names an id must name the entity of the URL."""
    if isinstance(body, dict) and "id" in body and body["id"] != entity_id:
        raise BadRequestData(f"the body's id {str(body['id'])[:80]!r} differs from the URL's")
