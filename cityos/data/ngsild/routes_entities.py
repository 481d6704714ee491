"""HTTP routes of the NGSI-LD context information API: ``/entities`` (clause 6.4 - 6.7)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from cityos.core.problems import BadRequestData, NonexistentTenant, ResourceNotFound
from cityos.data.ngsild import actions
from cityos.data.ngsild.actions import AttrOutcome, Broker
from cityos.data.ngsild.csource import federation_for, forwarding
from cityos.data.ngsild.join import parse_join, render_entities
from cityos.data.ngsild.negotiation import (
    GEO_JSON,
    choose_accept,
    read_body,
    request_context,
    response_context_url,
    tenant_of,
)
from cityos.data.ngsild.queryparams import build_plan, flag, render_options, split_list
from cityos.data.ngsild.responses import ngsild_route, no_content, page_headers, with_context
from cityos.data.ngsild.terms import TermMap

BASE = "/ngsi-ld/v1"


def broker_of(request: Request) -> Broker:
    """The broker the app was built with."""
    broker: Broker = request.app.state.broker
    return broker


async def read_tenant(request: Request, broker: Broker) -> str:
    """The tenant of a read: it must exist (``NonexistentTenant`` otherwise)."""
    tenant = tenant_of(request)
    if tenant and not await broker.store.tenant_exists(tenant) and \
            not await federation_for(request, tenant):     # a tenant of registrations only
        raise NonexistentTenant(f"tenant {tenant!r} does not exist")
    return tenant


async def _get_context(request: Request, broker: Broker) -> tuple[TermMap, str]:
    context, url = request_context(request)
    tm = await broker.resolver.term_map(context)
    return tm, response_context_url(url)


async def create_entity(request: Request) -> Response:
    """POST /entities."""
    broker = broker_of(request)
    tenant = tenant_of(request)
    framed = await read_body(request, broker.settings.max_body_bytes)
    tm = await broker.resolver.term_map(framed.context)
    entity_id = await actions.create_entity(broker, tenant, framed.body, tm)
    return Response(status_code=201, headers={"Location": f"{BASE}/entities/{quote(entity_id, safe=':')}"})


async def query_entities(request: Request) -> Response:
    """GET /entities."""
    broker = broker_of(request)
    accept = choose_accept(request, geo=True)
    tm, ctx_url = await _get_context(request, broker)
    params = request.query_params
    tenant = await read_tenant(request, broker)
    plan = build_plan(tenant, params, tm, broker.settings)
    opts = render_options(params, tm)
    spec = parse_join(params)
    federation = await federation_for(request, tenant)     # None: no registration (fast path)
    if federation is None:
        entities, total = await actions.query_entities(broker, plan)
    else:
        entities, total = await federation.query(broker.store, plan, tm)
    headers = page_headers(request, plan.offset, plan.limit, len(entities), total)
    headers.update(federation.headers if federation else {})
    geometry = tm.expand(params.get("geometryProperty", "location")) if accept == GEO_JSON else None
    items = await render_entities(broker, tenant, entities, tm, opts, spec, geometry)
    body: Any = items if geometry is None else {"type": "FeatureCollection", "features": items}
    return with_context(body, accept, ctx_url, headers=headers)


async def purge_entities(request: Request) -> Response:
    """DELETE /entities?type=...&q=... (purge by query)."""
    broker = broker_of(request)
    tm, _ = await _get_context(request, broker)
    tenant = await read_tenant(request, broker)
    params = dict(request.query_params)
    params.setdefault("limit", "0")
    params["count"] = "true"
    plan = build_plan(tenant, params, tm, broker.settings)
    await actions.purge_entities(broker, plan)
    return no_content()


async def retrieve_entity(request: Request) -> Response:
    """GET /entities/{id}."""
    broker = broker_of(request)
    accept = choose_accept(request, geo=True)
    tm, ctx_url = await _get_context(request, broker)
    tenant = await read_tenant(request, broker)
    params = request.query_params
    types = [tm.expand(t) for t in split_list(params.get("type"))] or None
    spec = parse_join(params)
    opts = render_options(params, tm)
    federation = await federation_for(request, tenant)     # None: no registration (fast path)
    if federation is None:
        entity = await actions.retrieve_entity(broker, tenant, request.path_params["entity_id"],
                                               types)
    else:
        entity = await federation.retrieve(broker.store, tenant, request.path_params["entity_id"],
                                           types, opts.attrs, tm)
    if "attrs" in params and opts.attrs is not None and opts.attrs.isdisjoint(entity["attrs"]):
        # clause 5.7.1 (and the ETSI test suite, 018_03_02): none of the requested attributes
        raise ResourceNotFound(f"entity {entity['id']} has none of the attributes "
                               f"{params['attrs'][:120]!r}")
    geometry = tm.expand(params.get("geometryProperty", "location")) if accept == GEO_JSON else None
    items = await render_entities(broker, tenant, [entity], tm, opts, spec, geometry)
    # join=flat: the entity followed by its linked entities; just the entity when none was found
    # (ETSI test suite 018_14_02)
    body: Any = items[0] if len(items) == 1 else items
    if geometry is not None and len(items) > 1:
        body = {"type": "FeatureCollection", "features": items}
    return with_context(body, accept, ctx_url, headers=federation.headers if federation else None)


async def replace_entity(request: Request) -> Response:
    """PUT /entities/{id}."""
    broker = broker_of(request)
    framed = await read_body(request, broker.settings.max_body_bytes)
    tm = await broker.resolver.term_map(framed.context)
    await actions.replace_entity(broker, tenant_of(request), request.path_params["entity_id"],
                                 framed.body, tm)
    return no_content()


async def merge_entity(request: Request) -> Response:
    """PATCH /entities/{id} (merge-patch)."""
    broker = broker_of(request)
    framed = await read_body(request, broker.settings.max_body_bytes, allow_merge_patch=True)
    tm = await broker.resolver.term_map(framed.context)
    await actions.merge_entity(broker, tenant_of(request), request.path_params["entity_id"],
                               framed.body, tm)
    return no_content()


async def delete_entity(request: Request) -> Response:
    """DELETE /entities/{id}."""
    broker = broker_of(request)
    await actions.delete_entity(broker, tenant_of(request), request.path_params["entity_id"])
    return no_content()


def _outcome_response(outcome: AttrOutcome, tm: TermMap) -> Response:
    if not outcome.not_updated:
        return no_content()
    from cityos.core.http import json_response

    body = {"updated": [tm.compact(a) for a in outcome.updated],
            "notUpdated": [{"attributeName": tm.compact(a),
                            "reason": "attribute exists and noOverwrite was set, or it does not "
                                      "exist for an update"} for a in outcome.not_updated]}
    return json_response(body, 207)


async def append_attributes(request: Request) -> Response:
    """POST /entities/{id}/attrs (``options=noOverwrite``)."""
    broker = broker_of(request)
    framed = await read_body(request, broker.settings.max_body_bytes)
    tm = await broker.resolver.term_map(framed.context)
    options = split_list(request.query_params.get("options"))
    if any(o not in ("noOverwrite",) for o in options):
        raise BadRequestData("the only option of an append is noOverwrite")
    outcome = await actions.append_attributes(
        broker, tenant_of(request), request.path_params["entity_id"], framed.body, tm,
        no_overwrite="noOverwrite" in options)
    return _outcome_response(outcome, tm)


async def update_attributes(request: Request) -> Response:
    """PATCH /entities/{id}/attrs."""
    broker = broker_of(request)
    framed = await read_body(request, broker.settings.max_body_bytes)
    tm = await broker.resolver.term_map(framed.context)
    outcome = await actions.update_attributes(
        broker, tenant_of(request), request.path_params["entity_id"], framed.body, tm)
    return _outcome_response(outcome, tm)


async def partial_attribute_update(request: Request) -> Response:
    """PATCH /entities/{id}/attrs/{attr}."""
    broker = broker_of(request)
    framed = await read_body(request, broker.settings.max_body_bytes)
    tm = await broker.resolver.term_map(framed.context)
    await actions.partial_attribute_update(
        broker, tenant_of(request), request.path_params["entity_id"], request.path_params["attr"],
        framed.body, tm)
    return no_content()


async def replace_attribute(request: Request) -> Response:
    """PUT /entities/{id}/attrs/{attr}."""
    broker = broker_of(request)
    framed = await read_body(request, broker.settings.max_body_bytes)
    tm = await broker.resolver.term_map(framed.context)
    await actions.replace_attribute(
        broker, tenant_of(request), request.path_params["entity_id"], request.path_params["attr"],
        framed.body, tm)
    return no_content()


async def delete_attribute(request: Request) -> Response:
    """DELETE /entities/{id}/attrs/{attr} (``datasetId``, ``deleteAll``)."""
    broker = broker_of(request)
    tm, _ = await _get_context(request, broker)
    params = request.query_params
    await actions.delete_attribute(
        broker, tenant_of(request), request.path_params["entity_id"], request.path_params["attr"],
        tm, params.get("datasetId"), flag(params, "deleteAll"))
    return no_content()


ROUTES = [
    ngsild_route(f"{BASE}/entities", forwarding("createEntity", create_entity),
                 methods=["POST"], name="createEntity"),
    ngsild_route(f"{BASE}/entities", query_entities, methods=["GET"], name="queryEntity"),
    ngsild_route(f"{BASE}/entities", purge_entities, methods=["DELETE"], name="deleteEntities"),
    ngsild_route(f"{BASE}/entities/{{entity_id}}", retrieve_entity, methods=["GET"], name="retrieveEntity"),
    ngsild_route(f"{BASE}/entities/{{entity_id}}", forwarding("replaceEntity", replace_entity),
                 methods=["PUT"], name="replaceEntity"),
    ngsild_route(f"{BASE}/entities/{{entity_id}}", forwarding("mergeEntity", merge_entity),
                 methods=["PATCH"], name="mergeEntity"),
    ngsild_route(f"{BASE}/entities/{{entity_id}}", forwarding("deleteEntity", delete_entity),
                 methods=["DELETE"], name="deleteEntity"),
    ngsild_route(f"{BASE}/entities/{{entity_id}}/attrs", forwarding("appendAttrs", append_attributes),
                 methods=["POST"], name="appendAttrs"),
    ngsild_route(f"{BASE}/entities/{{entity_id}}/attrs", forwarding("updateAttrs", update_attributes),
                 methods=["PATCH"], name="updateAttrs"),
    ngsild_route(f"{BASE}/entities/{{entity_id}}/attrs/{{attr:path}}",
                 forwarding("updateAttrs", partial_attribute_update),
                 methods=["PATCH"], name="partialAttrUpdate"),
    ngsild_route(f"{BASE}/entities/{{entity_id}}/attrs/{{attr:path}}",
                 forwarding("replaceAttrs", replace_attribute), methods=["PUT"], name="replaceAttrs"),
    ngsild_route(f"{BASE}/entities/{{entity_id}}/attrs/{{attr:path}}",
                 forwarding("deleteAttrs", delete_attribute), methods=["DELETE"], name="deleteAttrs"),
]
