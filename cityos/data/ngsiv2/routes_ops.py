"""Batch operations: ``POST /v2/op/update`` and ``POST /v2/op/query``.

A batch update is one atomic store write over every entity it names: Orion applies the entities one
by one and may stop half way; here a failing item (404 / 422) leaves every entity unchanged.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from cityos.data.ngsild.model import Entity
from cityos.data.ngsild.payload import utc_now
from cityos.data.ngsild.store.base import Selector, TypeExpr, WriteSet
from cityos.data.ngsiv2 import writes
from cityos.data.ngsiv2.errors import bad_request, v2_route
from cityos.data.ngsiv2.http import (
    broker_of,
    json_ok,
    no_content,
    options_of,
    read_json,
)
from cityos.data.ngsiv2.mapping import (
    V2_PREFIX,
    entity_id,
    expand_type,
    query_paths,
    scope_of,
    tenant_of,
    write_path,
)
from cityos.data.ngsiv2.names import face_terms
from cityos.data.ngsiv2.parse import check_attr_name, parse_entity
from cityos.data.ngsiv2.query import build_query, run_query, stored_pattern, type_regex
from cityos.data.ngsiv2.render import render_entity, unique_rows
from cityos.data.ngsiv2.routes_entities import READ_OPTIONS, form_of

ACTIONS = ("append", "appendStrict", "update", "delete", "replace")
# Orion also takes NGSIv1's names in any letter case (its parseActionTypeV1 fallback); the FIWARE
# tutorials and tools such as ngsi-go send "append_strict" or "APPEND_STRICT"
LEGACY_ACTIONS = {"update": "update", "append": "append", "append_strict": "appendStrict",
                  "delete": "delete", "replace": "replace"}


def action_of(value: Any) -> str:
    """The v2 action type named by ``actionType`` (v2 name, or a v1 name in any case)."""
    if value in ACTIONS:
        return str(value)
    legacy = LEGACY_ACTIONS.get(value.lower()) if isinstance(value, str) else None
    if legacy is None:
        raise bad_request(f"invalid update action type: {str(value)[:40]}; use one of "
                          f"{', '.join(ACTIONS)}")
    return legacy


async def batch_update(request: Request) -> Response:
    """POST /v2/op/update."""
    broker = broker_of(request)
    tm = face_terms(request)
    options = options_of(request, ("keyValues", "overrideMetadata"))
    tenant, path = tenant_of(request), write_path(request)
    body = await read_json(request, broker)
    if not isinstance(body, dict) or set(body) - {"actionType", "entities"}:
        raise bad_request("the body must be an object with actionType and entities")
    action = action_of(body.get("actionType"))
    items = body.get("entities")
    if not isinstance(items, list) or not items:
        raise bad_request("entities must be a non-empty array")
    if len(items) > broker.settings.max_batch_size:
        raise bad_request(f"too many entities in one batch (max {broker.settings.max_batch_size})")
    now = utc_now()
    key_values = "keyValues" in options
    override = "overrideMetadata" in options
    parsed: list[tuple[Entity, list[str], bool]] = []
    for item in items:
        if action == "delete":
            if not isinstance(item, dict):
                raise bad_request("each entity must be a JSON object")
            ld_id = entity_id(item.get("id"))
            types = [expand_type(tm, item["type"])] if "type" in item else []
            names = [tm.expand(check_attr_name(n, tm)) for n in item if n not in ("id", "type")]
            parsed.append(({"id": ld_id, "type": types}, names, bool(types)))
        else:
            entity = parse_entity(item, tm, now, key_values=key_values, scope=scope_of(path))
            # without a type an item matches an existing entity of any type
            parsed.append((entity, [], isinstance(item, dict) and "type" in item))
    ids = list(dict.fromkeys(e["id"] for e, _, _ in parsed))

    def fn(current: dict[str, Entity | None]) -> WriteSet:
        state: dict[str, Entity | None] = dict(current)
        for entity, names, typed in parsed:
            _apply(action, entity, names, typed, state, path, now, override, tm.compact)
        upserts = [e for i, e in state.items() if e is not None]
        deletes = [i for i, e in state.items() if e is None and current.get(i) is not None]
        return WriteSet(upserts=upserts, deletes=deletes)

    await broker.store.write(tenant, ids, fn)
    return no_content()


def _apply(action: str, item: Entity, names: list[str], typed: bool,
           state: dict[str, Entity | None], path: str, now: str, override: bool,
           compact: Any) -> None:
    ld_id = item["id"]
    attrs = {iri: instances[0] for iri, instances in item.get("attrs", {}).items()}
    if action in ("append", "appendStrict") and state.get(ld_id) is None:
        state[ld_id] = item
        return
    type_iri = item["type"][0] if typed else None
    entity = writes.existing(state, ld_id, type_iri, path)
    if action in ("append", "appendStrict"):
        writes.apply_append(entity, attrs, now, strict=action == "appendStrict",
                            override_metadata=override, compact=compact)
    elif action == "update":
        writes.apply_update(entity, attrs, now, override_metadata=override, compact=compact)
    elif action == "replace":
        writes.apply_replace(entity, attrs, now)
    elif names:
        writes.apply_delete_attrs(entity, names, now, compact)
    else:
        state[ld_id] = None


def _selectors(raw: Any, tm: Any) -> tuple[list[Selector], list[Any]]:
    """Selectors the store understands, and (id, type-pattern) checks it does not."""
    if not isinstance(raw, list) or not raw:
        raise bad_request("entities must be a non-empty array")
    selectors: list[Selector] = []
    type_patterns: list[Any] = []
    for item in raw:
        if not isinstance(item, dict) or ("id" in item) == ("idPattern" in item):
            raise bad_request("each entity selector needs exactly one of id and idPattern")
        if "type" in item and "typePattern" in item:
            raise bad_request("type and typePattern are incompatible in an entity selector")
        ids = (entity_id(item["id"]),) if "id" in item else None
        pattern = stored_pattern(item["idPattern"], "idPattern", V2_PREFIX) \
            if isinstance(item.get("idPattern"), str) else None
        types = TypeExpr((frozenset({expand_type(tm, item["type"])}),)) if "type" in item \
            else None
        selectors.append(Selector(ids=ids, id_pattern=pattern, types=types))
        tp = item.get("typePattern")
        if tp is not None and not isinstance(tp, str):
            raise bad_request("typePattern must be a string")
        type_patterns.append(type_regex(tp) if tp is not None else None)
    return selectors, type_patterns


async def batch_query(request: Request) -> Response:
    """POST /v2/op/query."""
    broker = broker_of(request)
    tm = face_terms(request)
    options = options_of(request, READ_OPTIONS)
    body = await read_json(request, broker)
    if not isinstance(body, dict) or set(body) - {"entities", "attrs", "expression", "metadata",
                                                  "orderBy"}:
        raise bad_request("the body may hold entities, attrs, expression and metadata only")
    expression = body.get("expression") or {}
    if not isinstance(expression, dict) or \
            set(expression) - {"q", "mq", "georel", "geometry", "coords"}:
        raise bad_request("expression may hold q, mq, georel, geometry and coords only")
    params: dict[str, str] = {k: str(v) for k, v in expression.items()}
    for name in ("limit", "offset", "orderBy"):
        if name in request.query_params:
            params[name] = request.query_params[name]
    query = build_query(tenant_of(request), params, tm, query_paths(request),
                        count="count" in options)
    if "entities" in body:
        selectors, type_patterns = _selectors(body["entities"], tm)
        query.plan = replace(query.plan, selectors=tuple(selectors))
        if any(p is not None for p in type_patterns):
            earlier = query.post
            pairs = list(zip(selectors, type_patterns, strict=True))

            def post(entity: Entity) -> bool:
                return (earlier is None or earlier(entity)) and any(
                    s.matches(entity) and (p is None or any(p.search(tm.compact(t))
                                                            for t in entity["type"]))
                    for s, p in pairs)
            query.post = post
    attrs, metadata = body.get("attrs"), body.get("metadata")
    for name, value in (("attrs", attrs), ("metadata", metadata)):
        if value is not None and (not isinstance(value, list)
                                  or not all(isinstance(v, str) for v in value)):
            raise bad_request(f"{name} must be an array of strings")
    entities, total = await run_query(broker, query, tm)
    rows: list[Any] = [render_entity(e, tm, form_of(options), attrs, metadata) for e in entities]
    if "unique" in options:
        rows = unique_rows(rows)
    headers = {"Fiware-Total-Count": str(total)} if total is not None else None
    return json_ok(rows, headers=headers)


ROUTES = [
    v2_route("/v2/op/update", batch_update, methods=["POST"], name="v2Update"),
    v2_route("/v2/op/query", batch_query, methods=["POST"], name="v2Query"),
]
