"""Batch entity operations (clause 5.6.7 - 5.6.10, 5.6.20): one transaction, per-entity results.

Each entity of a batch is validated on its own; the valid ones are written together in one store
transaction (fast: one commit for up to ``max_batch_size`` entities), the invalid ones are reported
in ``errors`` with their own problem details.  A batch larger than the documented maximum is
refused whole, never truncated.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from cityos.core.problems import AlreadyExists, BadRequestData, Problem, ResourceNotFound
from cityos.data.ngsild import merge
from cityos.data.ngsild.actions import Broker, choose_merge, merge_fragments
from cityos.data.ngsild.model import Entity
from cityos.data.ngsild.payload import check_uri, parse_attributes, parse_entity, parse_types, utc_now
from cityos.data.ngsild.store.base import WriteSet
from cityos.data.ngsild.terms import TermMap

TermMapFor = Callable[[Any], Awaitable[TermMap]]


@dataclass
class BatchResult:
    """``success`` ids (in request order), ``errors`` as BatchEntityError, and which were new."""

    success: list[str] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    created: list[str] = field(default_factory=list)

    def fail(self, entity_id: Any, problem: Problem) -> None:
        """Record one entity's failure."""
        body = problem.body()
        self.errors.append({"entityId": entity_id if isinstance(entity_id, str) else str(entity_id),
                            "error": body})

    def refuse(self, entity_id: str, problem: Problem) -> None:
        """The store refused ``entity_id`` (access control): an error instead of a success."""
        if entity_id in self.success:
            self.success.remove(entity_id)
        if entity_id in self.created:
            self.created.remove(entity_id)
        self.fail(entity_id, problem)


def check_size(body: Any, broker: Broker) -> list[Any]:
    """The batch as a list, refused whole when it is not an array or exceeds the maximum."""
    if not isinstance(body, list):
        raise BadRequestData("a batch body must be a JSON array")
    if not body:
        raise BadRequestData("a batch must contain at least one entry")
    limit = broker.settings.max_batch_size
    if len(body) > limit:
        raise BadRequestData(f"the batch has {len(body)} entries; the maximum is {limit} "
                             "(CITYOS_MAX_BATCH_SIZE). Split it into several requests.",
                             extra={"maxBatchSize": limit})
    return body


async def _parse_all(body: list[Any], term_map_for: TermMapFor, result: BatchResult,
                     parse: Callable[[Any, TermMap, str], Entity]) -> list[Entity]:
    now = utc_now()
    parsed: list[Entity] = []
    for item in body:
        entity_id = item.get("id") if isinstance(item, dict) else None
        try:
            tm = await term_map_for(item.get("@context") if isinstance(item, dict) else None)
            parsed.append(parse(item, tm, now))
        except Problem as problem:
            result.fail(entity_id, problem)
    return parsed


def _full(item: Any, tm: TermMap, now: str) -> Entity:
    entity = parse_entity(item, tm, now)
    merge.strip_nulls(entity["attrs"], "batch create")
    return entity


def _fragment(item: Any, tm: TermMap, now: str) -> Entity:
    if not isinstance(item, dict):
        raise BadRequestData("each batch entry must be a JSON object")
    entity: Entity = {"id": check_uri(item.get("id"), "entity id"), "createdAt": now,
                      "modifiedAt": now, "attrs": parse_attributes(item, tm, now, allow_null=True),
                      # merge only: bare objects that may be fragments of existing attributes
                      "fragments": merge_fragments(item, tm, now)}
    if "type" in item:
        entity["type"] = parse_types(item["type"], tm)
    return entity


async def batch_create(broker: Broker, tenant: str, body: Any, term_map_for: TermMapFor) -> BatchResult:
    """POST /entityOperations/create."""
    result = BatchResult()
    entities = await _parse_all(check_size(body, broker), term_map_for, result, _full)

    def fn(current: dict[str, Entity | None]) -> WriteSet:
        taken = {i for i, e in current.items() if e is not None}
        writes: list[Entity] = []
        for entity in entities:
            if entity["id"] in taken:
                result.fail(entity["id"], AlreadyExists(f"entity {entity['id']} already exists"))
                continue
            taken.add(entity["id"])
            writes.append(entity)
            result.success.append(entity["id"])
        return WriteSet(upserts=writes, refused=result.refuse)

    if entities:
        await broker.store.write(tenant, [e["id"] for e in entities], fn)
    return result


