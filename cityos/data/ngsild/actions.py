"""NGSI-LD entity actions: the one way HTTP routes, importers and the CLI change entities.

Each action validates its whole input first, then performs one atomic :meth:`EntityStore.write`, so
a failing request never leaves a partial write behind.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from cityos.core.problems import AlreadyExists, BadRequestData, Problem, ResourceNotFound
from cityos.core.settings import Settings
from cityos.data.ngsild import merge
from cityos.data.ngsild.context import ContextResolver
from cityos.data.ngsild.model import ENTITY_KEYS, VALUE_KEY, Entity, Instance
from cityos.data.ngsild.payload import (
    check_name,
    check_uri,
    parse_attribute,
    parse_attributes,
    parse_entity,
    parse_types,
    utc_now,
)
from cityos.data.ngsild.store.base import EntityStore, QueryPlan, WriteSet
from cityos.data.ngsild.terms import TermMap


@dataclass
class Broker:
    """The NGSI-LD broker's dependencies, shared by every route and action."""

    store: EntityStore
    resolver: ContextResolver
    settings: Settings
    # set by the composition root (app.py): the subscription registry (subscriptions/registry.py)
    # and the notifier (notify/); Any keeps this module free of their imports
    registry: Any = None
    notifier: Any = None


@dataclass
class AttrOutcome:
    """Which attributes an append / update changed (for 204 vs 207 responses)."""

    updated: list[str]
    not_updated: list[str]


def _missing(entity_id: str) -> ResourceNotFound:
    return ResourceNotFound(f"entity {entity_id} does not exist")


async def create_entity(broker: Broker, tenant: str, body: Any, tm: TermMap) -> str:
    """Create an entity; ``AlreadyExists`` if the id is taken."""
    now = utc_now()
    entity = parse_entity(body, tm, now)
    merge.strip_nulls(entity["attrs"], "create")

    def fn(current: dict[str, Entity | None]) -> WriteSet:
        if current[entity["id"]] is not None:
            raise AlreadyExists(f"entity {entity['id']} already exists")
        return WriteSet(upserts=[entity], result=entity["id"])

    result: str = await broker.store.write(tenant, [entity["id"]], fn)
    return result


async def retrieve_entity(broker: Broker, tenant: str, entity_id: str,
                          types: list[str] | None = None) -> Entity:
    """One entity; ``ResourceNotFound`` when missing or not of one of ``types``."""
    check_uri(entity_id, "entity id")
    entity = await broker.store.get(tenant, entity_id)
    if entity is None or (types and not set(types) & set(entity["type"])):
        raise _missing(entity_id)
    return entity


async def replace_entity(broker: Broker, tenant: str, entity_id: str, body: Any,
                         tm: TermMap) -> None:
    """PUT /entities/{id}: the entity becomes exactly the body."""
    check_uri(entity_id, "entity id")
    merge.check_body_id(body, entity_id)
    now = utc_now()
    new = parse_entity(body, tm, now, need_id=False, need_type=False)
    merge.strip_nulls(new["attrs"], "replace")

    def fn(current: dict[str, Entity | None]) -> WriteSet:
        old = current[entity_id]
        if old is None:
            raise _missing(entity_id)
        return WriteSet(upserts=[merge.replace_entity(old, new, now)])

    await broker.store.write(tenant, [entity_id], fn)


async def merge_entity(broker: Broker, tenant: str, entity_id: str, body: Any,
                       tm: TermMap) -> None:
    """PATCH /entities/{id}: merge-patch; ``urn:ngsi-ld:null`` deletes."""
    check_uri(entity_id, "entity id")
    merge.check_body_id(body, entity_id)
    if not isinstance(body, dict):
        raise BadRequestData("a merge-patch body must be a JSON object")
    now = utc_now()
    attrs = parse_attributes(body, tm, now, allow_null=True)
    types = parse_types(body["type"], tm) if "type" in body else None
    fragments = merge_fragments(body, tm, now)

    def fn(current: dict[str, Entity | None]) -> WriteSet:
        entity = current[entity_id]
        if entity is None:
            raise _missing(entity_id)
        merge.merge_entity(entity, choose_merge(entity, attrs, fragments), now, types)
        return WriteSet(upserts=[entity])

    await broker.store.write(tenant, [entity_id], fn)


async def delete_entity(broker: Broker, tenant: str, entity_id: str) -> None:
    """DELETE /entities/{id}."""
    check_uri(entity_id, "entity id")

    def fn(current: dict[str, Entity | None]) -> WriteSet:
        if current[entity_id] is None:
            raise _missing(entity_id)
        return WriteSet(deletes=[entity_id])

    await broker.store.write(tenant, [entity_id], fn)


def _attrs_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequestData("the body must be a JSON object of attributes")
    return body


async def append_attributes(broker: Broker, tenant: str, entity_id: str, body: Any,
                            tm: TermMap, no_overwrite: bool) -> AttrOutcome:
    """POST /entities/{id}/attrs."""
    check_uri(entity_id, "entity id")
    merge.check_body_id(body, entity_id)
    now = utc_now()
    attrs = parse_attributes(_attrs_body(body), tm, now)
    merge.strip_nulls(attrs, "append")
    types = parse_types(body["type"], tm) if "type" in body else None

    def fn(current: dict[str, Entity | None]) -> WriteSet:
        entity = current[entity_id]
        if entity is None:
            raise _missing(entity_id)
        updated, skipped = merge.append_attributes(entity, attrs, now, no_overwrite)
        if types:
            entity["type"] = list(dict.fromkeys([*entity["type"], *types]))
        return WriteSet(upserts=[entity], result=AttrOutcome(updated, skipped))

    outcome: AttrOutcome = await broker.store.write(tenant, [entity_id], fn)
    return outcome


