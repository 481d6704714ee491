"""HTTP routes of ``/entityOperations`` (batch create, upsert, update, merge, delete, query)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from cityos.core.http import json_response
from cityos.core.problems import BadRequestData
from cityos.data.ngsild import actions, batch
from cityos.data.ngsild.batch import BatchResult
from cityos.data.ngsild.csource import batch_forwarding, federation_for
from cityos.data.ngsild.join import parse_join, render_entities
from cityos.data.ngsild.model import LOCATION
from cityos.data.ngsild.negotiation import (
    GEO_JSON,
    JSON_LD,
    choose_accept,
    read_body,
    response_context_url,
    tenant_of,
)
from cityos.data.ngsild.queryparams import build_plan, page_bounds, render_options, split_list
from cityos.data.ngsild.responses import ngsild_route, no_content, page_headers, with_context
from cityos.data.ngsild.routes_entities import BASE, broker_of, read_tenant
from cityos.data.ngsild.terms import TermMap


def _options(request: Request, allowed: set[str]) -> list[str]:
    options = split_list(request.query_params.get("options"))
    for option in options:
        if option not in allowed:
            raise BadRequestData(f"unknown option {option[:40]!r}; use one of {sorted(allowed)}")
    return options


async def _framed(request: Request) -> tuple[Any, Any, Any]:
    broker = broker_of(request)
    framed = await read_body(request, broker.settings.max_body_bytes)
    default_context = framed.context if framed.media_type != JSON_LD else None

    async def term_map_for(item_context: Any) -> TermMap:
        return await broker.resolver.term_map(item_context if item_context is not None
                                              else default_context)

    return broker, framed.body, term_map_for


def _result(result: BatchResult, all_ok_status: int, ok_body: Any = None) -> Response:
    if result.errors:
        return json_response({"success": result.success, "errors": result.errors}, 207)
    if ok_body is None:
        return no_content()
    return json_response(ok_body, all_ok_status)


async def batch_create(request: Request) -> Response:
    """POST /entityOperations/create: 201 with the ids, or 207 with errors."""
    broker, body, tm_for = await _framed(request)
    result = await batch.batch_create(broker, tenant_of(request), body, tm_for)
    return _result(result, 201, result.success)


async def batch_upsert(request: Request) -> Response:
    """POST /entityOperations/upsert: 201 with created ids, 204 when all existed, 207 on errors."""
    options = _options(request, {"replace", "update"})
    if "replace" in options and "update" in options:
        raise BadRequestData("options replace and update exclude each other")
    broker, body, tm_for = await _framed(request)
    result = await batch.batch_upsert(broker, tenant_of(request), body, tm_for,
                                      replace="update" not in options)
    return _result(result, 201, result.created or None)


async def batch_update(request: Request) -> Response:
    """POST /entityOperations/update (``options=noOverwrite``): 204, or 207 on errors."""
    options = _options(request, {"noOverwrite"})
    broker, body, tm_for = await _framed(request)
    result = await batch.batch_update(broker, tenant_of(request), body, tm_for,
                                      no_overwrite="noOverwrite" in options)
    return _result(result, 204)


async def batch_merge(request: Request) -> Response:
    """POST /entityOperations/merge: merge-patch each entity; 204, or 207 on errors."""
    broker, body, tm_for = await _framed(request)
    result = await batch.batch_update(broker, tenant_of(request), body, tm_for,
                                      no_overwrite=False, merge_patch=True)
    return _result(result, 204)


async def batch_delete(request: Request) -> Response:
    """POST /entityOperations/delete: body = array of ids; 204, or 207 on errors."""
    broker = broker_of(request)
    framed = await read_body(request, broker.settings.max_body_bytes)
    result = await batch.batch_delete(broker, tenant_of(request), framed.body)
    return _result(result, 204)


async def batch_query(request: Request) -> Response:
    """POST /entityOperations/query: a ``Query`` body instead of URL parameters."""
    broker = broker_of(request)
    accept = choose_accept(request, geo=True)
    framed = await read_body(request, broker.settings.max_body_bytes)
    query = query_object(framed.body)
    tm = await broker.resolver.term_map(framed.context)
    tenant = await read_tenant(request, broker)
    params = query_body_params(query)
    params.update({k: v for k, v in request.query_params.items()
                   if k in ("limit", "offset", "count", "options", "format", "lang", "join",
                            "joinLevel", "containedBy")})
    page_bounds(params, broker.settings)
    several = query.get("entities")
    plan = build_plan(tenant, params, tm, broker.settings,
                      selectors=several if isinstance(several, list) and len(several) > 1 else None)
    opts = render_options({k: v for k, v in params.items() if k != "attrs"} |
                          ({"attrs": params["attrs"]} if "attrs" in params else {}), tm)
    spec = parse_join(params)
    federation = await federation_for(request, tenant)     # None: no registration (fast path)
    if federation is None:
        entities, total = await actions.query_entities(broker, plan)
    else:
        entities, total = await federation.query(broker.store, plan, tm,
                                                 batch_body=await request.body())
    headers = page_headers(request, plan.offset, plan.limit, len(entities), total)
    headers.update(federation.headers if federation else {})
    ctx_url = response_context_url(framed.context_url)
    geometry = LOCATION if accept == GEO_JSON else None
    items = await render_entities(broker, tenant, entities, tm, opts, spec, geometry)
    body: Any = items if geometry is None else {"type": "FeatureCollection", "features": items}
    return with_context(body, accept, ctx_url, headers=headers)


def query_object(body: Any) -> dict[str, Any]:
    """The body of a query request, which must be a ``Query`` object (also for temporal)."""
    if not isinstance(body, dict) or body.get("type") != "Query":
        raise BadRequestData('the body must be a Query object with "type": "Query"')
    if "attrs" in body and not isinstance(body["attrs"], list):
        raise BadRequestData("attrs must be an array of attribute names")
    return body


def query_body_params(query: dict[str, Any]) -> dict[str, Any]:
    """Translate a ``Query`` body into the URL parameter vocabulary."""
    params: dict[str, Any] = {}
    selectors = query.get("entities")
    if selectors is not None:
        if not isinstance(selectors, list) or not selectors or \
                not all(isinstance(s, dict) for s in selectors):
            raise BadRequestData("entities must be a non-empty array of EntitySelector objects")
        if len(selectors) == 1:
            selector = selectors[0]
            for key in ("id", "idPattern", "type"):
                if key in selector:
                    if not isinstance(selector[key], str):
                        raise BadRequestData(f"entities[0].{key} must be a string")
                    params[key] = selector[key]
    if "attrs" in query and isinstance(query["attrs"], list):
        if not all(isinstance(a, str) for a in query["attrs"]):
            raise BadRequestData("attrs must be an array of strings")
        params["attrs"] = ",".join(query["attrs"])
    for key in ("q", "scopeQ", "lang", "join"):
        if key in query:
            if not isinstance(query[key], str):
                raise BadRequestData(f"{key} must be a string")
            params[key] = query[key]
    if "joinLevel" in query:
        level = query["joinLevel"]
        if isinstance(level, bool) or not isinstance(level, int | str):
            raise BadRequestData("joinLevel must be a positive integer")
        params["joinLevel"] = str(level)
    if "containedBy" in query:
        contained = query["containedBy"]
        if isinstance(contained, str):
            contained = [contained]
        if not isinstance(contained, list) or not all(isinstance(i, str) for i in contained):
            raise BadRequestData("containedBy must be an array of entity ids")
        params["containedBy"] = ",".join(contained)
    geo = query.get("geoQ")
    if geo is not None:
        if not isinstance(geo, dict):
            raise BadRequestData("geoQ must be an object")
        for key in ("georel", "geometry", "coordinates", "geoproperty"):
            if key in geo:
                params[key] = geo[key]
        for key in ("georel", "geometry"):
            if key in params and not isinstance(params[key], str):
                raise BadRequestData(f"geoQ.{key} must be a string")
    return params


ROUTES = [
    ngsild_route(f"{BASE}/entityOperations/create", batch_forwarding("createBatch", batch_create),
                 methods=["POST"], name="batchEntityCreation"),
    ngsild_route(f"{BASE}/entityOperations/upsert", batch_forwarding("upsertBatch", batch_upsert),
                 methods=["POST"], name="batchEntityUpsert"),
    ngsild_route(f"{BASE}/entityOperations/update", batch_forwarding("updateBatch", batch_update),
                 methods=["POST"], name="batchEntityUpdate"),
    ngsild_route(f"{BASE}/entityOperations/merge", batch_forwarding("mergeBatch", batch_merge),
                 methods=["POST"], name="batchEntityMerge"),
    ngsild_route(f"{BASE}/entityOperations/delete", batch_forwarding("deleteBatch", batch_delete),
                 methods=["POST"], name="batchEntityDelete"),
    ngsild_route(f"{BASE}/entityOperations/query", batch_query, methods=["POST"], name="queryBatch"),
]