async def batch_upsert(broker: Broker, tenant: str, body: Any, term_map_for: TermMapFor,
                       replace: bool, *, each_state: bool = False) -> BatchResult:
    """POST /entityOperations/upsert (``options=replace`` default, or ``update``).

    ``each_state``: several items for one entity are successive states, each written as its own
    change (a history row and notifications per item: the IoT agent's bursts of measurements);
    otherwise they fold into one state, as the API's batch upsert does.
    """
    result = BatchResult()
    entities = await _parse_all(check_size(body, broker), term_map_for, result, _full)
    now = entities[0]["modifiedAt"] if entities else utc_now()
    last = {e["id"]: n for n, e in enumerate(entities)} if each_state else {}

    def fn(current: dict[str, Entity | None]) -> WriteSet:
        state: dict[str, Entity | None] = dict(current)
        states: list[Entity] = []
        for n, entity in enumerate(entities):
            old = state.get(entity["id"])
            if old is None:
                state[entity["id"]] = old = entity
                result.created.append(entity["id"])
            elif replace:
                state[entity["id"]] = old = merge.replace_entity(old, entity, now)
            else:
                merge.append_attributes(old, entity["attrs"], now, no_overwrite=False)
                old["type"] = list(dict.fromkeys([*old["type"], *entity["type"]]))
            if entity["id"] not in result.success:
                result.success.append(entity["id"])
            if each_state:   # a state that a later item changes in place is kept as a copy
                states.append(old if last[entity["id"]] == n else orjson.loads(orjson.dumps(old)))
        if each_state:
            return WriteSet(upserts=states, refused=result.refuse)
        touched = [e for i, e in state.items() if e is not None and i in set(result.success)]
        return WriteSet(upserts=touched, refused=result.refuse)

    if entities:
        await broker.store.write(tenant, list(dict.fromkeys(e["id"] for e in entities)), fn)
    return result


async def batch_update(broker: Broker, tenant: str, body: Any, term_map_for: TermMapFor,
                       no_overwrite: bool, merge_patch: bool = False) -> BatchResult:
    """POST /entityOperations/update (``noOverwrite``) and /entityOperations/merge."""
    result = BatchResult()
    fragments = await _parse_all(check_size(body, broker), term_map_for, result, _fragment)
    now = utc_now()

    def fn(current: dict[str, Entity | None]) -> WriteSet:
        changed: dict[str, Entity] = {}
        for fragment in fragments:
            entity_id = fragment["id"]
            entity = changed.get(entity_id) or current.get(entity_id)
            if entity is None:
                result.fail(entity_id, ResourceNotFound(f"entity {entity_id} does not exist"))
                continue
            if merge_patch:
                attrs = choose_merge(entity, fragment["attrs"], fragment["fragments"])
                merge.merge_entity(entity, attrs, now, fragment.get("type"))
            else:
                merge.append_attributes(entity, fragment["attrs"], now, no_overwrite)
            changed[entity_id] = entity
            if entity_id not in result.success:
                result.success.append(entity_id)
        return WriteSet(upserts=list(changed.values()), refused=result.refuse)

    if fragments:
        await broker.store.write(tenant, list(dict.fromkeys(f["id"] for f in fragments)), fn)
    return result


async def batch_delete(broker: Broker, tenant: str, body: Any) -> BatchResult:
    """POST /entityOperations/delete: the body is an array of entity ids."""
    result = BatchResult()
    ids: list[str] = []
    for item in check_size(body, broker):
        try:
            ids.append(check_uri(item, "entity id"))
        except Problem as problem:
            result.fail(item, problem)

    def fn(current: dict[str, Entity | None]) -> WriteSet:
        doomed: list[str] = []
        for entity_id in ids:
            if current.get(entity_id) is None or entity_id in doomed:
                result.fail(entity_id, ResourceNotFound(f"entity {entity_id} does not exist"))
                continue
            doomed.append(entity_id)
            result.success.append(entity_id)
        return WriteSet(deletes=doomed, refused=result.refuse)

    if ids:
        await broker.store.write(tenant, list(dict.fromkeys(ids)), fn)
    return result
