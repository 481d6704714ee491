"""v2 writes as pure functions over the broker's write primitive (one data set, two faces).

Every v2 write is one :meth:`EntityStore.write` call, exactly like the NGSI-LD actions: the store
locks the entities, the function below decides the new state, and the store commits it together
with its effects (temporal history, NGSI-LD subscription notifications through the outbox, ADR
0006).  So a v2 write is seen by NGSI-LD readers and subscribers as any other write is, and a
failing v2 request changes nothing (all or nothing, batches included).
"""

from __future__ import annotations

from typing import Any

from cityos.data.ngsild import Broker
from cityos.data.ngsild.model import Entity, Instance
from cityos.data.ngsild.store.base import WriteSet
from cityos.data.ngsiv2.errors import ATTRIBUTE_NOT_FOUND, not_found, unprocessable
from cityos.data.ngsiv2.mapping import paths_of, to_v2_id


def existing(current: dict[str, Entity | None], ld_id: str, type_iri: str | None,
             path: str) -> Entity:
    """The entity a by-id write targets: present, of ``type_iri`` if given, in service path
    ``path`` (Orion: writes see only their own service path) - else 404."""
    entity = current.get(ld_id)
    if entity is None or (type_iri is not None and type_iri not in entity["type"]) or \
            path not in paths_of(entity.get("scope")):
        raise not_found()
    return entity


def put_attribute(entity: Entity, iri: str, new: Instance, now: str, *,
                  override_metadata: bool = False) -> None:
    """Set one attribute: the default instance is replaced (creation time and, unless
    ``override_metadata``, metadata not named again are kept); datasetId instances stay."""
    instances = entity["attrs"].get(iri) or []
    old = next((i for i in instances if "datasetId" not in i), None)
    if old is not None:
        new["createdAt"] = old.get("createdAt", now)
        if not override_metadata:
            if old.get("sub"):
                new["sub"] = {**old["sub"], **new.get("sub", {})}
            for member in ("unitCode", "observedAt"):
                if member in old and member not in new:
                    new[member] = old[member]
    entity["attrs"][iri] = [new, *[i for i in instances if "datasetId" in i]]
    entity["modifiedAt"] = now


def _names(tm_compact: Any, iris: list[str]) -> str:
    return ", ".join(tm_compact(i) for i in iris)


def apply_append(entity: Entity, attrs: dict[str, Instance], now: str, *, strict: bool,
                 override_metadata: bool, compact: Any) -> None:
    """POST /attrs: update or add (``strict``: only add, 422 when one exists)."""
    if strict:
        clash = [iri for iri in attrs if entity["attrs"].get(iri)]
        if clash:
            raise unprocessable("one or more of the attributes in the request already exist: "
                                f"{to_v2_id(entity['id'])} - [ {_names(compact, clash)} ]")
    for iri, instance in attrs.items():
        put_attribute(entity, iri, instance, now, override_metadata=override_metadata)


def apply_update(entity: Entity, attrs: dict[str, Instance], now: str, *,
                 override_metadata: bool, compact: Any) -> None:
    """PATCH /attrs: every attribute must exist (422 naming those that do not)."""
    missing = [iri for iri in attrs if not entity["attrs"].get(iri)]
    if missing:
        raise unprocessable(f"do not exist: {to_v2_id(entity['id'])} - "
                            f"[ {_names(compact, missing)} ]")
    for iri, instance in attrs.items():
        put_attribute(entity, iri, instance, now, override_metadata=override_metadata)


def apply_replace(entity: Entity, attrs: dict[str, Instance], now: str) -> None:
    """PUT /attrs: the entity's attributes become exactly ``attrs``."""
    entity["attrs"] = {iri: [instance] for iri, instance in attrs.items()}
    entity["modifiedAt"] = now


def apply_delete_attrs(entity: Entity, iris: list[str], now: str, compact: Any) -> None:
    """Remove attributes (404 when one is missing, as Orion answers for DELETE /attrs/{a})."""
    missing = [iri for iri in iris if not entity["attrs"].get(iri)]
    if missing:
        raise not_found(ATTRIBUTE_NOT_FOUND)
    for iri in iris:
        del entity["attrs"][iri]
    entity["modifiedAt"] = now


async def write_entity(broker: Broker, tenant: str, ld_id: str, type_iri: str | None, path: str,
                       change: Any) -> Any:
    """Run ``change(entity)`` on one existing entity in one atomic store write."""
    def fn(current: dict[str, Entity | None]) -> WriteSet:
        entity = existing(current, ld_id, type_iri, path)
        result = change(entity)
        return WriteSet(upserts=[entity], result=result)

    return await broker.store.write(tenant, [ld_id], fn)


async def delete_entity(broker: Broker, tenant: str, ld_id: str, type_iri: str | None,
                        path: str) -> None:
    """DELETE /v2/entities/{id}."""
    def fn(current: dict[str, Entity | None]) -> WriteSet:
        existing(current, ld_id, type_iri, path)
        return WriteSet(deletes=[ld_id])

    await broker.store.write(tenant, [ld_id], fn)


async def create_entity(broker: Broker, tenant: str, entity: Entity, path: str, *, upsert: bool,
                        override_metadata: bool, compact: Any) -> bool:
    """POST /v2/entities: True when created; with ``upsert`` an existing entity is updated."""
    ld_id = entity["id"]

    def fn(current: dict[str, Entity | None]) -> WriteSet:
        old = current.get(ld_id)
        if old is None:
            return WriteSet(upserts=[entity], result=True)
        if not upsert:
            raise unprocessable("Already Exists")
        target = existing(current, ld_id, None, path)
        if not set(entity["type"]) & set(target["type"]):
            raise unprocessable("Already Exists")   # same id, another type: a different entity
        attrs = {iri: instances[0] for iri, instances in entity["attrs"].items()}
        apply_append(target, attrs, entity["modifiedAt"], strict=False,
                     override_metadata=override_metadata, compact=compact)
        return WriteSet(upserts=[target], result=False)

    created: bool = await broker.store.write(tenant, [ld_id], fn)
    return created
