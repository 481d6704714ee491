"""``/v2/entities`` and ``/v2/entities/{id}`` (and ``/attrs`` as a whole)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from cityos.data.ngsild.model import Entity
from cityos.data.ngsild.payload import utc_now
from cityos.data.ngsiv2 import writes
from cityos.data.ngsiv2.errors import bad_request, not_found, v2_route
from cityos.data.ngsiv2.http import (
    broker_of,
    json_ok,
    list_param,
    no_content,
    options_of,
    read_json,
)
from cityos.data.ngsiv2.mapping import (
    entity_id,
    expand_type,
    in_paths,
    query_paths,
    scope_of,
    tenant_of,
    write_path,
)
from cityos.data.ngsiv2.names import face_terms
from cityos.data.ngsiv2.parse import parse_attributes, parse_entity
from cityos.data.ngsiv2.query import build_query, run_query
from cityos.data.ngsiv2.render import KEY_VALUES, NORMALIZED, VALUES, render_entity, unique_rows

BASE = "/v2/entities"
READ_OPTIONS = ("keyValues", "values", "unique", "count", "skipForwarding")


def form_of(options: set[str]) -> str:
    """The representation the ``options`` ask for."""
    if "values" in options or "unique" in options:
        return VALUES
    return KEY_VALUES if "keyValues" in options else NORMALIZED


async def create_entity(request: Request) -> Response:
    """POST /v2/entities (``options=keyValues,upsert``)."""
    broker = broker_of(request)
    tm = face_terms(request)
    options = options_of(request, ("keyValues", "upsert", "overrideMetadata"))
    tenant, path = tenant_of(request), write_path(request)
    body = await read_json(request, broker)
    entity = parse_entity(body, tm, utc_now(), key_values="keyValues" in options,
                          scope=scope_of(path))
    created = await writes.create_entity(
        broker, tenant, entity, path, upsert="upsert" in options,
        override_metadata="overrideMetadata" in options, compact=tm.compact)
    if not created:
        return no_content()
    location = f"{BASE}/{quote(body['id'], safe=':')}?type={quote(tm.compact(entity['type'][0]))}"
    return Response(status_code=201, headers={"Location": location})


async def list_entities(request: Request) -> Response:
    """GET /v2/entities."""
    broker = broker_of(request)
    tm = face_terms(request)
    options = options_of(request, READ_OPTIONS)
    query = build_query(tenant_of(request), request.query_params, tm, query_paths(request),
                        count="count" in options)
    entities, total = await run_query(broker, query, tm)
    form = form_of(options)
    attrs, metadata = list_param(request, "attrs"), list_param(request, "metadata")
    body: list[Any] = [render_entity(e, tm, form, attrs, metadata) for e in entities]
    if "unique" in options:
        body = unique_rows(body)
    headers = {"Fiware-Total-Count": str(total)} if total is not None else None
    return json_ok(body, headers=headers)


async def load_entity(request: Request) -> Entity:
    """The entity named in the path (``type`` parameter, service paths checked), else 404."""
    broker = broker_of(request)
    tm = face_terms(request)
    ld_id = entity_id(request.path_params["entityId"])
    entity = await broker.store.get(tenant_of(request), ld_id)
    wanted = request.query_params.get("type")
    if entity is None or (wanted is not None and expand_type(tm, wanted) not in entity["type"]) \
            or not in_paths(entity.get("scope"), query_paths(request)):
        raise not_found()
    return entity


async def retrieve_entity(request: Request) -> Response:
    """GET /v2/entities/{id}."""
    return await _retrieve(request, with_id=True)


async def retrieve_attrs(request: Request) -> Response:
    """GET /v2/entities/{id}/attrs: the entity without ``id`` and ``type``."""
    return await _retrieve(request, with_id=False)


async def _retrieve(request: Request, *, with_id: bool) -> Response:
    tm = face_terms(request)
    options = options_of(request, READ_OPTIONS)
    entity = await load_entity(request)
    body = render_entity(entity, tm, form_of(options), list_param(request, "attrs"),
                         list_param(request, "metadata"))
    if "unique" in options:
        body = unique_rows(body)
    if not with_id and isinstance(body, dict):
        body.pop("id", None)
        body.pop("type", None)
    return json_ok(body)


async def _target(request: Request) -> tuple[Any, Any, str, str, str | None, str]:
    broker = broker_of(request)
    tm = face_terms(request)
    ld_id = entity_id(request.path_params["entityId"])
    wanted = request.query_params.get("type")
    type_iri = expand_type(tm, wanted) if wanted is not None else None
    return broker, tm, tenant_of(request), ld_id, type_iri, write_path(request)


async def write_attrs(request: Request) -> Response:
    """POST (append/update, ``options=append`` strict), PATCH (update), PUT (replace) /attrs."""
    allowed = {"POST": ("keyValues", "append", "overrideMetadata"),
               "PATCH": ("keyValues", "overrideMetadata"), "PUT": ("keyValues",)}
    options = options_of(request, allowed[request.method])
    broker, tm, tenant, ld_id, type_iri, path = await _target(request)
    body = await read_json(request, broker)
    now = utc_now()
    attrs = parse_attributes(body, tm, now, key_values="keyValues" in options)
    if not attrs and request.method != "PUT":
        raise bad_request("empty payload: no attribute to update or append")
    override = "overrideMetadata" in options

    def change(entity: Entity) -> None:
        if request.method == "PUT":
            writes.apply_replace(entity, attrs, now)
        elif request.method == "PATCH":
            writes.apply_update(entity, attrs, now, override_metadata=override,
                                compact=tm.compact)
        else:
            writes.apply_append(entity, attrs, now, strict="append" in options,
                                override_metadata=override, compact=tm.compact)

    await writes.write_entity(broker, tenant, ld_id, type_iri, path, change)
    return no_content()


async def delete_entity(request: Request) -> Response:
    """DELETE /v2/entities/{id}."""
    broker, _, tenant, ld_id, type_iri, path = await _target(request)
    await writes.delete_entity(broker, tenant, ld_id, type_iri, path)
    return no_content()



ROUTES = [
    v2_route(BASE, create_entity, methods=["POST"], name="v2CreateEntity"),
    v2_route(BASE, list_entities, methods=["GET"], name="v2ListEntities"),
    v2_route(f"{BASE}/{{entityId}}", retrieve_entity, methods=["GET"], name="v2RetrieveEntity"),
    v2_route(f"{BASE}/{{entityId}}", delete_entity, methods=["DELETE"], name="v2RemoveEntity"),
    v2_route(f"{BASE}/{{entityId}}/attrs", retrieve_attrs, methods=["GET"],
             name="v2RetrieveEntityAttributes"),
    v2_route(f"{BASE}/{{entityId}}/attrs", write_attrs, methods=["POST"],
             name="v2UpdateOrAppendEntityAttributes"),
    v2_route(f"{BASE}/{{entityId}}/attrs", write_attrs, methods=["PATCH"],
             name="v2UpdateExistingEntityAttributes"),
    v2_route(f"{BASE}/{{entityId}}/attrs", write_attrs, methods=["PUT"],
             name="v2ReplaceAllEntityAttributes"),
]
