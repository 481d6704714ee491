"""HTTP routes of the NGSI-LD temporal API: ``/temporal/entities`` (clause 6.18 - 6.24) and
``/temporal/entityOperations/query`` (clause 6.24).

Framing, ``@context`` handling, content negotiation and errors are the entity routes' own
(``negotiation.py``, ``responses.py``): a temporal response differs only in its body, in
``206 Partial Content`` with ``Content-Range`` when instances were truncated (``pagination.py``),
and in ``Location: /ngsi-ld/v1/temporal/entities/{id}`` on create.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, NoMatchFound, Route
from starlette.types import Receive, Scope, Send

from cityos.core.problems import BadRequestData, ResourceNotFound
from cityos.data.ngsild.negotiation import (
    choose_accept,
    read_body,
    request_context,
    response_context_url,
    tenant_of,
)
from cityos.data.ngsild.payload import check_name
from cityos.data.ngsild.queryparams import build_plan, flag, page_bounds, render_options, split_list
from cityos.data.ngsild.responses import ngsild_route, no_content, page_headers, with_context
from cityos.data.ngsild.routes_batch import query_body_params, query_object
from cityos.data.ngsild.routes_entities import BASE, broker_of, read_tenant
from cityos.data.ngsild.temporal import actions
from cityos.data.ngsild.temporal.actions import TemporalResult
from cityos.data.ngsild.temporal.projection import Shown, parse_shown
from cityos.data.ngsild.temporal.query import TemporalQuery, parse_temporal_query
from cityos.data.ngsild.temporal.representation import render_temporal_entity
from cityos.data.ngsild.terms import TermMap

TEMPORAL = f"{BASE}/temporal/entities"
# URL parameters that shape a POST query's answer (the filters come from the Query body)
_URL_ONLY = ("limit", "offset", "count", "options", "format", "lang", "timeproperty", "lastN",
             "aggrMethods", "aggrPeriodDuration", "pick", "omit", "datasetId")


async def _read_context(request: Request) -> tuple[TermMap, str]:
    context, url = request_context(request)
    tm = await broker_of(request).resolver.term_map(context)
    return tm, response_context_url(url)


def _lang(params: Any, tm: TermMap) -> str | None:
    """``lang``, validated the same way as for entities."""
    return render_options({"lang": params["lang"]} if "lang" in params else {}, tm).lang


def _answer(result: TemporalResult, tq: TemporalQuery, tm: TermMap, lang: str | None,
            accept: str, ctx_url: str, headers: dict[str, str], single: bool,
            shown: Shown) -> Response:
    bodies = [shown.apply(render_temporal_entity(record, series, tq, tm, lang, kinds))
              for record, series, kinds in zip(result.records, result.series, result.kinds,
                                                strict=True)]
    if single and not bodies[0]:
        raise ResourceNotFound(f"pick / omit leave nothing of temporal entity "
                               f"{result.records[0].id}")
    bodies = [b for b in bodies if b]      # pick / omit may leave an entity without members
    status = 200
    if result.content_range is not None:
        status = 206
        headers = {**headers, "Content-Range": result.content_range}
    body: Any = bodies[0] if single else bodies
    return with_context(body, accept, ctx_url, status=status, headers=headers)


async def query_temporal(request: Request) -> Response:
    """GET /temporal/entities."""
    broker = broker_of(request)
    accept = choose_accept(request)
    tm, ctx_url = await _read_context(request)
    params = request.query_params
    tenant = await read_tenant(request, broker)
    tq = parse_temporal_query(params)
    shown = parse_shown(params, tm)
    plan = build_plan(tenant, params, tm, broker.settings)
    lang = _lang(params, tm)
    result = await actions.query(broker, plan, tq, shown=shown.attrs, omit=shown.omit,
                                 datasets=shown.datasets)
    headers = page_headers(request, plan.offset, plan.limit, len(result.records), result.total)
    return _answer(result, tq, tm, lang, accept, ctx_url, headers, single=False, shown=shown)


async def query_temporal_batch(request: Request) -> Response:
    """POST /temporal/entityOperations/query: a ``Query`` body with ``temporalQ``."""
    broker = broker_of(request)
    accept = choose_accept(request)
    framed = await read_body(request, broker.settings.max_body_bytes)
    query = query_object(framed.body)
    tm = await broker.resolver.term_map(framed.context)
    tenant = await read_tenant(request, broker)
    params = query_body_params(query)
    params.update({k: v for k, v in request.query_params.items() if k in _URL_ONLY})
    page_bounds(params, broker.settings)
    tq = parse_temporal_query(params, temporal_q=query.get("temporalQ"))
    several = query.get("entities")
    plan = build_plan(tenant, params, tm, broker.settings, require_filter=False,
                      selectors=several if isinstance(several, list) and len(several) > 1 else None)
    lang = _lang(params, tm)
    shown = parse_shown(params, tm)
    result = await actions.query(broker, plan, tq, shown=shown.attrs, omit=shown.omit,
                                 datasets=shown.datasets)
    headers = page_headers(request, plan.offset, plan.limit, len(result.records), result.total)
    return _answer(result, tq, tm, lang, accept, response_context_url(framed.context_url),
                   headers, single=False, shown=shown)


async def retrieve_temporal(request: Request) -> Response:
    """GET /temporal/entities/{id}."""
    broker = broker_of(request)
    accept = choose_accept(request)
    tm, ctx_url = await _read_context(request)
    params = request.query_params
    tenant = await read_tenant(request, broker)
    tq = parse_temporal_query(params)
    types = [tm.expand(check_name(t, "entity type")) for t in split_list(params.get("type"))]
    shown = parse_shown(params, tm)
    result = await actions.retrieve(broker, tenant, request.path_params["entity_id"], tq,
                                    shown.attrs, types or None, omit=shown.omit,
                                    datasets=shown.datasets)
    return _answer(result, tq, tm, _lang(params, tm), accept, ctx_url, {}, single=True,
                   shown=shown)


async def create_temporal(request: Request) -> Response:
    """POST /temporal/entities: 201 when the temporal entity is new, 204 when instances were
    added to an existing one."""
    broker = broker_of(request)
    framed = await read_body(request, broker.settings.max_body_bytes)
    tm = await broker.resolver.term_map(framed.context)
    entity_id, created = await actions.create_or_add(broker, tenant_of(request), framed.body, tm)
    if not created:
        return no_content()
    return Response(status_code=201,
                    headers={"Location": f"{TEMPORAL}/{quote(entity_id, safe=':')}"})


async def delete_temporal(request: Request) -> Response:
    """DELETE /temporal/entities/{id}."""
    broker = broker_of(request)
    await actions.delete_entity(broker, tenant_of(request), request.path_params["entity_id"])
    return no_content()


async def append_temporal_attrs(request: Request) -> Response:
    """POST /temporal/entities/{id}/attrs."""
    broker = broker_of(request)
    framed = await read_body(request, broker.settings.max_body_bytes)
    tm = await broker.resolver.term_map(framed.context)
    await actions.add_attributes(broker, tenant_of(request), request.path_params["entity_id"],
                                 framed.body, tm)
    return no_content()


async def delete_temporal_attr(request: Request) -> Response:
    """DELETE /temporal/entities/{id}/attrs/{attr} (``datasetId``, ``deleteAll``)."""
    broker = broker_of(request)
    tm, _ = await _read_context(request)
    params = request.query_params
    await actions.delete_attribute(broker, tenant_of(request), request.path_params["entity_id"],
                                   request.path_params["attr"], tm, params.get("datasetId"),
                                   flag(params, "deleteAll"))
    return no_content()


async def modify_temporal_instance(request: Request) -> Response:
    """PATCH /temporal/entities/{id}/attrs/{attr}/{instanceId}."""
    broker = broker_of(request)
    framed = await read_body(request, broker.settings.max_body_bytes)
    tm = await broker.resolver.term_map(framed.context)
    path = request.path_params
    await actions.modify_instance(broker, tenant_of(request), path["entity_id"], path["attr"],
                                  path["instance_id"], framed.body, tm)
    return no_content()


async def delete_temporal_instance(request: Request) -> Response:
    """DELETE /temporal/entities/{id}/attrs/{attr}/{instanceId}."""
    broker = broker_of(request)
    tm, _ = await _read_context(request)
    path = request.path_params
    await actions.delete_instance(broker, tenant_of(request), path["entity_id"], path["attr"],
                                  path["instance_id"], tm)
    return no_content()


async def empty_segment(request: Request) -> Response:
    """A path with an empty entity id or attribute name (``/temporal/entities//attrs``): the
    identifier is present but not a valid URI or name, so BadRequestData rather than a bare 404."""
    raise BadRequestData("the entity id and the attribute name in the path must not be empty")


class MalformedPath(BaseRoute):
    """Answers a malformed path (an empty segment) with the handler's error.  Not an API
    operation, so not a ``Route``: the OpenAPI document does not list it."""

    def __init__(self, path: str, methods: list[str], name: str) -> None:
        self.route: Route = ngsild_route(path, empty_segment, methods=methods, name=name)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        return self.route.matches(scope)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.route.handle(scope, receive, send)


_ENTITY = f"{TEMPORAL}/{{entity_id}}"
_ATTR = f"{_ENTITY}/attrs/{{attr}}"
_NO_ID = f"{TEMPORAL}//attrs"

ROUTES = [
    ngsild_route(TEMPORAL, query_temporal, methods=["GET"], name="queryTemporal"),
    ngsild_route(TEMPORAL, create_temporal, methods=["POST"], name="createTemporal"),
    ngsild_route(_ENTITY, retrieve_temporal, methods=["GET"], name="retrieveTemporal"),
    ngsild_route(_ENTITY, delete_temporal, methods=["DELETE"], name="deleteTemporal"),
    ngsild_route(f"{_ENTITY}/attrs", append_temporal_attrs, methods=["POST"],
                 name="appendTemporalAttrs"),
    ngsild_route(_ATTR, delete_temporal_attr, methods=["DELETE"], name="deleteTemporalAttr"),
    ngsild_route(f"{_ATTR}/{{instance_id}}", modify_temporal_instance, methods=["PATCH"],
                 name="modifyTemporalAttrInstance"),
    ngsild_route(f"{_ATTR}/{{instance_id}}", delete_temporal_instance, methods=["DELETE"],
                 name="deleteTemporalAttrInstance"),
    ngsild_route(f"{BASE}/temporal/entityOperations/query", query_temporal_batch,
                 methods=["POST"], name="queryTemporalBatch"),
    # empty path segments: 400 for the operations that exist on the full path.  PATCH on
    # .../attrs//{instanceId} stays 405 (no attribute to patch), as the ETSI suite expects.
    MalformedPath(_NO_ID, ["POST"], "temporalEmptyId"),
    MalformedPath(f"{_NO_ID}/{{attr}}", ["DELETE"], "temporalEmptyIdAttr"),
    MalformedPath(f"{_NO_ID}/{{attr}}/{{instance_id}}", ["PATCH", "DELETE"],
                  "temporalEmptyIdInstance"),
    MalformedPath(f"{_ENTITY}/attrs//{{instance_id}}", ["DELETE"], "temporalEmptyAttrInstance"),
]