async def update_attributes(broker: Broker, tenant: str, entity_id: str, body: Any,
                            tm: TermMap) -> AttrOutcome:
    """PATCH /entities/{id}/attrs: only attributes that exist are changed."""
    check_uri(entity_id, "entity id")
    merge.check_body_id(body, entity_id)
    now = utc_now()
    attrs = parse_attributes(_attrs_body(body), tm, now, allow_null=True)

    def fn(current: dict[str, Entity | None]) -> WriteSet:
        entity = current[entity_id]
        if entity is None:
            raise _missing(entity_id)
        updated, skipped = merge.update_attributes(entity, attrs, now)
        return WriteSet(upserts=[entity] if updated else [], result=AttrOutcome(updated, skipped))

    outcome: AttrOutcome = await broker.store.write(tenant, [entity_id], fn)
    return outcome


async def partial_attribute_update(broker: Broker, tenant: str, entity_id: str, attr: str,
                                   body: Any, tm: TermMap) -> None:
    """PATCH /entities/{id}/attrs/{attr}."""
    check_uri(entity_id, "entity id")
    iri = tm.expand(check_name(attr))
    if not isinstance(body, dict):
        raise BadRequestData("the body must be one attribute as a JSON object")
    now = utc_now()
    patch = _fragment(body, iri, attr, tm, now)

    def fn(current: dict[str, Entity | None]) -> WriteSet:
        entity = current[entity_id]
        if entity is None:
            raise _missing(entity_id)
        merge.partial_update(entity, iri, patch, attr, now)
        return WriteSet(upserts=[entity])

    await broker.store.write(tenant, [entity_id], fn)


def merge_fragments(body: dict[str, Any], tm: TermMap, now: str) -> dict[str, Instance]:
    """The members of a merge-patch body that may be fragments of existing attributes.

    An object with neither a type nor a value member (``{"temp": {"accuracy": ...}}``) is, for an
    attribute that exists, a fragment of it: its sub-attributes and metadata are merged (clause
    5.6.17).  Only for a new attribute is it a concise Property whose value is that object; both
    readings are parsed up front and :func:`choose_merge` picks one once the entity is known.
    """
    fragments: dict[str, Instance] = {}
    for name, raw in body.items():
        if _is_bare_fragment(name, raw):
            # not a valid fragment: then it can only be a value (parsed as such by the caller)
            with contextlib.suppress(Problem):
                fragments[tm.expand(name)] = _fragment(raw, tm.expand(name), name, tm, now)
    return fragments


def choose_merge(entity: Entity, attrs: dict[str, list[Instance]],
                 fragments: dict[str, Instance]) -> dict[str, list[Instance]]:
    """``attrs`` with each bare object read as a fragment where the entity has that attribute."""
    return {iri: ([fragments[iri]] if iri in fragments and entity["attrs"].get(iri) else instances)
            for iri, instances in attrs.items()}


def _is_bare_fragment(name: str, raw: Any) -> bool:
    """A JSON object naming no attribute type and no value member (nor a GeoJSON geometry)."""
    return (name not in ENTITY_KEYS and isinstance(raw, dict) and bool(raw)
            and "type" not in raw and not any(k in raw for k in VALUE_KEY.values()))


def _fragment(body: dict[str, Any], iri: str, name: str, tm: TermMap, now: str) -> dict[str, Any]:
    """A partial attribute (type and value may be missing) in the internal form."""
    if "type" in body or any(k in body for k in ("value", "object", "languageMap", "vocab",
                                                   "valueList", "objectList", "json")):
        [instance] = parse_attribute(body, iri, name, tm, now, allow_null=True)
        if "type" not in body:
            instance.pop("type", None) if "value" not in body else None
        return instance
    # Only metadata or sub-attributes: parse them through a throw-away Property.
    [instance] = parse_attribute({**body, "type": "Property", "value": 0}, iri, name, tm, now,
                                 allow_null=True)
    instance.pop("type")
    instance.pop("value")
    return instance


async def replace_attribute(broker: Broker, tenant: str, entity_id: str, attr: str, body: Any,
                            tm: TermMap) -> None:
    """PUT /entities/{id}/attrs/{attr}."""
    check_uri(entity_id, "entity id")
    iri = tm.expand(check_name(attr))
    now = utc_now()
    instances = parse_attribute(body, iri, attr, tm, now)

    def fn(current: dict[str, Entity | None]) -> WriteSet:
        entity = current[entity_id]
        if entity is None:
            raise _missing(entity_id)
        merge.replace_attribute(entity, iri, instances, attr, now)
        return WriteSet(upserts=[entity])

    await broker.store.write(tenant, [entity_id], fn)


async def delete_attribute(broker: Broker, tenant: str, entity_id: str, attr: str, tm: TermMap,
                           dataset_id: str | None, delete_all: bool) -> None:
    """DELETE /entities/{id}/attrs/{attr}."""
    check_uri(entity_id, "entity id")
    iri = tm.expand(check_name(attr))
    if dataset_id is not None:
        check_uri(dataset_id, "datasetId")
    now = utc_now()

    def fn(current: dict[str, Entity | None]) -> WriteSet:
        entity = current[entity_id]
        if entity is None:
            raise _missing(entity_id)
        merge.delete_attribute(entity, iri, attr, dataset_id, delete_all, now)
        return WriteSet(upserts=[entity])

    await broker.store.write(tenant, [entity_id], fn)


async def query_entities(broker: Broker, plan: QueryPlan) -> tuple[list[Entity], int | None]:
    """GET /entities and POST /entityOperations/query."""
    return await broker.store.query(plan)


async def purge_entities(broker: Broker, plan: QueryPlan) -> int:
    """DELETE /entities?type=...&q=...: delete every matching entity."""
    return await broker.store.delete_matching(plan)
